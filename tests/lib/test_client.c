/* libwstrust against a fake broker: a thread in this process that listens on
 * a Unix socket in a temporary directory and answers canned IPC frames built
 * with the codec.  No real broker, STS or worker is involved. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <wstrust/webservices.h>

#include "ipc.h"

static int failures;
static const char *current;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d [%s] %s: ", __FILE__, __LINE__, current, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

#define CHECK_HR(expr, want) do { \
	HRESULT hr_ = (expr); \
	CHECK(hr_ == (want), "%s returned 0x%08X, expected 0x%08X", #expr, (unsigned)hr_, (unsigned)(want)); \
} while (0)

/* ---- the fake broker ---- */

enum mode {
	M_TOKEN,          /* answer ANS_TOKEN built from `fake.tok` */
	M_ERROR,          /* answer ANS_ERROR */
	M_RAW,            /* answer `fake.raw` bytes as they are */
	M_CLOSE,          /* close without answering */
	M_SILENT,         /* never answer */
	M_TOKEN_CLOSE,    /* answer a token, then close the connection (idle close) */
};

struct fake_token {
	const char *xml;
	const char *type;
	uint32_t key_type;
	uint64_t from, till;
	const char *attached, *unattached;
	const uint8_t *proof;
	size_t proof_len;
	bool withheld;
};

static struct {
	char dir[64];
	char path[128];
	int lfd;
	pthread_t thread;
	_Atomic bool stop;
	pthread_mutex_t mu;
	enum mode mode;
	struct fake_token tok;
	uint32_t err_hr;
	const char *err_strings[4];
	unsigned n_err;
	int err_faulted;     /* -1: field absent */
	const uint8_t *raw;
	size_t raw_len;
	unsigned requests;
	unsigned connections;
	uint8_t *last;       /* the last request frame */
	size_t last_len;
} fake;

