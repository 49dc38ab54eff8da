/* broker_request: decode and validate a client's IPC_REQ_TOKEN.
 *
 * Everything a client sends is checked here, before any profile, policy or
 * network work: exactly one of profile/endpoint, strings without control
 * characters, values in range, parameters this broker cannot honour yet
 * refused by name.  Pure (no I/O), so it is fuzzed on its own. */
#ifndef WSTRUST_BROKER_BROKER_REQUEST_H
#define WSTRUST_BROKER_BROKER_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "ipc.h"

struct token_request {
	char *profile;             /* exactly one of profile / endpoint */
	char *endpoint;
	char *applies_to;          /* NULL: the profile's */
	char *token_type;          /* NULL: the profile's */
	uint32_t trust_version;    /* 0: the profile's; else 1 or 2 */
	uint32_t key_type;         /* 0: the profile's; else 1, 2 or 3 */
	uint32_t request_action;   /* 1 (ISSUE) unless given */
	uint32_t max_reply;        /* 0: the broker's max_reply_bytes; else capped to IPC_MAX_REPLY */
	uint32_t timeout_ms;       /* 0: the profile's/broker's */
	bool embedded;
};

/* 0, or -1 with a message for E_INVALIDARG in err.  Free with
 * token_request_free either way. */
int token_request_decode(const struct ipc_msg *m, struct token_request *r, char *err, size_t errlen);
void token_request_free(struct token_request *r);

#endif
