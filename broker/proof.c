#include "proof.h"

#include <libxml/tree.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "broker_request.h"

#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define NS_XENC11 "http://www.w3.org/2009/xmlenc11#"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define ALG_RSA_OAEP_MGF1P NS_XENC "rsa-oaep-mgf1p"
#define ALG_RSA_OAEP_11 NS_XENC11 "rsa-oaep"
#define ALG_RSA_15 NS_XENC "rsa-1_5"
#define ALG_SHA1 NS_DS "sha1"
#define ALG_SHA256 NS_XENC "sha256"
#define ALG_MGF1_SHA1 NS_XENC11 "mgf1sha1"
#define ALG_MGF1_SHA256 NS_XENC11 "mgf1sha256"
#define THUMBPRINT_SHA1 "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

int proof_psha1(const uint8_t *secret, size_t secret_len, const uint8_t *seed, size_t seed_len, uint8_t *out,
                size_t out_len, char *err, size_t errlen)
{
	/* TLS1-PRF with a single digest (anything but MD5-SHA1) is P_<hash>. */
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!ctx) {
		snprintf(err, errlen, "OpenSSL has no TLS1-PRF KDF (needed for P_SHA1)");
		return -1;
	}
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed, seed_len),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	if (!ok)
		snprintf(err, errlen, "P_SHA1 key derivation failed in OpenSSL");
	return ok ? 0 : -1;
}

int proof_new_entropy(struct secret *out, uint32_t bits)
{
	secret_free(out);
	if (bits < PROOF_MIN_BITS || bits > PROOF_MAX_BITS || bits % 8)
		return -1;
	out->data = sodium_malloc(bits / 8 + 1);
	if (!out->data)
		return -1;
	randombytes_buf(out->data, bits / 8);
	out->data[bits / 8] = '\0';
	out->len = bits / 8;
	return 0;
}

/* ---- xenc:EncryptedKey ---- */

static bool is_el(const xmlNode *n, const char *ns, const char *local)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, ns) &&
	       !strcmp((const char *)n->name, local);
}

static xmlNode *child(const xmlNode *parent, const char *ns, const char *local)
{
	for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
		if (is_el(c, ns, local))
			return c;
	return NULL;
}

static bool attr_is(xmlNode *n, const char *name, const char *want)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
	bool eq = v && !strcmp((const char *)v, want);
	xmlFree(v);
	return eq;
}

/* Base64 text of n (whitespace allowed) into a secret; -1 when not base64
 * or longer than max bytes. */
