/* request: one IPC_REQ_TOKEN, from decoded frame to answer frame.
 *
 * resolve profile (name or endpoint) -> policy (audited) -> validate the
 * parameters -> write the RST -> POST it -> parse the reply in a worker ->
 * check the result against the request -> IPC_ANS_TOKEN or IPC_ANS_ERROR. */
#ifndef WSTRUST_BROKER_REQUEST_H
#define WSTRUST_BROKER_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker_config.h"
#include "ipc.h"
#include "policy.h"
#include "secmem.h"
#include "wire.h"

/* Build an IPC_ANS_ERROR: hr, up to two strings (most specific first; s2
 * may be NULL), and whether the client's channel is now FAULTED. */
void answer_error(struct ipc_builder *b, uint32_t hr, bool faulted, const char *s1, const char *s2);

/* What to ask an STS for: the client's request merged with the profile. */
struct token_params {
	const char *applies_to;        /* NULL: no AppliesTo */
	const char *token_type;        /* NULL: no TokenType */
	uint32_t key_type;             /* 0 none, 1 bearer, 2 symmetric, 3 asymmetric */
	uint32_t key_size;             /* bits, 0: none */
	uint32_t entropy_mode;         /* WS_SECURITY_KEY_ENTROPY_MODE, 0: default (SERVER_ONLY) */
	uint32_t request_action;       /* 1 ISSUE, 2 NEW_CONTEXT, 3 RENEW_CONTEXT */
	uint32_t sc_version;           /* WS_SECURE_CONVERSATION_VERSION, 0: Feb 2005 */
	uint32_t bearer_version;       /* WS_SECURITY_BEARER_KEY_TYPE_VERSION, 0: default */
	const uint8_t *local_params, *service_params, *existing_token;
	size_t local_len, service_len, existing_len;
	size_t max_reply;              /* bytes */
	int64_t deadline;              /* ipc_now_ms() clock */
};

/* A token the broker obtained and checked. */
struct obtained_token {
	struct wt_result res;          /* the worker's parsed answer (token XML, lifetime, refs ...) */
	uint32_t key_type_out;         /* WS_SECURITY_KEY_TYPE */
	const char *token_type;        /* points into res, or NULL */
	struct secret proof_key;       /* symmetric proof key (secure memory), len 0 when none */
};

/* Why obtaining failed: the HRESULT, whether the channel faults, and up to
 * two strings, most specific first. */
struct request_failure {
	uint32_t hr;
	bool faulted;
	char msg[2048];
	char ctx[512];
};

/* Obtain a token from profile p's STS: RST (with p's binding), POST, parse
 * in a worker, check.  0 and *out (free with obtained_token_free), or -1
 * and *f.  Thread-safe; used for client requests and federation hops. */
int request_obtain(const struct broker_config *cfg, const struct profile *p, const struct token_params *tp,
                   struct obtained_token *out, struct request_failure *f);
void obtained_token_free(struct obtained_token *t);

/* Handle one decoded request (m->type == IPC_REQ_TOKEN).  ans is begun and
 * filled here; the caller finishes and sends it. */
void request_handle(const struct broker_config *cfg, uid_t broker_uid, const struct policy_peer *peer,
                    const struct ipc_msg *m, struct ipc_builder *ans);

#endif
