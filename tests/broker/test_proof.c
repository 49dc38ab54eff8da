/* Proof keys: P_SHA1 known answers (RFC 2202 HMAC-SHA1 building blocks,
 * independent Python values, the CoreWCF entropy pair), EncryptedKey
 * decryption (RSA-OAEP, RSA 1.5 refused unless allowed, wrong certificate,
 * tampering, hostile XML), and proof_key() per entropy mode, COMBINED with
 * the issuer entropy in clear and as an xenc:EncryptedKey. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "proof.h"
#include "t.h"

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;
	CHECK(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &n, NULL) == 0, "bad hex %s", hex);
	return n;
}

static void check_psha1(const uint8_t *secret, size_t sl, const uint8_t *seed, size_t seedl, const char *want_hex)
{
	uint8_t want[128], got[128];
	char err[256];
	size_t n = unhex(want_hex, want, sizeof want);
	CHECK(proof_psha1(secret, sl, seed, seedl, got, n, err, sizeof err) == 0, "proof_psha1: %s", err);
	char hex[257];
	sodium_bin2hex(hex, sizeof hex, got, n);
	CHECK(memcmp(got, want, n) == 0, "P_SHA1 = %s, expected %s", hex, want_hex);
}

/* The first BinarySecret text after marker in file. */
static size_t entropy_from(const char *file, const char *marker, uint8_t *out, size_t max)
{
	char path[1024];
	const char *root = getenv("WSTRUST_SOURCE_ROOT");
	snprintf(path, sizeof path, "%s/tests/broker/data/%s", root ? root : ".", file);
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL, "cannot open %s", path);
	static char buf[16384];
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = 0;
	char *p = strstr(buf, marker);
	CHECK(p != NULL, "%s: no %s", file, marker);
	p = strchr(p, '>') + 1;
	char *e = strchr(p, '<');
	size_t n = 0;
	CHECK(sodium_base642bin(out, max, p, (size_t)(e - p), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0,
	      "%s: entropy is not base64", file);
	return n;
}

/* ---- EncryptedKey fixtures: a fresh RSA key and self-signed certificate ---- */

static EVP_PKEY *key;
static X509 *cert, *other_cert;

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *c = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_set_pubkey(c, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	CHECK(X509_sign(c, k, EVP_sha256()) > 0, "X509_sign");
	return c;
}

static char *b64(const uint8_t *p, size_t n)
{
	static char out[2048];
	sodium_bin2base64(out, sizeof out, p, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* An xenc:EncryptedKey of secret, shaped like AD FS / devsts.py make it. */
static char *encrypted_key(const uint8_t *secret, size_t n, int padding, const char *alg, X509 *tp_cert, bool tamper)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	uint8_t ct[512];
	size_t ctl = sizeof ct;
	CHECK(ctx && EVP_PKEY_encrypt_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, padding) == 1, "encrypt init");
	if (padding == RSA_PKCS1_OAEP_PADDING)
		CHECK(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) == 1, "oaep md");
	CHECK(EVP_PKEY_encrypt(ctx, ct, &ctl, secret, n) == 1, "encrypt");
	EVP_PKEY_CTX_free(ctx);
	if (tamper)
		ct[ctl / 2] ^= 1;
	uint8_t tp[20];
	unsigned tpl = 0;
	X509_digest(tp_cert, EVP_sha1(), tp, &tpl);
	char tp64[64];
	sodium_bin2base64(tp64, sizeof tp64, tp, tpl, sodium_base64_VARIANT_ORIGINAL);
	static char xml[4096];
	snprintf(xml, sizeof xml,
	         "<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">"
	         "<e:EncryptionMethod Algorithm=\"%s\">%s</e:EncryptionMethod>"
	         "<KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><o:SecurityTokenReference "
	         "xmlns:o=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">"
	         "<o:KeyIdentifier ValueType=\"http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1\">%s"
	         "</o:KeyIdentifier></o:SecurityTokenReference></KeyInfo>"
	         "<e:CipherData><e:CipherValue>%s</e:CipherValue></e:CipherData></e:EncryptedKey>",
	         alg,
	         padding == RSA_PKCS1_OAEP_PADDING ? "<DigestMethod xmlns=\"http://www.w3.org/2000/09/xmldsig#\" "
	                                             "Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/>" : "",
	         tp64, b64(ct, ctl));
	return xml;
}