static int b64_text(xmlNode *n, size_t max, struct secret *out)
{
	xmlChar *t = xmlNodeGetContent(n);
	if (!t)
		return -1;
	size_t tl = strlen((const char *)t), bin_len = 0;
	int rc = -1;
	if (tl / 4 * 3 <= max + 3 && (out->data = sodium_malloc(tl / 4 * 3 + 4))) {
		const char *end;
		if (sodium_base642bin((unsigned char *)out->data, tl / 4 * 3 + 3, (const char *)t, tl, " \t\r\n", &bin_len,
		                      &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
		    end == (const char *)t + tl && bin_len > 0 && bin_len <= max) {
			out->len = bin_len;
			out->data[bin_len] = '\0';
			rc = 0;
		}
	}
	sodium_memzero(t, tl);
	xmlFree(t);
	if (rc)
		secret_free(out);
	return rc;
}

/* What an EncryptedKey carries, for the error messages: the proof key
 * (RequestedProofToken) or the issuer's entropy (wst:Entropy, COMBINED). */
struct ek_use {
	const char *noun;    /* "the proof key" */
	const char *label;   /* message prefix naming the element */
};

static const struct ek_use EK_PROOF = { "proof key", "EncryptedKey" };
static const struct ek_use EK_ENTROPY = { "issuer Entropy", "Entropy EncryptedKey" };

/* The OAEP digest and MGF1 digest an EncryptionMethod names. */
static int oaep_digests(xmlNode *em, bool xenc11, const struct ek_use *u, const EVP_MD **md, const EVP_MD **mgf,
                        char *err, size_t errlen)
{
	*md = *mgf = EVP_sha1();
	for (xmlNode *c = em->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is_el(c, NS_DS, "DigestMethod")) {
			if (attr_is(c, "Algorithm", ALG_SHA1))
				*md = EVP_sha1();
			else if (attr_is(c, "Algorithm", ALG_SHA256))
				*md = EVP_sha256();
			else {
				snprintf(err, errlen, "%s: unsupported RSA-OAEP digest (SHA-1 or SHA-256 only)", u->label);
				return -1;
			}
		} else if (xenc11 && is_el(c, NS_XENC11, "MGF")) {
			if (attr_is(c, "Algorithm", ALG_MGF1_SHA1))
				*mgf = EVP_sha1();
			else if (attr_is(c, "Algorithm", ALG_MGF1_SHA256))
				*mgf = EVP_sha256();
			else {
				snprintf(err, errlen, "%s: unsupported RSA-OAEP mask generation function", u->label);
				return -1;
			}
		} else if (!is_el(c, NS_XENC, "OAEPparams")) {
			snprintf(err, errlen, "%s: unexpected element %s in EncryptionMethod", u->label,
			         (const char *)c->name);
			return -1;
		}
	}
	if (child(em, NS_XENC, "OAEPparams")) {
		snprintf(err, errlen, "%s: OAEPparams (an OAEP label) is not supported", u->label);
		return -1;
	}
	return 0;
}

/* When the KeyInfo names a certificate by ThumbprintSHA1, it must be ours:
 * a precise error beats "does not decrypt". */
