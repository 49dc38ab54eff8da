/* broker_request: decode and validate a client's IPC_REQ_TOKEN.
 *
 * Everything a client sends is checked here, before any profile, policy or
 * network work: exactly one of profile/endpoint, strings without control
 * characters, values in range, properties that contradict each other refused
 * by name (the broker answers E_INVALIDARG with the message).  XML the client
 * passes (LOCAL/SERVICE_REQUEST_PARAMETERS, EXISTING_TOKEN) is parsed here
 * strictly: bounded, no DOCTYPE or entities, no network, bounded depth.
 * Pure (no I/O), so it is fuzzed on its own. */
#ifndef WSTRUST_BROKER_BROKER_REQUEST_H
#define WSTRUST_BROKER_BROKER_REQUEST_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define REQUEST_MAX_XML (1u << 20)    /* bytes in one XML property */
#define REQUEST_MAX_XML_DEPTH 32u     /* element nesting in one XML property */
#define REQUEST_MAX_XML_NODES 20000u  /* nodes in one XML property */

struct token_request {
	char *profile;             /* exactly one of profile / endpoint */
	char *endpoint;
	char *applies_to;          /* NULL: the profile's */
	char *token_type;          /* NULL: the profile's */
	uint32_t trust_version;    /* 0: the profile's; else 1 or 2 */
	uint32_t key_type;         /* 0: the profile's; else 1, 2 or 3 */
	uint32_t key_size;         /* 0: none; else 128..512, a multiple of 8 */
	uint32_t entropy_mode;     /* 0: default (SERVER_ONLY); else 1, 2 or 3 */
	uint32_t request_action;   /* 1 (ISSUE) unless given; 2 NEW_CONTEXT, 3 RENEW_CONTEXT */
	uint32_t sc_version;       /* 0: paired with the trust version; else 1 (Feb 2005) or 2 (1.3) */
	uint32_t bearer_version;   /* 0: default (errata 01); else 1, 2 or 3 */
	uint32_t max_reply;        /* 0: the broker's max_reply_bytes; else capped to IPC_MAX_REPLY */
	uint32_t timeout_ms;       /* 0: the profile's/broker's */
	bool embedded;
	/* XML properties (heap copies, validated): top-level elements only */
	uint8_t *local_params, *service_params;
	size_t local_len, service_len;
	/* RENEW_CONTEXT: the SCT to renew, and what was read from it */
	uint8_t *existing_token;
	size_t existing_len;
	char *existing_sct_id;       /* wsc:Identifier */
	char *existing_sct_instance; /* wsc:Instance, or NULL */
	uint32_t existing_sc_version;/* 1 or 2, from the token's namespace */
};

/* 0, or -1 with a message for E_INVALIDARG in err.  Free with
 * token_request_free either way. */
int token_request_decode(const struct ipc_msg *m, struct token_request *r, char *err, size_t errlen);
void token_request_free(struct token_request *r);

/* Parse untrusted XML strictly (libxml2 without network, DTD or entity
 * expansion; any DOCTYPE or ENTITY declaration refused; namespace
 * well-formedness required; at most max_depth levels and
 * REQUEST_MAX_XML_NODES nodes).  fragment: p holds zero or more top-level
 * elements (whitespace between them), returned under a synthetic root
 * element; else one document.  The doc (xmlFreeDoc), or NULL with err. */
xmlDocPtr xml_strict_parse(const uint8_t *p, size_t len, bool fragment, unsigned max_depth, char *err,
                           size_t errlen);

/* The wsc:Identifier, wsc:Instance (or NULL) and SecureConversation version
 * (1 Feb 2005, 2 1.3) of a SecurityContextToken's XML.  Heap strings. */
int sct_identify(const uint8_t *xml, size_t len, char **id, char **instance, uint32_t *sc_version, char *err,
                 size_t errlen);

#endif
