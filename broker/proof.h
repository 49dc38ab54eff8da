/* proof: the symmetric proof key of an issued token, computed or decrypted
 * in the broker (never in the worker).
 *
 *   SERVER_ONLY  RequestedProofToken/BinarySecret: the STS's key, as sent.
 *   CLIENT_ONLY  no proof token: the requestor entropy the broker sent is the key.
 *   COMBINED     RequestedProofToken/ComputedKey CK/PSHA1 + issuer Entropy:
 *                key = P_SHA1(secret = requestor entropy, seed = issuer entropy),
 *                first KeySize/8 bytes (WS-Trust 1.3 section 4.4.4).  The issuer
 *                entropy is a BinarySecret or an xenc:EncryptedKey, decrypted
 *                under the same rules as an EncryptedKey proof token.
 *   EncryptedKey RequestedProofToken/xenc:EncryptedKey: RSA-OAEP (rsa-oaep-mgf1p)
 *                with the profile's private key; RSA 1.5 only when the profile
 *                allows it.
 *
 * Every key, entropy and intermediate lives in sodium memory (struct secret)
 * and is wiped. */
#ifndef WSTRUST_BROKER_PROOF_H
#define WSTRUST_BROKER_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secmem.h"
#include "wire.h"

struct x509_st;
struct evp_pkey_st;

/* WS_SECURITY_KEY_ENTROPY_MODE */
enum { ENTROPY_CLIENT_ONLY = 1, ENTROPY_SERVER_ONLY = 2, ENTROPY_COMBINED = 3 };

#define PROOF_MIN_BITS 128u
#define PROOF_MAX_BITS 512u
#define PROOF_DEFAULT_BITS 256u
/* An EncryptedKey element from the worker: more than this is not a key. */
#define PROOF_MAX_ENCRYPTED_KEY_XML (64u * 1024u)

/* P_SHA1 of RFC 2246 section 5 (OpenSSL's TLS1-PRF KDF with digest SHA1):
 * out_len bytes into out.  0, or -1 with a message. */
int proof_psha1(const uint8_t *secret, size_t secret_len, const uint8_t *seed, size_t seed_len, uint8_t *out,
                size_t out_len, char *err, size_t errlen);

/* Fresh requestor entropy from libsodium's CSPRNG: bits/8 bytes. */
int proof_new_entropy(struct secret *out, uint32_t bits);

/* Decrypt an xenc:EncryptedKey (its XML, as the worker extracted it) with
 * key.  cert, when given, must be the one the KeyInfo's ThumbprintSHA1
 * names (when it names one).  0 and *out, or -1 with a message. */
int proof_decrypt_encrypted_key(const uint8_t *xml, size_t len, struct evp_pkey_st *key, struct x509_st *cert,
                                bool allow_rsa15, struct secret *out, char *err, size_t errlen);

/* The same for an issuer wst:Entropy sent as an xenc:EncryptedKey (COMBINED);
 * the messages name the issuer Entropy.  The decrypted entropy must be 128
 * to 512 bits, like a proof key. */
int proof_decrypt_issuer_entropy(const uint8_t *xml, size_t len, struct evp_pkey_st *key, struct x509_st *cert,
                                 bool allow_rsa15, struct secret *out, char *err, size_t errlen);

/* What the broker asked for, to derive the proof key of an answer. */
struct proof_request {
	uint32_t entropy_mode;            /* ENTROPY_*, 0 = SERVER_ONLY */
	uint32_t key_size;                /* bits requested, 0 = none */
	const struct secret *entropy;     /* requestor entropy sent (CLIENT_ONLY, COMBINED) */
	struct evp_pkey_st *client_key;   /* EncryptedKey decryption; NULL = none configured */
	struct x509_st *client_cert;
	bool allow_rsa15;
};

/* The symmetric proof key of r (a token result that check.c accepted as
 * symmetric).  0 and *out, or -1 with a message. */
int proof_key(const struct proof_request *q, const struct wt_result *r, struct secret *out, char *err,
              size_t errlen);

#endif
