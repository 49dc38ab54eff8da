#include "federation.h"

#include <errno.h>
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
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fed_token *cache;

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

int federation_token(const struct broker_config *cfg, const struct profile *p, int64_t deadline,
                     struct fed_token **out, struct request_failure *f)
{
	*out = NULL;
	memset(f, 0, sizeof *f);
	if (p->auth != AUTH_ISSUED_TOKEN || !p->issuer) {
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
	pthread_mutex_unlock(&lock);
	int rc = obtain(cfg, p, deadline, &t, f);
	pthread_mutex_lock(&lock);
	for (struct inflight **pp = &inflights; *pp; pp = &(*pp)->next)
		if (*pp == &me) {
			*pp = me.next;
			break;
		}
	if (rc == 0 && t->reuse_until > now_ticks()) {
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
	while (cache)
		unlink_locked(cache);
	pthread_mutex_unlock(&lock);
}