static void build_answer(struct ipc_builder *b)
{
	if (fake.mode == M_ERROR) {
		ipc_begin(b, IPC_ANS_ERROR);
		ipc_put_u32(b, T_HRESULT, fake.err_hr);
		for (unsigned i = 0; i < fake.n_err; i++)
			ipc_put_str(b, T_ERROR_STRING, fake.err_strings[i]);
		if (fake.err_faulted >= 0)
			ipc_put_u32(b, T_CHANNEL_FAULTED, (uint32_t)fake.err_faulted);
	} else {
		const struct fake_token *t = &fake.tok;
		ipc_begin(b, IPC_ANS_TOKEN);
		ipc_put_bytes(b, T_TOKEN_XML, t->xml, strlen(t->xml));
		if (t->type)
			ipc_put_str(b, T_TOKEN_TYPE_URI, t->type);
		ipc_put_u32(b, T_KEY_TYPE_OUT, t->key_type);
		ipc_put_u64(b, T_VALID_FROM, t->from);
		ipc_put_u64(b, T_VALID_TILL, t->till);
		if (t->attached)
			ipc_put_bytes(b, T_ATTACHED_REF, t->attached, strlen(t->attached));
		if (t->unattached)
			ipc_put_bytes(b, T_UNATTACHED_REF, t->unattached, strlen(t->unattached));
		if (t->proof)
			ipc_put_bytes(b, T_PROOF_KEY, t->proof, t->proof_len);
		if (t->withheld)
			ipc_put_u32(b, T_PROOF_WITHHELD, 1);
	}
	ipc_finish(b);
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	for (;;) {
		uint8_t *buf;
		size_t len;
		if (ipc_read_frame(fd, &buf, &len, IPC_MAX_FRAME, ipc_now_ms() + 10000) < 0)
			break;
		pthread_mutex_lock(&fake.mu);
		fake.requests++;
		free(fake.last);
		fake.last = buf;
		fake.last_len = len;
		enum mode mode = fake.mode;
		struct ipc_builder b = { 0 };
		if (mode == M_TOKEN || mode == M_ERROR || mode == M_TOKEN_CLOSE)
			build_answer(&b);
		uint8_t *raw = NULL;
		size_t raw_len = fake.raw_len;
		if (mode == M_RAW && (raw = malloc(raw_len)))
			memcpy(raw, fake.raw, raw_len);
		pthread_mutex_unlock(&fake.mu);
		if (mode == M_CLOSE)
			break;
		if (mode == M_SILENT) {
			/* Hold the connection until the client goes away. */
			while (!fake.stop) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				if (poll(&p, 1, 50) > 0)
					break;
			}
			break;
		}
		if (mode == M_RAW)
			ipc_write_frame(fd, raw, raw_len, ipc_now_ms() + 5000);
		else
			ipc_write_frame(fd, b.buf, b.len, ipc_now_ms() + 5000);
		free(raw);
		ipc_builder_free(&b);
		if (mode == M_TOKEN_CLOSE)
			break;
	}
	close(fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	while (!fake.stop) {
		struct pollfd p = { .fd = fake.lfd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept4(fake.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&fake.mu);
		fake.connections++;
		pthread_mutex_unlock(&fake.mu);
		pthread_t t;
		pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
	return NULL;
}

static void fake_start(void)
{
	strcpy(fake.dir, "/tmp/wstrust-libtest-XXXXXX");
	if (!mkdtemp(fake.dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(fake.path, sizeof(fake.path), "%s/broker.sock", fake.dir);
	fake.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, fake.path);
	if (bind(fake.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fake.lfd, 64) < 0) {
		perror("bind/listen");
		exit(1);
	}
	pthread_mutex_init(&fake.mu, NULL);
	pthread_create(&fake.thread, NULL, accept_main, NULL);
	/* The library finds the broker through the environment, as an
	 * application would. */
	setenv("WSTRUST_SOCKET", fake.path, 1);
}

static void fake_stop(void)
{
	fake.stop = true;
	pthread_join(fake.thread, NULL);
	close(fake.lfd);
	unlink(fake.path);
	rmdir(fake.dir);
}

static void fake_reset(enum mode mode)
{
	pthread_mutex_lock(&fake.mu);
	fake.mode = mode;
	fake.requests = 0;
	free(fake.last);
	fake.last = NULL;
	fake.last_len = 0;
	fake.err_faulted = -1;
	fake.n_err = 0;
	fake.tok = (struct fake_token){
		.xml = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a1\">\xc3\xa9</saml:Assertion>",
		.type = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
		.key_type = 1,
		.from = 639001000000000000ull,
		.till = 639001036000000000ull,
		.attached = "<o:SecurityTokenReference xmlns:o=\"x\"><o:KeyIdentifier>_a1</o:KeyIdentifier></o:SecurityTokenReference>",
	};
	pthread_mutex_unlock(&fake.mu);
}

static unsigned fake_requests(void)
{
	pthread_mutex_lock(&fake.mu);
	unsigned n = fake.requests;
	pthread_mutex_unlock(&fake.mu);
	return n;
}

/* Decode the last request into m (valid until the next request). */
static bool last_request(struct ipc_msg *m)
{
	char err[128];
	pthread_mutex_lock(&fake.mu);
	bool ok = fake.last && ipc_decode(fake.last, fake.last_len, m, err, sizeof(err)) == 0;
	pthread_mutex_unlock(&fake.mu);
	return ok;
}

/* ---- helpers ---- */

#define URL u"https://sts.example.test/adfs/services/trust/13/usernamemixed"
#define URL8 "https://sts.example.test/adfs/services/trust/13/usernamemixed"

static WS_CHANNEL *open_channel(const WS_CHANNEL_PROPERTY *props, ULONG n)
{
	WS_CHANNEL *ch = NULL;
	HRESULT hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, props, n, NULL, &ch, NULL);
	CHECK(hr == S_OK, "WsCreateChannel 0x%08X", (unsigned)hr);
	WS_ENDPOINT_ADDRESS a = { .url = WS_STRING_VALUE(URL) };
	hr = WsOpenChannel(ch, &a, NULL, NULL);
	CHECK(hr == S_OK, "WsOpenChannel 0x%08X", (unsigned)hr);
	return ch;
}

static WS_CHANNEL_STATE state_of(WS_CHANNEL *ch)
{
	WS_CHANNEL_STATE s = (WS_CHANNEL_STATE)-1;
	WsGetChannelProperty(ch, WS_CHANNEL_PROPERTY_STATE, &s, sizeof(s), NULL);
	return s;
}

static ULONG string_count(WS_ERROR *e)
{
	ULONG n = 999;
	WsGetErrorProperty(e, WS_ERROR_PROPERTY_STRING_COUNT, &n, sizeof(n));
	return n;
}

static const char *error_string(WS_ERROR *e, ULONG i)
{
	const char *s = NULL;
	if (wstrust_get_error_string_utf8(e, i, &s) != S_OK)
		return "";
	return s;
}

static bool ws_string_is(const WS_STRING *s, const char *ascii)
{
	size_t n = strlen(ascii);
	if (s->length != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s->chars[i] != (WCHAR)(unsigned char)ascii[i])
			return false;
	return true;
}

static WS_SECURITY_TOKEN *const SENTINEL = (WS_SECURITY_TOKEN *)(uintptr_t)0x5e17;

static WS_TRUST_VERSION tv13 = WS_TRUST_VERSION_1_3;

/* ---- tests ---- */

static void t_request_on_created_channel(void)
{
	fake_reset(M_TOKEN);
	WS_CHANNEL *ch = NULL;
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, e), S_OK);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_CREATED, "state %d", state_of(ch));
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_INVALID_OPERATION);
	CHECK(tok == SENTINEL, "token written on failure");
	CHECK(string_count(e) >= 1, "no error string");
	CHECK(strstr(error_string(e, 0), "CREATED") != NULL, "string: %s", error_string(e, 0));
	CHECK(fake_requests() == 0, "broker saw %u requests", fake_requests());
	/* Open twice: the second is an invalid operation. */
	WS_ENDPOINT_ADDRESS a = { .url = WS_STRING_VALUE(URL) };
	CHECK_HR(WsOpenChannel(ch, &a, NULL, NULL), S_OK);
	CHECK_HR(WsOpenChannel(ch, &a, NULL, NULL), WS_E_INVALID_OPERATION);
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_success_and_token_properties(void)
{
	fake_reset(M_TOKEN);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_ENDPOINT_ADDRESS rp = { .url = WS_STRING_VALUE(u"urn:example:rp") };
	WS_XML_STRING tt = WS_XML_STRING_VALUE("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0");
	WS_SECURITY_KEY_TYPE kt = WS_SECURITY_KEY_TYPE_NONE;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY props[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO, &rp, sizeof(rp) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &tv13, sizeof(tv13) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE, &tt, sizeof(tt) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &kt, sizeof(kt) },
	};
	WS_SECURITY_TOKEN *tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, props, 4, &tok, NULL, e), S_OK);
	CHECK(tok != NULL, "no token");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "state %d after success", state_of(ch));

	struct ipc_msg m;
	CHECK(last_request(&m), "request not decodable");
	CHECK(m.type == IPC_REQ_TOKEN, "type %x", m.type);
	char *s = ipc_dup_str(&m, T_ENDPOINT);
	CHECK(s && strcmp(s, URL8) == 0, "endpoint %s", s ? s : "(none)");
	free(s);
	CHECK(!ipc_has(&m, T_PROFILE), "profile sent");
	s = ipc_dup_str(&m, T_APPLIES_TO);
	CHECK(s && strcmp(s, "urn:example:rp") == 0, "applies_to %s", s ? s : "(none)");
	free(s);
	s = ipc_dup_str(&m, T_TOKEN_TYPE);
	CHECK(s && strcmp(s, (char *)tt.bytes) == 0, "token type %s", s ? s : "(none)");
	free(s);
	uint32_t v = 0;
	CHECK(ipc_get_u32(&m, T_TRUST_VERSION, &v) && v == 2, "trust version %u", v);
	CHECK(ipc_get_u32(&m, T_KEY_TYPE, &v) && v == 1, "key type %u", v);
	CHECK(!ipc_has(&m, T_TIMEOUT_MS), "timeout sent though the caller set none");

	if (tok) {
		WS_SECURITY_KEY_TYPE k = 0;
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE, &k, sizeof(k), NULL, e), S_OK);
		CHECK(k == WS_SECURITY_KEY_TYPE_NONE, "key type %d", k);
		WS_DATETIME from = { 0 }, till = { 0 };
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME, &from, sizeof(from), NULL, e), S_OK);
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &till, sizeof(till), NULL, e), S_OK);
		CHECK(from.ticks == 639001000000000000ull && till.ticks == 639001036000000000ull, "ticks %llu %llu",
		      (unsigned long long)from.ticks, (unsigned long long)till.ticks);
		CHECK(from.format == WS_DATETIME_FORMAT_UTC, "format %d", from.format);

		/* SERIALIZED_XML: byte-exact, through a heap and a writer. */
		WS_XML_BUFFER *xb = NULL;
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, &xb, sizeof(xb), NULL, e), S_OK);
		WS_HEAP *heap = NULL;
		WS_XML_WRITER *w = NULL;
		CHECK_HR(WsCreateHeap(1 << 20, 0, NULL, 0, &heap, e), S_OK);
		CHECK_HR(WsCreateWriter(NULL, 0, &w, e), S_OK);
		void *bytes = NULL;
		ULONG n = 0;
		CHECK_HR(WsWriteXmlBufferToBytes(w, xb, NULL, NULL, 0, heap, &bytes, &n, e), S_OK);
		CHECK(n == strlen(fake.tok.xml) && memcmp(bytes, fake.tok.xml, n) == 0, "XML bytes differ (%u bytes)", n);
		WS_XML_WRITER_TEXT_ENCODING utf16 = { { WS_XML_WRITER_ENCODING_TYPE_TEXT }, WS_CHARSET_UTF16LE };
		CHECK_HR(WsWriteXmlBufferToBytes(w, xb, &utf16.encoding, NULL, 0, heap, &bytes, &n, e), WS_E_NOT_SUPPORTED);

		/* Heap rules: NULL except for SYMMETRIC_KEY, which needs one. */
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, &xb, sizeof(xb), heap, e), E_INVALIDARG);
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE, &k, sizeof(k), heap, e), E_INVALIDARG);
		WS_BYTES key = { 0 };
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), NULL, e), E_INVALIDARG);
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), heap, e), E_INVALIDARG);
		/* Wrong size, unknown id. */
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME, &from, 4, NULL, e), E_INVALIDARG);
		CHECK_HR(WsGetSecurityTokenProperty(tok, (WS_SECURITY_TOKEN_PROPERTY_ID)99, &from, sizeof(from), NULL, e), E_INVALIDARG);
		/* References: attached present, unattached absent. */
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML, &xb, sizeof(xb), NULL, e), S_OK);
		CHECK_HR(WsWriteXmlBufferToBytes(w, xb, NULL, NULL, 0, heap, &bytes, &n, e), S_OK);
		CHECK(n == strlen(fake.tok.attached) && memcmp(bytes, fake.tok.attached, n) == 0, "attached reference differs");
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML, &xb, sizeof(xb), NULL, e), E_INVALIDARG);
		const char *uri = NULL;
		CHECK_HR(wstrust_get_token_type(tok, &uri, e), S_OK);
		CHECK(uri && strcmp(uri, fake.tok.type) == 0, "token type %s", uri ? uri : "(null)");
		WsFreeWriter(w);
		WsFreeHeap(heap);
	}
	WsFreeSecurityToken(tok);

	/* A second request reuses the connection. */
	unsigned conns = fake.connections;
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, props, 1, &tok, NULL, e), S_OK);
	CHECK(fake.connections == conns, "a new connection for the second request");
	WsFreeSecurityToken(tok);
	CHECK_HR(WsCloseChannel(ch, NULL, e), S_OK);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_CLOSED, "state %d after close", state_of(ch));
	tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_INVALID_OPERATION);
	CHECK(tok == SENTINEL, "token written");
	CHECK_HR(WsResetChannel(ch, e), S_OK);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_CREATED, "state %d after reset", state_of(ch));
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_default_trust_version_and_profile(void)
{
	fake_reset(M_TOKEN);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_SECURITY_TOKEN *tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL), S_OK);
	struct ipc_msg m;
	uint32_t v = 0;
	CHECK(last_request(&m), "request not decodable");
	/* Windows' default when the caller gives no TRUST_VERSION. */
	CHECK(ipc_get_u32(&m, T_TRUST_VERSION, &v) && v == WS_TRUST_VERSION_FEBRUARY_2005, "trust version %u", v);
	WsFreeSecurityToken(tok);
	WsFreeChannel(ch);

	/* Opened by profile: the profile's defaults apply. */
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL), S_OK);
	CHECK_HR(wstrust_open_channel_profile(ch, "demo", NULL), S_OK);
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL), S_OK);
	CHECK(last_request(&m), "request not decodable");
	char *p = ipc_dup_str(&m, T_PROFILE);
	CHECK(p && strcmp(p, "demo") == 0, "profile %s", p ? p : "(none)");
	free(p);
	CHECK(!ipc_has(&m, T_ENDPOINT), "endpoint sent with a profile");
	CHECK(!ipc_has(&m, T_TRUST_VERSION), "trust version sent though not given");
	WsFreeSecurityToken(tok);
	WsFreeChannel(ch);
}

