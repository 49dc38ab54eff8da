/* wssec: the WS-Security header of an RST, per the profile's binding.
 *
 * rst_build writes the envelope with a wsu:Timestamp (wsu:Id "_0") and, for
 * auth = username with PasswordText, the UsernameToken.  wssec_apply then
 * completes the wsse:Security header for the other bindings, in place:
 * UsernameToken with PasswordDigest, BinarySecurityToken + XML Signature
 * (certificate), the issued token + its proof-of-possession signature
 * (issued_token).  A no-op for bindings that need nothing more. */
#ifndef WSTRUST_BROKER_WSSEC_H
#define WSTRUST_BROKER_WSSEC_H

#include <stddef.h>
#include <stdint.h>

#include "broker_config.h"
#include "secmem.h"

/* A token from another STS to present (issued_token binding). */
struct wssec_token {
	const uint8_t *xml;            /* the token element, byte-exact */
	size_t xml_len;
	uint32_t key_type;             /* 1 bearer, 2 symmetric, 3 asymmetric */
	const struct secret *proof_key; /* symmetric proof key, or NULL */
	uint64_t valid_till;           /* WS_DATETIME ticks, 0 = unknown */
};

/* 0, or -1 with a message in err.  envelope is replaced by the completed
 * message (still in secure memory). */
int wssec_apply(const struct profile *p, const struct wssec_token *issued, struct secbuf *envelope, char *err,
                size_t errlen);

#endif
