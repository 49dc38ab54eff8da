#include "request.h"

#include <inttypes.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_request.h"
#include "check.h"
#include "federation.h"
#include "hresult.h"
#include "log.h"
#include "proof.h"
#include "rst.h"
#include "transport.h"
#include "workers.h"
#include "wssec.h"

/* Error strings carry STS text (fault reasons); keep them bounded and cut
 * on a UTF-8 character boundary. */
#define MAX_ERROR_STRING 2048

static void put_error_string(struct ipc_builder *b, const char *s)
{
	size_t n = strlen(s);
	if (n <= MAX_ERROR_STRING) {
		ipc_put_str(b, T_ERROR_STRING, s);
		return;
	}
	char buf[MAX_ERROR_STRING + 4];
	n = MAX_ERROR_STRING - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	ipc_put_str(b, T_ERROR_STRING, buf);
}

void answer_error(struct ipc_builder *b, uint32_t hr, bool faulted, const char *s1, const char *s2)
{
	ipc_builder_free(b);
	ipc_begin(b, IPC_ANS_ERROR);
	ipc_put_u32(b, T_HRESULT, hr);
	put_error_string(b, s1 && *s1 ? s1 : "unspecified error");
	if (s2 && *s2)
		put_error_string(b, s2);
	ipc_put_u32(b, T_CHANNEL_FAULTED, faulted ? 1 : 0);
}

static const char *key_type_name(uint32_t k)
{
	return k == 1 ? "bearer" : k == 2 ? "symmetric" : k == 3 ? "asymmetric" : "unknown";
}

struct req {
	const struct broker_config *cfg;
	const struct policy_peer *peer;
	struct ipc_builder *ans;
	struct token_request tr;
	const struct profile *prof;
	struct token_params tp;
};

static void audit(const struct req *q, const char *profile, const char *decision, const char *reason)
{
	log_info("audit: uid=%u pid=%d profile=%s decision=%s reason=%s", (unsigned)q->peer->uid,
	         (int)q->peer->pid, profile ? profile : "-", decision, reason);
}

/* Find the profile and apply policy.  false: an answer was written. */
static bool resolve(struct req *q, uid_t broker_uid)
{
	char why[256], msg[512];
	if (q->tr.profile) {
		q->prof = config_find_profile(q->cfg, q->tr.profile);
		if (!q->prof) {
			audit(q, q->tr.profile, "deny", "no such profile");
			snprintf(msg, sizeof msg, "unknown profile '%.128s'", q->tr.profile);
			answer_error(q->ans, (uint32_t)E_INVALIDARG, false, msg, NULL);
			return false;
		}
		enum policy_decision d = policy_check(&q->prof->acl, broker_uid, q->peer, why, sizeof why);
		audit(q, q->prof->name, policy_decision_str(d), why);
		if (d != POLICY_ALLOW) {
			snprintf(msg, sizeof msg, "access denied: uid %u may not use profile '%s'", (unsigned)q->peer->uid,
			         q->prof->name);
			answer_error(q->ans, (uint32_t)E_ACCESSDENIED, false, msg, NULL);
			return false;
		}
		return true;
	}
	q->prof = config_find_endpoint(q->cfg, q->tr.endpoint);
	enum policy_decision d = POLICY_DENY;
	if (q->prof) {
		d = policy_check(&q->prof->acl, broker_uid, q->peer, why, sizeof why);
		audit(q, q->prof->name, policy_decision_str(d), why);
	} else {
		audit(q, NULL, "deny", "no profile serves the endpoint");
	}
	if (d != POLICY_ALLOW) {
		/* Same answer for "no such endpoint" and "not yours": a caller
		 * must not learn which STS endpoints this broker serves. */
		snprintf(msg, sizeof msg, "no profile available to this caller serves the endpoint %.256s", q->tr.endpoint);
		answer_error(q->ans, (uint32_t)WS_E_ENDPOINT_NOT_FOUND, false, msg, NULL);
		return false;
	}
	return true;
}