static void t_error_answer_keeps_channel_open(void)
{
	fake_reset(M_ERROR);
	fake.err_hr = (uint32_t)WS_E_ENDPOINT_FAULT_RECEIVED;
	fake.err_strings[0] = "The STS returned a fault: ID3242: The security token could not be authenticated";
	fake.err_strings[1] = "fault code: {http://www.w3.org/2003/05/soap-envelope}Sender / {http://docs.oasis-open.org/ws-sx/ws-trust/200512}FailedAuthentication";
	fake.n_err = 2;
	fake.err_faulted = 0;
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_ENDPOINT_FAULT_RECEIVED);
	CHECK(tok == SENTINEL, "token written on failure");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "state %d after an STS fault", state_of(ch));
	CHECK(string_count(e) == 2, "STRING_COUNT %u", string_count(e));
	CHECK(strcmp(error_string(e, 0), fake.err_strings[0]) == 0, "string 0: %s", error_string(e, 0));
	CHECK(strcmp(error_string(e, 1), fake.err_strings[1]) == 0, "string 1: %s", error_string(e, 1));
	WS_STRING ws;
	CHECK_HR(WsGetErrorString(e, 0, &ws), S_OK);
	CHECK(ws_string_is(&ws, fake.err_strings[0]), "UTF-16 string 0 differs");
	CHECK_HR(WsGetErrorString(e, 2, &ws), E_INVALIDARG);

	/* The channel is still usable. */
	fake_reset(M_TOKEN);
	WsResetError(e);
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), S_OK);
	CHECK(tok != NULL, "no token after the fault");
	WsFreeSecurityToken(tok);

	/* A refused request whose answer omits T_CHANNEL_FAULTED stays OPEN too. */
	fake_reset(M_ERROR);
	fake.err_hr = (uint32_t)E_ACCESSDENIED;
	fake.err_strings[0] = "policy refuses uid 1000 the profile demo";
	fake.n_err = 1;
	WsResetError(e);
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), E_ACCESSDENIED);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "state %d after E_ACCESSDENIED", state_of(ch));
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_error_answer_faults_channel(void)
{
	fake_reset(M_ERROR);
	fake.err_hr = (uint32_t)WS_E_ENDPOINT_UNREACHABLE;
	fake.err_strings[0] = "cannot connect to https://127.0.0.1:1/: Connection refused";
	fake.n_err = 1;
	fake.err_faulted = 1;
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_ENDPOINT_UNREACHABLE);
	CHECK(tok == SENTINEL, "token written on failure");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	CHECK(strcmp(error_string(e, 0), fake.err_strings[0]) == 0, "string 0: %s", error_string(e, 0));
	fake_reset(M_TOKEN);
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_INVALID_OPERATION);
	CHECK(fake_requests() == 0, "a FAULTED channel sent a request");
	CHECK_HR(WsCloseChannel(ch, NULL, e), S_OK);
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void expect_invalid_property(const WS_REQUEST_SECURITY_TOKEN_PROPERTY *props, ULONG n, const char *name,
                                    const char *what)
{
	fake_reset(M_TOKEN);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	HRESULT hr = WsRequestSecurityToken(ch, props, n, &tok, NULL, e);
	CHECK(hr == E_INVALIDARG, "%s: hr 0x%08X", what, (unsigned)hr);
	CHECK(tok == SENTINEL, "%s: token written", what);
	CHECK(string_count(e) >= 1 && strstr(error_string(e, 0), name), "%s: string does not name %s: %s", what, name,
	      error_string(e, 0));
	CHECK(fake_requests() == 0, "%s: the broker saw the request", what);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "%s: state %d", what, state_of(ch));
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_property_validation(void)
{
	WS_TRUST_VERSION bad_tv = (WS_TRUST_VERSION)7;
	uint16_t small = 2;
	WS_SECURITY_KEY_TYPE bearer = WS_SECURITY_KEY_TYPE_NONE, sym = WS_SECURITY_KEY_TYPE_SYMMETRIC;
	ULONG size = 256, odd = 129;
	WS_SECURITY_KEY_ENTROPY_MODE ent = WS_SECURITY_KEY_ENTROPY_MODE_COMBINED;
	WS_REQUEST_SECURITY_TOKEN_ACTION renew = WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT;
	WS_ENDPOINT_ADDRESS empty = { 0 };
	WS_XML_STRING tt_empty = { 0 };

	WS_REQUEST_SECURITY_TOKEN_PROPERTY unknown[] = { { (WS_REQUEST_SECURITY_TOKEN_PROPERTY_ID)99, &size, sizeof(size) } };
	expect_invalid_property(unknown, 1, "unknown property id 99", "unknown id");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY wrong_size[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &small, sizeof(small) } };
	expect_invalid_property(wrong_size, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION", "wrong size");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY bad_value[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &bad_tv, sizeof(bad_tv) } };
	expect_invalid_property(bad_value, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION", "bad value");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY twice[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &tv13, sizeof(tv13) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &tv13, sizeof(tv13) },
	};
	expect_invalid_property(twice, 2, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION", "duplicate");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY size_bearer[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &bearer, sizeof(bearer) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE, &size, sizeof(size) },
	};
	expect_invalid_property(size_bearer, 2, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE", "key size with bearer");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY entropy_bearer[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY, &ent, sizeof(ent) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &bearer, sizeof(bearer) },
	};
	expect_invalid_property(entropy_bearer, 2, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY", "entropy with bearer");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY odd_size[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &sym, sizeof(sym) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE, &odd, sizeof(odd) },
	};
	expect_invalid_property(odd_size, 2, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE", "odd key size");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY renew_alone[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION, &renew, sizeof(renew) } };
	expect_invalid_property(renew_alone, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN", "renew without token");
	WS_SECURITY_TOKEN *some = SENTINEL;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY existing_alone[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN, &some, sizeof(some) } };
	expect_invalid_property(existing_alone, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN", "token without renew");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY empty_rp[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO, &empty, sizeof(empty) } };
	expect_invalid_property(empty_rp, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO", "empty AppliesTo");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY empty_tt[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE, &tt_empty, sizeof(tt_empty) } };
	expect_invalid_property(empty_tt, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE", "empty token type");
	WS_REQUEST_SECURITY_TOKEN_PROPERTY null_value[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, NULL, 4 } };
	expect_invalid_property(null_value, 1, "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE", "NULL value");
}

static void expect_protocol_failure(const char *what)
{
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	HRESULT hr = WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e);
	CHECK(hr == WS_E_INVALID_FORMAT, "%s: hr 0x%08X (%s)", what, (unsigned)hr, error_string(e, 0));
	CHECK(tok == SENTINEL, "%s: token written", what);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "%s: state %d", what, state_of(ch));
	CHECK(string_count(e) >= 1, "%s: no error string", what);
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_garbage_answers(void)
{
	/* Undecodable: an unknown message type. */
	static const uint8_t unknown_type[] = { 0, 0, 0, 4, 0x7f, 0x7f, 0, 0 };
	fake_reset(M_RAW);
	fake.raw = unknown_type;
	fake.raw_len = sizeof(unknown_type);
	expect_protocol_failure("unknown type");

	/* Decodable, but a request where an answer belongs. */
	struct ipc_builder b = { 0 };
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_str(&b, T_PROFILE, "x");
	ipc_finish(&b);
	fake_reset(M_RAW);
	fake.raw = b.buf;
	fake.raw_len = b.len;
	expect_protocol_failure("request as answer");
	ipc_builder_free(&b);

	/* An error answer that carries a success code. */
	fake_reset(M_ERROR);
	fake.err_hr = 0;
	fake.err_strings[0] = "all good";
	fake.n_err = 1;
	expect_protocol_failure("success HRESULT in an error");

	/* T_CHANNEL_FAULTED that is neither 0 nor 1. */
	fake_reset(M_ERROR);
	fake.err_hr = (uint32_t)E_INVALIDARG;
	fake.err_strings[0] = "x";
	fake.n_err = 1;
	fake.err_faulted = 7;
	expect_protocol_failure("faulted = 7");

	/* A token answer with an unknown key type. */
	fake_reset(M_TOKEN);
	fake.tok.key_type = 9;
	expect_protocol_failure("key type 9");

	/* A proof key on a bearer token. */
	static const uint8_t k[16] = { 1 };
	fake_reset(M_TOKEN);
	fake.tok.proof = k;
	fake.tok.proof_len = sizeof(k);
	expect_protocol_failure("proof key on a bearer token");

	/* Validity that ends before it starts. */
	fake_reset(M_TOKEN);
	fake.tok.from = 2000;
	fake.tok.till = 1000;
	expect_protocol_failure("inverted lifetime");

	/* A frame length beyond the bound. */
	static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 1, 1, 0, 0 };
	fake_reset(M_RAW);
	fake.raw = huge;
	fake.raw_len = sizeof(huge);
	expect_protocol_failure("huge frame");
}

static void t_key_type_mismatch(void)
{
	static const uint8_t k[32] = { 7 };
	fake_reset(M_TOKEN);
	fake.tok.key_type = WS_SECURITY_KEY_TYPE_SYMMETRIC;
	fake.tok.proof = k;
	fake.tok.proof_len = sizeof(k);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_SECURITY_KEY_TYPE bearer = WS_SECURITY_KEY_TYPE_NONE;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY p[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &bearer, sizeof(bearer) } };
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, p, 1, &tok, NULL, NULL), WS_E_INVALID_FORMAT);
	CHECK(tok == SENTINEL, "token written");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	WsFreeChannel(ch);
}

