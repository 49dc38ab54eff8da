#include "broker_config.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"   /* build configuration: WSTRUST_LIBEXECDIR ... */
#include "ipc.h"

/* ---- small helpers ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool has_ctl_or_space(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool has_ctl(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return true;
	return false;
}

/* ---- password files ---- */

static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		else if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
		else return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
			return false;
		i += len;
	}
	return true;
}

/* Open and check a file that holds a secret: O_NOFOLLOW, regular, owned by
 * the broker's user, no group/other bits, at most max bytes.  Its bytes are
 * read straight into sodium memory (never the normal heap or stdio).  what
 * names the config key in errors. */
static int read_private_file(const char *what, const char *path, size_t max, struct secret *out, char *err,
                             size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			set_err(err, errlen, "%s %s is a symbolic link: name the file itself", what, path);
		else
			set_err(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		set_err(err, errlen, "%s %s: %s", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	unsigned mode = st.st_mode & 07777;
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s %s is not a regular file", what, path);
	} else if (st.st_uid != geteuid()) {
		set_err(err, errlen, "%s %s is owned by uid %u, not by the broker's uid %u: chown it",
		        what, path, (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (mode & 077) {
		const char *who = (mode & 070) && (mode & 07) ? "group/others" : (mode & 070) ? "group" : "others";
		const char *how = (mode & 044) ? "readable" : "accessible";
		set_err(err, errlen, "%s %s is %s by %s (mode %04o): chmod 600 it", what, path, how, who, mode);
	} else if ((unsigned long long)st.st_size > max) {
		set_err(err, errlen, "%s %s is larger than %zu bytes", what, path, max);
	} else {
		goto read_it;
	}
	close(fd);
	return -1;

read_it:;
	char *buf = sodium_malloc(max + 1);
	if (!buf) {
		set_err(err, errlen, "%s %s: out of secure memory", what, path);
		close(fd);
		return -1;
	}
	size_t len = 0;
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, "%s %s: %s", what, path, strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			set_err(err, errlen, "%s %s is larger than %zu bytes", what, path, max);
			rc = -1;
			break;
		}
	}
	close(fd);
	if (rc == 0 && secret_set(out, buf, len) != 0) {
		set_err(err, errlen, "%s %s: out of secure memory", what, path);
		rc = -1;
	}
	sodium_free(buf);
	return rc;
}

/* A password-like secret: one trailing newline stripped, no control
 * characters, UTF-8, not empty. */
static int read_password_file(const char *what, const char *path, struct secret *out, char *err, size_t errlen)
{
	struct secret raw = { 0 };
	if (read_private_file(what, path, PASSWORD_MAX, &raw, err, errlen) != 0)
		return -1;
	size_t len = raw.len;
	const char *buf = raw.data;
	int rc = 0;
	/* One trailing newline is the editor's, not the password's. */
	if (len && buf[len - 1] == '\n') {
		len--;
		if (len && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		set_err(err, errlen, "%s %s is empty", what, path);
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			/* Position only, never the byte: it is part of a secret. */
			set_err(err, errlen, "%s %s contains a control character at offset %zu "
			        "(only one trailing newline is stripped)", what, path, i);
			rc = -1;
		}
	}
	if (rc == 0 && !valid_utf8((const unsigned char *)buf, len)) {
		set_err(err, errlen, "%s %s is not valid UTF-8", what, path);
		rc = -1;
	}
	if (rc == 0 && secret_set(out, buf, len) != 0) {
		set_err(err, errlen, "%s %s: out of secure memory", what, path);
		rc = -1;
	}
	secret_free(&raw);
	if (rc == 0)
		sodium_mprotect_readonly(out->data);
	return rc;
}

int config_read_secret_file(const char *path, struct secret *out, char *err, size_t errlen)
{
	return read_password_file("password_file", path, out, err, errlen);
}

/* ---- certificates and private keys ---- */

static pthread_once_t secure_heap_once = PTHREAD_ONCE_INIT;

static void secure_heap_init(void)
{
	/* 256 KiB of locked memory holds dozens of RSA-4096 keys; it counts
	 * against RLIMIT_MEMLOCK (8 MiB here) together with sodium's pages.
	 * If locking fails OpenSSL still keeps the area apart and wipes it. */
	if (!CRYPTO_secure_malloc_initialized())
		(void)CRYPTO_secure_malloc_init(256 * 1024, 64);
}

void credential_init_secure_heap(void)
{
	pthread_once(&secure_heap_once, secure_heap_init);
}

static void openssl_reason(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, n);
	else
		snprintf(buf, n, "no detail");
	ERR_clear_error();
}

int credential_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (!f) {
		set_err(err, errlen, "client_cert %s: %s", path, strerror(errno));
		return -1;
	}
	ERR_clear_error();
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		char why[256];
		openssl_reason(why, sizeof why);
		set_err(err, errlen, "client_cert %s: not a PEM X.509 certificate (%s)", path, why);
		return -1;
	}
	*out = x;
	return 0;
}