/* Merge the request's parameters with the profile's into q->tp.  false:
 * answered (E_INVALIDARG naming the property). */
static bool parameters(struct req *q)
{
	const struct profile *p = q->prof;
	const struct token_request *tr = &q->tr;
	char msg[512];
	if (tr->trust_version && tr->trust_version != p->trust_version) {
		snprintf(msg, sizeof msg, "trust version %s was requested, but profile %s speaks %s",
		         tr->trust_version == 1 ? "February 2005" : "1.3", p->name,
		         p->trust_version == 1 ? "February 2005" : "1.3");
		answer_error(q->ans, (uint32_t)E_INVALIDARG, false, msg, NULL);
		return false;
	}
	struct token_params *tp = &q->tp;
	bool sct = tr->request_action != RST_ACTION_ISSUE;
	tp->request_action = tr->request_action;
	/* A security context token has a symmetric key and the SCT type: the
	 * profile's key and token types (for Issue) do not apply to it. */
	tp->key_type = tr->key_type ? tr->key_type : sct ? 0 : p->key_type;
	tp->token_type = tr->token_type ? tr->token_type : sct ? NULL : p->token_type;
	tp->applies_to = tr->applies_to ? tr->applies_to : p->applies_to;
	tp->key_size = tr->key_size;
	tp->entropy_mode = tr->entropy_mode;
	tp->sc_version = tr->sc_version ? tr->sc_version : tr->existing_sc_version ? tr->existing_sc_version : 1;
	tp->bearer_version = tr->bearer_version;
	tp->local_params = tr->local_params;
	tp->local_len = tr->local_len;
	tp->service_params = tr->service_params;
	tp->service_len = tr->service_len;
	tp->existing_token = tr->existing_token;
	tp->existing_len = tr->existing_len;
	bool symmetric = tp->key_type == KEY_TYPE_SYMMETRIC || (sct && tp->key_type == 0);
	if (!symmetric && (tp->key_size || tp->entropy_mode)) {
		snprintf(msg, sizeof msg, "%s needs a symmetric key type, but profile %s asks for a %s key",
		         tp->key_size ? "ISSUED_TOKEN_KEY_SIZE" : "ISSUED_TOKEN_KEY_ENTROPY", p->name,
		         tp->key_type ? key_type_name(tp->key_type) : "unspecified (no KeyType)");
		answer_error(q->ans, (uint32_t)E_INVALIDARG, false, msg, NULL);
		return false;
	}
	if (tp->key_type == KEY_TYPE_ASYMMETRIC && !p->client_cert) {
		snprintf(msg, sizeof msg, "ISSUED_TOKEN_KEY_TYPE asymmetric needs a client certificate for UseKey, and "
		         "profile %s has no client_cert", p->name);
		answer_error(q->ans, (uint32_t)E_INVALIDARG, false, msg, NULL);
		return false;
	}
	tp->max_reply = tr->max_reply ? tr->max_reply : q->cfg->max_reply_bytes;
	uint32_t timeout = p->timeout_ms ? p->timeout_ms : q->cfg->request_timeout_ms;
	if (tr->timeout_ms && tr->timeout_ms < timeout)
		timeout = tr->timeout_ms;
	tp->deadline = ipc_now_ms() + timeout;
	return true;
}

/* ---- request_obtain: RST -> POST -> worker -> checks -> proof key ---- */

static int fail(struct request_failure *f, int32_t hr, bool faulted, const char *msg, const char *ctx)
{
	f->hr = (uint32_t)hr;
	f->faulted = faulted;
	snprintf(f->msg, sizeof f->msg, "%s", msg && *msg ? msg : "unspecified error");
	snprintf(f->ctx, sizeof f->ctx, "%s", ctx ? ctx : "");
	return -1;
}

