/* wssec: the WS-Security header of an RST, per the profile's binding.
 *
 * rst_build writes the envelope with a wsu:Timestamp (wsu:Id "_0") and, for
 * auth = username with PasswordText, the UsernameToken.  wssec_apply then
 * completes the wsse:Security header for the other bindings, in place:
 * UsernameToken with PasswordDigest, BinarySecurityToken + XML Signature
 * (certificate), the issued token + its proof-of-possession signature
 * (issued_token).  A no-op for bindings that need nothing more.
 *
 * Shapes (ids: Timestamp "_0", To "_1", UsernameToken "_2", BST "_3"):
 *   username + password_digest: UsernameToken{Username, Password Type=
 *     PasswordDigest = B64(SHA-1(nonce + Created + password)), Nonce (16
 *     random bytes, Base64Binary), wsu:Created}.
 *   certificate: BinarySecurityToken (X509v3, the profile's client_cert) +
 *     ds:Signature (exc-c14n; RSA-SHA256 + SHA-256 digests, or RSA-SHA1 +
 *     SHA-1 with signature_algorithm = rsa-sha1) with one Reference per
 *     signed part (#_0, #_1), each with one exc-c14n Transform; KeyInfo =
 *     SecurityTokenReference/Reference URI="#_3".
 *   issued_token: the token's bytes as issued; bearer: nothing else;
 *     holder-of-key: the same ds:Signature shape under the proof key,
 *     HMAC-SHA256 (symmetric) or RSA (asymmetric), KeyInfo =
 *     SecurityTokenReference/KeyIdentifier (SAMLID for SAML 2.0,
 *     SAMLAssertionID for SAML 1.1) = the assertion's ID. */
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
	struct evp_pkey_st *proof_rsa; /* asymmetric: the private key of the UseKey certificate
	                                * (the issuer profile's client_key); NULL: p->client_key */
	uint64_t valid_till;           /* WS_DATETIME ticks, 0 = unknown */
};

/* 0, or -1 with a message in err.  envelope is replaced by the completed
 * message (still in secure memory). */
int wssec_apply(const struct profile *p, const struct wssec_token *issued, struct secbuf *envelope, char *err,
                size_t errlen);

/* xmlsec1's global state; idempotent, called by wssec_apply.  Call it once
 * before threads if you can (main.c), it is cheap. */
int wssec_global_init(void);

/* What wssec adds, for docs and tests: */
#define WSSE_PASSWORD_DIGEST \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
#define WSSE_BASE64 \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
#define WSSE_X509V3 "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
#define WSSE_SAML2_KEYID "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
#define WSSE_SAML11_KEYID "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"

#endif