struct pw_cb {
	const struct secret *pw;
	bool asked;
};

static int key_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)rwflag;
	struct pw_cb *c = u;
	c->asked = true;
	if (!c->pw || !c->pw->data || c->pw->len > (size_t)size)
		return -1;
	memcpy(buf, c->pw->data, c->pw->len);
	return (int)c->pw->len;
}

int credential_key_from_mem(const void *data, size_t len, const struct secret *password, const char *what,
                            EVP_PKEY **out, char *err, size_t errlen)
{
	*out = NULL;
	credential_init_secure_heap();
	ERR_clear_error();
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	if (!bio || len > INT_MAX) {
		BIO_free(bio);
		set_err(err, errlen, "%s: out of memory", what);
		return -1;
	}
	EVP_PKEY *k = NULL;
	struct pw_cb cb = { .pw = password };
	bool pem = len >= 11 && memmem(data, len, "-----BEGIN ", 11) != NULL;
	if (pem) {
		k = PEM_read_bio_PrivateKey(bio, NULL, key_password_cb, &cb);
	} else {
		/* PKCS#12 (a .pfx, Windows' usual export): the key, the certificate is ignored here. */
		PKCS12 *p12 = d2i_PKCS12_bio(bio, NULL);
		X509 *cert = NULL;
		STACK_OF(X509) *ca = NULL;
		cb.asked = p12 != NULL;
		if (p12 && !PKCS12_parse(p12, password ? password->data : NULL, &k, &cert, &ca))
			k = NULL;
		X509_free(cert);
		sk_X509_pop_free(ca, X509_free);
		PKCS12_free(p12);
	}
	BIO_free(bio);
	if (!k) {
		char why[256];
		openssl_reason(why, sizeof why);
		if (cb.asked && !password)
			set_err(err, errlen, "%s is encrypted: name its password in client_key_password_file (%s)", what, why);
		else if (cb.asked)
			set_err(err, errlen, "%s does not decrypt with the password in client_key_password_file, or is "
			        "not a private key (%s)", what, why);
		else
			set_err(err, errlen, "%s: not a PEM or PKCS#12 private key (%s)", what, why);
		return -1;
	}
	int id = EVP_PKEY_get_base_id(k);
	if (id != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		set_err(err, errlen, "%s: only RSA keys are supported (XML Signature RSA-SHA256/SHA1, RSA-OAEP)", what);
		return -1;
	}
	*out = k;
	return 0;
}

int credential_load_key(const char *path, const struct secret *password, EVP_PKEY **out, char *err,
                        size_t errlen)
{
	*out = NULL;
	struct secret raw = { 0 };
	if (read_private_file("client_key", path, KEY_FILE_MAX, &raw, err, errlen) != 0)
		return -1;
	char what[PATH_MAX + 16];
	snprintf(what, sizeof what, "client_key %s", path);
	int rc = credential_key_from_mem(raw.data, raw.len, password, what, out, err, errlen);
	secret_free(&raw);
	return rc;
}

void profile_free_credentials(struct profile *p)
{
	secret_free(&p->password);
	X509_free(p->client_cert);
	EVP_PKEY_free(p->client_key);   /* secure-heap key material is cleansed on free */
	p->client_cert = NULL;
	p->client_key = NULL;
}

int profile_set_client_credentials(struct profile *p, const char *cert_file, const char *key_file,
                                   const char *key_password_file, char *err, size_t errlen)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	struct secret kpw = { 0 };
	if (key_password_file && read_password_file("client_key_password_file", key_password_file, &kpw, err,
	                                             errlen) != 0)
		return -1;
	int rc = -1;
	if (credential_load_cert(cert_file, &cert, err, errlen) == 0 &&
	    credential_load_key(key_file, key_password_file ? &kpw : NULL, &key, err, errlen) == 0) {
		ERR_clear_error();
		if (X509_check_private_key(cert, key) != 1) {
			set_err(err, errlen, "client_key %s does not belong to client_cert %s (the public keys differ)",
			        key_file, cert_file);
			ERR_clear_error();
		} else {
			rc = 0;
		}
	}
	secret_free(&kpw);
	if (rc != 0) {
		X509_free(cert);
		EVP_PKEY_free(key);
		return -1;
	}
	X509_free(p->client_cert);
	EVP_PKEY_free(p->client_key);
	p->client_cert = cert;
	p->client_key = key;
	return 0;
}