static void t_symmetric_key(void)
{
	static const uint8_t k[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
	fake_reset(M_TOKEN);
	fake.tok.key_type = WS_SECURITY_KEY_TYPE_SYMMETRIC;
	fake.tok.proof = k;
	fake.tok.proof_len = sizeof(k);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_SECURITY_KEY_TYPE sym = WS_SECURITY_KEY_TYPE_SYMMETRIC;
	ULONG bits = 256;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY p[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &sym, sizeof(sym) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE, &bits, sizeof(bits) },
	};
	WS_SECURITY_TOKEN *tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, p, 2, &tok, NULL, NULL), S_OK);
	struct ipc_msg m;
	uint32_t v = 0;
	CHECK(last_request(&m) && ipc_get_u32(&m, T_KEY_SIZE, &v) && v == 256, "key size %u", v);
	if (tok) {
		WS_HEAP *heap = NULL;
		WsCreateHeap(4096, 0, NULL, 0, &heap, NULL);
		WS_BYTES key = { 0 };
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), heap, NULL), S_OK);
		CHECK(key.length == sizeof(k) && memcmp(key.bytes, k, sizeof(k)) == 0, "key differs");
		WsFreeHeap(heap);
	}
	WsFreeSecurityToken(tok);

	/* Withheld by the broker: a clear refusal. */
	fake_reset(M_TOKEN);
	fake.tok.key_type = WS_SECURITY_KEY_TYPE_SYMMETRIC;
	fake.tok.withheld = true;
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, p, 1, &tok, NULL, NULL), S_OK);
	if (tok) {
		WS_HEAP *heap = NULL;
		WS_ERROR *e = NULL;
		WsCreateError(NULL, 0, &e);
		WsCreateHeap(4096, 0, NULL, 0, &heap, NULL);
		WS_BYTES key = { 0 };
		CHECK_HR(WsGetSecurityTokenProperty(tok, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), heap, e), E_ACCESSDENIED);
		CHECK(strstr(error_string(e, 0), "release_proof_key"), "string: %s", error_string(e, 0));
		WsFreeHeap(heap);
		WsFreeError(e);
	}
	WsFreeSecurityToken(tok);
	WsFreeChannel(ch);
}

static void t_broker_closes(void)
{
	fake_reset(M_CLOSE);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	HRESULT hr = WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e);
	CHECK(hr == WS_E_ENDPOINT_DISCONNECTED, "hr 0x%08X", (unsigned)hr);
	CHECK(tok == SENTINEL, "token written");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	CHECK(strstr(error_string(e, 0), "closed the connection"), "string: %s", error_string(e, 0));
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_idle_close_reconnects(void)
{
	fake_reset(M_TOKEN_CLOSE);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_SECURITY_TOKEN *tok = NULL;
	unsigned before = fake.connections;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL), S_OK);
	WsFreeSecurityToken(tok);
	usleep(100 * 1000); /* the broker has closed the idle connection */
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL), S_OK);
	CHECK(fake.connections == before + 2, "connections %u", fake.connections - before);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "state %d", state_of(ch));
	WsFreeSecurityToken(tok);
	WsFreeChannel(ch);
}

static void t_timeout(void)
{
	fake_reset(M_SILENT);
	ULONG ms = 300;
	WS_CHANNEL_PROPERTY cp[] = { { WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT, &ms, sizeof(ms) } };
	WS_CHANNEL *ch = open_channel(cp, 1);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	int64_t t0 = ipc_now_ms();
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_OPERATION_TIMED_OUT);
	int64_t took = ipc_now_ms() - t0;
	CHECK(took >= 250 && took < 2000, "took %lld ms for a 300 ms timeout", (long long)took);
	CHECK(tok == SENTINEL, "token written");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	struct ipc_msg m;
	uint32_t v = 0;
	CHECK(last_request(&m) && ipc_get_u32(&m, T_TIMEOUT_MS, &v) && v > 0 && v <= 300, "T_TIMEOUT_MS %u", v);
	WsFreeChannel(ch);
	WsFreeError(e);
}

