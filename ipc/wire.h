/* wire: the typed records that cross the broker <-> worker boundary, and
 * their encoding with the ipc codec.  Both sides use the same code, so what
 * the worker writes is exactly what the broker's decoder accepts. */
#ifndef WSTRUST_WIRE_H
#define WSTRUST_WIRE_H

#include "ipc.h"

struct wt_blob {
	uint8_t *data;
	size_t len;
};

/* Parser limits; the broker sends them with each reply. */
struct wt_limits {
	uint32_t max_depth;   /* element nesting */
	uint32_t max_text;    /* bytes in one text node / attribute value */
	uint32_t max_attrs;   /* attributes (namespace declarations included) per element */
	uint32_t max_nodes;   /* elements in the document */
};

#define WT_DEFAULT_LIMITS ((struct wt_limits){ .max_depth = 64, .max_text = 4u << 20, .max_attrs = 64, .max_nodes = 100000 })

/* Broker -> worker: one STS reply and what the broker expects of it. */
struct wt_parse_req {
	const uint8_t *reply;   /* borrowed */
	size_t reply_len;
	uint32_t http_status;
	uint32_t trust_version; /* 1 = Feb 2005, 2 = 1.3 (WS_TRUST_VERSION) */
	uint32_t soap_version;  /* 11 or 12 */
	const char *relates_to; /* MessageID of the RST, or NULL */
	const char *context;    /* Context attribute of the RST, or NULL */
	struct wt_limits limits;
};

#define WT_MAX_SUBCODES 4

/* Worker -> broker: what the reply said.  Every pointer is heap-owned and
 * freed by wt_result_free; proof_data, entropy and entropy_enc are in sodium
 * secure memory on the broker side (decoded with secure = true). */
struct wt_result {
	bool secure;            /* proof_data/entropy/entropy_enc live in sodium memory */
	uint32_t kind;          /* enum ipc_result_kind */
	uint32_t trust_version; /* of the RSTR body: 1 or 2 */
	uint32_t soap_version;  /* 11, 12, or 0 for a bare RSTR(C) */

	/* kind == IPC_RESULT_TOKEN */
	struct wt_blob token_xml;      /* RequestedSecurityToken's child, byte-exact with in-scope ns */
	char *token_type;              /* wst:TokenType text, trimmed, or NULL */
	char *key_type;                /* wst:KeyType URI, trimmed, or NULL */
	uint32_t key_size;             /* wst:KeySize, 0 if absent */
	uint64_t created, expires;     /* wst:Lifetime as WS_DATETIME ticks, 0 if absent */
	char *applies_to;              /* wsp:AppliesTo address, or NULL */
	struct wt_blob attached;       /* RequestedAttachedReference's child element XML */
	struct wt_blob unattached;     /* RequestedUnattachedReference's child element XML */
	uint32_t proof_kind;           /* enum ipc_proof_kind */
	struct wt_blob proof_data;     /* BinarySecret (decoded) or EncryptedKey XML */
	char *ck_algorithm;            /* ComputedKey URI */
	struct wt_blob entropy;        /* issuer Entropy BinarySecret (decoded) */
	struct wt_blob entropy_enc;    /* issuer Entropy as xenc:EncryptedKey XML (byte-exact with in-scope ns);
	                                  at most one of entropy / entropy_enc is set */
	char *relates_to;              /* wsa:RelatesTo header, or NULL */
	char *context;                 /* RSTR Context attribute, or NULL */
	char *sct_id, *sct_instance;   /* SecurityContextToken Identifier/Instance */

	/* kind == IPC_RESULT_FAULT */
	char *fault_code;              /* "{ns}local" */
	char *fault_subcodes[WT_MAX_SUBCODES];
	unsigned n_subcodes;
	char *fault_reason;            /* the best-language Reason text */
	struct wt_blob fault_detail;   /* Detail element XML, or empty */

	/* kind == IPC_RESULT_ERROR */
	uint32_t error_code;           /* enum ipc_parse_error */
	char *error;                   /* human-readable, precise */
};

int wt_parse_req_encode(const struct wt_parse_req *r, struct ipc_builder *b);
/* Borrowed pointers into m; strings are copied into req_strings (freed by caller via free()). */
int wt_parse_req_decode(const struct ipc_msg *m, struct wt_parse_req *r, char **relates_out, char **context_out);

int wt_result_encode(const struct wt_result *r, struct ipc_builder *b);
/* secure: put proof_data, entropy and entropy_enc in sodium_malloc memory (broker side).
 * On failure r may hold partial allocations: call wt_result_free anyway. */
int wt_result_decode(const struct ipc_msg *m, struct wt_result *r, bool secure, char *err, size_t errlen);
void wt_result_free(struct wt_result *r);   /* safe on a zeroed struct */

/* Blob helpers (plain heap or sodium memory). */
int wt_blob_set(struct wt_blob *b, const void *p, size_t len, bool secure);
void wt_blob_free(struct wt_blob *b, bool secure);

#endif