static int fail_transport(struct request_failure *f, const struct profile *p, enum transport_status st,
                          const char *err)
{
	int32_t hr;
	switch (st) {
	case TRANSPORT_BAD_URL: hr = WS_E_INVALID_ENDPOINT_URL; break;
	case TRANSPORT_UNREACHABLE: hr = WS_E_ENDPOINT_UNREACHABLE; break;
	case TRANSPORT_TLS: hr = WS_E_SECURITY_VERIFICATION_FAILURE; break;
	case TRANSPORT_TIMEOUT: hr = WS_E_OPERATION_TIMED_OUT; break;
	case TRANSPORT_TOO_LARGE: hr = WS_E_QUOTA_EXCEEDED; break;
	default: hr = WS_E_ENDPOINT_FAILURE; break;
	}
	char ctx[512];
	snprintf(ctx, sizeof ctx, "while requesting a token from %s (profile %s)", p->endpoint, p->name);
	return fail(f, hr, true, err, ctx);
}

static int fail_fault(struct request_failure *f, const struct wt_result *r)
{
	char reason[sizeof f->msg], code[sizeof f->ctx];
	snprintf(reason, sizeof reason, "The STS returned a fault: %s",
	         r->fault_reason && *r->fault_reason ? r->fault_reason : "(no reason given)");
	int n = snprintf(code, sizeof code, "fault code: %s", r->fault_code ? r->fault_code : "(none)");
	for (unsigned i = 0; i < r->n_subcodes && i < WT_MAX_SUBCODES && n > 0 && (size_t)n < sizeof code; i++)
		n += snprintf(code + n, sizeof code - (size_t)n, " / %s", r->fault_subcodes[i]);
	return fail(f, WS_E_ENDPOINT_FAULT_RECEIVED, false, reason, code);
}

/* Everything request_obtain holds, released in one place. */
struct obtain {
	struct fed_token *fed;
	char *renew_id, *renew_instance;   /* RENEW_CONTEXT: the SCT's Identifier */
	struct secret entropy;
	uint8_t *cert_der;
	struct rst_msg msg;
	bool have_msg;
	struct http_reply hr;
	bool have_reply;
	struct wt_result res;
};

static void obtain_release(struct obtain *o)
{
	if (o->fed)
		federation_release(o->fed);
	free(o->renew_id);
	free(o->renew_instance);
	secret_free(&o->entropy);
	OPENSSL_free(o->cert_der);
	if (o->have_msg)
		rst_msg_free(&o->msg);
	if (o->have_reply)
		http_reply_free(&o->hr);
	wt_result_free(&o->res);
}

/* Build the RST (and its WS-Security header) into o->msg. */
static int write_rst(const struct profile *p, const struct token_params *tp, struct obtain *o,
                     struct request_failure *f)
{
	char err[1024] = "";
	bool sct = tp->request_action != RST_ACTION_ISSUE;
	bool symmetric = tp->key_type == KEY_TYPE_SYMMETRIC || (sct && tp->key_type == 0);
	uint32_t mode = tp->entropy_mode ? tp->entropy_mode : ENTROPY_SERVER_ONLY;
	if (symmetric && mode != ENTROPY_SERVER_ONLY &&
	    proof_new_entropy(&o->entropy, tp->key_size ? tp->key_size : PROOF_DEFAULT_BITS) != 0)
		return fail(f, E_OUTOFMEMORY, false, "out of secure memory for the requestor entropy", NULL);
	int der_len = 0;
	if (tp->key_type == KEY_TYPE_ASYMMETRIC) {
		if (!p->client_cert || (der_len = i2d_X509(p->client_cert, &o->cert_der)) <= 0)
			return fail(f, E_INVALIDARG, false, "the profile's client_cert cannot be encoded for UseKey", NULL);
	}
	struct rst_request rr = {
		.trust_version = p->trust_version,
		.soap_version = p->soap_version,
		.request_action = tp->request_action,
		.sc_version = tp->sc_version,
		.to = p->endpoint,
		.applies_to = tp->applies_to,
		.token_type = tp->token_type,
		.key_type = tp->key_type,
		.bearer_version = tp->bearer_version,
		.key_size = symmetric ? tp->key_size : 0,
		.entropy_mode = symmetric && mode != ENTROPY_SERVER_ONLY ? mode : 0,
		.entropy = &o->entropy,
		.use_key_cert = o->cert_der,
		.use_key_cert_len = der_len > 0 ? (size_t)der_len : 0,
		.renew_sct_id = o->renew_id,
		.local_params = tp->local_params,
		.local_len = tp->local_len,
		.service_params = tp->service_params,
		.service_len = tp->service_len,
		/* PasswordText is written by rst_build; with password_digest wssec
		 * adds the digest UsernameToken instead. */
		.username = p->auth == AUTH_USERNAME && !p->password_digest ? p->username : NULL,
		.password = p->auth == AUTH_USERNAME && !p->password_digest ? &p->password : NULL,
	};
	/* Secrets go in last: wssec_apply parses the envelope with libxml2,
	 * whose heap must never hold a password or the requestor entropy. */
	if (rst_build_unspliced(&rr, &o->msg, err, sizeof err) != 0)
		return fail(f, E_INVALIDARG, false, err, "while writing the RequestSecurityToken");
	o->have_msg = true;
	const struct wssec_token *issued = o->fed ? federation_wssec(o->fed) : NULL;
	if (wssec_apply(p, issued, &o->msg.body, err, sizeof err) != 0)
		return fail(f, WS_E_SECURITY_SYSTEM_FAILURE, false, err, "while securing the RequestSecurityToken");
	if (rst_splice(&o->msg, err, sizeof err) != 0)
		return fail(f, E_INVALIDARG, false, err, "while writing the RequestSecurityToken");
	return 0;
}