static void t_no_broker(void)
{
	char bogus[160];
	snprintf(bogus, sizeof(bogus), "%s/nobody-here.sock", fake.dir);
	setenv("WSTRUST_SOCKET", bogus, 1);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	setenv("WSTRUST_SOCKET", fake.path, 1);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_ENDPOINT_UNREACHABLE);
	CHECK(strstr(error_string(e, 0), bogus), "WSTRUST_SOCKET not used: %s", error_string(e, 0));
	CHECK(tok == SENTINEL, "token written");
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	WsFreeChannel(ch);

	/* wstrust_set_channel_socket wins over the environment. */
	fake_reset(M_TOKEN);
	setenv("WSTRUST_SOCKET", bogus, 1);
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL), S_OK);
	setenv("WSTRUST_SOCKET", fake.path, 1);
	CHECK_HR(wstrust_set_channel_socket(ch, fake.path, NULL), S_OK);
	CHECK_HR(wstrust_open_channel_profile(ch, "demo", NULL), S_OK);
	CHECK_HR(wstrust_set_channel_socket(ch, fake.path, NULL), WS_E_INVALID_OPERATION);
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL), S_OK);
	WsFreeSecurityToken(tok);
	WsFreeChannel(ch);
	WsFreeError(e);
}

/* ---- async ---- */

struct cb_state {
	sem_t done;
	volatile int calls;
	volatile HRESULT hr;
	volatile WS_CALLBACK_MODEL model;
};

static void CALLBACK on_done(HRESULT hr, WS_CALLBACK_MODEL model, void *state)
{
	struct cb_state *s = state;
	s->hr = hr;
	s->model = model;
	s->calls++;
	sem_post(&s->done);
}

static bool wait_done(struct cb_state *s, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_timedwait(&s->done, &ts) < 0)
		if (errno != EINTR)
			return false;
	return true;
}

static void t_async(void)
{
	struct cb_state s = { 0 };
	sem_init(&s.done, 0, 0);
	WS_ASYNC_CONTEXT ctx = { on_done, &s };

	/* Success: WS_S_ASYNC, then one callback with S_OK and the token. */
	fake_reset(M_TOKEN);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_SECURITY_TOKEN *tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_S_ASYNC);
	CHECK(wait_done(&s, 5000), "no callback");
	CHECK(s.hr == S_OK, "callback hr 0x%08X", (unsigned)s.hr);
	CHECK(s.model == WS_LONG_CALLBACK, "model %d", s.model);
	CHECK(tok != NULL, "no token after the callback");
	usleep(50 * 1000);
	CHECK(s.calls == 1, "%d callbacks", s.calls);
	WsFreeSecurityToken(tok);

	/* Failure found by validation: returned at once, no callback. */
	s.calls = 0;
	WS_TRUST_VERSION bad = (WS_TRUST_VERSION)9;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY p[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &bad, sizeof(bad) } };
	tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, p, 1, &tok, &ctx, NULL), E_INVALIDARG);
	usleep(100 * 1000);
	CHECK(s.calls == 0, "callback after an immediate failure");
	CHECK(tok == SENTINEL, "token written");

	/* An STS fault, asynchronously: one callback with the HRESULT. */
	fake_reset(M_ERROR);
	fake.err_hr = (uint32_t)WS_E_ENDPOINT_FAULT_RECEIVED;
	fake.err_strings[0] = "The STS returned a fault: no";
	fake.n_err = 1;
	fake.err_faulted = 0;
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, e), WS_S_ASYNC);
	CHECK(wait_done(&s, 5000), "no callback for the fault");
	CHECK(s.hr == WS_E_ENDPOINT_FAULT_RECEIVED, "callback hr 0x%08X", (unsigned)s.hr);
	CHECK(tok == SENTINEL, "token written");
	CHECK(strcmp(error_string(e, 0), "The STS returned a fault: no") == 0, "string %s", error_string(e, 0));
	CHECK(state_of(ch) == WS_CHANNEL_STATE_OPEN, "state %d", state_of(ch));
	usleep(50 * 1000);
	CHECK(s.calls == 1, "%d callbacks", s.calls);

	/* Abort during a pending call: WS_E_OPERATION_ABORTED, once. */
	s.calls = 0;
	fake_reset(M_SILENT);
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_S_ASYNC);
	usleep(100 * 1000);
	CHECK(s.calls == 0, "callback before the abort");
	CHECK_HR(WsAbortChannel(ch, NULL), S_OK);
	CHECK(wait_done(&s, 5000), "no callback after abort");
	CHECK(s.hr == WS_E_OPERATION_ABORTED, "callback hr 0x%08X", (unsigned)s.hr);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d", state_of(ch));
	usleep(50 * 1000);
	CHECK(s.calls == 1, "%d callbacks", s.calls);
	CHECK(tok == SENTINEL, "token written");

	/* Asynchronous request on a channel that is not OPEN: immediate. */
	s.calls = 0;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_E_INVALID_OPERATION);
	usleep(50 * 1000);
	CHECK(s.calls == 0, "callback for an immediate failure");
	WsFreeChannel(ch);
	WsFreeError(e);
	sem_destroy(&s.done);
}

/* ---- threads: one channel each ---- */

static void *thread_main(void *arg)
{
	int *ok = arg;
	*ok = 0;
	for (int i = 0; i < 10; i++) {
		WS_CHANNEL *ch = NULL;
		WS_SECURITY_TOKEN *tok = NULL;
		if (WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL) != S_OK)
			return NULL;
		WS_ENDPOINT_ADDRESS a = { .url = WS_STRING_VALUE(URL) };
		if (WsOpenChannel(ch, &a, NULL, NULL) == S_OK && WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, NULL) == S_OK)
			(*ok)++;
		WsFreeSecurityToken(tok);
		WsFreeChannel(ch);
	}
	return NULL;
}

static void t_threads(void)
{
	fake_reset(M_TOKEN);
	enum { N = 32 };
	pthread_t t[N];
	int ok[N];
	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, thread_main, &ok[i]);
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		CHECK(ok[i] == 10, "thread %d: %d of 10 requests succeeded", i, ok[i]);
	}
}

/* ---- objects without a broker ---- */

static void t_error_object(void)
{
	WS_ERROR *e = NULL;
	CHECK_HR(WsCreateError(NULL, 0, &e), S_OK);
	CHECK(string_count(e) == 0, "count %u", string_count(e));
	WS_STRING a = WS_STRING_VALUE(u"first"), b = WS_STRING_VALUE(u"second");
	CHECK_HR(WsAddErrorString(e, &a), S_OK);
	CHECK_HR(WsAddErrorString(e, &b), S_OK);
	CHECK(string_count(e) == 2, "count %u", string_count(e));
	WS_STRING s;
	CHECK_HR(WsGetErrorString(e, 0, &s), S_OK);
	CHECK(ws_string_is(&s, "second"), "the string added last is not index 0");
	LANGID lang = 0;
	CHECK_HR(WsGetErrorProperty(e, WS_ERROR_PROPERTY_LANGID, &lang, sizeof(lang)), S_OK);
	CHECK(lang != 0, "LANGID 0");
	HRESULT orig = 1;
	CHECK_HR(WsGetErrorProperty(e, WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE, &orig, sizeof(orig)), S_OK);
	CHECK(orig == NOERROR, "original 0x%08X", (unsigned)orig);
	ULONG n;
	CHECK_HR(WsGetErrorProperty(e, WS_ERROR_PROPERTY_STRING_COUNT, &n, 2), E_INVALIDARG);
	CHECK_HR(WsSetErrorProperty(e, WS_ERROR_PROPERTY_STRING_COUNT, &n, sizeof(n)), E_INVALIDARG);
	CHECK_HR(WsResetError(e), S_OK);
	CHECK(string_count(e) == 0, "count %u after reset", string_count(e));
	/* Unpaired surrogate: refused. */
	WCHAR bad[] = { 0xD800, 'x' };
	WS_STRING bs = { 2, bad };
	CHECK_HR(WsAddErrorString(e, &bs), E_INVALIDARG);
	WsFreeError(e);
}

