/* Config parsing: every error names FILE:LINE and what to do; the password
 * lands in protected secure memory with one trailing newline stripped. */
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_config.h"
#include "t.h"

static char dir[] = "/tmp/wstrust-test-config-XXXXXX";
static char ca[256], pw[256], cfgpath[256];

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Load a config whose text is fmt with %1$s = ca file and %2$s = password file. */
static int load(const char *text, struct broker_config **out, char *err, size_t errlen)
{
	static char buf[32768];
	/* Replace @CA@ and @PW@ placeholders. */
	const char *s = text;
	size_t n = 0;
	while (*s && n < sizeof buf - 300) {
		if (!strncmp(s, "@CA@", 4)) {
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", ca);
			s += 4;
		} else if (!strncmp(s, "@PW@", 4)) {
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", pw);
			s += 4;
		} else {
			buf[n++] = *s++;
		}
	}
	buf[n] = 0;
	write_file(cfgpath, buf, 0644);
	err[0] = 0;
	return config_load(cfgpath, out, err, errlen);
}

static const char *good =
	"; test config\n"                                          /* 1 */
	"[broker]\n"                                               /* 2 */
	"socket = /tmp/wstrust-test.sock\n"                        /* 3 */
	"worker_pool = 2\n"                                        /* 4 */
	"max_reply_bytes = 1048576\n"                              /* 5 */
	"\n"                                                       /* 6 */
	"[profile adfs]\n"                                         /* 7 */
	"endpoint = https://127.0.0.1:8443/adfs/services/trust/13/usernamemixed\n"
	"trust_version = 1.3\n"
	"soap_version = 1.2\n"
	"ca_file = @CA@\n"
	"auth = username\n"
	"username = alice\n"
	"password_file = @PW@   ; inline comment\n"
	"applies_to = urn:example:rp\n"
	"key_type = bearer\n"
	"token_type = urn:oasis:names:tc:SAML:2.0:assertion\n"
	"timeout_ms = 2500\n"
	"allow_users = root, 4242\n";

static void expect_error(const char *text, const char *needle)
{
	struct broker_config *c = NULL;
	char err[1024];
	int rc = load(text, &c, err, sizeof err);
	CHECK(rc == -1 && c == NULL, "config was accepted, expected an error containing \"%s\"", needle);
	CHECK_CONTAINS(err, needle);
}

/* The same good config with one line replaced (1-based) by `line`. */
static char *with_line(unsigned lineno, const char *line)
{
	static char out[8192];
	size_t n = 0;
	unsigned cur = 1;
	for (const char *s = good; *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) + 1 : strlen(s);
		if (cur == lineno)
			n += (size_t)snprintf(out + n, sizeof out - n, "%s\n", line);
		else {
			memcpy(out + n, s, len);
			n += len;
		}
		s += len;
		cur++;
	}
	out[n] = 0;
	return out;
}

/* ---- issue 6: auth bindings, client certificate/key, pin, issuer_profile ---- */

static char cert[256], key[256], enckey[256], keypw[256], other_key[256];

/* A profile section after `good`'s, with extra lines. */
static const char *with_profile(const char *name, const char *endpoint_tail, const char *lines)
{
	static char t[16384];
	snprintf(t, sizeof t, "%s\n[profile %s]\nendpoint = https://127.0.0.1:8443/%s\ntrust_version = 1.3\n"
	         "ca_file = @CA@\n%s", good, name, endpoint_tail, lines);
	return t;
}

