#include "federation.h"

#include <errno.h>
#include <stdarg.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hresult.h"
#include "ipc.h"
#include "log.h"

/* A token is reused until its Lifetime's Expires minus this margin (or a
 * fifth of its lifetime, when that is shorter), so the resource STS never
 * sees one about to expire.  A token without Expires is not cached. */
#define FED_MARGIN_S 60u
#define TICKS_PER_S 10000000ull
#define MAX_PRESET_BYTES (1u << 20)   /* the library's limit on a caller's token */
#define MAX_PRESET_KEY 1024u          /* ... and on its raw key */

struct fed_token {
	unsigned refs;                /* the cache's reference + one per user */
	bool cached;                  /* still in the list */
	uint64_t generation;          /* of the config it was obtained with */
	const struct profile *issuer;
	char *applies_to;
	uint64_t reuse_until;         /* WS_DATETIME ticks; 0: not reusable */
	struct obtained_token tok;
	struct wssec_token w;
	struct fed_token *next;
	/* A preset (the caller's own token, embedded mode): */
	const struct profile *presenter;
	struct secret xml;            /* the token's bytes, in secure memory */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fed_token *cache;
static struct fed_token *presets;   /* their own list: federation_flush keeps them */

/* Single flight: while one request obtains a token for (generation, issuer,
 * AppliesTo), others wanting the same wait for it instead of asking the
 * issuer STS too. */
struct inflight {
	uint64_t generation;
	const struct profile *issuer;
	const char *applies_to;
	struct inflight *next;
};
static struct inflight *inflights;
/* federation_flush calls so far: a token obtained while a flush happened
 * (a request of the old config still running after SIGHUP) is not cached,
 * or its proof key would outlive the reload's wipe. */
static uint64_t flushes;
static pthread_cond_t inflight_done;
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);   /* deadlines are ipc_now_ms() */
	pthread_cond_init(&inflight_done, &a);
	pthread_condattr_destroy(&a);
}

static struct inflight *find_inflight(uint64_t generation, const struct profile *issuer, const char *applies_to)
{
	for (struct inflight *i = inflights; i; i = i->next)
		if (i->generation == generation && i->issuer == issuer && !strcmp(i->applies_to, applies_to))
			return i;
	return NULL;
}

static uint64_t now_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + 62135596800ull) * TICKS_PER_S + (uint64_t)ts.tv_nsec / 100;
}

static void destroy(struct fed_token *t)
{
	obtained_token_free(&t->tok);   /* wipes the proof key */
	secret_free(&t->xml);
	free(t->applies_to);
	free(t);
}

/* Under lock. */
static void unref_locked(struct fed_token *t)
{
	if (--t->refs == 0)
		destroy(t);
}

static void unlink_locked(struct fed_token *t)
{
	for (struct fed_token **pp = &cache; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			t->cached = false;
			unref_locked(t);
			return;
		}
}

/* The AppliesTo of the first hop: what the issuer profile names, else the
 * resource STS's endpoint (the audience it checks). */
static const char *hop_applies_to(const struct profile *p)
{
	return p->issuer->applies_to ? p->issuer->applies_to : p->endpoint;
}

/* Entries of an older config (SIGHUP) are dropped: their profile pointers
 * may be reused by the new one, and their credentials may have changed. */
static struct fed_token *lookup_locked(uint64_t generation, const struct profile *issuer, const char *applies_to,
                                       uint64_t now)
{
	struct fed_token *found = NULL;
	for (struct fed_token *t = cache, *next; t; t = next) {
		next = t->next;
		if (t->reuse_until <= now || t->generation < generation) {
			unlink_locked(t);   /* expired (or about to), or stale: drop and wipe */
			continue;
		}
		if (!found && t->generation == generation && t->issuer == issuer && !strcmp(t->applies_to, applies_to)) {
			t->refs++;
			found = t;
		}
	}
	return found;
}