#define OAEP "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
#define RSA15 "http://www.w3.org/2001/04/xmlenc#rsa-1_5"

static void decrypt_refused(const char *xml, bool allow15, const char *want)
{
	struct secret out = { 0 };
	char err[512] = "";
	CHECK(proof_decrypt_encrypted_key((const uint8_t *)xml, strlen(xml), key, cert, allow15, &out, err, sizeof err) ==
	          -1, "accepted, expected \"%s\"", want);
	CHECK_CONTAINS(err, want);
	CHECK(out.data == NULL && out.len == 0, "output set on failure");
}

static void test_encrypted_key(void)
{
	key = EVP_RSA_gen(2048);
	CHECK(key != NULL, "EVP_RSA_gen");
	cert = self_signed(key);
	EVP_PKEY *k2 = EVP_RSA_gen(2048);
	other_cert = self_signed(k2);
	EVP_PKEY_free(k2);

	uint8_t secret[32];
	randombytes_buf(secret, sizeof secret);
	struct secret out = { 0 };
	char err[512];
	const char *x = encrypted_key(secret, sizeof secret, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false);
	CHECK(proof_decrypt_encrypted_key((const uint8_t *)x, strlen(x), key, cert, false, &out, err, sizeof err) == 0,
	      "OAEP: %s", err);
	CHECK(out.len == 32 && memcmp(out.data, secret, 32) == 0, "OAEP decrypts to the wrong key");
	secret_free(&out);
	/* without a certificate to compare the thumbprint with: still decrypts */
	CHECK(proof_decrypt_encrypted_key((const uint8_t *)x, strlen(x), key, NULL, false, &out, err, sizeof err) == 0,
	      "OAEP without cert: %s", err);
	secret_free(&out);

	/* RSA 1.5: refused by default, decrypts when the profile allows it */
	x = encrypted_key(secret, sizeof secret, RSA_PKCS1_PADDING, RSA15, cert, false);
	decrypt_refused(x, false, "RSA 1.5 (rsa-1_5), which is refused");
	CHECK(proof_decrypt_encrypted_key((const uint8_t *)x, strlen(x), key, cert, true, &out, err, sizeof err) == 0,
	      "RSA 1.5 allowed: %s", err);
	CHECK(out.len == 32 && memcmp(out.data, secret, 32) == 0, "RSA 1.5 decrypts to the wrong key");
	secret_free(&out);

	decrypt_refused(encrypted_key(secret, sizeof secret, RSA_PKCS1_OAEP_PADDING, OAEP, other_cert, false), false,
	                "to another certificate than the profile's client_cert");
	decrypt_refused(encrypted_key(secret, sizeof secret, RSA_PKCS1_OAEP_PADDING, OAEP, cert, true), false,
	                "does not decrypt with the profile's client_key");
	decrypt_refused(encrypted_key(secret, 8, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false), false,
	                "decrypted proof key is 64 bits");
	decrypt_refused(encrypted_key(secret, sizeof secret, RSA_PKCS1_OAEP_PADDING,
	                              "http://www.w3.org/2001/04/xmlenc#kw-aes256", cert, false),
	                false, "unsupported key transport algorithm");
	decrypt_refused("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>", false, "DOCTYPE");
	decrypt_refused("<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">", false, "not well-formed");
	decrypt_refused("<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\"/>", false,
	                "needs xenc:EncryptionMethod");
	decrypt_refused("<a><b>&undefined;</b></a>", false, "not well-formed");
	static char deep[4096];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "<a>");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "</a>");
	decrypt_refused(deep, false, "nested deeper");

	x = encrypted_key(secret, sizeof secret, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false);
	CHECK(proof_decrypt_encrypted_key((const uint8_t *)x, strlen(x), NULL, cert, false, &out, err, sizeof err) == -1,
	      "decrypted without a key");
	CHECK_CONTAINS(err, "no client_key");
}