/* ---- pin_sha256 ---- */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int config_parse_pin(const char *value, char **out, char *err, size_t errlen)
{
	*out = NULL;
	size_t cap = strlen(value) * 2 + 64;
	char *res = calloc(1, cap);
	char *copy = strdup(value);
	if (!res || !copy) {
		free(res);
		free(copy);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	size_t n = 0;
	char *save = NULL;
	int count = 0;
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t tl = strlen(tok);
		while (tl && (tok[tl - 1] == ' ' || tok[tl - 1] == '\t'))
			tok[--tl] = '\0';
		if (!strncmp(tok, "sha256//", 8))
			tok += 8, tl -= 8;
		unsigned char digest[32];
		size_t dlen = 0;
		bool ok = false;
		if (tl == 64) {
			ok = true;
			for (size_t i = 0; i < 32 && ok; i++) {
				int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
				ok = hi >= 0 && lo >= 0;
				digest[i] = (unsigned char)(hi << 4 | lo);
			}
			dlen = 32;
		} else if (tl == 44) {
			ok = sodium_base642bin(digest, sizeof digest, tok, tl, NULL, &dlen, NULL,
			                       sodium_base64_VARIANT_ORIGINAL) == 0 && dlen == 32;
		}
		if (!ok) {
			set_err(err, errlen, "pin_sha256 = '%s': each pin is sha256//BASE64 (44 characters) or 64 hex "
			        "digits: the SHA-256 of the server's SubjectPublicKeyInfo, e.g. `openssl x509 -in cert.pem "
			        "-pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`",
			        value);
			free(res);
			free(copy);
			return -1;
		}
		char b64[64];
		sodium_bin2base64(b64, sizeof b64, digest, 32, sodium_base64_VARIANT_ORIGINAL);
		n += (size_t)snprintf(res + n, cap - n, "%ssha256//%s", count ? ";" : "", b64);
		count++;
	}
	free(copy);
	if (count == 0) {
		set_err(err, errlen, "pin_sha256: empty value");
		free(res);
		return -1;
	}
	*out = res;
	return 0;
}

char *config_default_worker_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			char cand[PATH_MAX + 64];
			snprintf(cand, sizeof cand, "%s/../worker/wstrust-worker", exe);
			char real[PATH_MAX];
			if (realpath(cand, real) && access(real, X_OK) == 0)
				return strdup(real);
		}
	}
	return strdup(WSTRUST_LIBEXECDIR "/wstrust-worker");
}

/* ---- INI parsing ---- */

enum { K_BROKER, K_PROFILE, K_OTHER };

/* Keys of [profile NAME]; the index is a bit in profile_seen. */
static const char *const profile_keys[] = {
	"endpoint", "trust_version", "soap_version", "ca_file", "auth", "username",
	"password_file", "applies_to", "key_type", "token_type", "timeout_ms",
	"allow_users", "allow_groups", "allow_insecure_http", "release_proof_key", "allow_rsa15",
	"client_cert", "client_key", "client_key_password_file", "pin_sha256", "issuer_profile",
	"password_digest", "signature_algorithm",
};
enum { PK_ENDPOINT, PK_TRUST, PK_SOAP, PK_CA, PK_AUTH, PK_USER, PK_PWFILE, PK_APPLIES,
       PK_KEYTYPE, PK_TOKENTYPE, PK_TIMEOUT, PK_USERS, PK_GROUPS, PK_INSECURE, PK_RELEASE, PK_RSA15,
       PK_CERT, PK_KEY, PK_KEYPW, PK_PIN, PK_ISSUER, PK_DIGEST, PK_SIGALG, PK_COUNT };

static const char *const broker_keys[] = {
	"socket", "worker_path", "worker_user", "worker_max_replies", "worker_pool",
	"worker_max_total", "worker_max_age", "worker_timeout_ms", "worker_cpu_seconds",
	"worker_memory_mb", "max_reply_bytes", "request_timeout_ms", "max_clients", "proxy",
};
enum { BK_SOCKET, BK_WPATH, BK_WUSER, BK_WREPLIES, BK_WPOOL, BK_WTOTAL, BK_WAGE, BK_WTIMEOUT,
       BK_WCPU, BK_WMEM, BK_MAXREPLY, BK_REQTIMEOUT, BK_MAXCLIENTS, BK_PROXY, BK_COUNT };

struct line_reader {
	FILE *f;
	unsigned line;          /* line of the chunk last read */
	unsigned section_line;  /* line of the last [section] header */
	bool at_line_start;
	size_t cur_len;
	bool too_long;
};

struct parse_ctx {
	struct broker_config *cfg;
	struct line_reader *rd;
	char *err;
	size_t errlen;
	bool failed;
	unsigned cur_section_line;  /* header line of the section of the previous key */
	bool broker_seen;
	uint32_t broker_keys_seen;
	struct profile *cur;        /* profile of the current section, NULL for [broker] */
	uint32_t *profile_seen;     /* per profile: keys present */
	unsigned (*profile_lines)[PK_COUNT];
};

static char *reader_fn(char *str, int num, void *stream)
{
	struct line_reader *r = stream;
	if (r->too_long)
		return NULL;
	char *s = fgets(str, num, r->f);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	if (r->at_line_start) {
		r->line++;
		r->cur_len = 0;
		const char *p = s;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[')
			r->section_line = r->line;
	}
	r->cur_len += n;
	r->at_line_start = n > 0 && s[n - 1] == '\n';
	if (r->cur_len > CONFIG_MAX_LINE) {
		r->too_long = true;
		return NULL;
	}
	return s;
}

static int fail(struct parse_ctx *c, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parse_ctx *c, unsigned line, const char *fmt, ...)
{
	if (c->failed)
		return 0;
	c->failed = true;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%u: %s", c->cfg->path, line, msg);
	return 0;   /* inih: stop (we set ini_stop_on_first_error) */
}

static int parse_uint(struct parse_ctx *c, const char *name, const char *v, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		goto bad;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || x < min || x > max)
		goto bad;
	*out = x;
	return 0;
bad:
	fail(c, c->rd->line, "%s = '%s': expected an integer from %llu to %llu", name, v, min, max);
	return -1;
}