static void fail_with(struct request_failure *f, uint32_t hr, const char *msg, const struct profile *p)
{
	memset(f, 0, sizeof *f);
	f->hr = hr;
	f->faulted = true;
	snprintf(f->msg, sizeof f->msg, "%s", msg);
	snprintf(f->ctx, sizeof f->ctx, "while obtaining the token that profile %s presents, from issuer_profile %s (%s)",
	         p->name, p->issuer->name, p->issuer->endpoint);
}

static int obtain(const struct broker_config *cfg, const struct profile *p, int64_t deadline, struct fed_token **out,
                  struct request_failure *f);
static int preset_token(const struct broker_config *cfg, const struct profile *p, struct fed_token **out,
                        struct request_failure *f);

int federation_token(const struct broker_config *cfg, const struct profile *p, int64_t deadline,
                     struct fed_token **out, struct request_failure *f)
{
	*out = NULL;
	memset(f, 0, sizeof *f);
	if (p->auth == AUTH_ISSUED_TOKEN && !p->issuer)
		return preset_token(cfg, p, out, f);
	if (p->auth != AUTH_ISSUED_TOKEN) {
		f->hr = (uint32_t)E_INVALIDARG;
		snprintf(f->msg, sizeof f->msg, "profile %s has no issuer_profile", p->name);
		return -1;
	}
	const struct profile *iss = p->issuer;
	const char *applies_to = hop_applies_to(p);
	pthread_once(&cond_once, cond_init);
	pthread_mutex_lock(&lock);
	struct fed_token *t;
	for (;;) {
		t = lookup_locked(cfg->generation, iss, applies_to, now_ticks());
		if (t || !find_inflight(cfg->generation, iss, applies_to))
			break;
		int64_t left = deadline - ipc_now_ms();
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (left > 0) {
			ts.tv_sec += left / 1000;
			ts.tv_nsec += (left % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
		}
		if (left <= 0 || pthread_cond_timedwait(&inflight_done, &lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&lock);
			fail_with(f, (uint32_t)WS_E_OPERATION_TIMED_OUT, "timed out waiting for another request's token "
			          "from the issuer STS", p);
			f->faulted = true;
			return -1;
		}
	}
	if (t) {
		pthread_mutex_unlock(&lock);
		log_debug("profile=%s: reusing the cached token from profile %s", p->name, iss->name);
		*out = t;
		return 0;
	}
	struct inflight me = { .generation = cfg->generation, .issuer = iss, .applies_to = applies_to, .next = inflights };
	inflights = &me;
	uint64_t flushes_seen = flushes;
	pthread_mutex_unlock(&lock);
	int rc = obtain(cfg, p, deadline, &t, f);
	pthread_mutex_lock(&lock);
	for (struct inflight **pp = &inflights; *pp; pp = &(*pp)->next)
		if (*pp == &me) {
			*pp = me.next;
			break;
		}
	if (rc == 0 && flushes_seen == flushes && t->reuse_until > now_ticks()) {
		t->refs++;
		t->cached = true;
		t->next = cache;
		cache = t;
	}
	pthread_cond_broadcast(&inflight_done);
	pthread_mutex_unlock(&lock);
	if (rc != 0)
		return -1;
	log_info("profile=%s: obtained a %s token from issuer_profile %s%s", p->name,
	         t->w.key_type == KEY_TYPE_SYMMETRIC ? "symmetric-key" :
	         t->w.key_type == KEY_TYPE_ASYMMETRIC ? "public-key" : "bearer", iss->name,
	         t->cached ? " (cached)" : "");
	*out = t;
	return 0;
}

/* Ask the issuer STS (no lock held). */
static int obtain(const struct broker_config *cfg, const struct profile *p, int64_t deadline, struct fed_token **out,
                  struct request_failure *f)
{
	const struct profile *iss = p->issuer;
	const char *applies_to = hop_applies_to(p);
	uint64_t now;
	struct fed_token *t;

