#include "embedded.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "federation.h"
#include "hresult.h"
#include "log.h"
#include "request.h"
#include "secmem.h"
#include "server.h"

/* WS_SECURITY_BINDING_TYPE values the setup names (webservices.h). */
enum { EMB_AUTH_SSL = 1, EMB_AUTH_USERNAME = 4, EMB_AUTH_XML_TOKEN = 6 };

static char *dup_field(const struct ipc_msg *m, uint16_t tag, bool *oom)
{
	if (!ipc_has(m, tag))
		return NULL;
	char *s = ipc_dup_str(m, tag);
	if (!s)
		*oom = true;
	return s;
}

/* A PKCS#12 file's certificate (its key comes from credential_load_key,
 * which reads PKCS#12 too). */
static X509 *p12_cert(const char *path, const struct secret *password)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
	fclose(f);
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *ca = NULL;
	if (p12)
		PKCS12_parse(p12, password && password->data ? password->data : NULL, &key, &cert, &ca);
	EVP_PKEY_free(key);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	ERR_clear_error();
	return cert;
}

/* The certificate's SHA-1 thumbprint (Windows' form) against the caller's
 * hex, ignoring case, spaces and colons. */
static bool thumbprint_matches(X509 *cert, const char *want)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!X509_digest(cert, EVP_sha1(), md, &n))
		return false;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	size_t k = 0;
	for (const char *p = want; *p; p++) {
		if (*p == ' ' || *p == ':')
			continue;
		if (k >= 2 * n || tolower((unsigned char)*p) != hex[k])
			return false;
		k++;
	}
	return k == 2 * n;
}

static bool subject_matches(X509 *cert, const char *want)
{
	char cn[256];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
	return n > 0 && strcmp(cn, want) == 0;
}

static int load_client_cert(struct profile *p, const struct ipc_msg *m, const char *cert_file, uint32_t *hr,
                            char *err, size_t errlen)
{
	struct secret kpw = { 0 };
	const uint8_t *pw;
	size_t pwl;
	if (ipc_get_bytes(m, T_EMB_KEY_PASSWORD, &pw, &pwl) && secret_set(&kpw, pw, pwl) != 0)
		return hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of memory");
	bool oom = false;
	char *key_file = dup_field(m, T_EMB_KEY_FILE, &oom);
	char *thumb = dup_field(m, T_EMB_CERT_THUMBPRINT, &oom);
	char *subject = dup_field(m, T_EMB_CERT_SUBJECT, &oom);
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc = -1;
	char why[512];
	if (oom) {
		hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of memory");
		goto out;
	}
	/* PEM first (certificate and, without a key file, its key in the same
	 * file), else PKCS#12. */
	if (credential_load_cert(cert_file, &cert, why, sizeof why) != 0 && !(cert = p12_cert(cert_file, kpw.data ? &kpw : NULL))) {
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		       "the certificate credential %s is neither a PEM certificate nor a PKCS#12 file this password opens (%s)",
		       cert_file, why);
		goto out;
	}
	if (credential_load_key(key_file ? key_file : cert_file, kpw.data ? &kpw : NULL, &key, why, sizeof why) != 0) {
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "the certificate credential's private key: %s", why);
		goto out;
	}
	ERR_clear_error();
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "the private key in %s does not belong to the certificate in %s",
		       key_file ? key_file : cert_file, cert_file);
		goto out;
	}
	if (thumb && !thumbprint_matches(cert, thumb)) {
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		       "the certificate in %s does not have the thumbprint %s (WS_THUMBPRINT_CERT_CREDENTIAL)", cert_file, thumb);
		goto out;
	}
	if (subject && !subject_matches(cert, subject)) {
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen,
		       "the certificate in %s does not have the subject common name %s (WS_SUBJECT_NAME_CERT_CREDENTIAL)",
		       cert_file, subject);
		goto out;
	}
	p->client_cert = cert;
	p->client_key = key;
	cert = NULL;
	key = NULL;
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	secret_free(&kpw);
	free(key_file);
	free(thumb);
	free(subject);
	return rc;
}