static int set_str(struct parse_ctx *c, char **dst, const char *name, const char *v, bool allow_space)
{
	if (!*v) {
		fail(c, c->rd->line, "%s: empty value", name);
		return -1;
	}
	if (allow_space ? has_ctl(v) : has_ctl_or_space(v)) {
		fail(c, c->rd->line, "%s = '%s': must not contain %s", name, v,
		     allow_space ? "control characters" : "spaces or control characters");
		return -1;
	}
	*dst = strdup(v);
	if (!*dst) {
		fail(c, c->rd->line, "out of memory");
		return -1;
	}
	return 0;
}

static int parse_bool(struct parse_ctx *c, const char *name, const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off")) {
		*out = false;
		return 0;
	}
	fail(c, c->rd->line, "%s = '%s': expected yes or no", name, v);
	return -1;
}

static int key_index(const char *const *keys, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i], name))
			return (int)i;
	return -1;
}

static int broker_key(struct parse_ctx *c, const char *name, const char *v)
{
	struct broker_config *cfg = c->cfg;
	int k = key_index(broker_keys, BK_COUNT, name);
	if (k < 0)
		return fail(c, c->rd->line, "unknown key '%s' in [broker] (known: socket, worker_path, worker_user, "
		            "worker_max_replies, worker_pool, worker_max_total, worker_max_age, worker_timeout_ms, "
		            "worker_cpu_seconds, worker_memory_mb, max_reply_bytes, request_timeout_ms, max_clients, proxy)",
		            name);
	if (c->broker_keys_seen & (1u << k))
		return fail(c, c->rd->line, "duplicate key '%s' in [broker]", name);
	c->broker_keys_seen |= 1u << k;

	unsigned long long x = 0;
	int rc = 0;
	switch (k) {
	case BK_SOCKET:
		free(cfg->socket);
		cfg->socket = NULL;
		if ((rc = set_str(c, &cfg->socket, name, v, false)) == 0 && v[0] != '/')
			return fail(c, c->rd->line, "socket = '%s': must be an absolute path", v);
		if (rc == 0 && strlen(v) >= 108)
			return fail(c, c->rd->line, "socket = '%s': longer than a Unix socket path can be (107 bytes)", v);
		break;
	case BK_WPATH:
		free(cfg->worker_path);
		cfg->worker_path = NULL;
		if ((rc = set_str(c, &cfg->worker_path, name, v, false)) == 0 && v[0] != '/')
			return fail(c, c->rd->line, "worker_path = '%s': must be an absolute path", v);
		break;
	case BK_WUSER:
		free(cfg->worker_user);
		cfg->worker_user = NULL;
		rc = set_str(c, &cfg->worker_user, name, v, false);
		break;
	case BK_PROXY:
		rc = set_str(c, &cfg->proxy, name, v, false);
		break;
	case BK_WREPLIES: rc = parse_uint(c, name, v, 1, 100000, &x); cfg->worker_max_replies = (unsigned)x; break;
	case BK_WPOOL: rc = parse_uint(c, name, v, 0, 64, &x); cfg->worker_pool = (unsigned)x; break;
	case BK_WTOTAL: rc = parse_uint(c, name, v, 1, 1024, &x); cfg->worker_max_total = (unsigned)x; break;
	case BK_WAGE: rc = parse_uint(c, name, v, 1, 86400 * 7, &x); cfg->worker_max_age = (unsigned)x; break;
	case BK_WTIMEOUT: rc = parse_uint(c, name, v, 10, 600000, &x); cfg->worker_timeout_ms = (unsigned)x; break;
	case BK_WCPU: rc = parse_uint(c, name, v, 1, 3600, &x); cfg->worker_cpu_seconds = (unsigned)x; break;
	case BK_WMEM: rc = parse_uint(c, name, v, 64, 65536, &x); cfg->worker_memory_mb = (unsigned)x; break;
	case BK_MAXREPLY:
		rc = parse_uint(c, name, v, 1024, IPC_MAX_REPLY, &x);
		cfg->max_reply_bytes = (size_t)x;
		break;
	case BK_REQTIMEOUT: rc = parse_uint(c, name, v, 100, 600000, &x); cfg->request_timeout_ms = (unsigned)x; break;
	case BK_MAXCLIENTS: rc = parse_uint(c, name, v, 1, 4096, &x); cfg->max_clients = (unsigned)x; break;
	}
	return rc == 0 ? 1 : 0;
}