	struct token_params tp = {
		.applies_to = applies_to,
		.token_type = iss->token_type,
		.key_type = iss->key_type,
		.request_action = 1,
		.max_reply = cfg->max_reply_bytes,
		.deadline = deadline,
	};
	t = calloc(1, sizeof *t);
	if (!t || !(t->applies_to = strdup(applies_to))) {
		free(t);
		fail_with(f, (uint32_t)E_OUTOFMEMORY, "out of memory", p);
		return -1;
	}
	if (request_obtain(cfg, iss, &tp, &t->tok, f) != 0) {
		char ctx[2 * sizeof f->ctx];
		int n = snprintf(ctx, sizeof ctx, "while obtaining the token that profile %s presents, from "
		                 "issuer_profile %s: %s", p->name, iss->name, f->ctx[0] ? f->ctx : iss->endpoint);
		if (n > 0)
			snprintf(f->ctx, sizeof f->ctx, "%.*s", (int)(sizeof f->ctx - 1), ctx);
		log_warn("profile=%s: issuer_profile %s failed: %s", p->name, iss->name, f->msg);
		free(t->applies_to);
		free(t);
		return -1;
	}
	const struct wt_result *r = &t->tok.res;
	uint32_t kt = t->tok.key_type_out;
	now = now_ticks();
	char msg[512];
	if (r->expires && r->expires <= now) {
		snprintf(msg, sizeof msg, "the token issued by profile %s has already expired: refusing to present it",
		         iss->name);
		fail_with(f, (uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE, msg, p);
		destroy(t);
		return -1;
	}
	if (kt == KEY_TYPE_SYMMETRIC && t->tok.proof_key.len == 0) {
		snprintf(msg, sizeof msg, "the symmetric-key token issued by profile %s came without a proof key the "
		         "broker can use", iss->name);
		fail_with(f, (uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE, msg, p);
		destroy(t);
		return -1;
	}
	if (kt == KEY_TYPE_ASYMMETRIC && !iss->client_key) {
		snprintf(msg, sizeof msg, "the public-key token issued by profile %s needs that profile's client_key to "
		         "prove possession", iss->name);
		fail_with(f, (uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE, msg, p);
		destroy(t);
		return -1;
	}
	t->issuer = iss;
	t->generation = cfg->generation;
	t->w = (struct wssec_token){
		.xml = r->token_xml.data,
		.xml_len = r->token_xml.len,
		.key_type = kt ? kt : KEY_TYPE_BEARER,
		.proof_key = kt == KEY_TYPE_SYMMETRIC ? &t->tok.proof_key : NULL,
		.proof_rsa = kt == KEY_TYPE_ASYMMETRIC ? iss->client_key : NULL,
		.valid_till = r->expires,
	};
	if (r->expires) {
		uint64_t from = r->created && r->created < r->expires ? r->created : now;
		uint64_t margin = FED_MARGIN_S * TICKS_PER_S;
		if (r->expires > from && (r->expires - from) / 5 < margin)
			margin = (r->expires - from) / 5;
		t->reuse_until = r->expires - margin;
	}
	t->refs = 1;   /* the caller's; federation_token adds the cache's */
	*out = t;
	return 0;
}

const struct wssec_token *federation_wssec(const struct fed_token *t)
{
	return t ? &t->w : NULL;
}

void federation_release(struct fed_token *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&lock);
	unref_locked(t);
	pthread_mutex_unlock(&lock);
}

void federation_flush(void)
{
	pthread_mutex_lock(&lock);
	flushes++;
	while (cache)
		unlink_locked(cache);
	pthread_mutex_unlock(&lock);
}

/* ---- presets: the caller's own token (embedded mode) ---- */

static void format_ticks(char out[32], uint64_t ticks)
{
	time_t t = (time_t)(ticks / TICKS_PER_S - 62135596800ull);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "(ticks %llu)", (unsigned long long)ticks);
}

/* xs:dateTime in UTC ("2024-01-02T03:04:05[.fff]Z") as WS_DATETIME ticks;
 * 0 when it is not that form. */
static uint64_t parse_utc(const char *s)
{
	struct tm tm = { 0 };
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec, &n) != 6 || n != 19)
		return 0;
	const char *r = s + n;
	if (*r == '.')
		for (r++; *r >= '0' && *r <= '9'; r++)
			;
	if (strcmp(r, "Z") != 0 || tm.tm_year < 1970)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? 0 : ((uint64_t)t + 62135596800ull) * TICKS_PER_S;
}

