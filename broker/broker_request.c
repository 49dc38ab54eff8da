#include "broker_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A URI or name from a client: non-empty, no control characters, no
 * spaces (a URI never has raw spaces). */
static bool uri_ok(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int get_str(const struct ipc_msg *m, uint16_t tag, const char *name, char **out, char *err, size_t errlen)
{
	if (!ipc_has(m, tag))
		return 0;
	*out = ipc_dup_str(m, tag);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!uri_ok(*out)) {
		snprintf(err, errlen, "%s: empty, or contains spaces or control characters", name);
		return -1;
	}
	return 0;
}

int token_request_decode(const struct ipc_msg *m, struct token_request *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->request_action = 1;
	if (m->type != IPC_REQ_TOKEN) {
		snprintf(err, errlen, "unexpected message type (expected a token request)");
		return -1;
	}
	bool by_name = ipc_has(m, T_PROFILE), by_ep = ipc_has(m, T_ENDPOINT);
	if (by_name == by_ep) {
		snprintf(err, errlen, "%s", by_name ? "give either a profile name or an endpoint address, not both"
		                                    : "no profile name and no endpoint address in the request");
		return -1;
	}
	if (get_str(m, T_PROFILE, "profile name", &r->profile, err, errlen) ||
	    get_str(m, T_ENDPOINT, "endpoint address", &r->endpoint, err, errlen) ||
	    get_str(m, T_APPLIES_TO, "APPLIES_TO", &r->applies_to, err, errlen) ||
	    get_str(m, T_TOKEN_TYPE, "ISSUED_TOKEN_TYPE", &r->token_type, err, errlen))
		return -1;

	static const struct { uint16_t tag; const char *name; } unsupported[] = {
		{ T_LOCAL_PARAMS, "LOCAL_REQUEST_PARAMETERS" },
		{ T_SERVICE_PARAMS, "SERVICE_REQUEST_PARAMETERS" },
		{ T_EXISTING_TOKEN, "EXISTING_TOKEN" },
	};
	for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
		if (ipc_has(m, unsupported[i].tag)) {
			snprintf(err, errlen, "not supported yet: %s", unsupported[i].name);
			return -1;
		}

	uint32_t v;
	if (ipc_get_u32(m, T_TRUST_VERSION, &v)) {
		if (v != 1 && v != 2) {
			snprintf(err, errlen, "TRUST_VERSION %u is not a WS_TRUST_VERSION (1 = February 2005, 2 = 1.3)", v);
			return -1;
		}
		r->trust_version = v;
	}
	if (ipc_get_u32(m, T_REQUEST_ACTION, &v)) {
		if (v < 1 || v > 3) {
			snprintf(err, errlen, "REQUEST_ACTION %u is not a WS_REQUEST_SECURITY_TOKEN_ACTION (1, 2 or 3)", v);
			return -1;
		}
		if (v != 1) {
			snprintf(err, errlen, "not supported yet: REQUEST_ACTION %s", v == 2 ? "NEW_CONTEXT" : "RENEW_CONTEXT");
			return -1;
		}
		r->request_action = v;
	}
	if (ipc_get_u32(m, T_KEY_TYPE, &v)) {
		if (v < 1 || v > 3) {
			snprintf(err, errlen, "ISSUED_TOKEN_KEY_TYPE %u is not a WS_SECURITY_KEY_TYPE (1, 2 or 3)", v);
			return -1;
		}
		r->key_type = v;
	}
	if (r->key_type == 2 || r->key_type == 3) {
		snprintf(err, errlen, "not supported yet: ISSUED_TOKEN_KEY_TYPE %s",
		         r->key_type == 2 ? "symmetric" : "asymmetric");
		return -1;
	}
	/* Key size and entropy only make sense for a symmetric key, which is
	 * refused above; with bearer (or the profile's bearer) they contradict. */
	if (ipc_has(m, T_KEY_SIZE)) {
		snprintf(err, errlen, "ISSUED_TOKEN_KEY_SIZE needs a symmetric key type");
		return -1;
	}
	if (ipc_has(m, T_ENTROPY_MODE)) {
		snprintf(err, errlen, "ISSUED_TOKEN_KEY_ENTROPY needs a symmetric key type");
		return -1;
	}
	if (ipc_get_u32(m, T_MAX_REPLY, &v)) {
		if (v == 0) {
			snprintf(err, errlen, "MESSAGE_PROPERTIES: a reply size quota of 0 bytes");
			return -1;
		}
		r->max_reply = v > IPC_MAX_REPLY ? IPC_MAX_REPLY : v;
	}
	if (ipc_get_u32(m, T_TIMEOUT_MS, &v))
		r->timeout_ms = v ? v : 1;
	if (ipc_get_u32(m, T_EMBEDDED, &v))
		r->embedded = v != 0;
	/* T_SC_VERSION, T_BEARER_VERSION: accepted; an Issue request with the
	 * standard bearer URI does not depend on them yet (issue 5). */
	return 0;
}

void token_request_free(struct token_request *r)
{
	free(r->profile);
	free(r->endpoint);
	free(r->applies_to);
	free(r->token_type);
	memset(r, 0, sizeof *r);
}