static const char *const future_auth[] = { "kerberos", "negotiate", NULL };
static const struct { const char *name; enum auth_kind kind; } auth_names[] = {
	{ "username", AUTH_USERNAME }, { "certificate", AUTH_CERTIFICATE }, { "issued_token", AUTH_ISSUED_TOKEN },
	{ "basic", AUTH_BASIC }, { "none", AUTH_NONE },
};
#define AUTH_SUPPORTED "username, certificate, issued_token, basic, none"

static int profile_key(struct parse_ctx *c, const char *name, const char *v)
{
	struct profile *p = c->cur;
	size_t idx = (size_t)(p - c->cfg->profiles);
	int k = key_index(profile_keys, PK_COUNT, name);
	if (k < 0)
		return fail(c, c->rd->line, "unknown key '%s' in [profile %s] (known: endpoint, trust_version, "
		            "soap_version, ca_file, auth, username, password_file, applies_to, key_type, token_type, "
		            "timeout_ms, allow_users, allow_groups, allow_insecure_http, release_proof_key, allow_rsa15, "
		            "client_cert, client_key, client_key_password_file, pin_sha256, issuer_profile, password_digest, "
		            "signature_algorithm)", name, p->name);
	if (c->profile_seen[idx] & (1u << k))
		return fail(c, c->rd->line, "duplicate key '%s' in [profile %s]", name, p->name);
	c->profile_seen[idx] |= 1u << k;
	c->profile_lines[idx][k] = c->rd->line;

	char e[512];
	unsigned long long x;
	switch (k) {
	case PK_ENDPOINT:
		if (set_str(c, &p->endpoint, name, v, false))
			return 0;
		break;
	case PK_TRUST:
		if (!strcmp(v, "1.3"))
			p->trust_version = TRUST_13;
		else if (!strcmp(v, "2005"))
			p->trust_version = TRUST_FEB2005;
		else
			return fail(c, c->rd->line, "trust_version = '%s': expected 1.3 or 2005", v);
		break;
	case PK_SOAP:
		if (!strcmp(v, "1.2"))
			p->soap_version = 12;
		else if (!strcmp(v, "1.1"))
			p->soap_version = 11;
		else
			return fail(c, c->rd->line, "soap_version = '%s': expected 1.1 or 1.2", v);
		break;
	case PK_CA:
		if (set_str(c, &p->ca_file, name, v, false))
			return 0;
		if (access(v, R_OK) != 0)
			return fail(c, c->rd->line, "ca_file %s: %s", v, strerror(errno));
		break;
	case PK_AUTH:
		for (size_t i = 0; i < sizeof auth_names / sizeof auth_names[0]; i++)
			if (!strcmp(v, auth_names[i].name)) {
				p->auth = auth_names[i].kind;
				return 1;
			}
		for (const char *const *f = future_auth; *f; f++)
			if (!strcmp(v, *f))
				return fail(c, c->rd->line, "auth = %s not supported yet (supported: " AUTH_SUPPORTED ")", v);
		return fail(c, c->rd->line, "auth = '%s': unknown (supported: " AUTH_SUPPORTED ")", v);
	case PK_USER:
		if (set_str(c, &p->username, name, v, true))
			return 0;
		break;
	case PK_PWFILE:
		if (set_str(c, &p->password_file, name, v, false))
			return 0;
		if (config_read_secret_file(v, &p->password, e, sizeof e))
			return fail(c, c->rd->line, "%s", e);
		break;
	case PK_APPLIES:
		if (set_str(c, &p->applies_to, name, v, false))
			return 0;
		break;
	case PK_KEYTYPE:
		if (!strcmp(v, "bearer"))
			p->key_type = KEY_TYPE_BEARER;
		else if (!strcmp(v, "symmetric"))
			p->key_type = KEY_TYPE_SYMMETRIC;
		else if (!strcmp(v, "asymmetric"))
			p->key_type = KEY_TYPE_ASYMMETRIC;
		else
			return fail(c, c->rd->line, "key_type = '%s': unknown (bearer, symmetric or asymmetric)", v);
		break;
	case PK_TOKENTYPE:
		if (set_str(c, &p->token_type, name, v, false))
			return 0;
		break;
	case PK_TIMEOUT:
		if (parse_uint(c, name, v, 100, 600000, &x))
			return 0;
		p->timeout_ms = (unsigned)x;
		break;
	case PK_USERS:
		if (policy_acl_set_users(&p->acl, v, e, sizeof e))
			return fail(c, c->rd->line, "%s", e);
		break;
	case PK_GROUPS:
		if (policy_acl_set_groups(&p->acl, v, e, sizeof e))
			return fail(c, c->rd->line, "%s", e);
		break;
	case PK_INSECURE:
		if (parse_bool(c, name, v, &p->allow_insecure_http))
			return 0;
		break;
	case PK_RELEASE:
		if (parse_bool(c, name, v, &p->release_proof_key))
			return 0;
		break;
	case PK_RSA15:
		if (parse_bool(c, name, v, &p->allow_rsa15))
			return 0;
		break;
	/* Certificate, key and key password are read together in validate_profile. */
	case PK_CERT:
		if (set_str(c, &p->client_cert_file, name, v, false))
			return 0;
		break;
	case PK_KEY:
		if (set_str(c, &p->client_key_file, name, v, false))
			return 0;
		break;
	case PK_KEYPW:
		if (set_str(c, &p->client_key_password_file, name, v, false))
			return 0;
		break;
	case PK_PIN:
		if (config_parse_pin(v, &p->pin_sha256, e, sizeof e))
			return fail(c, c->rd->line, "%s", e);
		break;
	case PK_ISSUER:
		if (set_str(c, &p->issuer_profile_name, name, v, false))
			return 0;
		break;
	case PK_DIGEST:
		if (parse_bool(c, name, v, &p->password_digest))
			return 0;
		break;
	case PK_SIGALG:
		if (!strcmp(v, "rsa-sha256"))
			p->signature_alg = SIG_RSA_SHA256;
		else if (!strcmp(v, "rsa-sha1"))
			p->signature_alg = SIG_RSA_SHA1;
		else
			return fail(c, c->rd->line, "signature_algorithm = '%s': expected rsa-sha256 or rsa-sha1", v);
		break;
	}
	return 1;
}