int request_obtain(const struct broker_config *cfg, const struct profile *p, const struct token_params *tp,
                   struct obtained_token *out, struct request_failure *f)
{
	memset(out, 0, sizeof *out);
	memset(f, 0, sizeof *f);
	struct obtain o;
	memset(&o, 0, sizeof o);
	char err[1024] = "";
	int rc = -1;

	if (tp->request_action == RST_ACTION_RENEW_CONTEXT) {
		uint32_t scv = 0;
		if (!tp->existing_token ||
		    sct_identify(tp->existing_token, tp->existing_len, &o.renew_id, &o.renew_instance, &scv, err,
		                 sizeof err) != 0) {
			fail(f, E_INVALIDARG, false, tp->existing_token ? err : "RENEW_CONTEXT needs EXISTING_TOKEN", NULL);
			goto out;
		}
	}
	if (p->auth == AUTH_ISSUED_TOKEN && federation_token(cfg, p, tp->deadline, &o.fed, f) != 0)
		goto out;
	if (write_rst(p, tp, &o, f) != 0)
		goto out;

	struct http_request hq = {
		.profile = p,
		.url = p->endpoint,
		.body = o.msg.body.data,
		.body_len = o.msg.body.len,
		.soap_version = p->soap_version,
		.action = o.msg.action,
		.ca_file = p->ca_file,
		.allow_insecure_http = p->allow_insecure_http,
		.proxy = cfg->proxy,
		.max_reply = tp->max_reply,
		.deadline_ms = tp->deadline,
	};
	int64_t t0 = ipc_now_ms();
	enum transport_status st = transport_post(&hq, &o.hr, err, sizeof err);
	o.have_reply = true;
	/* The request embeds the password and entropy: wipe it once sent. */
	char message_id[64];
	memcpy(message_id, o.msg.message_id, sizeof message_id);
	rst_msg_free(&o.msg);
	o.have_msg = false;
	if (st != TRANSPORT_OK) {
		log_warn("profile=%s endpoint=%s: %s", p->name, p->endpoint, err);
		fail_transport(f, p, st, err);
		goto out;
	}
	log_debug("profile=%s: HTTP %ld, %zu bytes in %" PRId64 " ms", p->name, o.hr.status, o.hr.body.len,
	          ipc_now_ms() - t0);
	long http_status = o.hr.status;
	bool http_ok = http_status >= 200 && http_status < 300;
	if (o.hr.body.len == 0) {
		snprintf(err, sizeof err, http_ok ? "the STS sent an empty reply (HTTP %ld)"
		                                  : "the STS answered HTTP %ld with an empty body", http_status);
		fail(f, http_ok ? WS_E_INVALID_FORMAT : WS_E_ENDPOINT_FAILURE, true, err, NULL);
		goto out;
	}

