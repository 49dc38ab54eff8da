/* wssec: the WS-Security header per binding, checked by another
 * implementation (the xmlsec1 command line tool) and by hand:
 *   certificate: RSA-SHA256 (and RSA-SHA1 when asked) over Timestamp and To
 *     verifies with `xmlsec1 --verify` and the certificate; a tampered
 *     Timestamp or a signature by another key does not;
 *   issued_token: the token byte-exact; holder-of-key HMAC-SHA256 verifies
 *     with `xmlsec1 --verify --hmackey`; KeyIdentifier names the assertion;
 *     bearer: no signature; an expired token is refused;
 *   username + password_digest: UsernameToken with Nonce, Created and
 *     Base64(SHA-1(nonce + created + password)), no PasswordText. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_config.h"
#include "rst.h"
#include "t.h"
#include "wssec.h"

static char dir[] = "/tmp/wstrust-test-wssec-XXXXXX";
static char path_buf[8][512];

static const char *tmp(int slot, const char *name)
{
	snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", dir, name);
	return path_buf[slot];
}

static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL, "cannot write %s", path);
	CHECK(fwrite(p, 1, n, f) == n, "short write %s", path);
	fclose(f);
}

/* A fresh envelope as rst_build writes it (no UsernameToken). */
static void envelope(struct rst_msg *m)
{
	struct rst_request r = {
		.trust_version = 2,
		.soap_version = 12,
		.request_action = RST_ACTION_ISSUE,
		.to = "https://sts.example/adfs/services/trust/13/certificatemixed",
		.applies_to = "urn:example:rp",
		.key_type = 1,
	};
	char err[512];
	CHECK(rst_build(&r, m, err, sizeof err) == 0, "rst_build: %s", err);
}

/* xmlsec1 --verify with wsu:Id registered on Timestamp and To: 0 when it
 * verifies.  Its output is shown only when the outcome is not the expected. */
static int xmlsec_verify_expect(const char *file, const char *keyopt, bool expect_ok)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
	         "xmlsec1 --verify --id-attr:Id '" NS_WSU "':Timestamp --id-attr:Id '" NS_WSA10 "':To "
	         "%s '%s' >'%s' 2>&1", keyopt, file, tmp(7, "xmlsec1.log"));
	int rc = run(cmd);
	if ((rc == 0) != expect_ok) {
		FILE *f = fopen(path_buf[7], "r");
		char line[512];
		fprintf(stderr, "xmlsec1 said (rc %d):\n", rc);
		while (f && fgets(line, sizeof line, f))
			fprintf(stderr, "  %s", line);
		if (f)
			fclose(f);
	}
	return rc;
}

#define xmlsec_verifies(file, keyopt) (xmlsec_verify_expect((file), (keyopt), true) == 0)
#define xmlsec_rejects(file, keyopt) (xmlsec_verify_expect((file), (keyopt), false) != 0)

static void sign_certificate(struct profile *p, struct secbuf *out)
{
	struct rst_msg m;
	envelope(&m);
	char err[512] = "";
	CHECK(wssec_apply(p, NULL, &m.body, err, sizeof err) == 0, "wssec_apply certificate: %s", err);
	*out = m.body;
	m.body = (struct secbuf){ 0 };
	rst_msg_free(&m);
}

