#include "request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_request.h"
#include "check.h"
#include "hresult.h"
#include "log.h"
#include "rst.h"
#include "transport.h"
#include "workers.h"

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
	const char *applies_to, *token_type;   /* effective: request's, else profile's */
	uint32_t key_type;
	size_t max_reply;
	int64_t deadline;
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

/* Merge the request's parameters with the profile's.  false: answered. */
static bool parameters(struct req *q)
{
	const struct profile *p = q->prof;
	if (q->tr.trust_version && q->tr.trust_version != p->trust_version) {
		char msg[256];
		snprintf(msg, sizeof msg, "trust version %s was requested, but profile %s speaks %s",
		         q->tr.trust_version == 1 ? "February 2005" : "1.3", p->name,
		         p->trust_version == 1 ? "February 2005" : "1.3");
		answer_error(q->ans, (uint32_t)E_INVALIDARG, false, msg, NULL);
		return false;
	}
	q->key_type = q->tr.key_type ? q->tr.key_type : p->key_type;
	q->applies_to = q->tr.applies_to ? q->tr.applies_to : p->applies_to;
	q->token_type = q->tr.token_type ? q->tr.token_type : p->token_type;
	q->max_reply = q->tr.max_reply ? q->tr.max_reply : q->cfg->max_reply_bytes;
	uint32_t timeout = p->timeout_ms ? p->timeout_ms : q->cfg->request_timeout_ms;
	if (q->tr.timeout_ms && q->tr.timeout_ms < timeout)
		timeout = q->tr.timeout_ms;
	q->deadline = ipc_now_ms() + timeout;
	return true;
}