static void t_heap_and_buffers(void)
{
	WS_HEAP *heap = NULL;
	CHECK_HR(WsCreateHeap(64, 0, NULL, 0, &heap, NULL), S_OK);
	void *p = NULL;
	CHECK_HR(WsAlloc(heap, 48, &p, NULL), S_OK);
	CHECK_HR(WsAlloc(heap, 32, &p, NULL), WS_E_QUOTA_EXCEEDED);
	CHECK_HR(WsResetHeap(heap, NULL), S_OK);
	CHECK_HR(WsAlloc(heap, 32, &p, NULL), S_OK);
	WsFreeHeap(heap);

	/* XML in: reader -> buffer -> LOCAL_REQUEST_PARAMETERS, bytes exact. */
	fake_reset(M_TOKEN);
	CHECK_HR(WsCreateHeap(1 << 16, 0, NULL, 0, &heap, NULL), S_OK);
	static const char doc[] = "<?xml version=\"1.0\"?>\n<wst:Claims xmlns:wst=\"urn:t\" Dialect=\"d\"><c/></wst:Claims>\n";
	static const char elem[] = "<wst:Claims xmlns:wst=\"urn:t\" Dialect=\"d\"><c/></wst:Claims>";
	WS_XML_READER *r = NULL;
	CHECK_HR(WsCreateReader(NULL, 0, &r, NULL), S_OK);
	WS_XML_READER_TEXT_ENCODING enc = { { WS_XML_READER_ENCODING_TYPE_TEXT }, WS_CHARSET_UTF8 };
	WS_XML_READER_BUFFER_INPUT in = { { WS_XML_READER_INPUT_TYPE_BUFFER }, (void *)doc, sizeof(doc) - 1 };
	CHECK_HR(WsSetInput(r, &enc.encoding, &in.input, NULL, 0, NULL), S_OK);
	WS_XML_BUFFER *xb = NULL;
	CHECK_HR(WsReadXmlBuffer(r, heap, &xb, NULL), S_OK);
	CHECK_HR(WsReadXmlBuffer(r, heap, &xb, NULL), WS_E_INVALID_OPERATION);
	WsFreeReader(r);

	WS_CHANNEL *ch = open_channel(NULL, 0);
	WS_REQUEST_SECURITY_TOKEN_PROPERTY props[] = { { WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS, &xb, sizeof(xb) } };
	WS_SECURITY_TOKEN *tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, props, 1, &tok, NULL, NULL), S_OK);
	struct ipc_msg m;
	const uint8_t *bytes;
	size_t len = 0;
	CHECK(last_request(&m) && ipc_get_bytes(&m, T_LOCAL_PARAMS, &bytes, &len) && len == sizeof(elem) - 1 &&
	      memcmp(bytes, elem, len) == 0, "T_LOCAL_PARAMS differs (%zu bytes)", len);

	/* A caller-made token as EXISTING_TOKEN for a renewal. */
	WS_SECURITY_TOKEN *mine = NULL;
	CHECK_HR(WsCreateXmlSecurityToken(xb, NULL, NULL, 0, &mine, NULL), S_OK);
	WS_REQUEST_SECURITY_TOKEN_ACTION renew = WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY rp[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION, &renew, sizeof(renew) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN, &mine, sizeof(mine) },
	};
	WsFreeSecurityToken(tok);
	tok = NULL;
	CHECK_HR(WsRequestSecurityToken(ch, rp, 2, &tok, NULL, NULL), S_OK);
	uint32_t v = 0;
	CHECK(last_request(&m) && ipc_get_bytes(&m, T_EXISTING_TOKEN, &bytes, &len) && len == sizeof(elem) - 1 &&
	      ipc_get_u32(&m, T_REQUEST_ACTION, &v) && v == 3, "renewal request differs");
	WsFreeSecurityToken(tok);
	WsFreeSecurityToken(mine);
	WsFreeChannel(ch);
	WsFreeHeap(heap);
}

static void t_channel_arguments(void)
{
	WS_CHANNEL *ch = NULL;
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_DUPLEX, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL), E_INVALIDARG);
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_TCP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL), E_INVALIDARG);
	ULONG zero = 0;
	WS_CHANNEL_PROPERTY cp[] = { { WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT, &zero, sizeof(zero) } };
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, cp, 1, NULL, &ch, NULL), E_INVALIDARG);
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &ch, NULL), S_OK);
	WS_ENDPOINT_ADDRESS bad = { .url = WS_STRING_VALUE(u"ftp://x/") };
	CHECK_HR(WsOpenChannel(ch, &bad, NULL, NULL), WS_E_INVALID_ENDPOINT_URL);
	CHECK(state_of(ch) == WS_CHANNEL_STATE_CREATED, "state %d", state_of(ch));
	WS_CHANNEL_TYPE type = 0;
	CHECK_HR(WsGetChannelProperty(ch, WS_CHANNEL_PROPERTY_CHANNEL_TYPE, &type, sizeof(type), NULL), S_OK);
	CHECK(type == WS_CHANNEL_TYPE_REQUEST, "type %d", type);
	CHECK_HR(WsCloseChannel(ch, NULL, NULL), WS_E_INVALID_OPERATION);
	CHECK_HR(WsAbortChannel(ch, NULL), S_OK);
	WsFreeChannel(ch);
}

/* The Windows values other code relies on (SDK, not Wine). */
static void t_constants(void)
{
	CHECK((uint32_t)WS_E_INVALID_FORMAT == 0x803D0000u, "WS_E_INVALID_FORMAT");
	CHECK((uint32_t)WS_E_OPERATION_TIMED_OUT == 0x803D0006u, "WS_E_OPERATION_TIMED_OUT");
	CHECK((uint32_t)WS_E_ENDPOINT_UNREACHABLE == 0x803D0010u, "WS_E_ENDPOINT_UNREACHABLE");
	CHECK((uint32_t)WS_E_ENDPOINT_FAULT_RECEIVED == 0x803D0013u, "WS_E_ENDPOINT_FAULT_RECEIVED");
	CHECK((uint32_t)WS_E_QUOTA_EXCEEDED == 0x803D0008u, "WS_E_QUOTA_EXCEEDED");
	CHECK((uint32_t)WS_E_SECURITY_VERIFICATION_FAILURE == 0x803D000Au, "WS_E_SECURITY_VERIFICATION_FAILURE");
	CHECK((uint32_t)E_INVALIDARG == 0x80070057u && (uint32_t)E_ACCESSDENIED == 0x80070005u, "E_*");
	CHECK(WS_S_ASYNC == 0x003D0000, "WS_S_ASYNC");
	CHECK(WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE == 1, "security binding types count from 1");
	CHECK(WS_CHANNEL_TYPE_REQUEST == 0x8 && WS_CHANNEL_STATE_OPEN == 3 && WS_CHANNEL_STATE_FAULTED == 4 &&
	      WS_CHANNEL_STATE_CLOSED == 6, "channel enums");
	CHECK(WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION == 13 && WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY == 7 &&
	      WS_TRUST_VERSION_1_3 == 2 && WS_SECURITY_KEY_ENTROPY_MODE_SERVER_ONLY == 2 && WS_CHANNEL_PROPERTY_STATE == 8,
	      "request/token enums");
	CHECK(sizeof(WCHAR) == 2 && sizeof(HRESULT) == 4 && sizeof(ULONG) == 4, "base type sizes");
}


