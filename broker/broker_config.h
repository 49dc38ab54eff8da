/* config: the broker's INI configuration (libinih), validated whole.
 *
 * Loading either yields a complete, checked config (every profile usable,
 * password files read into secure memory, policy names resolved) or fails
 * with one precise "FILE:LINE: message" error.  A config is immutable once
 * loaded; SIGHUP loads a new one and swaps it in (see main.c). */
#ifndef WSTRUST_BROKER_BROKER_CONFIG_H
#define WSTRUST_BROKER_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "secmem.h"

#define CONFIG_MAX_PROFILES 256
#define CONFIG_MAX_LINE 8192          /* bytes in one config line */
#define PASSWORD_MAX 4096             /* bytes in a password file */
#define KEY_FILE_MAX 65536            /* bytes in a PEM/PKCS#12 key file */
#define CERT_FILE_MAX 262144          /* bytes in a certificate file */

/* The profile's `auth =`: WWSAPI's WS_SECURITY_BINDING_TYPE for the STS
 * channel (TLS client certificates are orthogonal: client_cert/client_key). */
enum auth_kind {
	AUTH_USERNAME = 1,      /* WS_USERNAME_MESSAGE_SECURITY_BINDING */
	AUTH_CERTIFICATE,       /* extension: BinarySecurityToken + XML Signature */
	AUTH_ISSUED_TOKEN,      /* WS_XML_TOKEN_MESSAGE_SECURITY_BINDING (issuer_profile) */
	AUTH_BASIC,             /* WS_HTTP_HEADER_AUTH_SECURITY_BINDING, Basic */
	AUTH_NONE,              /* TLS only (a client certificate, or nothing) */
};

/* WS_SECURITY_KEY_TYPE values (0: none configured) */
enum { KEY_TYPE_UNSET = 0, KEY_TYPE_BEARER = 1, KEY_TYPE_SYMMETRIC = 2, KEY_TYPE_ASYMMETRIC = 3 };
/* WS_TRUST_VERSION values */
enum { TRUST_FEB2005 = 1, TRUST_13 = 2 };

/* signature_algorithm: the certificate binding's (and an asymmetric
 * holder-of-key token's) XML Signature method. */
enum sig_alg { SIG_RSA_SHA256 = 0, SIG_RSA_SHA1 };

struct worker_pool;

struct profile {
	char *name;
	unsigned line;                 /* of its [profile NAME] header */
	char *endpoint;
	uint32_t trust_version;        /* TRUST_FEB2005 or TRUST_13 */
	uint32_t soap_version;         /* 11 or 12 */
	char *ca_file;
	enum auth_kind auth;
	char *username;
	char *password_file;
	struct secret password;        /* sodium memory, read-only after load */
	char *applies_to;              /* NULL: none */
	uint32_t key_type;             /* KEY_TYPE_* */
	char *token_type;              /* NULL: none */
	unsigned timeout_ms;           /* 0: [broker] request_timeout_ms */
	bool allow_insecure_http;      /* http:// allowed, loopback hosts only */
	bool release_proof_key;        /* daemon mode: hand the symmetric proof key to the client */
	bool allow_rsa15;              /* accept EncryptedKey proof tokens with RSA 1.5 (else OAEP only) */
	/* The profile's certificate and private key (client_cert / client_key):
	 * TLS client authentication, the certificate binding's signature,
	 * UseKey for asymmetric proof keys and EncryptedKey decryption.  NULL
	 * when not configured.  The key lives in OpenSSL's secure heap. */
	struct x509_st *client_cert;
	struct evp_pkey_st *client_key;
	char *client_cert_file, *client_key_file, *client_key_password_file;
	/* pin_sha256: curl's CURLOPT_PINNEDPUBLICKEY form, "sha256//B64[;sha256//B64...]",
	 * each the base64 SHA-256 of the server's SubjectPublicKeyInfo.  NULL: no pin. */
	char *pin_sha256;
	bool password_digest;          /* auth = username: PasswordDigest + Nonce + Created */
	enum sig_alg signature_alg;
	char *issuer_profile_name;     /* auth = issued_token: the profile whose token we present */
	const struct profile *issuer;  /* ... resolved at load (no cycles) */
	struct policy_acl acl;
	struct worker_pool *pool;      /* set by the broker after load, not by config */
};