static void answer_transport(struct req *q, enum transport_status st, const char *err)
{
	uint32_t hr;
	switch (st) {
	case TRANSPORT_BAD_URL: hr = (uint32_t)WS_E_INVALID_ENDPOINT_URL; break;
	case TRANSPORT_UNREACHABLE: hr = (uint32_t)WS_E_ENDPOINT_UNREACHABLE; break;
	case TRANSPORT_TLS: hr = (uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE; break;
	case TRANSPORT_TIMEOUT: hr = (uint32_t)WS_E_OPERATION_TIMED_OUT; break;
	case TRANSPORT_TOO_LARGE: hr = (uint32_t)WS_E_QUOTA_EXCEEDED; break;
	default: hr = (uint32_t)WS_E_ENDPOINT_FAILURE; break;
	}
	char ctx[512];
	snprintf(ctx, sizeof ctx, "while requesting a token from %s (profile %s)", q->prof->endpoint, q->prof->name);
	answer_error(q->ans, hr, true, err, ctx);
}

static void answer_fault(struct req *q, const struct wt_result *r)
{
	char reason[MAX_ERROR_STRING + 64], code[1024];
	snprintf(reason, sizeof reason, "The STS returned a fault: %s",
	         r->fault_reason && *r->fault_reason ? r->fault_reason : "(no reason given)");
	int n = snprintf(code, sizeof code, "fault code: %s", r->fault_code ? r->fault_code : "(none)");
	for (unsigned i = 0; i < r->n_subcodes && i < WT_MAX_SUBCODES && n > 0 && (size_t)n < sizeof code; i++)
		n += snprintf(code + n, sizeof code - (size_t)n, " / %s", r->fault_subcodes[i]);
	answer_error(q->ans, (uint32_t)WS_E_ENDPOINT_FAULT_RECEIVED, false, reason, code);
}

static void answer_token(struct req *q, const struct wt_result *r, const struct token_verdict *v)
{
	ipc_builder_free(q->ans);
	ipc_begin(q->ans, IPC_ANS_TOKEN);
	ipc_put_bytes(q->ans, T_TOKEN_XML, r->token_xml.data, r->token_xml.len);
	if (v->token_type)
		ipc_put_str(q->ans, T_TOKEN_TYPE_URI, v->token_type);
	ipc_put_u32(q->ans, T_KEY_TYPE_OUT, v->key_type_out);
	ipc_put_u64(q->ans, T_VALID_FROM, r->created);
	ipc_put_u64(q->ans, T_VALID_TILL, r->expires);
	if (r->attached.len)
		ipc_put_bytes(q->ans, T_ATTACHED_REF, r->attached.data, r->attached.len);
	if (r->unattached.len)
		ipc_put_bytes(q->ans, T_UNATTACHED_REF, r->unattached.data, r->unattached.len);
	if (v->proof_withheld)
		ipc_put_u32(q->ans, T_PROOF_WITHHELD, 1);
}

static void exchange(struct req *q)
{
	const struct profile *p = q->prof;
	char err[1024] = "";
	struct rst_request rr = {
		.trust_version = p->trust_version,
		.soap_version = p->soap_version,
		.to = p->endpoint,
		.applies_to = q->applies_to,
		.token_type = q->token_type,
		.key_type = q->key_type,
		.request_action = q->tr.request_action,
		.username = p->auth == AUTH_USERNAME ? p->username : NULL,
		.password = p->auth == AUTH_USERNAME ? &p->password : NULL,
	};
	struct rst_msg msg;
	if (rst_build(&rr, &msg, err, sizeof err) != 0) {
		answer_error(q->ans, (uint32_t)E_INVALIDARG, false, err, "while writing the RequestSecurityToken");
		return;
	}

	struct http_request hq = {
		.profile = p,
		.url = p->endpoint,
		.body = msg.body.data,
		.body_len = msg.body.len,
		.soap_version = p->soap_version,
		.action = msg.action,
		.ca_file = p->ca_file,
		.allow_insecure_http = p->allow_insecure_http,
		.proxy = q->cfg->proxy,
		.max_reply = q->max_reply,
		.deadline_ms = q->deadline,
	};
	struct http_reply hr;
	int64_t t0 = ipc_now_ms();
	enum transport_status st = transport_post(&hq, &hr, err, sizeof err);
	/* The request embeds the password: wipe it as soon as it is sent. */
	char message_id[64];
	memcpy(message_id, msg.message_id, sizeof message_id);
	rst_msg_free(&msg);
	if (st != TRANSPORT_OK) {
		log_warn("profile=%s endpoint=%s: %s", p->name, p->endpoint, err);
		answer_transport(q, st, err);
		return;
	}
	log_debug("profile=%s: HTTP %ld, %zu bytes in %" PRId64 " ms", p->name, hr.status, hr.body.len,
	          ipc_now_ms() - t0);

	if (hr.body.len == 0) {
		snprintf(err, sizeof err, hr.status >= 200 && hr.status < 300 ? "the STS sent an empty reply (HTTP %ld)"
		         : "the STS answered HTTP %ld with an empty body", hr.status);
		answer_error(q->ans, (uint32_t)(hr.status >= 200 && hr.status < 300 ? WS_E_INVALID_FORMAT
		             : WS_E_ENDPOINT_FAILURE), true, err, NULL);
		http_reply_free(&hr);
		return;
	}

	struct wt_parse_req pr = {
		.reply = hr.body.data,
		.reply_len = hr.body.len,
		.http_status = (uint32_t)hr.status,
		.trust_version = p->trust_version,
		.soap_version = p->soap_version,
		.relates_to = message_id,
		.context = NULL,
		.limits = WT_DEFAULT_LIMITS,
	};
	struct wt_result res;
	memset(&res, 0, sizeof res);
	enum worker_status ws = p->pool ? worker_pool_parse(p->pool, &pr, &res, err, sizeof err) : WORKER_SPAWN_FAILED;
	if (!p->pool)
		snprintf(err, sizeof err, "no worker pool for profile %s", p->name);
	long http_status = hr.status;
	http_reply_free(&hr);

	if (ws != WORKER_OK) {
		log_error("profile=%s: worker: %s (%s)", p->name, err, worker_status_str(ws));
		answer_error(q->ans, (uint32_t)(ws == WORKER_TIMEOUT ? WS_E_OPERATION_TIMED_OUT : WS_E_INVALID_FORMAT), true,
		             err, "while parsing the STS reply in a sandboxed worker");
		wt_result_free(&res);
		return;
	}

	char ctx[512];
	switch (res.kind) {
	case IPC_RESULT_FAULT:
		log_info("profile=%s: STS fault: %s", p->name, res.fault_reason ? res.fault_reason : "(no reason)");
		answer_fault(q, &res);
		break;
	case IPC_RESULT_ERROR:
		if (http_status < 200 || http_status >= 300) {
			snprintf(ctx, sizeof ctx, "the STS answered HTTP %ld without a SOAP fault", http_status);
			answer_error(q->ans, (uint32_t)WS_E_ENDPOINT_FAILURE, true, ctx, res.error);
		} else {
			snprintf(ctx, sizeof ctx, "the STS reply (HTTP %ld) could not be used", http_status);
			answer_error(q->ans, (uint32_t)WS_E_INVALID_FORMAT, true, res.error ? res.error : "parse error", ctx);
		}
		log_warn("profile=%s: bad STS reply: %s", p->name, res.error ? res.error : "(no detail)");
		break;
	case IPC_RESULT_TOKEN: {
		struct token_expect e = {
			.message_id = message_id,
			.context = NULL,
			.token_type = q->token_type,
			.key_type = q->key_type,
			.applies_to = q->applies_to,
		};
		struct token_verdict v;
		if (token_check(&e, &res, ws_datetime_now(), &v, err, sizeof err) != 0) {
			log_warn("profile=%s: token refused: %s", p->name, err);
			answer_error(q->ans, (uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE, true, err,
			             "the broker refused the STS's token");
			break;
		}
		log_info("token issued: uid=%u pid=%d profile=%s type=%s key=%s bytes=%zu", (unsigned)q->peer->uid,
		         (int)q->peer->pid, p->name, v.token_type ? v.token_type : "-", key_type_name(v.key_type_out),
		         res.token_xml.len);
		answer_token(q, &res, &v);
		break;
	}
	default:
		answer_error(q->ans, (uint32_t)WS_E_INVALID_FORMAT, true, "the worker answered an unknown result kind", NULL);
	}
	wt_result_free(&res);
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