static void test_proof_key(void)
{
	char err[512];
	struct secret ent = { 0 }, out = { 0 };
	CHECK(proof_new_entropy(&ent, 256) == 0 && ent.len == 32, "proof_new_entropy");
	struct secret ent2 = { 0 };
	CHECK(proof_new_entropy(&ent2, 256) == 0 && memcmp(ent.data, ent2.data, 32) != 0, "entropy repeats");
	CHECK(proof_new_entropy(&ent2, 100) == -1 && proof_new_entropy(&ent2, 1024) == -1, "bad sizes accepted");
	secret_free(&ent2);

	uint8_t bs[32], iss[32];
	randombytes_buf(bs, sizeof bs);
	randombytes_buf(iss, sizeof iss);
	struct wt_result r;
	memset(&r, 0, sizeof r);
	r.kind = IPC_RESULT_TOKEN;

	/* SERVER_ONLY: the BinarySecret, as sent */
	r.proof_kind = IPC_PROOF_BINARY_SECRET;
	r.proof_data = (struct wt_blob){ bs, sizeof bs };
	struct proof_request q = { .entropy_mode = 0 };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32 && !memcmp(out.data, bs, 32), "server: %s",
	      err);
	secret_free(&out);
	r.proof_data.len = 8;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1, "a 64-bit BinarySecret accepted");
	CHECK_CONTAINS(err, "64 bits");

	/* CLIENT_ONLY: our entropy is the key */
	memset(&r.proof_data, 0, sizeof r.proof_data);
	r.proof_kind = IPC_PROOF_NONE;
	q = (struct proof_request){ .entropy_mode = ENTROPY_CLIENT_ONLY, .entropy = &ent };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32 && !memcmp(out.data, ent.data, 32),
	      "client: %s", err);
	secret_free(&out);
	q.entropy_mode = ENTROPY_SERVER_ONLY;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1, "no proof token accepted for SERVER_ONLY");
	CHECK_CONTAINS(err, "no proof token");

	/* COMBINED: P_SHA1(requestor entropy, issuer entropy), KeySize bits */
	r.proof_kind = IPC_PROOF_COMPUTED_KEY;
	r.ck_algorithm = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1";
	r.entropy = (struct wt_blob){ iss, sizeof iss };
	r.key_size = 192;
	q = (struct proof_request){ .entropy_mode = ENTROPY_COMBINED, .entropy = &ent, .key_size = 192 };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 24, "combined: %s", err);
	uint8_t want[24];
	CHECK(proof_psha1((uint8_t *)ent.data, ent.len, iss, sizeof iss, want, sizeof want, err, sizeof err) == 0, "%s",
	      err);
	CHECK(memcmp(out.data, want, 24) == 0, "combined key is not P_SHA1(requestor, issuer)");
	secret_free(&out);
	r.key_size = 0;
	q.key_size = 0;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32, "combined default size: %s", err);
	secret_free(&out);
	memset(&r.entropy, 0, sizeof r.entropy);
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1, "ComputedKey without issuer entropy accepted");
	CHECK_CONTAINS(err, "without its issuer Entropy");
	r.entropy = (struct wt_blob){ iss, sizeof iss };
	q.entropy_mode = ENTROPY_SERVER_ONLY;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1, "ComputedKey without our entropy accepted");
	CHECK_CONTAINS(err, "no combined entropy");

	/* EncryptedKey: decrypted with the profile's key */
	r = (struct wt_result){ .kind = IPC_RESULT_TOKEN, .proof_kind = IPC_PROOF_ENCRYPTED_KEY };
	const char *x = encrypted_key(bs, sizeof bs, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false);
	r.proof_data = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	q = (struct proof_request){ .client_key = key, .client_cert = cert };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32 && !memcmp(out.data, bs, 32),
	      "encrypted key: %s", err);
	secret_free(&out);

	/* COMBINED with the issuer entropy as an xenc:EncryptedKey: decrypted
	 * with the profile's key (same rules as a proof token), then P_SHA1. */
	r = (struct wt_result){ .kind = IPC_RESULT_TOKEN, .proof_kind = IPC_PROOF_COMPUTED_KEY, .key_size = 256 };
	r.ck_algorithm = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1";
	x = encrypted_key(iss, sizeof iss, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false);
	r.entropy_enc = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	q = (struct proof_request){ .entropy_mode = ENTROPY_COMBINED, .entropy = &ent, .key_size = 256,
	                            .client_key = key, .client_cert = cert };
	uint8_t want32[32];
	CHECK(proof_psha1((uint8_t *)ent.data, ent.len, iss, sizeof iss, want32, sizeof want32, err, sizeof err) == 0,
	      "%s", err);
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32, "combined, encrypted entropy: %s", err);
	CHECK(memcmp(out.data, want32, 32) == 0, "combined key is not P_SHA1(requestor, decrypted issuer entropy)");
	secret_free(&out);
	/* both forms at once */
	r.entropy = (struct wt_blob){ iss, sizeof iss };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "entropy in clear and encrypted accepted");
	CHECK_CONTAINS(err, "both in clear and as an EncryptedKey");
	memset(&r.entropy, 0, sizeof r.entropy);
	/* no client_key, another certificate, tampered */
	q.client_key = NULL;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "decrypted without a key");
	CHECK_CONTAINS(err, "the STS sent the issuer Entropy as an EncryptedKey, but the profile has no client_key");
	q.client_key = key;
	x = encrypted_key(iss, sizeof iss, RSA_PKCS1_OAEP_PADDING, OAEP, other_cert, false);
	r.entropy_enc = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "entropy for another certificate accepted");
	CHECK_CONTAINS(err, "the STS encrypted the issuer Entropy to another certificate than the profile's client_cert");
	x = encrypted_key(iss, sizeof iss, RSA_PKCS1_OAEP_PADDING, OAEP, cert, true);
	r.entropy_enc = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "tampered entropy accepted");
	CHECK_CONTAINS(err, "issuer Entropy's EncryptedKey does not decrypt with the profile's client_key");
	/* too little entropy once decrypted */
	x = encrypted_key(iss, 8, RSA_PKCS1_OAEP_PADDING, OAEP, cert, false);
	r.entropy_enc = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "64-bit issuer entropy accepted");
	CHECK_CONTAINS(err, "the decrypted issuer Entropy is 64 bits");
	/* RSA 1.5: refused unless the profile allows it */
	x = encrypted_key(iss, sizeof iss, RSA_PKCS1_PADDING, RSA15, cert, false);
	r.entropy_enc = (struct wt_blob){ (uint8_t *)x, strlen(x) };
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1 && !out.data, "RSA 1.5 entropy accepted by default");
	CHECK_CONTAINS(err, "the STS encrypted the issuer Entropy with RSA 1.5 (rsa-1_5), which is refused");
	CHECK_CONTAINS(err, "allow_rsa15 = yes");
	q.allow_rsa15 = true;
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == 0 && out.len == 32, "RSA 1.5 entropy allowed: %s", err);
	CHECK(memcmp(out.data, want32, 32) == 0, "RSA 1.5: combined key is not P_SHA1(requestor, issuer)");
	secret_free(&out);
	/* ComputedKey without entropy in either form */
	memset(&r.entropy_enc, 0, sizeof r.entropy_enc);
	CHECK(proof_key(&q, &r, &out, err, sizeof err) == -1, "ComputedKey without issuer entropy accepted");
	CHECK_CONTAINS(err, "without its issuer Entropy");
	secret_free(&ent);
}