	struct wt_parse_req pr = {
		.reply = o.hr.body.data,
		.reply_len = o.hr.body.len,
		.http_status = (uint32_t)http_status,
		.trust_version = p->trust_version,
		.soap_version = p->soap_version,
		.relates_to = message_id,
		.context = NULL,
		.limits = WT_DEFAULT_LIMITS,
	};
	enum worker_status ws = p->pool ? worker_pool_parse(p->pool, &pr, &o.res, err, sizeof err) : WORKER_SPAWN_FAILED;
	if (!p->pool)
		snprintf(err, sizeof err, "no worker pool for profile %s", p->name);
	http_reply_free(&o.hr);
	o.have_reply = false;
	if (ws != WORKER_OK) {
		log_error("profile=%s: worker: %s (%s)", p->name, err, worker_status_str(ws));
		fail(f, ws == WORKER_TIMEOUT ? WS_E_OPERATION_TIMED_OUT : WS_E_INVALID_FORMAT, true, err,
		     "while parsing the STS reply in a sandboxed worker");
		goto out;
	}

	char ctx[512];
	switch (o.res.kind) {
	case IPC_RESULT_FAULT:
		log_info("profile=%s: STS fault: %s", p->name, o.res.fault_reason ? o.res.fault_reason : "(no reason)");
		fail_fault(f, &o.res);
		goto out;
	case IPC_RESULT_ERROR:
		log_warn("profile=%s: bad STS reply: %s", p->name, o.res.error ? o.res.error : "(no detail)");
		if (!http_ok) {
			snprintf(ctx, sizeof ctx, "the STS answered HTTP %ld without a SOAP fault", http_status);
			fail(f, WS_E_ENDPOINT_FAILURE, true, ctx, o.res.error);
		} else {
			snprintf(ctx, sizeof ctx, "the STS reply (HTTP %ld) could not be used", http_status);
			fail(f, WS_E_INVALID_FORMAT, true, o.res.error ? o.res.error : "parse error", ctx);
		}
		goto out;
	case IPC_RESULT_TOKEN:
		break;
	default:
		fail(f, WS_E_INVALID_FORMAT, true, "the worker answered an unknown result kind", NULL);
		goto out;
	}

	struct token_expect e = {
		.message_id = message_id,
		.context = NULL,
		.token_type = tp->token_type,
		.key_type = tp->key_type,
		.applies_to = tp->applies_to,
		.trust_version = p->trust_version,
		.key_size = tp->key_size,
		.entropy_mode = tp->entropy_mode,
		.request_action = tp->request_action,
		.renew_sct_id = o.renew_id,
	};
	struct token_verdict v;
	if (token_check(&e, &o.res, ws_datetime_now(), &v, err, sizeof err) != 0) {
		log_warn("profile=%s: token refused: %s", p->name, err);
		fail(f, WS_E_SECURITY_VERIFICATION_FAILURE, true, err, "the broker refused the STS's token");
		goto out;
	}
	if (v.key_type_out == KEY_TYPE_SYMMETRIC) {
		struct proof_request pq = {
			.entropy_mode = tp->entropy_mode,
			.key_size = tp->key_size,
			.entropy = &o.entropy,
			.client_key = p->client_key,
			.client_cert = p->client_cert,
			.allow_rsa15 = p->allow_rsa15,
		};
		if (proof_key(&pq, &o.res, &out->proof_key, err, sizeof err) != 0) {
			log_warn("profile=%s: proof key refused: %s", p->name, err);
			fail(f, WS_E_SECURITY_VERIFICATION_FAILURE, true, err, "the broker refused the STS's proof key");
			goto out;
		}
		if (tp->key_size && out->proof_key.len * 8 != tp->key_size) {
			snprintf(err, sizeof err, "the STS's proof key is %zu bits, but %u bits were requested",
			         out->proof_key.len * 8, tp->key_size);
			secret_free(&out->proof_key);
			fail(f, WS_E_SECURITY_VERIFICATION_FAILURE, true, err, "the broker refused the STS's proof key");
			goto out;
		}
	}
	/* Hand the result over: the token now owns the worker's answer. */
	out->res = o.res;
	memset(&o.res, 0, sizeof o.res);
	out->key_type_out = v.key_type_out;
	/* v.token_type points into the result's heap strings (moved, not
	 * copied) or at tp's */
	out->token_type = v.token_type;
	rc = 0;
out:
	obtain_release(&o);
	return rc;
}

