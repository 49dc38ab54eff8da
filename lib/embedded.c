/* Embedded mode: a private broker for one channel, with the caller's
 * credentials.
 *
 * WsCreateChannel copies the credentials of the WS_SECURITY_DESCRIPTION into
 * locked memory (emb_creds_from_description).  WsOpenChannel starts
 * `wstrustd --embedded 3` with posix_spawn on one end of a socketpair
 * (emb_start), sends them in one IPC_EMB_SETUP frame -- their only way into
 * the broker: never argv, environment or files -- and wipes every copy the
 * library made, whether the broker accepts them or not.  The connection then
 * carries ordinary token requests; the broker exits when it closes.
 *
 * No libsodium here (the library links none): explicit_bzero and mlock. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ipc.h"

extern char **environ;

/* The fd number the private broker finds its end of the socketpair on. */
#define EMB_FD 3

struct emb_creds {
	uint32_t auth;                 /* WS_SECURITY_BINDING_TYPE of the credential */
	char *username;
	struct sbuf { uint8_t *p; size_t n; } password, key_password, token_key;
	char *cert_file, *key_file, *thumbprint, *subject;
	uint8_t *token_xml;
	size_t token_len;
	uint64_t token_valid_till;
};

/* ---- secret buffers: malloc'd, locked best effort, wiped on free ---- */

static int sbuf_set(struct sbuf *s, const void *p, size_t n)
{
	s->p = malloc(n ? n : 1);
	if (!s->p)
		return -1;
	s->p[0] = 0;
	if (n)
		memcpy(s->p, p, n);
	/* Best effort (RLIMIT_MEMLOCK): keep it out of swap. */
	(void)mlock(s->p, n ? n : 1);
	s->n = n;
	return 0;
}

static void sbuf_free(struct sbuf *s)
{
	if (!s->p)
		return;
	explicit_bzero(s->p, s->n);
	munlock(s->p, s->n ? s->n : 1);
	free(s->p);
	s->p = NULL;
	s->n = 0;
}

/* A secret WS_STRING as UTF-8 in a locked buffer; the conversion's
 * temporary copy is wiped. */
static int secret_string(const WS_STRING *w, struct sbuf *out)
{
	if (w->length == 0)
		return sbuf_set(out, "", 0);
	if (!w->chars) {
		errno = EINVAL;
		return -1;
	}
	char *tmp = utf16_to_utf8(w->chars, w->length);
	if (!tmp)
		return -1;
	size_t n = strlen(tmp);
	int rc = sbuf_set(out, tmp, n);
	explicit_bzero(tmp, n);
	free(tmp);
	return rc;
}