struct broker_config {
	char *path;
	uint64_t generation;           /* unique per successful load (caches keyed on a config use it) */
	char *socket;
	char *worker_path;
	char *worker_user;
	unsigned worker_max_replies;
	unsigned worker_pool;
	unsigned worker_max_total;
	unsigned worker_max_age;
	unsigned worker_timeout_ms;
	unsigned worker_cpu_seconds;
	unsigned worker_memory_mb;
	size_t max_reply_bytes;
	unsigned request_timeout_ms;
	unsigned max_clients;
	char *proxy;                   /* NULL: no proxy, environment ignored */
	struct profile *profiles;
	size_t nprofiles;
};

/* Load and validate FILE.  0 and *out, or -1 and a message in err
 * ("FILE:LINE: ..." or "FILE: ..."). */
int config_load(const char *path, struct broker_config **out, char *err, size_t errlen);
/* Wipes the secrets; does not free worker pools (the owner does). */
void config_free(struct broker_config *c);

const struct profile *config_find_profile(const struct broker_config *c, const char *name);
const struct profile *config_find_endpoint(const struct broker_config *c, const char *endpoint);

/* Read a password file the strict way (O_NOFOLLOW, owned by us, mode no
 * wider than 0600, regular, <= PASSWORD_MAX, one trailing newline
 * stripped) into secure memory.  Exposed for tests. */
int config_read_secret_file(const char *path, struct secret *out, char *err, size_t errlen);

/* Credentials from files, reusable outside config_load (embedded mode):
 * the certificate (PEM; public, any mode) and the private key (PEM, or
 * PKCS#12 when the file is not PEM; strict ownership/mode checks like
 * password files; an encrypted key needs password, NULL otherwise).  The
 * key lands in OpenSSL's secure heap; the file bytes are read into sodium
 * memory and wiped.  0, or -1 with an error naming the file. */
int credential_load_cert(const char *path, struct x509_st **out, char *err, size_t errlen);
int credential_load_key(const char *path, const struct secret *password, struct evp_pkey_st **out,
                        char *err, size_t errlen);
/* Same from bytes already in memory (e.g. received over IPC). */
int credential_key_from_mem(const void *data, size_t len, const struct secret *password, const char *what,
                            struct evp_pkey_st **out, char *err, size_t errlen);
/* Fill p->client_cert/client_key from files (key_password_file may be NULL)
 * and check that they belong together.  Frees what p held before. */
int profile_set_client_credentials(struct profile *p, const char *cert_file, const char *key_file,
                                   const char *key_password_file, char *err, size_t errlen);
/* Free and wipe a profile's credentials (password, certificate, key). */
void profile_free_credentials(struct profile *p);
/* Parse a pin_sha256 value (sha256//BASE64, bare BASE64 or 64 hex digits,
 * several separated by ';') into curl's form.  0 and *out (malloc'd), or -1. */
int config_parse_pin(const char *value, char **out, char *err, size_t errlen);
/* OpenSSL's secure heap, for private keys: idempotent; called by config_load. */
void credential_init_secure_heap(void);

/* A config with every [broker] default and no profiles (config_load's
 * starting point; embedded mode builds its one profile on it).  NULL: OOM. */
struct broker_config *config_new_defaults(const char *path);

/* Default worker binary: ../worker/wstrust-worker next to our own binary
 * (the build tree), else WSTRUST_LIBEXECDIR/wstrust-worker. */
char *config_default_worker_path(void);

#endif