static bool valid_profile_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static int open_section(struct parse_ctx *c, const char *section)
{
	unsigned line = c->rd->section_line ? c->rd->section_line : c->rd->line;
	if (!strcmp(section, "broker")) {
		if (c->broker_seen)
			return fail(c, line, "duplicate section [broker]");
		c->broker_seen = true;
		c->cur = NULL;
		return 1;
	}
	if (!strncmp(section, "profile ", 8)) {
		const char *name = section + 8;
		while (*name == ' ')
			name++;
		if (!valid_profile_name(name))
			return fail(c, line, "[profile %s]: a profile name is 1-64 characters from A-Z a-z 0-9 . _ -", name);
		if (config_find_profile(c->cfg, name))
			return fail(c, line, "duplicate section [profile %s]", name);
		if (c->cfg->nprofiles >= CONFIG_MAX_PROFILES)
			return fail(c, line, "more than %d profiles", CONFIG_MAX_PROFILES);
		struct broker_config *cfg = c->cfg;
		size_t n = cfg->nprofiles;
		struct profile *np = realloc(cfg->profiles, (n + 1) * sizeof *np);
		uint32_t *ns = np ? realloc(c->profile_seen, (n + 1) * sizeof *ns) : NULL;
		if (np)
			cfg->profiles = np;
		if (ns)
			c->profile_seen = ns;
		unsigned (*nl)[PK_COUNT] = ns ? realloc(c->profile_lines, (n + 1) * sizeof *nl) : NULL;
		if (!nl)
			return fail(c, line, "out of memory");
		c->profile_lines = nl;
		memset(&np[n], 0, sizeof np[n]);
		c->profile_seen[n] = 0;
		memset(nl[n], 0, sizeof nl[n]);
		np[n].line = line;
		np[n].soap_version = 12;
		np[n].name = strdup(name);
		if (!np[n].name)
			return fail(c, line, "out of memory");
		cfg->nprofiles = n + 1;
		c->cur = &np[n];
		return 1;
	}
	return fail(c, line, "unknown section [%s] (expected [broker] or [profile NAME])", section);
}

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	if (c->failed)
		return 0;
	if (c->rd->too_long)   /* inih hands us the truncated line at EOF */
		return fail(c, c->rd->line, "line longer than %d bytes", CONFIG_MAX_LINE);
	if (!*section)
		return fail(c, c->rd->line, "key '%s' outside any section (put it under [broker] or [profile NAME])", name);
	/* A new header line starts a new section, even one with the same name
	 * (which open_section then reports as a duplicate). */
	if (c->rd->section_line != c->cur_section_line) {
		c->cur_section_line = c->rd->section_line;
		if (!open_section(c, section))
			return 0;
	}
	return c->cur ? profile_key(c, name, value) : broker_key(c, name, value);
}

/* Is the URL's host a loopback address (for allow_insecure_http)? */
static bool url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool loop = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		loop = !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "[::1]");
	}
	curl_free(host);
	curl_url_cleanup(u);
	return loop;
}