#define NS_SAML2 "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_SAML1 "urn:oasis:names:tc:SAML:1.0:assertion"

/* What the caller's token says of itself, when it is a SAML assertion. */
struct token_facts {
	bool well_formed, saml, hok, bearer;
	uint64_t not_on_or_after;      /* Conditions, 0 if absent */
	char root[64];
};

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, ns) &&
	       !strcmp((const char *)n->name, name);
}

/* SubjectConfirmation methods anywhere below n (SAML 2.0: @Method; 1.1:
 * ConfirmationMethod text). */
static void confirmation_methods(const xmlNode *n, struct token_facts *tf)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		xmlChar *m = NULL;
		if (is_el(c, NS_SAML2, "SubjectConfirmation"))
			m = xmlGetProp(c, BAD_CAST "Method");
		else if (is_el(c, NS_SAML1, "ConfirmationMethod"))
			m = xmlNodeGetContent(c);
		if (m) {
			const char *v = (const char *)m;
			v += strspn(v, " \t\r\n");
			if (!strncmp(v, "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key", 45) ||
			    !strncmp(v, "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key", 45))
				tf->hok = true;
			else if (!strncmp(v, "urn:oasis:names:tc:SAML:2.0:cm:bearer", 37) ||
			         !strncmp(v, "urn:oasis:names:tc:SAML:1.0:cm:bearer", 37))
				tf->bearer = true;
			xmlFree(m);
		}
		confirmation_methods(c, tf);
	}
}

static void token_facts(const uint8_t *xml, size_t len, struct token_facts *tf)
{
	memset(tf, 0, sizeof *tf);
	/* The caller's own bytes, bounded (1 MiB) by the library and the IPC
	 * frame; libxml2's default depth limit applies, no network, no DTD
	 * loading. */
	xmlDoc *doc = xmlReadMemory((const char *)xml, (int)len, NULL, NULL,
	                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!root) {
		if (doc)
			xmlFreeDoc(doc);
		return;
	}
	tf->well_formed = true;
	snprintf(tf->root, sizeof tf->root, "%s", (const char *)root->name);
	const char *ns = is_el(root, NS_SAML2, "Assertion") ? NS_SAML2 : is_el(root, NS_SAML1, "Assertion") ? NS_SAML1 : NULL;
	if (ns) {
		tf->saml = true;
		confirmation_methods(root, tf);
		for (xmlNode *c = root->children; c; c = c->next)
			if (is_el(c, ns, "Conditions")) {
				xmlChar *v = xmlGetProp(c, BAD_CAST "NotOnOrAfter");
				if (v)
					tf->not_on_or_after = parse_utc((const char *)v);
				xmlFree(v);
			}
	}
	xmlFreeDoc(doc);
}