static void test_bindings(void)
{
	char cmd[2048], err[1024], m[1024];
	snprintf(cert, sizeof cert, "%s/client.pem", dir);
	snprintf(key, sizeof key, "%s/client.key", dir);
	snprintf(enckey, sizeof enckey, "%s/client-enc.key", dir);
	snprintf(keypw, sizeof keypw, "%s/client-key-password", dir);
	snprintf(other_key, sizeof other_key, "%s/other.key", dir);
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -subj /CN=cfg-test -days 2 >/dev/null 2>&1 &&"
	         " openssl pkey -in '%s' -aes256 -passout pass:kpw0rd -out '%s' 2>/dev/null &&"
	         " openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out '%s' 2>/dev/null",
	         key, cert, key, enckey, other_key);
	CHECK(system(cmd) == 0, "openssl failed");
	chmod(key, 0600);
	chmod(enckey, 0600);
	chmod(other_key, 0600);
	write_file(keypw, "kpw0rd\n", 0600);

	struct broker_config *c;
	const struct profile *p;
	char lines[2048];

	/* certificate binding: key loaded, default RSA-SHA256 */
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n", cert, key);
	CHECK(load(with_profile("cert", "certificatemixed", lines), &c, err, sizeof err) == 0, "certificate: %s", err);
	p = config_find_profile(c, "cert");
	CHECK(p && p->auth == AUTH_CERTIFICATE && p->client_cert && p->client_key && p->signature_alg == SIG_RSA_SHA256,
	      "certificate profile");
	config_free(c);
	/* encrypted key + password file, rsa-sha1 */
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n"
	         "client_key_password_file = %s\nsignature_algorithm = rsa-sha1\n", cert, enckey, keypw);
	CHECK(load(with_profile("cert", "certificatemixed", lines), &c, err, sizeof err) == 0, "encrypted key: %s", err);
	p = config_find_profile(c, "cert");
	CHECK(p->client_key && p->signature_alg == SIG_RSA_SHA1, "encrypted key profile");
	config_free(c);
	/* encrypted key without its password */
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n", cert, enckey);
	expect_error(with_profile("cert", "certificatemixed", lines), "is encrypted: name its password in "
	             "client_key_password_file");
	/* wrong password */
	write_file(keypw, "wrong\n", 0600);
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n"
	         "client_key_password_file = %s\n", cert, enckey, keypw);
	expect_error(with_profile("cert", "certificatemixed", lines), "does not decrypt with the password");
	/* over-permissive key password file */
	write_file(keypw, "kpw0rd\n", 0640);
	snprintf(m, sizeof m, "client_key_password_file %s is readable by group (mode 0640): chmod 600 it", keypw);
	expect_error(with_profile("cert", "certificatemixed", lines), m);
	write_file(keypw, "kpw0rd\n", 0600);
	/* over-permissive and foreign key files: named with their mode / owner */
	chmod(key, 0644);
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n", cert, key);
	snprintf(m, sizeof m, "client_key %s is readable by group/others (mode 0644): chmod 600 it", key);
	expect_error(with_profile("cert", "certificatemixed", lines), m);
	chmod(key, 0600);
	if (geteuid() == 0) {
		CHECK(chown(key, 4242, 0) == 0, "chown");
		snprintf(m, sizeof m, "client_key %s is owned by uid 4242, not by the broker's uid 0: chown it", key);
		expect_error(with_profile("cert", "certificatemixed", lines), m);
		CHECK(chown(key, 0, 0) == 0, "chown back");
	}
	/* a key that is not the certificate's */
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n", cert, other_key);
	expect_error(with_profile("cert", "certificatemixed", lines), "does not belong to client_cert");
	/* half a pair, missing pair, garbage certificate */
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\n", cert);
	expect_error(with_profile("cert", "certificatemixed", lines), "client_cert and client_key go together");
	expect_error(with_profile("cert", "certificatemixed", "auth = certificate\n"),
	             "auth = certificate needs 'client_cert' and 'client_key'");
	snprintf(lines, sizeof lines, "auth = certificate\nclient_cert = %s\nclient_key = %s\n", ca, key);
	expect_error(with_profile("cert", "certificatemixed", lines), "not a PEM X.509 certificate");
	expect_error(with_profile("cert", "x", "auth = none\nsignature_algorithm = dsa\n"),
	             "signature_algorithm = 'dsa': expected rsa-sha256 or rsa-sha1");
	/* a client certificate with any auth (TLS client authentication) */
	snprintf(lines, sizeof lines, "auth = none\nclient_cert = %s\nclient_key = %s\n", cert, key);
	CHECK(load(with_profile("tls", "certificatetransport", lines), &c, err, sizeof err) == 0, "auth = none: %s", err);
	CHECK(config_find_profile(c, "tls")->client_key != NULL, "client key with auth = none");
	config_free(c);

	/* basic and username-only keys */
	snprintf(lines, sizeof lines, "auth = basic\nusername = bob\npassword_file = %s\n", pw);
	CHECK(load(with_profile("basic", "usernamebasic", lines), &c, err, sizeof err) == 0, "basic: %s", err);
	CHECK(config_find_profile(c, "basic")->auth == AUTH_BASIC, "basic");
	config_free(c);
	expect_error(with_profile("basic", "usernamebasic", "auth = basic\nusername = bob\n"),
	             "auth = basic needs 'password_file'");
	snprintf(lines, sizeof lines, "auth = basic\nusername = b:ob\npassword_file = %s\n", pw);
	expect_error(with_profile("basic", "usernamebasic", lines), "contains ':', which HTTP Basic cannot carry");
	expect_error(with_profile("n", "x", "auth = none\nusername = bob\n"),
	             "'username' is only used with auth = username or basic");
	expect_error(with_profile("n", "x", "auth = none\npassword_digest = yes\n"),
	             "password_digest is only used with auth = username");
	snprintf(lines, sizeof lines, "auth = username\nusername = bob\npassword_file = %s\npassword_digest = yes\n", pw);
	CHECK(load(with_profile("wso2", "x", lines), &c, err, sizeof err) == 0, "digest: %s", err);
	CHECK(config_find_profile(c, "wso2")->password_digest, "password_digest");
	config_free(c);

	/* pin_sha256: base64 with or without sha256//, hex; several */
	static const char b64pin[] = "q1z7Yv3pHn1s3p5XUo1yDO0kD2S4c1M0Vb8sY7DjQk0=";
	snprintf(lines, sizeof lines, "auth = none\npin_sha256 = sha256//%s; "
	         "ab000000000000000000000000000000000000000000000000000000000000ff\n", b64pin);
	CHECK(load(with_profile("pin", "x", lines), &c, err, sizeof err) == 0, "pin: %s", err);
	CHECK_STREQ(config_find_profile(c, "pin")->pin_sha256,
	            "sha256//q1z7Yv3pHn1s3p5XUo1yDO0kD2S4c1M0Vb8sY7DjQk0=;sha256//qwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8=");
	config_free(c);
	expect_error(with_profile("pin", "x", "auth = none\npin_sha256 = sha256//short\n"),
	             "pin_sha256 = 'sha256//short': each pin is sha256//BASE64");

	/* issuer_profile: resolved; unknown, self, cycles and misuse refused */
	snprintf(lines, sizeof lines, "auth = issued_token\nissuer_profile = adfs\n");
	CHECK(load(with_profile("rp", "issuedtokenmixedsymmetricbasic256", lines), &c, err, sizeof err) == 0,
	      "issued_token: %s", err);
	p = config_find_profile(c, "rp");
	CHECK(p->auth == AUTH_ISSUED_TOKEN && p->issuer == config_find_profile(c, "adfs"), "issuer resolved");
	config_free(c);
	expect_error(with_profile("rp", "x", "auth = issued_token\n"), "auth = issued_token needs 'issuer_profile'");
	expect_error(with_profile("rp", "x", "auth = issued_token\nissuer_profile = nope\n"),
	             "issuer_profile = 'nope': no such profile");
	expect_error(with_profile("rp", "x", "auth = issued_token\nissuer_profile = rp\n"),
	             "a profile cannot be its own issuer");
	expect_error(with_profile("rp", "x", "auth = none\nissuer_profile = adfs\n"),
	             "issuer_profile is only used with auth = issued_token");
	{
		char t[16384];
		snprintf(t, sizeof t, "%s", with_profile("a", "a", "auth = issued_token\nissuer_profile = b\n"));
		strcat(t, "\n[profile b]\nendpoint = https://127.0.0.1:8443/b\ntrust_version = 1.3\nca_file = @CA@\n"
		          "auth = issued_token\nissuer_profile = a\n");
		expect_error(t, "the issuer chain of [profile a] is a cycle");
	}
	/* the reusable loader: same checks outside config_load */
	struct profile q = { .name = "embedded" };
	CHECK(profile_set_client_credentials(&q, cert, enckey, keypw, err, sizeof err) == 0, "loader: %s", err);
	CHECK(q.client_cert && q.client_key, "loader filled the profile");
	profile_free_credentials(&q);
	CHECK(!q.client_cert && !q.client_key, "credentials freed");

	const char *const files[] = { cert, key, enckey, keypw, other_key };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(files[i]);
}

