/* check: the broker never forwards a worker's answer blindly.
 *
 * Before a token leaves the broker it is checked against the request that
 * produced it: RelatesTo, Context, token type, key type and proof material,
 * AppliesTo, Lifetime.  Each refusal has its own message. */
#ifndef WSTRUST_BROKER_CHECK_H
#define WSTRUST_BROKER_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* WS_DATETIME ticks (100 ns since 0001-01-01) of the Unix epoch. */
#define WS_DATETIME_UNIX_EPOCH 621355968000000000ull
#define WS_TICKS_PER_SECOND 10000000ull
/* A token valid longer than this is refused as absurd. */
#define CHECK_MAX_LIFETIME_S (366ull * 24 * 3600)

struct token_expect {
	const char *message_id;    /* RST MessageID (RelatesTo must equal it when present) */
	const char *context;       /* RST Context, or NULL */
	const char *token_type;    /* requested TokenType, or NULL (any) */
	uint32_t key_type;         /* requested: 0 none, 1 bearer, 2 symmetric, 3 asymmetric */
	const char *applies_to;    /* requested AppliesTo, or NULL */
	uint32_t trust_version;    /* of the RST (algorithm URIs): 1 or 2; 0 = either */
	uint32_t key_size;         /* requested bits, 0 = none */
	uint32_t entropy_mode;     /* symmetric: 1 CLIENT_ONLY, 2 (or 0) SERVER_ONLY, 3 COMBINED */
	uint32_t request_action;   /* 1 ISSUE (or 0), 2 NEW_CONTEXT, 3 RENEW_CONTEXT: an SCT is expected */
	const char *renew_sct_id;  /* RENEW_CONTEXT: the Identifier the renewed SCT must keep */
};

/* What the checks conclude about an acceptable token. */
struct token_verdict {
	uint32_t key_type_out;     /* WS_SECURITY_KEY_TYPE for the client */
	const char *token_type;    /* the type to report (RSTR's, else the requested one), or NULL */
	bool proof_withheld;       /* a symmetric proof key exists (request.c decides who gets it) */
};

/* 0: acceptable.  -1: refused, with the reason in err. now_ticks is the
 * current time as WS_DATETIME ticks.  For a symmetric key (key_type_out 2)
 * the proof material is checked against the entropy mode: SERVER_ONLY wants
 * a BinarySecret or EncryptedKey and no issuer entropy; CLIENT_ONLY no proof
 * token at all; COMBINED a ComputedKey T/CK/PSHA1 with issuer Entropy (a
 * BinarySecret of 16 to 64 bytes, or an EncryptedKey that proof.c decrypts;
 * never both).  A ComputedKey or issuer Entropy in either form is refused
 * whenever no entropy was sent. */
int token_check(const struct token_expect *e, const struct wt_result *r, uint64_t now_ticks,
                struct token_verdict *v, char *err, size_t errlen);

bool token_type_equal(const char *a, const char *b);   /* with SAML URN/URI aliases */
bool key_type_is_bearer(const char *uri);
uint64_t ws_datetime_now(void);

#endif