void obtained_token_free(struct obtained_token *t)
{
	wt_result_free(&t->res);
	secret_free(&t->proof_key);
	memset(t, 0, sizeof *t);
}

static void answer_token(struct req *q, const struct obtained_token *t)
{
	const struct wt_result *r = &t->res;
	bool release = t->proof_key.len && (q->tr.embedded || q->prof->release_proof_key);
	ipc_builder_free(q->ans);
	if (release)
		q->ans->secure = true;   /* the answer carries the key: wiped when freed */
	ipc_begin(q->ans, IPC_ANS_TOKEN);
	ipc_put_bytes(q->ans, T_TOKEN_XML, r->token_xml.data, r->token_xml.len);
	if (t->token_type)
		ipc_put_str(q->ans, T_TOKEN_TYPE_URI, t->token_type);
	ipc_put_u32(q->ans, T_KEY_TYPE_OUT, t->key_type_out);
	ipc_put_u64(q->ans, T_VALID_FROM, r->created);
	ipc_put_u64(q->ans, T_VALID_TILL, r->expires);
	if (r->attached.len)
		ipc_put_bytes(q->ans, T_ATTACHED_REF, r->attached.data, r->attached.len);
	if (r->unattached.len)
		ipc_put_bytes(q->ans, T_UNATTACHED_REF, r->unattached.data, r->unattached.len);
	if (release)
		ipc_put_bytes(q->ans, T_PROOF_KEY, t->proof_key.data, t->proof_key.len);
	else if (t->proof_key.len)
		ipc_put_u32(q->ans, T_PROOF_WITHHELD, 1);
}

static void exchange(struct req *q)
{
	const struct profile *p = q->prof;
	struct obtained_token t;
	struct request_failure f;
	if (request_obtain(q->cfg, p, &q->tp, &t, &f) != 0) {
		answer_error(q->ans, f.hr, f.faulted, f.msg, f.ctx);
		return;
	}
	log_info("token issued: uid=%u pid=%d profile=%s type=%s key=%s bytes=%zu proof=%s", (unsigned)q->peer->uid,
	         (int)q->peer->pid, p->name, t.token_type ? t.token_type : "-", key_type_name(t.key_type_out),
	         t.res.token_xml.len,
	         !t.proof_key.len ? "none" : (q->tr.embedded || p->release_proof_key) ? "released" : "withheld");
	answer_token(q, &t);
	obtained_token_free(&t);
}

void request_handle(const struct broker_config *cfg, uid_t broker_uid, const struct policy_peer *peer,
                    const struct ipc_msg *m, struct ipc_builder *ans)
{
	struct req q = { .cfg = cfg, .peer = peer, .ans = ans };
	char err[512];
	ipc_begin(ans, IPC_ANS_ERROR);
	if (token_request_decode(m, &q.tr, err, sizeof err) != 0) {
		log_info("client uid=%u pid=%d: invalid request: %s", (unsigned)peer->uid, (int)peer->pid, err);
		answer_error(ans, (uint32_t)E_INVALIDARG, false, err, NULL);
	} else if (resolve(&q, broker_uid) && parameters(&q)) {
		exchange(&q);
	}
	token_request_free(&q.tr);
}