int federation_preset(const struct broker_config *cfg, const struct profile *p, const uint8_t *xml, size_t xml_len,
                      const uint8_t *key, size_t key_len, uint64_t valid_till, uint32_t *hr, char *err,
                      size_t errlen)
{
	const char *what = "WS_XML_TOKEN_MESSAGE_SECURITY_BINDING";
	if (p->auth != AUTH_ISSUED_TOKEN || p->issuer)
		return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		                     "internal: profile %s does not present a caller's token", p->name);
	if (!xml || xml_len == 0 || xml_len > MAX_PRESET_BYTES)
		return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "%s: the token must be 1 byte to %u KiB", what,
		                     MAX_PRESET_BYTES / 1024);
	if (key && (key_len == 0 || key_len > MAX_PRESET_KEY))
		return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		                     "%s: the token's proof key must be 1 to %u bytes", what, MAX_PRESET_KEY);
	struct token_facts tf;
	token_facts(xml, xml_len, &tf);
	if (!tf.well_formed)
		return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		                     "%s: the token is not one well-formed XML element", what);
	uint64_t till = valid_till;
	if (tf.not_on_or_after && (!till || tf.not_on_or_after < till))
		till = tf.not_on_or_after;
	if (till && till <= now_ticks()) {
		char when[32];
		format_ticks(when, till);
		return hr_refuse(hr, (uint32_t)WS_E_SECURITY_TOKEN_EXPIRED, err, errlen,
		                     "%s: the token expired at %s: not presenting it (obtain a fresh one)", what, when);
	}
	uint32_t kt;
	if (key) {
		if (!tf.saml)
			return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
			                     "%s: a token with a proof key must be a SAML 1.1 or 2.0 assertion (the "
			                     "proof-of-possession signature names it by its ID), not <%s>", what, tf.root);
		if (tf.bearer && !tf.hok)
			return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
			                     "%s: the token is a bearer assertion but came with a proof key: create it "
			                     "without the key (WsCreateXmlSecurityToken's tokenKey = NULL)", what);
		kt = KEY_TYPE_SYMMETRIC;
	} else if (tf.hok) {
		if (!p->client_key)
			return hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
			                     "%s: the token is a holder-of-key assertion but came without its proof key: give "
			                     "WsCreateXmlSecurityToken its WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE, or, for a "
			                     "public-key token, the certificate credential (localCertCredential) whose key "
			                     "proves possession", what);
		kt = KEY_TYPE_ASYMMETRIC;
	} else {
		kt = KEY_TYPE_BEARER;
	}

	struct fed_token *t = calloc(1, sizeof *t);
	if (!t || secret_set(&t->xml, xml, xml_len) != 0 || (key && secret_set(&t->tok.proof_key, key, key_len) != 0)) {
		if (t)
			destroy(t);
		return hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of secure memory for the token");
	}
	t->presenter = p;
	t->generation = cfg->generation;
	t->tok.key_type_out = kt;
	t->w = (struct wssec_token){
		.xml = (const uint8_t *)t->xml.data,
		.xml_len = t->xml.len,
		.key_type = kt,
		.proof_key = kt == KEY_TYPE_SYMMETRIC ? &t->tok.proof_key : NULL,
		.proof_rsa = kt == KEY_TYPE_ASYMMETRIC ? p->client_key : NULL,
		.valid_till = till,
	};
	t->refs = 1;   /* the preset list's */
	pthread_mutex_lock(&lock);
	for (struct fed_token **pp = &presets; *pp; pp = &(*pp)->next)
		if ((*pp)->presenter == p) {   /* replaced */
			struct fed_token *old = *pp;
			*pp = old->next;
			unref_locked(old);
			break;
		}
	t->next = presets;
	presets = t;
	pthread_mutex_unlock(&lock);
	log_info("profile=%s: presenting the caller's %s token%s", p->name,
	         kt == KEY_TYPE_SYMMETRIC ? "symmetric-key" : kt == KEY_TYPE_ASYMMETRIC ? "public-key" : "bearer",
	         till ? "" : " (validity unknown)");
	return 0;
}

static int preset_token(const struct broker_config *cfg, const struct profile *p, struct fed_token **out,
                        struct request_failure *f)
{
	pthread_mutex_lock(&lock);
	struct fed_token *t = presets;
	while (t && !(t->presenter == p && t->generation == cfg->generation))
		t = t->next;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&lock);
	if (!t) {
		f->hr = (uint32_t)E_INVALIDARG;
		snprintf(f->msg, sizeof f->msg, "profile %s has no issuer_profile and no token of the caller's", p->name);
		return -1;
	}
	if (t->w.valid_till && t->w.valid_till <= now_ticks()) {
		char when[32];
		format_ticks(when, t->w.valid_till);
		federation_release(t);
		/* A refused request: nothing was sent, the channel stays usable. */
		f->hr = (uint32_t)WS_E_SECURITY_TOKEN_EXPIRED;
		f->faulted = false;
		snprintf(f->msg, sizeof f->msg, "the caller's token (WS_XML_TOKEN_MESSAGE_SECURITY_BINDING) expired at %s: "
		         "not presenting it; create a new channel with a fresh token", when);
		return -1;
	}
	*out = t;
	return 0;
}

void federation_preset_clear(void)
{
	pthread_mutex_lock(&lock);
	while (presets) {
		struct fed_token *t = presets;
		presets = t->next;
		unref_locked(t);
	}
	pthread_mutex_unlock(&lock);
}