static bool url_scheme(const char *url, char *scheme, size_t n)
{
	CURLU *u = curl_url();
	char *s = NULL, *host = NULL;
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
	if (ok)
		snprintf(scheme, n, "%s", s);
	curl_free(s);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static int validate_profile(struct parse_ctx *c, size_t idx)
{
	struct profile *p = &c->cfg->profiles[idx];
	uint32_t seen = c->profile_seen[idx];
	static const int required[] = { PK_ENDPOINT, PK_TRUST, PK_AUTH };
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		if (!(seen & (1u << required[i])))
			return fail(c, p->line, "[profile %s]: missing required key '%s'", p->name, profile_keys[required[i]]);

	unsigned eline = c->profile_lines[idx][PK_ENDPOINT];
	char scheme[16];
	if (!url_scheme(p->endpoint, scheme, sizeof scheme))
		return fail(c, eline, "endpoint = '%s': not a valid absolute URL", p->endpoint);
	if (!strcmp(scheme, "http")) {
		if (!p->allow_insecure_http)
			return fail(c, eline, "endpoint = '%s': plain http is refused (use https, or "
			            "allow_insecure_http = yes for a loopback test STS)", p->endpoint);
		if (!url_is_loopback(p->endpoint))
			return fail(c, eline, "endpoint = '%s': allow_insecure_http only permits loopback hosts", p->endpoint);
	} else if (strcmp(scheme, "https") != 0) {
		return fail(c, eline, "endpoint = '%s': scheme must be https", p->endpoint);
	}
	if (!strcmp(scheme, "https") && !p->ca_file)
		return fail(c, p->line, "[profile %s]: missing required key 'ca_file' (the CA that signed the STS's "
		            "certificate)", p->name);
	const char *an = "";
	for (size_t i = 0; i < sizeof auth_names / sizeof auth_names[0]; i++)
		if (auth_names[i].kind == p->auth)
			an = auth_names[i].name;
	const unsigned *lines = c->profile_lines[idx];
	if (p->auth == AUTH_USERNAME || p->auth == AUTH_BASIC) {
		if (!p->username)
			return fail(c, p->line, "[profile %s]: auth = %s needs 'username'", p->name, an);
		if (!p->password_file)
			return fail(c, p->line, "[profile %s]: auth = %s needs 'password_file'", p->name, an);
	} else {
		if (seen & (1u << PK_USER))
			return fail(c, lines[PK_USER], "[profile %s]: 'username' is only used with auth = username or basic",
			            p->name);
		if (seen & (1u << PK_PWFILE))
			return fail(c, lines[PK_PWFILE], "[profile %s]: 'password_file' is only used with auth = username or "
			            "basic", p->name);
	}
	if (p->password_digest && p->auth != AUTH_USERNAME)
		return fail(c, lines[PK_DIGEST], "[profile %s]: password_digest is only used with auth = username", p->name);
	if (p->auth == AUTH_BASIC && p->username && strchr(p->username, ':'))
		return fail(c, lines[PK_USER], "[profile %s]: username '%s' contains ':', which HTTP Basic cannot carry",
		            p->name, p->username);
	if (p->auth == AUTH_ISSUED_TOKEN && !p->issuer_profile_name)
		return fail(c, p->line, "[profile %s]: auth = issued_token needs 'issuer_profile' (the profile whose "
		            "token is presented)", p->name);
	if (p->auth != AUTH_ISSUED_TOKEN && p->issuer_profile_name)
		return fail(c, lines[PK_ISSUER], "[profile %s]: issuer_profile is only used with auth = issued_token",
		            p->name);
	if ((seen & (1u << PK_CERT)) != (seen & (1u << PK_KEY)) >> (PK_KEY - PK_CERT))
		return fail(c, p->line, "[profile %s]: client_cert and client_key go together: name both or neither",
		            p->name);
	if ((seen & (1u << PK_KEYPW)) && !(seen & (1u << PK_KEY)))
		return fail(c, lines[PK_KEYPW], "[profile %s]: client_key_password_file without client_key", p->name);
	if (p->auth == AUTH_CERTIFICATE && !p->client_key_file)
		return fail(c, p->line, "[profile %s]: auth = certificate needs 'client_cert' and 'client_key'", p->name);
	if (p->client_key_file) {
		char e[1024];
		if (profile_set_client_credentials(p, p->client_cert_file, p->client_key_file,
		                                   p->client_key_password_file, e, sizeof e) != 0)
			return fail(c, lines[PK_KEY], "%s", e);
	}
	if (p->pin_sha256 && strcmp(scheme, "https") != 0)
		return fail(c, lines[PK_PIN], "[profile %s]: pin_sha256 needs an https endpoint", p->name);
	/* Endpoints must be unique: a WsOpenChannel address selects exactly one profile. */
	for (size_t j = 0; j < idx; j++)
		if (!strcmp(c->cfg->profiles[j].endpoint, p->endpoint))
			return fail(c, eline, "endpoint '%s' is already served by [profile %s]", p->endpoint,
			            c->cfg->profiles[j].name);
	return 1;
}

/* issuer_profile: an existing profile, and following the chain never
 * comes back (a -> b -> a would recurse forever at request time). */
static int resolve_issuer(struct parse_ctx *c, size_t idx)
{
	struct profile *p = &c->cfg->profiles[idx];
	if (!p->issuer_profile_name)
		return 1;
	unsigned line = c->profile_lines[idx][PK_ISSUER];
	const struct profile *q = config_find_profile(c->cfg, p->issuer_profile_name);
	if (!q)
		return fail(c, line, "issuer_profile = '%s': no such profile", p->issuer_profile_name);
	if (q == p)
		return fail(c, line, "issuer_profile = '%s': a profile cannot be its own issuer", p->issuer_profile_name);
	p->issuer = q;
	const struct profile *r = q;
	for (size_t hops = 0; r; hops++) {
		if (r == p || hops > c->cfg->nprofiles)
			return fail(c, line, "issuer_profile = '%s': the issuer chain of [profile %s] is a cycle", 
			            p->issuer_profile_name, p->name);
		r = r->issuer_profile_name ? config_find_profile(c->cfg, r->issuer_profile_name) : NULL;
	}
	if (q->key_type == KEY_TYPE_ASYMMETRIC && !q->client_key)
		return fail(c, line, "issuer_profile = '%s': its key_type = asymmetric needs its client_cert/client_key "
		            "(the proof key)", q->name);
	return 1;
}

static pthread_mutex_t ini_lock = PTHREAD_MUTEX_INITIALIZER;

struct broker_config *config_new_defaults(const char *path)
{
	struct broker_config *cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return NULL;
	cfg->path = strdup(path);
	cfg->socket = strdup(WSTRUST_DEFAULT_SOCKET);
	cfg->worker_path = config_default_worker_path();
	cfg->worker_user = strdup("nobody");
	cfg->worker_max_replies = 64;
	cfg->worker_pool = 1;
	cfg->worker_max_total = 16;
	cfg->worker_max_age = 600;
	cfg->worker_timeout_ms = 5000;
	cfg->worker_cpu_seconds = 10;
	cfg->worker_memory_mb = 1024;
	cfg->max_reply_bytes = 8u << 20;
	cfg->request_timeout_ms = 30000;
	cfg->max_clients = 64;
	if (!cfg->path || !cfg->socket || !cfg->worker_path || !cfg->worker_user) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

int config_load(const char *path, struct broker_config **out, char *err, size_t errlen)
{
	*out = NULL;
	credential_init_secure_heap();   /* before the first private key is read */
	struct broker_config *cfg = config_new_defaults(path);
	if (!cfg) {
		set_err(err, errlen, "%s: out of memory", path);
		return -1;
	}

	FILE *f = fopen(path, "re");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		config_free(cfg);
		return -1;
	}
	struct line_reader rd = { .f = f, .at_line_start = true };
	struct parse_ctx c = { .cfg = cfg, .rd = &rd, .err = err, .errlen = errlen };

	pthread_mutex_lock(&ini_lock);
	/* Whole lines of any length up to CONFIG_MAX_LINE (checked by our
	 * reader), no multi-line values, stop at the first error. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = CONFIG_MAX_LINE + 3;
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
	int rc = ini_parse_stream(reader_fn, &rd, on_ini_line, &c);
	pthread_mutex_unlock(&ini_lock);
	bool read_error = ferror(f);
	fclose(f);

	if (!c.failed) {
		if (rd.too_long)
			fail(&c, rd.line, "line longer than %d bytes", CONFIG_MAX_LINE);
		else if (read_error)
			set_err(err, errlen, "%s: read error", path), c.failed = true;
		else if (rc > 0)
			fail(&c, (unsigned)rc, "syntax error (expected '[section]', 'key = value' or a ; comment)");
		else if (rc < 0)
			set_err(err, errlen, "%s: out of memory", path), c.failed = true;
	}
	if (!c.failed && cfg->nprofiles == 0)
		set_err(err, errlen, "%s: no [profile NAME] section: nothing to serve", path), c.failed = true;
	for (size_t i = 0; !c.failed && i < cfg->nprofiles; i++)
		validate_profile(&c, i);
	for (size_t i = 0; !c.failed && i < cfg->nprofiles; i++)
		resolve_issuer(&c, i);
	free(c.profile_seen);
	free(c.profile_lines);
	if (c.failed) {
		config_free(cfg);
		return -1;
	}
	static _Atomic uint64_t generations;
	cfg->generation = ++generations;
	*out = cfg;
	return 0;
}

void config_free(struct broker_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nprofiles; i++) {
		struct profile *p = &c->profiles[i];
		profile_free_credentials(p);
		policy_acl_free(&p->acl);
		free(p->client_cert_file);
		free(p->client_key_file);
		free(p->client_key_password_file);
		free(p->pin_sha256);
		free(p->issuer_profile_name);
		free(p->name);
		free(p->endpoint);
		free(p->ca_file);
		free(p->username);
		free(p->password_file);
		free(p->applies_to);
		free(p->token_type);
	}
	free(c->profiles);
	free(c->path);
	free(c->socket);
	free(c->worker_path);
	free(c->worker_user);
	free(c->proxy);
	free(c);
}

const struct profile *config_find_profile(const struct broker_config *c, const char *name)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		if (!strcmp(c->profiles[i].name, name))
			return &c->profiles[i];
	return NULL;
}

const struct profile *config_find_endpoint(const struct broker_config *c, const char *endpoint)
{
	for (size_t i = 0; i < c->nprofiles; i++)
		if (!strcmp(c->profiles[i].endpoint, endpoint))
			return &c->profiles[i];
	return NULL;
}