static int check_thumbprint(xmlNode *ek, X509 *cert, const struct ek_use *u, char *err, size_t errlen)
{
	xmlNode *ki = child(ek, NS_DS, "KeyInfo");
	xmlNode *str = child(ki, NS_WSSE, "SecurityTokenReference");
	xmlNode *kid = child(str, NS_WSSE, "KeyIdentifier");
	if (!kid || !cert || !attr_is(kid, "ValueType", THUMBPRINT_SHA1))
		return 0;
	struct secret tp = { 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (b64_text(kid, 64, &tp) != 0) {
		snprintf(err, errlen, "%s: the ThumbprintSHA1 KeyIdentifier is not base64", u->label);
		return -1;
	}
	int rc = 0;
	if (X509_digest(cert, EVP_sha1(), md, &mdlen) != 1 || tp.len != mdlen || memcmp(tp.data, md, mdlen) != 0) {
		snprintf(err, errlen, "the STS encrypted the %s to another certificate than the profile's "
		                      "client_cert (ThumbprintSHA1 differs)", u->noun);
		rc = -1;
	}
	secret_free(&tp);
	return rc;
}

static int decrypt_ek(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert, bool allow_rsa15,
                      const struct ek_use *u, struct secret *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!key) {
		snprintf(err, errlen, "the STS sent the %s as an EncryptedKey, but the profile has no client_key "
		                      "to decrypt it", u->noun);
		return -1;
	}
	if (len > PROOF_MAX_ENCRYPTED_KEY_XML) {
		snprintf(err, errlen, "%s: %zu bytes of XML, more than %u", u->label, len, PROOF_MAX_ENCRYPTED_KEY_XML);
		return -1;
	}
	char perr[256];
	xmlDocPtr doc = xml_strict_parse(xml, len, false, 16, perr, sizeof perr);
	if (!doc) {
		snprintf(err, errlen, "%s: %s", u->label, perr);
		return -1;
	}
	int rc = -1;
	EVP_PKEY_CTX *ctx = NULL;
	struct secret cipher = { 0 }, plain = { 0 };
	xmlNode *ek = xmlDocGetRootElement(doc);
	xmlNode *em = child(ek, NS_XENC, "EncryptionMethod");
	xmlNode *cv = child(child(ek, NS_XENC, "CipherData"), NS_XENC, "CipherValue");
	if (!is_el(ek, NS_XENC, "EncryptedKey") || !em || !cv) {
		snprintf(err, errlen, "%s: needs xenc:EncryptionMethod and xenc:CipherData/xenc:CipherValue", u->label);
		goto out;
	}
	bool rsa15 = attr_is(em, "Algorithm", ALG_RSA_15), oaep1 = attr_is(em, "Algorithm", ALG_RSA_OAEP_MGF1P),
	     oaep11 = attr_is(em, "Algorithm", ALG_RSA_OAEP_11);
	if (rsa15 && !allow_rsa15) {
		snprintf(err, errlen, "the STS encrypted the %s with RSA 1.5 (rsa-1_5), which is refused: "
		                      "set allow_rsa15 = yes in the profile only if this STS cannot use RSA-OAEP", u->noun);
		goto out;
	}
	if (!rsa15 && !oaep1 && !oaep11) {
		snprintf(err, errlen, "%s: unsupported key transport algorithm (RSA-OAEP only)", u->label);
		goto out;
	}
	const EVP_MD *md = NULL, *mgf = NULL;
	if (!rsa15 && oaep_digests(em, oaep11, u, &md, &mgf, err, errlen) != 0)
		goto out;
	if (check_thumbprint(ek, cert, u, err, errlen) != 0)
		goto out;
	if (b64_text(cv, 1024, &cipher) != 0) {
		snprintf(err, errlen, "%s: CipherValue is empty, not base64, or longer than 1024 bytes", u->label);
		goto out;
	}
	size_t plen = (size_t)EVP_PKEY_get_size(key);
	if (!(ctx = EVP_PKEY_CTX_new(key, NULL)) || EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, rsa15 ? RSA_PKCS1_PADDING : RSA_PKCS1_OAEP_PADDING) != 1 ||
	    (!rsa15 && (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) != 1))) {
		snprintf(err, errlen, "%s: the profile's client_key cannot decrypt RSA (is it an RSA key?)", u->label);
		goto out;
	}
	if (!(plain.data = sodium_malloc(plen + 1))) {
		snprintf(err, errlen, "out of secure memory");
		goto out;
	}
	if (EVP_PKEY_decrypt(ctx, (unsigned char *)plain.data, &plen, (const unsigned char *)cipher.data,
	                     cipher.len) != 1) {
		snprintf(err, errlen, "the %s's EncryptedKey does not decrypt with the profile's client_key", u->noun);
		goto out;
	}
	if (plen < PROOF_MIN_BITS / 8 || plen > PROOF_MAX_BITS / 8) {
		snprintf(err, errlen, "the decrypted %s is %zu bits (allowed: %u to %u)", u->noun, plen * 8,
		         PROOF_MIN_BITS, PROOF_MAX_BITS);
		goto out;
	}
	if (secret_set(out, plain.data, plen) != 0) {
		snprintf(err, errlen, "out of secure memory");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	secret_free(&cipher);
	secret_free(&plain);
	xmlFreeDoc(doc);
	return rc;
}

int proof_decrypt_encrypted_key(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert, bool allow_rsa15,
                                struct secret *out, char *err, size_t errlen)
{
	return decrypt_ek(xml, len, key, cert, allow_rsa15, &EK_PROOF, out, err, errlen);
}

int proof_decrypt_issuer_entropy(const uint8_t *xml, size_t len, EVP_PKEY *key, X509 *cert, bool allow_rsa15,
                                 struct secret *out, char *err, size_t errlen)
{
	return decrypt_ek(xml, len, key, cert, allow_rsa15, &EK_ENTROPY, out, err, errlen);
}

static int key_bits_ok(size_t bytes, char *err, size_t errlen, const char *what)
{
	if (bytes < PROOF_MIN_BITS / 8 || bytes > PROOF_MAX_BITS / 8) {
		snprintf(err, errlen, "%s is %zu bits (allowed: %u to %u)", what, bytes * 8, PROOF_MIN_BITS, PROOF_MAX_BITS);
		return -1;
	}
	return 0;
}