/* ---- review: heap bounds, the original error's text, pending-call races ---- */

/* A heap without a practical limit must still refuse a size whose block
 * header would overflow size_t (else: a tiny block handed out as huge). */
static void t_heap_huge_alloc(void)
{
	WS_HEAP *heap = NULL;
	CHECK_HR(WsCreateHeap(SIZE_MAX, 0, NULL, 0, &heap, NULL), S_OK);
	void *p = (void *)1;
	HRESULT hr = WsAlloc(heap, SIZE_MAX - 8, &p, NULL);
	CHECK(FAILED(hr), "WsAlloc(SIZE_MAX - 8) returned 0x%08X", (unsigned)hr);
	CHECK(p == (void *)1, "ptr written on failure");
	SIZE_T req = 1;
	CHECK_HR(WsGetHeapProperty(heap, WS_HEAP_PROPERTY_REQUESTED_SIZE, &req, sizeof(req), NULL), S_OK);
	CHECK(req == 0, "requested size %zu after a refused allocation", (size_t)req);
	WsFreeHeap(heap);
}

/* Windows: when ORIGINAL_ERROR_CODE is set, its text is one more string,
 * counted in STRING_COUNT, at the last index. */
static void t_original_error_text(void)
{
	char bogus[160];
	snprintf(bogus, sizeof(bogus), "%s/nobody-here.sock", fake.dir);
	setenv("WSTRUST_SOCKET", bogus, 1);
	WS_CHANNEL *ch = open_channel(NULL, 0);
	setenv("WSTRUST_SOCKET", fake.path, 1);
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, NULL, e), WS_E_ENDPOINT_UNREACHABLE);
	HRESULT orig = NOERROR;
	CHECK_HR(WsGetErrorProperty(e, WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE, &orig, sizeof(orig)), S_OK);
	CHECK(orig == ENOENT, "original error code %d, expected ENOENT", (int)orig);
	ULONG n = string_count(e);
	CHECK(n >= 2, "count %u", n);
	CHECK(strstr(error_string(e, 0), bogus), "most specific string first: %s", error_string(e, 0));
	CHECK(strstr(error_string(e, n - 1), strerror(ENOENT)) != NULL, "last string is not the original error's text: %s",
	      error_string(e, n - 1));
	WS_STRING ws;
	CHECK_HR(WsGetErrorString(e, n - 1, &ws), S_OK);
	CHECK_HR(WsGetErrorString(e, n, &ws), E_INVALIDARG);
	/* Reset drops it with the strings. */
	CHECK_HR(WsResetError(e), S_OK);
	CHECK(string_count(e) == 0, "count %u after reset", string_count(e));
	/* An application-set code gets its text too, and NOERROR none. */
	HRESULT code = EACCES;
	CHECK_HR(WsSetErrorProperty(e, WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE, &code, sizeof(code)), S_OK);
	CHECK(string_count(e) == 1 && strstr(error_string(e, 0), strerror(EACCES)), "count %u, string %s", string_count(e),
	      error_string(e, 0));
	/* A string handed out stays valid until WsResetError, even when the
	 * original code changes (ASan sees a use after free otherwise). */
	WS_STRING held = { 0, NULL };
	CHECK_HR(WsGetErrorString(e, 0, &held), S_OK);
	char first[64];
	snprintf(first, sizeof(first), "%s", error_string(e, 0));
	code = EPERM;
	CHECK_HR(WsSetErrorProperty(e, WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE, &code, sizeof(code)), S_OK);
	CHECK(strstr(error_string(e, 0), strerror(EPERM)), "string %s", error_string(e, 0));
	CHECK(held.length > 0 && held.chars && ws_string_is(&held, first), "a handed-out string changed");
	code = NOERROR;
	CHECK_HR(WsSetErrorProperty(e, WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE, &code, sizeof(code)), S_OK);
	CHECK(string_count(e) == 0, "count %u with NOERROR", string_count(e));
	WsFreeChannel(ch);
	WsFreeError(e);
}

/* WsFreeChannel / WsCloseChannel while an asynchronous request is pending:
 * the request completes with WS_E_OPERATION_ABORTED, its callback runs once,
 * the token is not written. */
static void t_free_or_close_while_pending(void)
{
	struct cb_state s = { 0 };
	sem_init(&s.done, 0, 0);
	WS_ASYNC_CONTEXT ctx = { on_done, &s };
	for (int close_first = 0; close_first < 2; close_first++) {
		fake_reset(M_SILENT);
		s.calls = 0;
		WS_CHANNEL *ch = open_channel(NULL, 0);
		WS_SECURITY_TOKEN *tok = SENTINEL;
		CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_S_ASYNC);
		usleep(50 * 1000);
		if (close_first) {
			CHECK_HR(WsCloseChannel(ch, NULL, NULL), S_OK);
			CHECK(state_of(ch) == WS_CHANNEL_STATE_CLOSED, "state %d after close", state_of(ch));
		}
		WsFreeChannel(ch);
		CHECK(wait_done(&s, 5000), "no callback (close_first %d)", close_first);
		CHECK(s.hr == WS_E_OPERATION_ABORTED, "callback hr 0x%08X", (unsigned)s.hr);
		usleep(20 * 1000);
		CHECK(s.calls == 1, "%d callbacks", s.calls);
		CHECK(tok == SENTINEL, "token written");
	}
	sem_destroy(&s.done);
}

struct race_arg {
	WS_CHANNEL *ch;
	WS_SECURITY_TOKEN **tok;
	HRESULT hr;
};

static void *sync_request_main(void *arg)
{
	struct race_arg *a = arg;
	a->hr = WsRequestSecurityToken(a->ch, NULL, 0, a->tok, NULL, NULL);
	return NULL;
}

/* Abort racing the answer, asynchronous and synchronous: exactly one
 * outcome, a token only with S_OK, the channel FAULTED after an abort. */
static void t_abort_races(void)
{
	struct cb_state s = { 0 };
	sem_init(&s.done, 0, 0);
	WS_ASYNC_CONTEXT ctx = { on_done, &s };
	fake_reset(M_TOKEN);
	for (int i = 0; i < 150; i++) {
		s.calls = 0;
		WS_CHANNEL *ch = open_channel(NULL, 0);
		WS_SECURITY_TOKEN *tok = SENTINEL;
		CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_S_ASYNC);
		if (i % 3)
			usleep((useconds_t)(i * 7 % 400));
		CHECK_HR(WsAbortChannel(ch, NULL), S_OK);
		CHECK(wait_done(&s, 5000), "no callback (iteration %d)", i);
		if (s.hr == S_OK) {
			CHECK(tok != SENTINEL && tok != NULL, "S_OK without a token (iteration %d)", i);
			if (tok != SENTINEL)
				WsFreeSecurityToken(tok);
		} else {
			CHECK(s.hr == WS_E_OPERATION_ABORTED, "hr 0x%08X (iteration %d)", (unsigned)s.hr, i);
			CHECK(tok == SENTINEL, "token written on failure (iteration %d)", i);
		}
		CHECK(state_of(ch) == WS_CHANNEL_STATE_FAULTED, "state %d after abort", state_of(ch));
		WsFreeChannel(ch);
		CHECK(s.calls == 1, "%d callbacks (iteration %d)", s.calls, i);

		/* The same, synchronously on another thread. */
		ch = open_channel(NULL, 0);
		tok = SENTINEL;
		struct race_arg a = { ch, &tok, E_FAIL };
		pthread_t t;
		pthread_create(&t, NULL, sync_request_main, &a);
		if (i % 2)
			usleep((useconds_t)(i * 11 % 500));
		CHECK_HR(WsAbortChannel(ch, NULL), S_OK);
		pthread_join(t, NULL);
		if (a.hr == S_OK) {
			CHECK(tok != SENTINEL && tok != NULL, "sync: S_OK without a token (iteration %d)", i);
			if (tok != SENTINEL)
				WsFreeSecurityToken(tok);
		} else {
			CHECK(a.hr == WS_E_OPERATION_ABORTED || a.hr == WS_E_INVALID_OPERATION, "sync: hr 0x%08X (iteration %d)",
			      (unsigned)a.hr, i);
			CHECK(tok == SENTINEL, "sync: token written on failure (iteration %d)", i);
		}
		WsFreeChannel(ch);
	}
	sem_destroy(&s.done);
}