static void test_certificate(void)
{
	char cmd[4096], err[1024];
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -subj /CN=wssec-test -days 2 "
	         ">/dev/null 2>&1 && openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' "
	         "-subj /CN=other -days 2 >/dev/null 2>&1",
	         tmp(0, "client.key"), tmp(1, "client.pem"), tmp(2, "other.key"), tmp(3, "other.pem"));
	CHECK(run(cmd) == 0, "openssl req failed");
	chmod(path_buf[0], 0600);
	chmod(path_buf[2], 0600);

	struct profile p = { .name = "cert", .auth = AUTH_CERTIFICATE };
	CHECK(profile_set_client_credentials(&p, path_buf[1], path_buf[0], NULL, err, sizeof err) == 0, "%s", err);

	/* a key that is not the certificate's is refused at load */
	struct profile bad = { .name = "bad" };
	CHECK(profile_set_client_credentials(&bad, path_buf[1], path_buf[2], NULL, err, sizeof err) == -1,
	      "mismatched key accepted");
	CHECK_CONTAINS(err, "does not belong to client_cert");
	/* an over-permissive key file is refused, naming the file and its mode */
	chmod(path_buf[2], 0640);
	CHECK(profile_set_client_credentials(&bad, path_buf[3], path_buf[2], NULL, err, sizeof err) == -1,
	      "group-readable key accepted");
	CHECK_CONTAINS(err, path_buf[2]);
	CHECK_CONTAINS(err, "readable by group (mode 0640)");
	chmod(path_buf[2], 0600);

	struct secbuf signed_env;
	sign_certificate(&p, &signed_env);
	const char *s = (const char *)signed_env.data;
	CHECK_CONTAINS(s, "BinarySecurityToken");
	CHECK_CONTAINS(s, WSSE_X509V3);
	CHECK_CONTAINS(s, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
	CHECK_CONTAINS(s, "URI=\"#_0\"");
	CHECK_CONTAINS(s, "URI=\"#_1\"");
	CHECK_CONTAINS(s, "http://www.w3.org/2001/10/xml-exc-c14n#");
	CHECK_CONTAINS(s, "<wsse:Reference URI=\"#_3\"");
	CHECK(strncmp(s, "<?xml", 5) != 0, "unexpected XML declaration");
	write_bytes(tmp(4, "signed.xml"), signed_env.data, signed_env.len);

	char keyopt[600];
	snprintf(keyopt, sizeof keyopt, "--pubkey-cert-pem '%s'", path_buf[1]);
	CHECK(xmlsec_verifies(path_buf[4], keyopt), "xmlsec1 does not verify our certificate signature");

	/* Verifying with another certificate fails (the check can fail). */
	char other[600];
	snprintf(other, sizeof other, "--pubkey-cert-pem '%s'", path_buf[3]);
	CHECK(xmlsec_rejects(path_buf[4], other), "xmlsec1 verified with the wrong certificate");

	/* Tamper with the signed Timestamp: Created's year. */
	char *created = strstr(s, "<wsu:Created>");
	CHECK(created != NULL, "no wsu:Created");
	created[13] = created[13] == '1' ? '2' : '1';
	write_bytes(tmp(5, "tampered.xml"), signed_env.data, signed_env.len);
	CHECK(xmlsec_rejects(path_buf[5], keyopt), "xmlsec1 verified a tampered Timestamp");
	secbuf_free(&signed_env);

	/* Signed with another key (a tampered client_key), the certificate's verification fails. */
	struct profile wrong = p;
	EVP_PKEY *ok_key = p.client_key;
	struct profile tmpp = { .name = "other" };
	CHECK(profile_set_client_credentials(&tmpp, path_buf[3], path_buf[2], NULL, err, sizeof err) == 0, "%s", err);
	wrong.client_key = tmpp.client_key;
	sign_certificate(&wrong, &signed_env);
	write_bytes(tmp(5, "wrongkey.xml"), signed_env.data, signed_env.len);
	CHECK(xmlsec_rejects(path_buf[5], keyopt), "xmlsec1 verified a signature made with another key");
	secbuf_free(&signed_env);
	profile_free_credentials(&tmpp);
	p.client_key = ok_key;

	/* signature_algorithm = rsa-sha1 */
	p.signature_alg = SIG_RSA_SHA1;
	sign_certificate(&p, &signed_env);
	s = (const char *)signed_env.data;
	CHECK_CONTAINS(s, "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
	CHECK_CONTAINS(s, "http://www.w3.org/2000/09/xmldsig#sha1");
	CHECK(strstr(s, "rsa-sha256") == NULL, "rsa-sha1 profile signed with SHA-256");
	write_bytes(tmp(4, "signed1.xml"), signed_env.data, signed_env.len);
	CHECK(xmlsec_verifies(path_buf[4], keyopt), "xmlsec1 does not verify our RSA-SHA1 signature");
	secbuf_free(&signed_env);
	profile_free_credentials(&p);
}

static const char assertion[] =
	"<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a1b2c3\" Version=\"2.0\" "
	"IssueInstant=\"2030-01-01T00:00:00Z\"><saml:Issuer>idp</saml:Issuer>"
	"<saml:Subject><saml:NameID>alice</saml:NameID></saml:Subject></saml:Assertion>";

static uint64_t ticks_from_now(long seconds)
{
	return ((uint64_t)(time(NULL) + seconds) + 62135596800ull) * 10000000ull;
}

static void test_issued_token(void)
{
	struct profile idp = { .name = "idp" };
	struct profile p = { .name = "rp", .auth = AUTH_ISSUED_TOKEN, .issuer = &idp };
	struct secret key = { 0 };
	unsigned char k[32];
	for (unsigned i = 0; i < sizeof k; i++)
		k[i] = (unsigned char)(i * 7 + 1);
	CHECK(secret_set(&key, k, sizeof k) == 0, "secret_set");
	struct wssec_token t = {
		.xml = (const uint8_t *)assertion,
		.xml_len = sizeof assertion - 1,
		.key_type = 2,
		.proof_key = &key,
		.valid_till = ticks_from_now(600),
	};
	struct rst_msg m;
	envelope(&m);
	char err[512] = "";
	CHECK(wssec_apply(&p, &t, &m.body, err, sizeof err) == 0, "wssec_apply issued_token: %s", err);
	const char *s = (const char *)m.body.data;
	CHECK(strstr(s, assertion) != NULL, "the assertion is not in the request byte-exact:\n%s", s);
	CHECK_CONTAINS(s, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256");
	CHECK_CONTAINS(s, "ValueType=\"" WSSE_SAML2_KEYID "\">_a1b2c3</wsse:KeyIdentifier>");
	CHECK(strstr(s, "<!--wstrust-token") == NULL, "placeholder left in the request");
	write_bytes(tmp(4, "hmac.xml"), m.body.data, m.body.len);
	write_bytes(tmp(6, "hmac.key"), k, sizeof k);
	char keyopt[600];
	snprintf(keyopt, sizeof keyopt, "--hmackey '%s'", path_buf[6]);
	CHECK(xmlsec_verifies(path_buf[4], keyopt), "xmlsec1 does not verify our HMAC-SHA256 signature");
	k[0] ^= 1;
	write_bytes(path_buf[6], k, sizeof k);
	CHECK(xmlsec_rejects(path_buf[4], keyopt), "xmlsec1 verified the HMAC with another key");
	rst_msg_free(&m);

	/* bearer: as is, no signature */
	t.key_type = 1;
	t.proof_key = NULL;
	envelope(&m);
	CHECK(wssec_apply(&p, &t, &m.body, err, sizeof err) == 0, "wssec_apply bearer: %s", err);
	s = (const char *)m.body.data;
	CHECK(strstr(s, assertion) != NULL, "bearer assertion missing");
	CHECK(strstr(s, "Signature") == NULL, "a bearer token was signed");
	rst_msg_free(&m);

	/* The token is spliced in raw after signing: anything but one
	 * well-formed element (from a subverted worker) could close the
	 * Security header and rewrite the request.  Refused. */
	static const char *const injections[] = {
		"<x:T xmlns:x=\"urn:t\"/></wsse:Security></s:Header><s:Body><evil/>",
		"<x:T xmlns:x=\"urn:t\"/><x:U xmlns:x=\"urn:t\"/>",
		"<x:T xmlns:x=\"urn:t\"/><!--",
		"<x:T xmlns:x=\"urn:t\"/>text",
		"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>",
	};
	for (size_t i = 0; i < sizeof injections / sizeof injections[0]; i++) {
		struct wssec_token bad = t;
		bad.xml = (const uint8_t *)injections[i];
		bad.xml_len = strlen(injections[i]);
		envelope(&m);
		err[0] = 0;
		CHECK(wssec_apply(&p, &bad, &m.body, err, sizeof err) == -1, "token spliced in: %s\n%s", injections[i],
		      (const char *)m.body.data);
		CHECK_CONTAINS(err, "not one well-formed XML element");
		rst_msg_free(&m);
	}

	/* expired: refused, with the time */
	t.valid_till = ticks_from_now(-5);
	envelope(&m);
	CHECK(wssec_apply(&p, &t, &m.body, err, sizeof err) == -1, "expired token presented");
	CHECK_CONTAINS(err, "the issued token from profile idp expired at");
	rst_msg_free(&m);

	/* holder-of-key without its proof key: refused */
	t.valid_till = 0;
	t.key_type = 2;
	envelope(&m);
	CHECK(wssec_apply(&p, &t, &m.body, err, sizeof err) == -1, "symmetric token without key presented");
	CHECK_CONTAINS(err, "without its proof key");
	rst_msg_free(&m);
	secret_free(&key);
}

static void test_password_digest(void)
{
	struct profile p = { .name = "wso2", .auth = AUTH_USERNAME, .password_digest = true, .username = "al<ice" };
	CHECK(secret_set(&p.password, "s3cr&t", 6) == 0, "secret_set");
	struct rst_msg m;
	envelope(&m);
	char err[512] = "";
	CHECK(wssec_apply(&p, NULL, &m.body, err, sizeof err) == 0, "wssec_apply digest: %s", err);
	const char *s = (const char *)m.body.data;
	CHECK(strstr(s, "s3cr&t") == NULL && strstr(s, "s3cr&amp;t") == NULL, "the password is in the request");
	CHECK(strstr(s, "PasswordText") == NULL, "PasswordText with password_digest");
	CHECK_CONTAINS(s, "<wsse:Username>al&lt;ice</wsse:Username>");
	CHECK_CONTAINS(s, "Type=\"" WSSE_PASSWORD_DIGEST "\"");
	CHECK_CONTAINS(s, "EncodingType=\"" WSSE_BASE64 "\"");
	CHECK_CONTAINS(s, "wsu:Id=\"_2\"");

	/* Recompute the digest from the Nonce and Created in the message. */
	const char *pw = strstr(s, "#PasswordDigest\">");
	const char *nn = strstr(s, "#Base64Binary\">");
	const char *cr = strstr(s, "</wsse:Nonce><wsu:Created>");
	CHECK(pw && nn && cr, "UsernameToken shape: %s", s);
	pw += strlen("#PasswordDigest\">");
	nn += strlen("#Base64Binary\">");
	cr += strlen("</wsse:Nonce><wsu:Created>");
	char created[40];
	size_t cl = strcspn(cr, "<");
	CHECK(cl < sizeof created, "Created too long");
	memcpy(created, cr, cl);
	created[cl] = 0;
	unsigned char nonce[64], digest[32];
	size_t nlen = 0, dlen = 0;
	CHECK(sodium_base642bin(nonce, sizeof nonce, nn, strcspn(nn, "<"), NULL, &nlen, NULL,
	                        sodium_base64_VARIANT_ORIGINAL) == 0 && nlen == 16, "Nonce is not 16 bytes of base64");
	CHECK(sodium_base642bin(digest, sizeof digest, pw, strcspn(pw, "<"), NULL, &dlen, NULL,
	                        sodium_base64_VARIANT_ORIGINAL) == 0 && dlen == 20, "digest is not 20 bytes of base64");
	unsigned char want[20];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned wl = 0;
	EVP_DigestInit_ex(md, EVP_sha1(), NULL);
	EVP_DigestUpdate(md, nonce, nlen);
	EVP_DigestUpdate(md, created, cl);
	EVP_DigestUpdate(md, "s3cr&t", 6);
	EVP_DigestFinal_ex(md, want, &wl);
	EVP_MD_CTX_free(md);
	CHECK(memcmp(want, digest, 20) == 0, "PasswordDigest is not B64(SHA-1(nonce + created + password))");
	/* Created is now (within a minute) */
	struct tm tm = { 0 };
	CHECK(strptime(created, "%Y-%m-%dT%H:%M:%S", &tm) != NULL, "Created '%s' not a UTC time", created);
	long skew = (long)(timegm(&tm) - time(NULL));
	CHECK(skew > -60 && skew < 60, "Created %s is %ld s off", created, skew);
	char nonce1[64];
	snprintf(nonce1, sizeof nonce1, "%.*s", (int)strcspn(nn, "<"), nn);
	rst_msg_free(&m);

	/* Two messages never share a nonce. */
	envelope(&m);
	CHECK(wssec_apply(&p, NULL, &m.body, err, sizeof err) == 0, "%s", err);
	CHECK(strstr((const char *)m.body.data, "#PasswordDigest") != NULL, "second digest token missing");
	CHECK(strstr((const char *)m.body.data, nonce1) == NULL, "nonce reused");
	rst_msg_free(&m);

	/* PasswordText (no digest) is rst_build's: wssec leaves the envelope alone. */
	p.password_digest = false;
	envelope(&m);
	size_t len = m.body.len;
	CHECK(wssec_apply(&p, NULL, &m.body, err, sizeof err) == 0 && m.body.len == len, "PasswordText envelope changed");
	rst_msg_free(&m);
	secret_free(&p.password);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	CHECK(run("command -v xmlsec1 >/dev/null") == 0, "xmlsec1 (the command line tool) is needed by this test");
	test_certificate();
	test_issued_token();
	test_password_digest();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	run(cmd);
	T_DONE("wssec");
}