int embedded_config(const struct ipc_msg *m, struct broker_config **out, uint32_t *hr, char *err, size_t errlen)
{
	*out = NULL;
	struct broker_config *cfg = config_new_defaults("(embedded)");
	struct profile *p = calloc(1, sizeof *p);
	if (!cfg || !p) {
		if (cfg)
			config_free(cfg);
		free(p);
		return hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of memory");
	}
	cfg->profiles = p;
	cfg->nprofiles = 1;
	/* Sized for one caller. */
	cfg->worker_max_total = 4;
	cfg->max_clients = 1;

	bool oom = false;
	p->name = strdup(EMBEDDED_PROFILE);
	p->endpoint = dup_field(m, T_EMB_ENDPOINT, &oom);
	p->ca_file = dup_field(m, T_EMB_CA_FILE, &oom);
	p->username = dup_field(m, T_EMB_USERNAME, &oom);
	char *cert_file = dup_field(m, T_EMB_CERT_FILE, &oom);
	p->trust_version = TRUST_13;   /* set per request: embedded_prepare */
	p->soap_version = 12;
	/* Issue 5: in embedded mode the symmetric proof key reaches the caller
	 * (it is the caller's own broker, holding the caller's credentials). */
	p->release_proof_key = true;
	int rc = -1;
	if (oom || !p->name) {
		hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of memory");
		goto out;
	}

	uint32_t soap = 0, auth = 0;
	if (ipc_get_u32(m, T_EMB_SOAP_VERSION, &soap)) {
		if (soap != 11 && soap != 12) {
			hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "embedded setup: SOAP version %u (11 or 12)", soap);
			goto out;
		}
		p->soap_version = soap;
	}
	if (strncmp(p->endpoint, "https://", 8) != 0) {
		/* Plain http would send the credential in clear text. */
		hr_refuse(hr, (uint32_t)WS_E_INVALID_ENDPOINT_URL, err, errlen,
		       "embedded mode reaches the STS over https only, not %.256s", p->endpoint);
		goto out;
	}
	if (p->ca_file && access(p->ca_file, R_OK) != 0) {
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "the CA file %s (WSTRUST_CA_FILE or wstrust_set_channel_ca_file): %s",
		       p->ca_file, strerror(errno));
		goto out;
	}
	ipc_get_u32(m, T_EMB_AUTH, &auth);
	switch (auth) {
	case EMB_AUTH_USERNAME: {
		const uint8_t *pw;
		size_t pwl;
		if (!p->username || !ipc_get_bytes(m, T_EMB_PASSWORD, &pw, &pwl)) {
			hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "embedded setup: a username credential needs both username and password");
			goto out;
		}
		if (secret_set(&p->password, pw, pwl) != 0) {
			hr_refuse(hr, (uint32_t)E_OUTOFMEMORY, err, errlen, "out of memory");
			goto out;
		}
		p->auth = AUTH_USERNAME;
		break;
	}
	case EMB_AUTH_SSL:
		if (!cert_file) {
			hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "embedded setup: the SSL binding's credential names no certificate");
			goto out;
		}
		p->auth = AUTH_NONE;   /* TLS client certificate only */
		break;
	case EMB_AUTH_XML_TOKEN:
		/* The caller's token, presented like one the broker obtained
		 * from an issuer_profile (federation_preset, below: after the
		 * certificate, whose key may prove possession). */
		if (!ipc_has(m, T_EMB_TOKEN_XML)) {
			hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "embedded setup: the XML token credential carries no token");
			goto out;
		}
		p->auth = AUTH_ISSUED_TOKEN;
		break;
	default:
		hr_refuse(hr, (uint32_t)E_INVALIDARG, err, errlen, "embedded setup: unknown credential kind %u", auth);
		goto out;
	}
	if (cert_file && load_client_cert(p, m, cert_file, hr, err, errlen) != 0)
		goto out;
	if (p->auth == AUTH_ISSUED_TOKEN) {
		const uint8_t *xml, *key = NULL;
		size_t xml_len = 0, key_len = 0;
		uint64_t till = 0;
		ipc_get_bytes(m, T_EMB_TOKEN_XML, &xml, &xml_len);
		if (ipc_has(m, T_EMB_TOKEN_KEY))
			ipc_get_bytes(m, T_EMB_TOKEN_KEY, &key, &key_len);
		ipc_get_u64(m, T_EMB_TOKEN_VALID_TILL, &till);
		/* Last: nothing below can fail and leave the preset behind. */
		if (federation_preset(cfg, p, xml, xml_len, key, key_len, till, hr, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	free(cert_file);
	if (rc != 0) {
		config_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

void embedded_prepare(struct broker_config *cfg, const struct ipc_msg *m)
{
	uint32_t v;
	if (ipc_get_u32(m, T_TRUST_VERSION, &v) && (v == TRUST_FEB2005 || v == TRUST_13))
		cfg->profiles[0].trust_version = v;
}

static int send_frame(int fd, struct ipc_builder *b)
{
	int rc = ipc_finish(b) == 0 ? ipc_write_frame(fd, b->buf, b->len, ipc_now_ms() + CLIENT_WRITE_MS) : -1;
	ipc_builder_free(b);
	return rc;
}

static bool sane_fd(int fd)
{
	int type = 0;
	socklen_t tl = sizeof type;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	return fcntl(fd, F_GETFD) >= 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
	       getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.ss_family == AF_UNIX;
}

int embedded_main(int fd)
{
	if (fd < 3 || !sane_fd(fd)) {
		fprintf(stderr, "wstrustd: --embedded %d: not a Unix stream socket (embedded mode is started by libwstrust)\n",
		        fd);
		return 2;
	}
	/* Nothing else of the application's: its fds are not ours, and the
	 * workers we exec must not inherit the channel. */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0u, 0);
	fcntl(fd, F_SETFD, FD_CLOEXEC);

	struct policy_peer peer = { 0 };
	struct ucred uc;
	socklen_t ul = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
		peer.uid = uc.uid;
		peer.gid = uc.gid;
		peer.pid = uc.pid;
	}

	uint8_t *buf = NULL;
	size_t len = 0;
	if (ipc_read_frame(fd, &buf, &len, 2u << 20, ipc_now_ms() + EMBEDDED_SETUP_MS) != 0) {
		log_error("embedded: no setup from the application: %s", strerror(errno));
		return 1;
	}
	struct ipc_msg m;
	char err[1024] = "";
	uint32_t hr = (uint32_t)E_INVALIDARG;
	struct broker_config *cfg = NULL;
	struct ipc_builder ans = { 0 };
	if (ipc_decode(buf, len, &m, err, sizeof err) != 0 || m.type != IPC_EMB_SETUP) {
		if (!err[0] || m.type != IPC_EMB_SETUP)
			snprintf(err, sizeof err, "the first message must be the embedded setup");
	} else {
		embedded_config(&m, &cfg, &hr, err, sizeof err);
	}
	/* The frame held the credentials: they now live in secure memory
	 * (or nowhere). */
	sodium_memzero(buf, len);
	free(buf);
	struct generation *g = NULL;
	if (cfg && !(g = generation_new(cfg, err, sizeof err)))
		hr = (uint32_t)E_FAIL;
	if (!g) {
		federation_preset_clear();   /* the caller's token, if it got that far */
		log_error("embedded: %s", err);
		answer_error(&ans, hr, true, err, NULL);
		send_frame(fd, &ans);
		return 1;
	}
	ipc_begin(&ans, IPC_EMB_READY);
	if (send_frame(fd, &ans) != 0) {
		log_error("embedded: the application went away during start-up");
		struct server gone = { .lock = PTHREAD_MUTEX_INITIALIZER };
		server_swap(&gone, g);
		server_swap(&gone, NULL);
		federation_preset_clear();
		return 1;
	}

	struct server srv = { .lock = PTHREAD_MUTEX_INITIALIZER, .uid = geteuid(), .listen_fd = -1, .embedded = true };
	server_swap(&srv, g);
	server_serve_fd(&srv, fd, &peer);
	close(fd);
	/* Wipes the credentials and stops the workers. */
	server_swap(&srv, NULL);
	federation_flush();
	federation_preset_clear();
	return 0;
}