/* WsCloseChannel while a synchronous request is pending on another thread:
 * the request completes (WS_E_OPERATION_ABORTED) before close returns, so
 * the channel's connection is not closed under it and the channel can be
 * reset at once. */
static void t_close_during_sync_call(void)
{
	for (int i = 0; i < 30; i++) {
		fake_reset(M_SILENT);
		WS_CHANNEL *ch = open_channel(NULL, 0);
		WS_SECURITY_TOKEN *tok = SENTINEL;
		struct race_arg a = { ch, &tok, E_FAIL };
		pthread_t t;
		pthread_create(&t, NULL, sync_request_main, &a);
		usleep(30 * 1000);
		CHECK_HR(WsCloseChannel(ch, NULL, NULL), S_OK);
		CHECK_HR(WsResetChannel(ch, NULL), S_OK);
		pthread_join(t, NULL);
		/* INVALID_OPERATION: a slow thread that started after the close. */
		CHECK(a.hr == WS_E_OPERATION_ABORTED || a.hr == WS_E_INVALID_OPERATION, "hr 0x%08X (iteration %d)",
		      (unsigned)a.hr, i);
		CHECK(tok == SENTINEL, "token written (iteration %d)", i);
		WsFreeChannel(ch);
	}
}

/* The callback may free the channel it was called for (docs/API.md), or
 * start the next request on it. */
struct chain_state {
	WS_CHANNEL *ch;
	WS_SECURITY_TOKEN *tok;
	sem_t done;
	int calls;
	HRESULT last;
	WS_ASYNC_CONTEXT ctx;
};

static void CALLBACK on_chain(HRESULT hr, WS_CALLBACK_MODEL model, void *state)
{
	(void)model;
	struct chain_state *c = state;
	c->last = hr;
	if (++c->calls == 1 && hr == S_OK) {
		WsFreeSecurityToken(c->tok);
		c->tok = NULL;
		HRESULT r = WsRequestSecurityToken(c->ch, NULL, 0, &c->tok, &c->ctx, NULL);
		if (r == WS_S_ASYNC)
			return;
		c->last = r;
	}
	WsFreeSecurityToken(c->tok);
	c->tok = NULL;
	WsFreeChannel(c->ch);
	sem_post(&c->done);
}

static void t_callback_chains_and_frees(void)
{
	for (int fail = 0; fail < 2; fail++) {
		fake_reset(M_TOKEN);
		if (fail) {
			fake.mode = M_ERROR;
			fake.err_hr = (uint32_t)WS_E_ENDPOINT_FAULT_RECEIVED;
			fake.err_strings[0] = "no";
			fake.n_err = 1;
			fake.err_faulted = 0;
		}
		struct chain_state c = { .ch = open_channel(NULL, 0) };
		sem_init(&c.done, 0, 0);
		c.ctx = (WS_ASYNC_CONTEXT){ on_chain, &c };
		CHECK_HR(WsRequestSecurityToken(c.ch, NULL, 0, &c.tok, &c.ctx, NULL), WS_S_ASYNC);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		CHECK(sem_timedwait(&c.done, &ts) == 0, "chain did not finish (fail %d)", fail);
		CHECK(c.calls == (fail ? 1 : 2), "%d callbacks (fail %d)", c.calls, fail);
		CHECK(c.last == (fail ? WS_E_ENDPOINT_FAULT_RECEIVED : S_OK), "hr 0x%08X", (unsigned)c.last);
		usleep(20 * 1000);
		sem_destroy(&c.done);
	}
}

/* A broker too busy to accept (its backlog full): WsAbortChannel still
 * completes the pending request at once, even with timeouts disabled. */
static void t_abort_while_connecting(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/busy.sock", fake.dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		CHECK(false, "path too long: %s", path);
		return;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 0) == 0, "listen: %s", strerror(errno));
	int fill[8], nfill = 0;
	while (nfill < 8) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			break;
		}
		fill[nfill++] = fd;
	}
	BOOL off = FALSE;
	WS_CHANNEL_PROPERTY cp[] = { { WS_CHANNEL_PROPERTY_ENABLE_TIMEOUTS, &off, sizeof(off) } };
	WS_CHANNEL *ch = NULL;
	CHECK_HR(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, cp, 1, NULL, &ch, NULL), S_OK);
	CHECK_HR(wstrust_set_channel_socket(ch, path, NULL), S_OK);
	WS_ENDPOINT_ADDRESS a = { .url = WS_STRING_VALUE(URL) };
	CHECK_HR(WsOpenChannel(ch, &a, NULL, NULL), S_OK);
	struct cb_state s = { 0 };
	sem_init(&s.done, 0, 0);
	WS_ASYNC_CONTEXT ctx = { on_done, &s };
	WS_SECURITY_TOKEN *tok = SENTINEL;
	CHECK_HR(WsRequestSecurityToken(ch, NULL, 0, &tok, &ctx, NULL), WS_S_ASYNC);
	usleep(100 * 1000);
	CHECK(s.calls == 0, "completed before the abort: hr 0x%08X", (unsigned)s.hr);
	CHECK_HR(WsAbortChannel(ch, NULL), S_OK);
	bool done = wait_done(&s, 2000);
	CHECK(done, "no callback within 2 s of the abort");
	if (done)
		CHECK(s.hr == WS_E_OPERATION_ABORTED, "callback hr 0x%08X", (unsigned)s.hr);
	CHECK(tok == SENTINEL, "token written");
	/* Unblock a library that missed the abort, so the test ends. */
	close(lfd);
	unlink(path);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	WsFreeChannel(ch);
	sem_destroy(&s.done);
}

#define RUN(t) do { current = #t; t(); } while (0)

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fake_start();
	RUN(t_constants);
	RUN(t_error_object);
	RUN(t_channel_arguments);
	RUN(t_request_on_created_channel);
	RUN(t_success_and_token_properties);
	RUN(t_default_trust_version_and_profile);
	RUN(t_error_answer_keeps_channel_open);
	RUN(t_error_answer_faults_channel);
	RUN(t_property_validation);
	RUN(t_garbage_answers);
	RUN(t_key_type_mismatch);
	RUN(t_symmetric_key);
	RUN(t_broker_closes);
	RUN(t_idle_close_reconnects);
	RUN(t_timeout);
	RUN(t_no_broker);
	RUN(t_async);
	RUN(t_threads);
	RUN(t_heap_and_buffers);
	RUN(t_heap_huge_alloc);
	RUN(t_original_error_text);
	RUN(t_free_or_close_while_pending);
	RUN(t_abort_races);
	RUN(t_close_during_sync_call);
	RUN(t_callback_chains_and_frees);
	RUN(t_abort_while_connecting);
	fake_stop();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("all libwstrust checks passed\n");
	return 0;
}