int proof_key(const struct proof_request *q, const struct wt_result *r, struct secret *out, char *err,
              size_t errlen)
{
	memset(out, 0, sizeof *out);
	uint32_t mode = q->entropy_mode ? q->entropy_mode : ENTROPY_SERVER_ONLY;
	switch (r->proof_kind) {
	case IPC_PROOF_BINARY_SECRET:
		if (key_bits_ok(r->proof_data.len, err, errlen, "the STS's BinarySecret proof key") != 0)
			return -1;
		if (secret_set(out, r->proof_data.data, r->proof_data.len) != 0)
			goto oom;
		return 0;
	case IPC_PROOF_ENCRYPTED_KEY:
		return proof_decrypt_encrypted_key(r->proof_data.data, r->proof_data.len, q->client_key, q->client_cert,
		                                   q->allow_rsa15, out, err, errlen);
	case IPC_PROOF_COMPUTED_KEY: {
		if (mode != ENTROPY_COMBINED || !q->entropy || !q->entropy->len) {
			snprintf(err, errlen, "the STS sent a ComputedKey, but the request carried no combined entropy");
			return -1;
		}
		if (!r->entropy.len && !r->entropy_enc.len) {
			snprintf(err, errlen, "the STS sent a ComputedKey without its issuer Entropy");
			return -1;
		}
		if (r->entropy.len && r->entropy_enc.len) {
			snprintf(err, errlen, "the STS sent its issuer Entropy both in clear and as an EncryptedKey");
			return -1;
		}
		/* KeySize: the reply's, else the request's, else the default. */
		uint32_t bits = r->key_size ? r->key_size : q->key_size ? q->key_size : PROOF_DEFAULT_BITS;
		if (bits < PROOF_MIN_BITS || bits > PROOF_MAX_BITS || bits % 8) {
			snprintf(err, errlen, "the ComputedKey would be %u bits (allowed: %u to %u, a multiple of 8)", bits,
			         PROOF_MIN_BITS, PROOF_MAX_BITS);
			return -1;
		}
		/* The issuer entropy: as sent, or decrypted like an EncryptedKey proof token. */
		struct secret issuer = { 0 };
		if (r->entropy_enc.len) {
			if (proof_decrypt_issuer_entropy(r->entropy_enc.data, r->entropy_enc.len, q->client_key,
			                                 q->client_cert, q->allow_rsa15, &issuer, err, errlen) != 0)
				return -1;
		} else if (secret_set(&issuer, r->entropy.data, r->entropy.len) != 0) {
			goto oom;
		}
		int rc = -1;
		if (!(out->data = sodium_malloc(bits / 8 + 1))) {
			snprintf(err, errlen, "out of secure memory");
		} else {
			out->len = bits / 8;
			out->data[out->len] = '\0';
			rc = proof_psha1((const uint8_t *)q->entropy->data, q->entropy->len, (const uint8_t *)issuer.data,
			                 issuer.len, (uint8_t *)out->data, out->len, err, errlen);
		}
		secret_free(&issuer);
		if (rc != 0)
			secret_free(out);
		return rc;
	}
	case IPC_PROOF_NONE:
		if (mode == ENTROPY_CLIENT_ONLY && q->entropy && q->entropy->len) {
			if (secret_set(out, q->entropy->data, q->entropy->len) != 0)
				goto oom;
			return 0;
		}
		snprintf(err, errlen, "the STS sent no proof token for a symmetric key%s",
		         mode == ENTROPY_COMBINED ? " (combined entropy needs a ComputedKey)" : "");
		return -1;
	default:
		snprintf(err, errlen, "unknown proof token kind %u", r->proof_kind);
		return -1;
	}
oom:
	snprintf(err, errlen, "out of secure memory");
	secret_free(out);
	return -1;
}