static void free_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void emb_creds_free(struct emb_creds *c)
{
	if (!c)
		return;
	free_str(&c->username);
	sbuf_free(&c->password);
	sbuf_free(&c->key_password);
	sbuf_free(&c->token_key);
	free_str(&c->cert_file);
	free_str(&c->key_file);
	free_str(&c->thumbprint);
	free_str(&c->subject);
	if (c->token_xml) {
		explicit_bzero(c->token_xml, c->token_len);
		free(c->token_xml);
	}
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* ---- the security description ---- */

static HRESULT plain_string(const WS_STRING *w, const char *what, char **out, WS_ERROR *error)
{
	if (w->length == 0 || !w->chars)
		return err_set(error, E_INVALIDARG, "WsCreateChannel: %s is empty", what);
	if (w->length > IPC_MAX_SHORT)
		return err_set(error, E_INVALIDARG, "WsCreateChannel: %s is longer than %u characters", what, IPC_MAX_SHORT);
	*out = utf16_to_utf8(w->chars, w->length);
	if (!*out)
		return errno == ENOMEM ? err_set(error, E_OUTOFMEMORY, "out of memory")
		                       : err_set(error, E_INVALIDARG, "WsCreateChannel: %s is not valid UTF-16 or contains NUL",
		                                 what);
	return S_OK;
}

static HRESULT username_credential(const WS_USERNAME_MESSAGE_SECURITY_BINDING *b, struct emb_creds *c,
                                   WS_ERROR *error)
{
	const WS_USERNAME_CREDENTIAL *uc = b->clientCredential;
	if (uc->credentialType != WS_STRING_USERNAME_CREDENTIAL_TYPE)
		return err_set(error, E_INVALIDARG,
		               "WS_USERNAME_MESSAGE_SECURITY_BINDING: credential type %d is not supported "
		               "(use WS_STRING_USERNAME_CREDENTIAL)", (int)uc->credentialType);
	const WS_STRING_USERNAME_CREDENTIAL *s = (const WS_STRING_USERNAME_CREDENTIAL *)uc;
	HRESULT hr = plain_string(&s->username, "the username", &c->username, error);
	if (FAILED(hr))
		return hr;
	if (s->password.length > 4096)
		return err_set(error, E_INVALIDARG, "WS_STRING_USERNAME_CREDENTIAL: the password is longer than 4096 characters");
	if (secret_string(&s->password, &c->password) < 0)
		return errno == ENOMEM ? err_set(error, E_OUTOFMEMORY, "out of memory")
		                       : err_set(error, E_INVALIDARG,
		                                 "WS_STRING_USERNAME_CREDENTIAL: the password is not valid UTF-16 or contains NUL");
	c->auth = WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE;
	return S_OK;
}

static HRESULT cert_credential(const WS_CERT_CREDENTIAL *cc, struct emb_creds *c, WS_ERROR *error)
{
	HRESULT hr;
	switch ((int)cc->credentialType) {
	case WS_SUBJECT_NAME_CERT_CREDENTIAL_TYPE: {
		const WS_SUBJECT_NAME_CERT_CREDENTIAL *s = (const WS_SUBJECT_NAME_CERT_CREDENTIAL *)cc;
		if (FAILED(hr = plain_string(&s->storeName, "WS_SUBJECT_NAME_CERT_CREDENTIAL.storeName (the certificate file)",
		                             &c->cert_file, error)))
			return hr;
		if (s->subjectName.length &&
		    FAILED(hr = plain_string(&s->subjectName, "WS_SUBJECT_NAME_CERT_CREDENTIAL.subjectName", &c->subject, error)))
			return hr;
		break;
	}
	case WS_THUMBPRINT_CERT_CREDENTIAL_TYPE: {
		const WS_THUMBPRINT_CERT_CREDENTIAL *t = (const WS_THUMBPRINT_CERT_CREDENTIAL *)cc;
		if (FAILED(hr = plain_string(&t->storeName, "WS_THUMBPRINT_CERT_CREDENTIAL.storeName (the certificate file)",
		                             &c->cert_file, error)))
			return hr;
		if (t->thumbprint.length &&
		    FAILED(hr = plain_string(&t->thumbprint, "WS_THUMBPRINT_CERT_CREDENTIAL.thumbprint", &c->thumbprint, error)))
			return hr;
		break;
	}
	case WSTRUST_FILE_CERT_CREDENTIAL_TYPE: {
		const WSTRUST_FILE_CERT_CREDENTIAL *f = (const WSTRUST_FILE_CERT_CREDENTIAL *)cc;
		if (FAILED(hr = plain_string(&f->certFile, "WSTRUST_FILE_CERT_CREDENTIAL.certFile", &c->cert_file, error)))
			return hr;
		if (f->keyFile.length &&
		    FAILED(hr = plain_string(&f->keyFile, "WSTRUST_FILE_CERT_CREDENTIAL.keyFile", &c->key_file, error)))
			return hr;
		if (f->keyPassword.length > 4096)
			return err_set(error, E_INVALIDARG, "WSTRUST_FILE_CERT_CREDENTIAL: the key password is too long");
		if (f->keyPassword.length && secret_string(&f->keyPassword, &c->key_password) < 0)
			return err_set(error, E_INVALIDARG, "WSTRUST_FILE_CERT_CREDENTIAL: the key password is not valid UTF-16");
		break;
	}
	default:
		return err_set(error, E_INVALIDARG,
		               "WS_SSL_TRANSPORT_SECURITY_BINDING: certificate credential type %d is not supported (use "
		               "WS_SUBJECT_NAME_CERT_CREDENTIAL or WS_THUMBPRINT_CERT_CREDENTIAL with storeName = a PEM or "
		               "PKCS#12 file, or WSTRUST_FILE_CERT_CREDENTIAL)", (int)cc->credentialType);
	}
	if (c->cert_file[0] != '/')
		return err_set(error, E_INVALIDARG, "the certificate file must be an absolute path, not %s", c->cert_file);
	if (c->key_file && c->key_file[0] != '/')
		return err_set(error, E_INVALIDARG, "the key file must be an absolute path, not %s", c->key_file);
	/* The SSL binding's client certificate goes with any message
	 * credential; alone, it is the credential. */
	if (!c->auth)
		c->auth = WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE;
	return S_OK;
}

static HRESULT xml_token_credential(const WS_XML_TOKEN_MESSAGE_SECURITY_BINDING *b, struct emb_creds *c,
                                    WS_ERROR *error)
{
	const uint8_t *xml, *key;
	size_t xml_len, key_len;
	token_xml(b->xmlToken, &xml, &xml_len);
	token_proof(b->xmlToken, &key, &key_len);
	if (xml_len == 0 || xml_len > (1u << 20))
		return err_set(error, E_INVALIDARG, "WS_XML_TOKEN_MESSAGE_SECURITY_BINDING: the token must be 1 byte to 1 MiB");
	c->token_xml = malloc(xml_len);
	if (!c->token_xml)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	memcpy(c->token_xml, xml, xml_len);
	c->token_len = xml_len;
	if (key_len && sbuf_set(&c->token_key, key, key_len) < 0)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	c->token_valid_till = token_valid_till(b->xmlToken);
	c->auth = WS_XML_TOKEN_MESSAGE_SECURITY_BINDING_TYPE;
	return S_OK;
}

HRESULT emb_creds_from_description(const WS_SECURITY_DESCRIPTION *sd, struct emb_creds **out, WS_ERROR *error)
{
	*out = NULL;
	if (!sd || sd->securityBindingCount == 0)
		return S_OK;
	struct emb_creds *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	const WS_CERT_CREDENTIAL *cert = NULL;
	bool have_message_cred = false;
	HRESULT hr = S_OK;
	for (ULONG i = 0; i < sd->securityBindingCount && SUCCEEDED(hr); i++) {
		const WS_SECURITY_BINDING *b = sd->securityBindings[i];
		if (!b) {
			hr = err_set(error, E_INVALIDARG, "WsCreateChannel: securityBindings[%u] is NULL", i);
			break;
		}
		switch (b->bindingType) {
		case WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE:
			cert = ((const WS_SSL_TRANSPORT_SECURITY_BINDING *)b)->localCertCredential;
			break;
		case WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE: {
			const WS_USERNAME_MESSAGE_SECURITY_BINDING *u = (const WS_USERNAME_MESSAGE_SECURITY_BINDING *)b;
			if (!u->clientCredential)
				break;
			if (have_message_cred)
				hr = err_set(error, E_INVALIDARG, "WsCreateChannel: more than one message security binding");
			else
				hr = username_credential(u, c, error);
			have_message_cred = true;
			break;
		}
		case WS_XML_TOKEN_MESSAGE_SECURITY_BINDING_TYPE: {
			const WS_XML_TOKEN_MESSAGE_SECURITY_BINDING *x = (const WS_XML_TOKEN_MESSAGE_SECURITY_BINDING *)b;
			if (!x->xmlToken)
				break;
			if (have_message_cred)
				hr = err_set(error, E_INVALIDARG, "WsCreateChannel: more than one message security binding");
			else
				hr = xml_token_credential(x, c, error);
			have_message_cred = true;
			break;
		}
		default:
			/* Kerberos, HTTP header auth, SAML, security context: no
			 * credential wstrust can hand to a private broker (yet). */
			hr = err_set(error, E_INVALIDARG,
			             "WsCreateChannel: security binding type %d carries no credential wstrust can use in embedded mode",
			             (int)b->bindingType);
		}
	}
	if (SUCCEEDED(hr) && cert)
		hr = cert_credential(cert, c, error);
	if (FAILED(hr) || !c->auth) {
		emb_creds_free(c);
		return hr;
	}
	*out = c;
	return S_OK;
}

/* ---- the private broker ---- */

static char *broker_path(void)
{
	/* For tests and unusual installs; secure_getenv ignores it in setuid
	 * programs. */
	const char *p = secure_getenv("WSTRUST_BROKER_PATH");
	return strdup(p && *p ? p : WSTRUST_SBINDIR "/wstrustd");
}

void emb_stop(int fd, pid_t pid)
{
	if (fd >= 0)
		close(fd);
	if (pid <= 0)
		return;
	/* The broker exits when its connection closes; one still busy with
	 * an STS request is told to stop, then killed. */
	for (int i = 0; i < 150; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		if (i == 50)
			kill(pid, SIGTERM);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static HRESULT spawn_broker(int *fd_out, pid_t *pid_out, WS_ERROR *error)
{
	char *path = broker_path();
	if (!path)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		HRESULT hr = err_set(error, WS_E_ENDPOINT_UNREACHABLE, "cannot create a socketpair for the private broker: %s",
		                     strerror(errno));
		free(path);
		return hr;
	}
	/* dup2 onto the same number would keep FD_CLOEXEC on old glibc; and
	 * an application with fds 0-2 closed hands them out here, where the
	 * /dev/null opened onto 0 and 1 below would replace our end. */
	if (sv[1] <= EMB_FD) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, EMB_FD + 1);
		close(sv[1]);
		sv[1] = moved;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* The broker writes nothing to the application's stdin/stdout; its
	 * warnings go to the application's stderr. */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], EMB_FD);
	/* A clean signal state: the application's masks and ignored signals
	 * are not the broker's. */
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char fdarg[16];
	snprintf(fdarg, sizeof(fdarg), "%d", EMB_FD);
	char *argv[] = { path, "--embedded", fdarg, NULL };
	pid_t pid;
	int r = sv[1] < 0 ? errno : posix_spawn(&pid, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (sv[1] >= 0)
		close(sv[1]);
	if (r != 0) {
		char *s[2];
		char a[600], b[300];
		snprintf(a, sizeof(a), "cannot start the private wstrust broker %s: %s", path, strerror(r));
		snprintf(b, sizeof(b), "embedded mode needs wstrustd (WSTRUST_BROKER_PATH names another binary)");
		s[0] = a;
		s[1] = b;
		close(sv[0]);
		free(path);
		return err_set_list(error, WS_E_ENDPOINT_UNREACHABLE, s, 2);
	}
	free(path);
	*fd_out = sv[0];
	*pid_out = pid;
	return S_OK;
}

/* The IPC_EMB_SETUP frame, in a builder that wipes itself. */
static int build_setup(struct ipc_builder *b, const struct emb_creds *c, const char *url, uint32_t soap,
                       const char *ca_file)
{
	b->secure = true;
	ipc_begin(b, IPC_EMB_SETUP);
	ipc_put_str(b, T_EMB_ENDPOINT, url);
	ipc_put_u32(b, T_EMB_AUTH, c->auth);
	if (soap)
		ipc_put_u32(b, T_EMB_SOAP_VERSION, soap);
	if (ca_file)
		ipc_put_str(b, T_EMB_CA_FILE, ca_file);
	if (c->username)
		ipc_put_str(b, T_EMB_USERNAME, c->username);
	if (c->password.p)
		ipc_put_bytes(b, T_EMB_PASSWORD, c->password.p, c->password.n);
	if (c->cert_file)
		ipc_put_str(b, T_EMB_CERT_FILE, c->cert_file);
	if (c->key_file)
		ipc_put_str(b, T_EMB_KEY_FILE, c->key_file);
	if (c->key_password.p)
		ipc_put_bytes(b, T_EMB_KEY_PASSWORD, c->key_password.p, c->key_password.n);
	if (c->thumbprint)
		ipc_put_str(b, T_EMB_CERT_THUMBPRINT, c->thumbprint);
	if (c->subject)
		ipc_put_str(b, T_EMB_CERT_SUBJECT, c->subject);
	if (c->token_xml)
		ipc_put_bytes(b, T_EMB_TOKEN_XML, c->token_xml, c->token_len);
	if (c->token_key.p)
		ipc_put_bytes(b, T_EMB_TOKEN_KEY, c->token_key.p, c->token_key.n);
	if (c->token_valid_till)
		ipc_put_u64(b, T_EMB_TOKEN_VALID_TILL, c->token_valid_till);
	return ipc_finish(b);
}

/* The broker's answer to the setup: IPC_EMB_READY or an error. */
static HRESULT setup_answer(int fd, int64_t deadline, WS_ERROR *error)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (ipc_read_frame(fd, &buf, &len, 1u << 20, deadline) < 0) {
		int e = errno;
		if (e == ETIMEDOUT)
			return err_set(error, WS_E_OPERATION_TIMED_OUT, "the private wstrust broker did not start in time");
		return err_set(error, WS_E_ENDPOINT_UNREACHABLE,
		               "the private wstrust broker exited during start-up (%s); its messages are on stderr",
		               e == ECONNRESET ? "connection closed" : strerror(e));
	}
	struct ipc_msg *m = malloc(sizeof(*m));
	if (!m) {
		free(buf);
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	}
	char why[256] = "";
	HRESULT hr;
	if (ipc_decode(buf, len, m, why, sizeof(why)) < 0) {
		hr = err_set(error, WS_E_INVALID_FORMAT, "the private broker's answer could not be decoded: %s", why);
	} else if (m->type == IPC_EMB_READY) {
		hr = S_OK;
	} else if (m->type == IPC_ANS_ERROR) {
		uint32_t hr32 = 0;
		ipc_get_u32(m, T_HRESULT, &hr32);
		hr = SUCCEEDED((HRESULT)hr32) ? WS_E_INVALID_FORMAT : (HRESULT)hr32;
		char *strings[8];
		unsigned n = 0, pos = 0;
		const uint8_t *p;
		size_t l;
		while (n < 8 && ipc_next(m, T_ERROR_STRING, &pos, &p, &l))
			if ((strings[n] = strndup((const char *)p, l)))
				n++;
		err_set_list(error, hr, strings, n);
		for (unsigned i = 0; i < n; i++)
			free(strings[i]);
	} else {
		hr = err_set(error, WS_E_INVALID_FORMAT, "the private broker answered the setup with message 0x%04x", m->type);
	}
	free(m);
	free(buf);
	return hr;
}

/* An expired token of the caller's is refused here, before a broker is
 * started or anything is sent (the broker checks again, at setup and at
 * each request, and also reads the assertion's own NotOnOrAfter). */
static HRESULT check_token_time(const struct emb_creds *c, WS_ERROR *error)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = ((uint64_t)ts.tv_sec + 62135596800ull) * 10000000ull + (uint64_t)ts.tv_nsec / 100;
	if (!c->token_xml || !c->token_valid_till || c->token_valid_till > now)
		return S_OK;
	time_t till = (time_t)(c->token_valid_till / 10000000ull - 62135596800ull);
	struct tm tm;
	char when[32] = "(unknown)";
	if (gmtime_r(&till, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return err_set(error, WS_E_SECURITY_TOKEN_EXPIRED,
	               "WS_XML_TOKEN_MESSAGE_SECURITY_BINDING: the token expired at %s (its VALID_TILL_TIME): not sending "
	               "it; create a new channel with a fresh token", when);
}

HRESULT emb_start(struct emb_creds **credsp, const char *url, uint32_t soap, const char *ca_file,
                  int64_t deadline, int *fd_out, pid_t *pid_out, WS_ERROR *error)
{
	struct emb_creds *c = *credsp;
	HRESULT hr = check_token_time(c, error);
	if (FAILED(hr))
		return hr;
	struct ipc_builder b = { .secure = true };
	if (build_setup(&b, c, url, soap, ca_file) < 0) {
		ipc_builder_free(&b);
		return err_set(error, E_INVALIDARG, "the embedded broker's setup is too large");
	}
	int fd;
	pid_t pid;
	hr = spawn_broker(&fd, &pid, error);
	if (FAILED(hr)) {
		/* Nothing was sent: the credentials stay for another open. */
		ipc_builder_free(&b);
		return hr;
	}
	int w = ipc_write_frame(fd, b.buf, b.len, deadline);
	int e = errno;
	/* Sent (or lost with the broker): no copy stays in this process. */
	ipc_builder_free(&b);
	emb_creds_free(c);
	*credsp = NULL;
	if (w < 0) {
		emb_stop(fd, pid);
		return err_set(error, e == ETIMEDOUT ? WS_E_OPERATION_TIMED_OUT : WS_E_ENDPOINT_UNREACHABLE,
		               "cannot hand the credentials to the private wstrust broker: %s", strerror(e));
	}
	hr = setup_answer(fd, deadline, error);
	if (FAILED(hr)) {
		emb_stop(fd, pid);
		return hr;
	}
	*fd_out = fd;
	*pid_out = pid;
	return S_OK;
}