int main(void)
{
	CHECK(sodium_init() >= 0, "sodium_init");
	char err[256];

	/* RFC 2202 test case 1 (published HMAC-SHA1 vector): HMAC(0x0b*20,
	 * "Hi There") = b617...be00.  P_SHA1's A(1) is exactly that HMAC, and
	 * its first block is HMAC(secret, A(1) || seed): composing OpenSSL's
	 * HMAC per RFC 2246 must give what the KDF gives. */
	uint8_t k[20], a1[20], blk[64], out[20];
	memset(k, 0x0b, sizeof k);
	unsigned l = 0;
	HMAC(EVP_sha1(), k, sizeof k, (const uint8_t *)"Hi There", 8, a1, &l);
	uint8_t want_a1[20];
	unhex("b617318655057264e28bc0b6fb378c8ef146be00", want_a1, sizeof want_a1);
	CHECK(memcmp(a1, want_a1, 20) == 0, "RFC 2202 case 1");
	memcpy(blk, a1, 20);
	memcpy(blk + 20, "Hi There", 8);
	HMAC(EVP_sha1(), k, sizeof k, blk, 28, out, &l);
	check_psha1(k, sizeof k, (const uint8_t *)"Hi There", 8, "130d11513728c1ad7f3e256dfc08b6b924b14d47");
	uint8_t kdf[20];
	CHECK(proof_psha1(k, sizeof k, (const uint8_t *)"Hi There", 8, kdf, 20, err, sizeof err) == 0, "%s", err);
	CHECK(memcmp(kdf, out, 20) == 0, "KDF disagrees with HMAC composed per RFC 2246");

	/* Independent values (Python hmac, RFC 2246 section 5), several
	 * lengths: one block, a partial block, several blocks. */
	check_psha1((const uint8_t *)"secret", 6, (const uint8_t *)"seed", 4,
	            "5d55432bdfe9b93a813acc932adf0f297815d1c83166a983ea042d410665dfa1"
	            "9268d99774fd6f3fc5433f0465e765c49b8590d51e1e9988be2167fd8456dcb3");
	uint8_t s16[16], s32[32];
	for (int i = 0; i < 16; i++)
		s16[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++)
		s32[i] = (uint8_t)(16 + i);
	check_psha1(s16, sizeof s16, s32, sizeof s32, "f5522f925ea60cfe497729baf467b97f26708d871ab45452");

	/* The CoreWCF pair: a real WCF client's requestor entropy and CoreWCF's
	 * issuer entropy (tests/broker/data/SOURCES.md), KeySize 256. */
	uint8_t req[64], iss[64];
	size_t rl = entropy_from("wcf-2005-rst-sct-entropy-x509-signed.xml", "<t:BinarySecret", req, sizeof req);
	size_t il = entropy_from("wcf-corewcf-2005-rstr-sct-computedkey-psha1-entropy.xml", "<t:BinarySecret", iss,
	                         sizeof iss);
	CHECK(rl == 32 && il == 32, "entropy sizes %zu %zu", rl, il);
	check_psha1(req, rl, iss, il, "1ff37f409a40233bd7eb9d9d4e6a5229fc798ef72175595635a48f88f90db8ff");
	/* secret and seed are not interchangeable */
	uint8_t swapped[32];
	CHECK(proof_psha1(iss, il, req, rl, swapped, 32, err, sizeof err) == 0, "%s", err);
	uint8_t cw[32];
	unhex("1ff37f409a40233bd7eb9d9d4e6a5229fc798ef72175595635a48f88f90db8ff", cw, sizeof cw);
	CHECK(memcmp(swapped, cw, 32) != 0, "P_SHA1 symmetric in its arguments?");

	test_encrypted_key();
	test_proof_key();
	X509_free(cert);
	X509_free(other_cert);
	EVP_PKEY_free(key);
	T_DONE("test_proof");
}