int main(void)
{
	CHECK(sodium_init() >= 0, "sodium_init");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(pw, sizeof pw, "%s/secret", dir);
	snprintf(cfgpath, sizeof cfgpath, "%s/wstrustd.conf", dir);
	write_file(ca, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0644);
	write_file(pw, "s3cr&t<pw\n", 0600);

	/* A good config: every value lands where it should. */
	struct broker_config *c;
	char err[1024];
	CHECK(load(good, &c, err, sizeof err) == 0, "good config refused: %s", err);
	CHECK_STREQ(c->socket, "/tmp/wstrust-test.sock");
	CHECK(c->worker_pool == 2, "worker_pool %u", c->worker_pool);
	CHECK(c->max_reply_bytes == 1048576, "max_reply_bytes %zu", c->max_reply_bytes);
	CHECK(c->worker_max_replies == 64 && c->worker_max_age == 600 && c->worker_timeout_ms == 5000 &&
	      c->worker_cpu_seconds == 10 && c->worker_memory_mb == 1024 && c->request_timeout_ms == 30000 &&
	      c->max_clients == 64, "defaults wrong");
	CHECK_STREQ(c->worker_user, "nobody");
	CHECK(c->worker_path && c->worker_path[0] == '/', "worker_path default not absolute");
	CHECK(c->nprofiles == 1, "nprofiles %zu", c->nprofiles);
	const struct profile *p = config_find_profile(c, "adfs");
	CHECK(p != NULL, "profile adfs not found");
	CHECK(p == config_find_endpoint(c, "https://127.0.0.1:8443/adfs/services/trust/13/usernamemixed"),
	      "endpoint lookup");
	CHECK(config_find_endpoint(c, "https://127.0.0.1:8443/adfs/services/trust/13/usernamemixed/") == NULL,
	      "endpoint lookup must be exact");
	CHECK(p->trust_version == TRUST_13 && p->soap_version == 12 && p->auth == AUTH_USERNAME &&
	      p->key_type == KEY_TYPE_BEARER && p->timeout_ms == 2500, "profile values");
	CHECK_STREQ(p->username, "alice");
	CHECK_STREQ(p->applies_to, "urn:example:rp");
	CHECK_STREQ(p->password_file, pw);
	CHECK(p->acl.users_set && p->acl.nuids == 2 && p->acl.uids[0] == 0 && p->acl.uids[1] == 4242, "acl");
	/* Password: trailing newline stripped, exact bytes. */
	CHECK(p->password.len == 9 && memcmp(p->password.data, "s3cr&t<pw", 9) == 0, "password %zu bytes",
	      p->password.len);
	/* ... and in sodium's protected memory, not the heap: it is read-only
	 * after load, so a write faults. */
	pid_t child = fork();
	if (child == 0) {
		signal(SIGSEGV, SIG_DFL);   /* sanitizers catch SEGV: let it kill us */
		signal(SIGBUS, SIG_DFL);
		p->password.data[0] = 'X';
		_exit(0);
	}
	int status;
	waitpid(child, &status, 0);
	CHECK(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS),
	      "writing the password did not fault (status 0x%x): not in protected secure memory", status);
	config_free(c);

	/* CRLF file: "\r\n" counts as the one trailing newline. */
	write_file(pw, "pw\r\n", 0600);
	struct secret s = { 0 };
	CHECK(config_read_secret_file(pw, &s, err, sizeof err) == 0, "%s", err);
	CHECK(s.len == 2 && !memcmp(s.data, "pw", 2), "CRLF strip");
	secret_free(&s);
	/* Only ONE newline is stripped: an inner newline is a control char. */
	write_file(pw, "pw\n\n", 0600);
	CHECK(config_read_secret_file(pw, &s, err, sizeof err) == -1, "two newlines accepted");
	CHECK_CONTAINS(err, "control character at offset 2");
	write_file(pw, "\n", 0600);
	CHECK(config_read_secret_file(pw, &s, err, sizeof err) == -1, "empty accepted");
	CHECK_CONTAINS(err, "is empty");
	{
		char big[PASSWORD_MAX + 10];
		memset(big, 'a', sizeof big - 1);
		big[sizeof big - 1] = 0;
		write_file(pw, big, 0600);
		CHECK(config_read_secret_file(pw, &s, err, sizeof err) == -1, "oversized accepted");
		CHECK_CONTAINS(err, "larger than 4096 bytes");
	}
	write_file(pw, "\xff\xfe\n", 0600);
	CHECK(config_read_secret_file(pw, &s, err, sizeof err) == -1, "bad utf-8 accepted");
	CHECK_CONTAINS(err, "not valid UTF-8");

	/* Over-permissive password file: message names file, mode and the fix. */
	write_file(pw, "secret\n", 0644);
	char want[1024];
	snprintf(want, sizeof want, "%s:14: password_file %s is readable by group/others (mode 0644): chmod 600 it",
	         cfgpath, pw);
	expect_error(good, want);
	write_file(pw, "secret\n", 0640);
	snprintf(want, sizeof want, "password_file %s is readable by group (mode 0640): chmod 600 it", pw);
	expect_error(good, want);
	write_file(pw, "secret\n", 0604);
	snprintf(want, sizeof want, "password_file %s is readable by others (mode 0604): chmod 600 it", pw);
	expect_error(good, want);
	write_file(pw, "secret\n", 0620);
	snprintf(want, sizeof want, "password_file %s is accessible by group (mode 0620): chmod 600 it", pw);
	expect_error(good, want);
	write_file(pw, "secret\n", 0600);
	if (geteuid() == 0) {
		CHECK(chown(pw, 4242, 0) == 0, "chown");
		snprintf(want, sizeof want, "password_file %s is owned by uid 4242, not by the broker's uid 0: chown it", pw);
		expect_error(good, want);
		CHECK(chown(pw, 0, 0) == 0, "chown back");
	}
	/* A symlink to a good file is refused (O_NOFOLLOW). */
	char link[300];
	snprintf(link, sizeof link, "%s/link", dir);
	unlink(link);
	CHECK(symlink(pw, link) == 0, "symlink");
	CHECK(config_read_secret_file(link, &s, err, sizeof err) == -1, "symlink accepted");
	CHECK_CONTAINS(err, "is a symbolic link");
	snprintf(link, sizeof link, "%s/missing", dir);
	CHECK(config_read_secret_file(link, &s, err, sizeof err) == -1, "missing file accepted");
	CHECK_CONTAINS(err, "No such file or directory");

	/* Missing required keys: reported at the [profile] header line (7). */
	char m[1024];
	snprintf(m, sizeof m, "%s:7: [profile adfs]: missing required key 'endpoint'", cfgpath);
	expect_error(with_line(8, "; no endpoint"), m);
	snprintf(m, sizeof m, "%s:7: [profile adfs]: missing required key 'trust_version'", cfgpath);
	expect_error(with_line(9, ""), m);
	snprintf(m, sizeof m, "%s:7: [profile adfs]: missing required key 'auth'", cfgpath);
	expect_error(with_line(12, ""), m);
	expect_error(with_line(11, ""), "missing required key 'ca_file'");
	expect_error(with_line(13, ""), "auth = username needs 'username'");
	expect_error(with_line(14, ""), "auth = username needs 'password_file'");

	/* Bad values, at their own line. */
	snprintf(m, sizeof m, "%s:9: trust_version = '1.4': expected 1.3 or 2005", cfgpath);
	expect_error(with_line(9, "trust_version = 1.4"), m);
	snprintf(m, sizeof m, "%s:10: soap_version = '2': expected 1.1 or 1.2", cfgpath);
	expect_error(with_line(10, "soap_version = 2"), m);
	snprintf(m, sizeof m, "%s:4: worker_pool = 'two': expected an integer from 0 to 64", cfgpath);
	expect_error(with_line(4, "worker_pool = two"), m);
	expect_error(with_line(5, "max_reply_bytes = 16777217"), "max_reply_bytes = '16777217': expected an integer from 1024 to 16777216");
	expect_error(with_line(5, "max_reply_bytes = -5"), "expected an integer");
	expect_error(with_line(12, "auth = kerberos"), ":12: auth = kerberos not supported yet");
	expect_error(with_line(12, "auth = magic"),
	             ":12: auth = 'magic': unknown (supported: username, certificate, issued_token, basic, none)");
	expect_error(with_line(18, "release_proof_key = maybe"), ":18: release_proof_key = 'maybe': expected yes or no");
	expect_error(with_line(16, "key_type = weird"), "key_type = 'weird': unknown");
	expect_error(with_line(3, "socket = relative.sock"), ":3: socket = 'relative.sock': must be an absolute path");
	expect_error(with_line(11, "ca_file = /nonexistent/ca.pem"), ":11: ca_file /nonexistent/ca.pem: No such file");
	expect_error(with_line(18, "timeout_ms = 5"), ":18: timeout_ms = '5': expected an integer from 100 to 600000");
	expect_error(with_line(19, "allow_users = no-such-user-xyz"), ":19: allow_users: no such user 'no-such-user-xyz'");
	expect_error(with_line(19, "allow_groups = no-such-group-xyz"), ":19: allow_groups: no such group 'no-such-group-xyz'");
	expect_error(with_line(19, "allow_users = ,"), ":19: allow_users: empty list");

	/* Endpoint scheme rules. */
	expect_error(with_line(8, "endpoint = http://127.0.0.1:8080/sts"), ":8: endpoint = 'http://127.0.0.1:8080/sts': plain http is refused");
	expect_error(with_line(8, "endpoint = ftp://127.0.0.1/sts"), "scheme must be https");
	expect_error(with_line(8, "endpoint = not a url"), "must not contain spaces");
	expect_error(with_line(19, "allow_insecure_http = yes\nendpoint = http://sts.example.com/x"),
	             "duplicate key 'endpoint'");
	{
		char t[8192];
		snprintf(t, sizeof t, "%s", with_line(8, "endpoint = http://sts.example.com/x"));
		strcat(t, "allow_insecure_http = yes\n");
		expect_error(t, ":8: endpoint = 'http://sts.example.com/x': allow_insecure_http only permits loopback hosts");
		snprintf(t, sizeof t, "%s", with_line(8, "endpoint = http://127.0.0.1:9/x"));
		strcat(t, "allow_insecure_http = yes\n");
		CHECK(load(t, &c, err, sizeof err) == 0, "loopback http with allow_insecure_http refused: %s", err);
		config_free(c);
	}

	/* Unknown keys and sections, duplicates, syntax. */
	snprintf(m, sizeof m, "%s:18: unknown key 'timeout' in [profile adfs]", cfgpath);
	expect_error(with_line(18, "timeout = 5"), m);
	expect_error(with_line(4, "workers = 2"), ":4: unknown key 'workers' in [broker]");
	expect_error(with_line(6, "[global]\nx = 1"), ":6: unknown section [global]");
	expect_error(with_line(19, "username = bob"), ":19: duplicate key 'username' in [profile adfs]");
	expect_error(with_line(6, "this line has no equals sign"), ":6: syntax error");
	expect_error(with_line(1, "orphan = 1"), ":1: key 'orphan' outside any section");
	expect_error(with_line(7, "[profile bad name!]"), ":7: [profile bad name!]: a profile name is");
	{
		char t[8192];
		snprintf(t, sizeof t, "%s[broker]\nmax_clients = 3\n", good);
		expect_error(t, ":20: duplicate section [broker]");
		snprintf(t, sizeof t, "%s[profile adfs]\nauth = username\n", good);
		expect_error(t, ":20: duplicate section [profile adfs]");
		/* two profiles with one endpoint: WsOpenChannel could not choose */
		snprintf(t, sizeof t, "%s%s", good, strstr(good, "[profile adfs]"));
		char *second = strstr(strstr(t, "[profile adfs]") + 1, "[profile adfs]");
		memcpy(second, "[profile bbbb]", 14);
		expect_error(t, ":21: endpoint 'https://127.0.0.1:8443/adfs/services/trust/13/usernamemixed' is already served by [profile adfs]");
		/* a line longer than the limit */
		char *lt = malloc(CONFIG_MAX_LINE + 2000);
		snprintf(lt, CONFIG_MAX_LINE + 2000, "%s", good);
		strcat(lt, "applies_to = ");
		size_t l = strlen(lt);
		memset(lt + l, 'x', CONFIG_MAX_LINE);
		lt[l + CONFIG_MAX_LINE] = 0;
		expect_error(lt, ":20: line longer than 8192 bytes");
		free(lt);
	}
	expect_error("[broker]\nsocket = /tmp/x.sock\n", "no [profile NAME] section");
	snprintf(m, sizeof m, "%s/nonexistent.conf", dir);
	CHECK(config_load(m, &c, err, sizeof err) == -1, "missing config accepted");
	CHECK_CONTAINS(err, "nonexistent.conf: No such file or directory");

	/* A long value (URL) well past libinih's default 200-byte line works. */
	{
		char t[8192], url[1200] = "urn:example:";
		memset(url + 12, 'a', 1000);
		url[1012] = 0;
		snprintf(t, sizeof t, "%s", good);
		char *ap = strstr(t, "applies_to = urn:example:rp\n");
		char rest[4096];
		snprintf(rest, sizeof rest, "%s", ap + strlen("applies_to = urn:example:rp\n"));
		sprintf(ap, "applies_to = %s\n%s", url, rest);
		CHECK(load(t, &c, err, sizeof err) == 0, "long line refused: %s", err);
		CHECK_STREQ(config_find_profile(c, "adfs")->applies_to, url);
		config_free(c);
	}
	test_bindings();
	const char *const leftovers[] = { ca, pw, cfgpath };
	for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++)
		unlink(leftovers[i]);
	snprintf(link, sizeof link, "%s/link", dir);
	unlink(link);
	CHECK(rmdir(dir) == 0, "temporary directory %s not empty", dir);
	T_DONE("test_config");
}
