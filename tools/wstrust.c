/* wstrust: request WS-Trust tokens from the shell, through libwstrust and the
 * wstrustd broker, and run a self-contained demo.
 *
 *   wstrust token [--socket PATH] (--profile NAME | --endpoint URL)
 *                 [--applies-to URI] [--token-type URI] [--trust-version 1.3|2005]
 *                 [--key-type bearer|symmetric|asymmetric] [--key-size BITS]
 *                 [--entropy client|server|combined] [--action issue|new-context|renew-context]
 *                 [--existing-token FILE] [--sc-version 2005|1.3]
 *                 [--bearer-version original-specification|original-schema|errata-01]
 *                 [--local-params FILE] [--service-params FILE] [--max-reply BYTES]
 *                 [--timeout MS] [--format xml|json]
 *   wstrust demo [--keep] [--format json|xml|pretty]
 *
 * On success the token goes to stdout; on failure nothing does, every error
 * string goes to stderr prefixed "wstrust: ", and the exit status is 1
 * (2 for usage errors). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wstrust/webservices.h>

#include "config.h"

/* from lib/utf.c, compiled into this program too */
int utf8_to_utf16(const char *s, size_t n, WCHAR **out, size_t *outn);

#define EXIT_USAGE 2

static const char *prog = "wstrust";

__attribute__((format(printf, 1, 2)))
static void complain(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- growing output buffer: stdout is written only once everything worked ---- */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n + 1)
			cap *= 2;
		/* Not realloc: the output may hold a proof key, so the old
		 * buffer is wiped before it is freed. */
		char *p = malloc(cap);
		if (!p) {
			o->oom = true;
			return;
		}
		if (o->p) {
			memcpy(p, o->p, o->len);
			explicit_bzero(o->p, o->cap);
			free(o->p);
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s) { out_add(o, s, strlen(s)); }

static void out_json_string(struct out *o, const char *s, size_t n)
{
	out_add(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		switch (c) {
		case '"': out_add(o, "\\\"", 2); break;
		case '\\': out_add(o, "\\\\", 2); break;
		case '\n': out_add(o, "\\n", 2); break;
		case '\r': out_add(o, "\\r", 2); break;
		case '\t': out_add(o, "\\t", 2); break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				out_add(o, esc, 6);
			} else {
				out_add(o, (const char *)&c, 1);
			}
		}
	}
	out_add(o, "\"", 1);
}

/* ---- errors from the library ---- */

static void print_ws_error(WS_ERROR *error, HRESULT hr)
{
	ULONG n = 0;
	if (error)
		WsGetErrorProperty(error, WS_ERROR_PROPERTY_STRING_COUNT, &n, sizeof(n));
	for (ULONG i = 0; i < n; i++) {
		const char *s;
		if (wstrust_get_error_string_utf8(error, i, &s) != S_OK)
			continue;
		/* Strings may quote the STS (a fault's reason): its control
		 * characters (C0, DEL, C1) must not reach the terminal or fake
		 * lines of our own. */
		char *clean = strdup(s);
		if (!clean)
			continue;
		for (unsigned char *p = (unsigned char *)clean; *p; p++) {
			if (*p < 0x20 || *p == 0x7f)
				*p = '?';
			else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
				p[0] = p[1] = '?';
		}
		complain("%s", clean);
		free(clean);
	}
	complain("request failed (HRESULT 0x%08" PRIX32 ")", (uint32_t)hr);
}

/* WS_DATETIME ticks (100 ns since 0001-01-01) -> RFC 3339 UTC. */
#define TICKS_PER_SECOND 10000000ULL
#define UNIX_EPOCH_SECONDS 62135596800ULL /* 0001-01-01 .. 1970-01-01 */

static bool ticks_to_rfc3339(uint64_t ticks, char *buf, size_t len)
{
	uint64_t secs = ticks / TICKS_PER_SECOND;
	uint64_t frac = ticks % TICKS_PER_SECOND;
	if (secs < UNIX_EPOCH_SECONDS)
		return false;
	time_t t = (time_t)(secs - UNIX_EPOCH_SECONDS);
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return false;
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return false;
	if (frac) {
		char f[16];
		snprintf(f, sizeof(f), ".%07" PRIu64, frac);
		size_t fl = strlen(f);
		while (f[fl - 1] == '0')
			f[--fl] = '\0';
		if (n + fl + 2 > len)
			return false;
		memcpy(buf + n, f, fl + 1);
		n += fl;
	}
	if (n + 2 > len)
		return false;
	buf[n] = 'Z';
	buf[n + 1] = '\0';
	return true;
}

static const char *key_type_name(WS_SECURITY_KEY_TYPE k)
{
	switch (k) {
	case WS_SECURITY_KEY_TYPE_NONE: return "bearer";
	case WS_SECURITY_KEY_TYPE_SYMMETRIC: return "symmetric";
	case WS_SECURITY_KEY_TYPE_ASYMMETRIC: return "asymmetric";
	}
	return "unknown";
}

/* ---- the request, as a Windows program makes it ---- */

struct request {
	const char *socket;      /* NULL: $WSTRUST_SOCKET or the default */
	const char *profile;     /* either this ... */
	const char *endpoint;    /* ... or this */
	const char *applies_to;
	const char *token_type;
	int trust_version;       /* 0 = default */
	int key_type;            /* 0 = default */
	unsigned long timeout_ms;
	/* 0 / NULL: the property is not passed (Windows' or the profile's default) */
	unsigned long key_size;          /* ISSUED_TOKEN_KEY_SIZE, bits */
	int entropy;                     /* ISSUED_TOKEN_KEY_ENTROPY */
	int action;                      /* REQUEST_ACTION */
	int sc_version;                  /* SECURE_CONVERSATION_VERSION */
	int bearer_version;              /* BEARER_KEY_TYPE_VERSION */
	const char *existing_token;      /* file: EXISTING_TOKEN via WsCreateXmlSecurityToken */
	const char *local_params;        /* file: LOCAL_REQUEST_PARAMETERS */
	const char *service_params;      /* file: SERVICE_REQUEST_PARAMETERS */
	unsigned long max_reply;         /* MESSAGE_PROPERTIES: heap max size, bytes */
};

enum format { FMT_JSON, FMT_XML, FMT_PRETTY };

struct token_info {
	char *xml;
	size_t xml_len;
	char *token_type;
	WS_SECURITY_KEY_TYPE key_type;
	uint64_t from, till;
	char *attached, *unattached;
	size_t attached_len, unattached_len;
	uint8_t *proof;          /* the symmetric proof key, when the broker released it */
	size_t proof_len;
	bool proof_withheld;     /* the token has a proof key the broker keeps */
};

static void token_info_free(struct token_info *t)
{
	if (t->proof) {
		explicit_bzero(t->proof, t->proof_len);
		free(t->proof);
	}
	free(t->xml);
	free(t->token_type);
	free(t->attached);
	free(t->unattached);
}

static char *dup_mem(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* The token's XML through SERIALIZED_XML + WsWriteXmlBufferToBytes: the
 * same calls a Windows program makes. */
static HRESULT buffer_bytes(WS_SECURITY_TOKEN *token, WS_SECURITY_TOKEN_PROPERTY_ID id, WS_HEAP *heap,
                            WS_XML_WRITER *writer, char **out, size_t *outlen, WS_ERROR *error)
{
	WS_XML_BUFFER *buffer = NULL;
	HRESULT hr = WsGetSecurityTokenProperty(token, id, &buffer, sizeof(buffer), NULL, error);
	if (FAILED(hr))
		return hr;
	WS_XML_WRITER_TEXT_ENCODING enc = { { WS_XML_WRITER_ENCODING_TYPE_TEXT }, WS_CHARSET_UTF8 };
	void *bytes = NULL;
	ULONG n = 0;
	hr = WsWriteXmlBufferToBytes(writer, buffer, &enc.encoding, NULL, 0, heap, &bytes, &n, error);
	if (FAILED(hr))
		return hr;
	*out = dup_mem(bytes, n);
	*outlen = n;
	return *out ? S_OK : E_OUTOFMEMORY;
}


/* XML files for --existing-token and the request parameters: at most this
 * much (the broker's own bound on each of them is 1 MiB). */
#define MAX_XML_FILE (1u << 20)

static bool read_file(const char *path, const char *what, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		complain("%s %s: %s", what, path, strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		complain("%s %s: not a regular file", what, path);
		close(fd);
		return false;
	}
	if (st.st_size > (off_t)MAX_XML_FILE) {
		complain("%s %s: larger than %u bytes", what, path, MAX_XML_FILE);
		close(fd);
		return false;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	if (!buf) {
		complain("out of memory");
		close(fd);
		return false;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			complain("%s %s: %s", what, path, strerror(errno));
			free(buf);
			close(fd);
			return false;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > MAX_XML_FILE) {
			complain("%s %s: larger than %u bytes", what, path, MAX_XML_FILE);
			free(buf);
			close(fd);
			return false;
		}
		if (n == (size_t)st.st_size + 1)
			break;
	}
	close(fd);
	*data = buf;
	*len = n;
	return true;
}

/* FILE -> WS_XML_BUFFER on `heap`, the way a Windows program does it:
 * WsCreateReader, WsSetInput (UTF-8 text, buffer input), WsReadXmlBuffer. */
static HRESULT xml_file_buffer(const char *path, const char *what, WS_HEAP *heap, WS_XML_BUFFER **buffer,
                               WS_ERROR *error)
{
	char *data = NULL;
	size_t len = 0;
	if (!read_file(path, what, &data, &len))
		return E_INVALIDARG;
	WS_XML_READER *reader = NULL;
	WS_XML_READER_TEXT_ENCODING enc = { { WS_XML_READER_ENCODING_TYPE_TEXT }, WS_CHARSET_UTF8 };
	WS_XML_READER_BUFFER_INPUT input = { { WS_XML_READER_INPUT_TYPE_BUFFER }, data, (ULONG)len };
	HRESULT hr = WsCreateReader(NULL, 0, &reader, error);
	if (SUCCEEDED(hr))
		hr = WsSetInput(reader, &enc.encoding, &input.input, NULL, 0, error);
	if (SUCCEEDED(hr))
		hr = WsReadXmlBuffer(reader, heap, buffer, error);
	if (FAILED(hr))
		complain("%s %s: not usable as XML", what, path);
	WsFreeReader(reader);
	free(data);
	return hr;
}

/* The symmetric proof key: released (copied onto `heap`), withheld by the
 * broker (E_ACCESSDENIED), or none. */
static HRESULT proof_key(WS_SECURITY_TOKEN *token, WS_HEAP *heap, struct token_info *info, WS_ERROR *error)
{
	if (info->key_type != WS_SECURITY_KEY_TYPE_SYMMETRIC)
		return S_OK;
	WS_BYTES key = { 0 };
	HRESULT hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), heap,
	                                        NULL);
	if (hr == E_ACCESSDENIED) {
		info->proof_withheld = true;
		return S_OK;
	}
	if (FAILED(hr) || key.length == 0)
		return S_OK; /* a symmetric token without a key the library holds */
	info->proof = malloc(key.length);
	if (!info->proof) {
		(void)error;
		complain("out of memory");
		return E_OUTOFMEMORY;
	}
	memcpy(info->proof, key.bytes, key.length);
	info->proof_len = key.length;
	explicit_bzero(key.bytes, key.length);
	return S_OK;
}

static HRESULT request_token(const struct request *rq, struct token_info *info, WS_ERROR *error)
{
	WS_CHANNEL *channel = NULL;
	WS_SECURITY_TOKEN *token = NULL, *existing = NULL;
	WS_HEAP *heap = NULL, *in_heap = NULL;
	WS_XML_WRITER *writer = NULL;
	WCHAR *url16 = NULL, *applies16 = NULL;
	size_t url16n = 0, applies16n = 0;
	HRESULT hr;

	ULONG timeout = (ULONG)rq->timeout_ms;
	WS_CHANNEL_PROPERTY cprops[1] = { { WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT, &timeout, sizeof(timeout) } };
	hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, cprops, rq->timeout_ms ? 1 : 0, NULL,
	                     &channel, error);
	if (FAILED(hr))
		goto done;
	if (rq->socket && FAILED(hr = wstrust_set_channel_socket(channel, rq->socket, error)))
		goto done;
	if (rq->profile) {
		hr = wstrust_open_channel_profile(channel, rq->profile, error);
	} else {
		if (utf8_to_utf16(rq->endpoint, strlen(rq->endpoint), &url16, &url16n) < 0) {
			hr = E_INVALIDARG;
			complain("--endpoint is not valid UTF-8");
			goto done;
		}
		WS_ENDPOINT_ADDRESS address = { .url = { (ULONG)url16n, url16 } };
		hr = WsOpenChannel(channel, &address, NULL, error);
	}
	if (FAILED(hr))
		goto done;

	/* XML the caller hands in: on a heap of its own, as WS_XML_BUFFERs. */
	WS_XML_BUFFER *local = NULL, *service = NULL, *existing_xml = NULL;
	if (rq->existing_token || rq->local_params || rq->service_params) {
		if (FAILED(hr = WsCreateHeap(4u * MAX_XML_FILE + 4096, 0, NULL, 0, &in_heap, error)))
			goto done;
		if (rq->local_params &&
		    FAILED(hr = xml_file_buffer(rq->local_params, "--local-params", in_heap, &local, error)))
			goto done;
		if (rq->service_params &&
		    FAILED(hr = xml_file_buffer(rq->service_params, "--service-params", in_heap, &service, error)))
			goto done;
		if (rq->existing_token) {
			if (FAILED(hr = xml_file_buffer(rq->existing_token, "--existing-token", in_heap, &existing_xml, error)) ||
			    FAILED(hr = WsCreateXmlSecurityToken(existing_xml, NULL, NULL, 0, &existing, error)))
				goto done;
		}
	}

	WS_REQUEST_SECURITY_TOKEN_PROPERTY props[13];
	ULONG n = 0;
	WS_ENDPOINT_ADDRESS applies = { 0 };
	WS_TRUST_VERSION tv = (WS_TRUST_VERSION)rq->trust_version;
	WS_SECURITY_KEY_TYPE kt = (WS_SECURITY_KEY_TYPE)rq->key_type;
	WS_XML_STRING tt = { 0 };
	ULONG key_size = (ULONG)rq->key_size;
	WS_SECURITY_KEY_ENTROPY_MODE entropy = (WS_SECURITY_KEY_ENTROPY_MODE)rq->entropy;
	WS_REQUEST_SECURITY_TOKEN_ACTION action = (WS_REQUEST_SECURITY_TOKEN_ACTION)rq->action;
	WS_SECURE_CONVERSATION_VERSION scv = (WS_SECURE_CONVERSATION_VERSION)rq->sc_version;
	WS_SECURITY_BEARER_KEY_TYPE_VERSION bkv = (WS_SECURITY_BEARER_KEY_TYPE_VERSION)rq->bearer_version;
	SIZE_T max_reply = (SIZE_T)rq->max_reply;
	WS_HEAP_PROPERTY heap_prop = { WS_HEAP_PROPERTY_MAX_SIZE, &max_reply, sizeof(max_reply) };
	WS_HEAP_PROPERTIES heap_props = { &heap_prop, 1 };
	WS_MESSAGE_PROPERTY msg_prop = { WS_MESSAGE_PROPERTY_HEAP_PROPERTIES, &heap_props, sizeof(heap_props) };
	WS_MESSAGE_PROPERTIES msg_props = { &msg_prop, 1 };
#define ADD_PROP(ID, PTR) (props[n++] = (WS_REQUEST_SECURITY_TOKEN_PROPERTY){ WS_REQUEST_SECURITY_TOKEN_PROPERTY_##ID, (PTR), sizeof(*(PTR)) })
	if (rq->applies_to) {
		if (utf8_to_utf16(rq->applies_to, strlen(rq->applies_to), &applies16, &applies16n) < 0) {
			hr = E_INVALIDARG;
			complain("--applies-to is not valid UTF-8");
			goto done;
		}
		applies.url.length = (ULONG)applies16n;
		applies.url.chars = applies16;
		ADD_PROP(APPLIES_TO, &applies);
	}
	if (rq->trust_version)
		ADD_PROP(TRUST_VERSION, &tv);
	if (rq->token_type) {
		tt.length = (ULONG)strlen(rq->token_type);
		tt.bytes = (BYTE *)rq->token_type;
		ADD_PROP(ISSUED_TOKEN_TYPE, &tt);
	}
	if (rq->key_type)
		ADD_PROP(ISSUED_TOKEN_KEY_TYPE, &kt);
	if (rq->key_size)
		ADD_PROP(ISSUED_TOKEN_KEY_SIZE, &key_size);
	if (rq->entropy)
		ADD_PROP(ISSUED_TOKEN_KEY_ENTROPY, &entropy);
	if (rq->action)
		ADD_PROP(REQUEST_ACTION, &action);
	if (existing)
		ADD_PROP(EXISTING_TOKEN, &existing);
	if (rq->sc_version)
		ADD_PROP(SECURE_CONVERSATION_VERSION, &scv);
	if (rq->bearer_version)
		ADD_PROP(BEARER_KEY_TYPE_VERSION, &bkv);
	if (local)
		ADD_PROP(LOCAL_REQUEST_PARAMETERS, &local);
	if (service)
		ADD_PROP(SERVICE_REQUEST_PARAMETERS, &service);
	if (rq->max_reply)
		ADD_PROP(MESSAGE_PROPERTIES, &msg_props);
#undef ADD_PROP

	hr = WsRequestSecurityToken(channel, props, n, &token, NULL, error);
	if (FAILED(hr))
		goto done;

	if (FAILED(hr = WsCreateHeap(64u << 20, 0, NULL, 0, &heap, error)) ||
	    FAILED(hr = WsCreateWriter(NULL, 0, &writer, error)) ||
	    FAILED(hr = buffer_bytes(token, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, heap, writer, &info->xml,
	                             &info->xml_len, error)))
		goto done;
	/* References are optional: absent ones are left out of the output. */
	if (FAILED(buffer_bytes(token, WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML, heap, writer, &info->attached,
	                        &info->attached_len, NULL)))
		info->attached = NULL;
	if (FAILED(buffer_bytes(token, WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML, heap, writer, &info->unattached,
	                        &info->unattached_len, NULL)))
		info->unattached = NULL;

	WS_DATETIME from, till;
	if (FAILED(hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE, &info->key_type,
	                                           sizeof(info->key_type), NULL, error)) ||
	    FAILED(hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME, &from, sizeof(from),
	                                           NULL, error)) ||
	    FAILED(hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &till, sizeof(till),
	                                           NULL, error)) ||
	    FAILED(hr = proof_key(token, heap, info, error)))
		goto done;
	info->from = from.ticks;
	info->till = till.ticks;
	const char *type_uri = NULL;
	if (SUCCEEDED(wstrust_get_token_type(token, &type_uri, NULL)) && type_uri && !(info->token_type = strdup(type_uri)))
		hr = E_OUTOFMEMORY;

done:
	WsFreeWriter(writer);
	WsFreeHeap(heap);      /* wipes its blocks: the proof key copy too */
	WsFreeSecurityToken(token);
	WsFreeSecurityToken(existing);
	WsFreeHeap(in_heap);
	if (channel) {
		WS_CHANNEL_STATE state = WS_CHANNEL_STATE_CREATED;
		WsGetChannelProperty(channel, WS_CHANNEL_PROPERTY_STATE, &state, sizeof(state), NULL);
		if (state == WS_CHANNEL_STATE_OPEN || state == WS_CHANNEL_STATE_FAULTED)
			WsCloseChannel(channel, NULL, NULL);
		WsFreeChannel(channel);
	}
	free(url16);
	free(applies16);
	return hr;
}

static void out_base64(struct out *o, const uint8_t *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	out_add(o, "\"", 1);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = { tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
		              i + 2 < n ? tab[v & 63] : '=' };
		out_add(o, q, 4);
		explicit_bzero(&v, sizeof(v));
		explicit_bzero(q, sizeof(q));
	}
	out_add(o, "\"", 1);
}

static bool format_token(const struct token_info *t, enum format fmt, struct out *o)
{
	if (fmt == FMT_XML || fmt == FMT_PRETTY) {
		out_add(o, t->xml, t->xml_len);
		out_str(o, "\n");
		return !o->oom;
	}
	char ts[64];
	out_str(o, "{\"token\": ");
	out_json_string(o, t->xml, t->xml_len);
	out_str(o, ", \"token_type\": ");
	if (t->token_type)
		out_json_string(o, t->token_type, strlen(t->token_type));
	else
		out_str(o, "null");
	out_str(o, ", \"key_type\": \"");
	out_str(o, key_type_name(t->key_type));
	out_str(o, "\", \"valid_from\": ");
	if (t->from && ticks_to_rfc3339(t->from, ts, sizeof(ts)))
		out_json_string(o, ts, strlen(ts));
	else
		out_str(o, "null");
	out_str(o, ", \"valid_till\": ");
	if (t->till && ticks_to_rfc3339(t->till, ts, sizeof(ts)))
		out_json_string(o, ts, strlen(ts));
	else
		out_str(o, "null");
	if (t->attached) {
		out_str(o, ", \"attached_reference\": ");
		out_json_string(o, t->attached, t->attached_len);
	}
	if (t->unattached) {
		out_str(o, ", \"unattached_reference\": ");
		out_json_string(o, t->unattached, t->unattached_len);
	}
	if (t->proof) {
		out_str(o, ", \"proof_key\": ");
		out_base64(o, t->proof, t->proof_len);
	}
	out_str(o, ", \"proof_key_withheld\": ");
	out_str(o, t->proof_withheld ? "true" : "false");
	out_str(o, "}\n");
	return !o->oom;
}

static int write_stdout(const struct out *o)
{
	size_t off = 0;
	while (off < o->len) {
		ssize_t n = write(STDOUT_FILENO, o->p + off, o->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			complain("cannot write the token to stdout: %s", strerror(errno));
			return 1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Request, format, print.  Returns the exit status. */
static int run_request(const struct request *rq, enum format fmt)
{
	WS_ERROR *error = NULL;
	if (FAILED(WsCreateError(NULL, 0, &error))) {
		complain("out of memory");
		return 1;
	}
	struct token_info info = { 0 };
	HRESULT hr = request_token(rq, &info, error);
	int status = 0;
	if (FAILED(hr)) {
		print_ws_error(error, hr);
		status = 1;
	} else {
		struct out o = { 0 };
		if (!format_token(&info, fmt, &o)) {
			complain("out of memory formatting the token");
			status = 1;
		} else {
			status = write_stdout(&o);
		}
		if (status == 0 && fmt == FMT_PRETTY) {
			char from[64] = "(none)", till[64] = "(none)";
			if (info.from)
				ticks_to_rfc3339(info.from, from, sizeof(from));
			if (info.till)
				ticks_to_rfc3339(info.till, till, sizeof(till));
			fprintf(stderr, "%s: got a %s token of type %s, valid from %s till %s (%zu bytes of XML)\n", prog,
			        key_type_name(info.key_type), info.token_type ? info.token_type : "(not stated)", from, till,
			        info.xml_len);
		}
		if (o.p)
			explicit_bzero(o.p, o.cap);
		free(o.p);
	}
	token_info_free(&info);
	WsFreeError(error);
	return status;
}

/* ---- wstrust token ---- */

static void token_usage(FILE *f)
{
	fprintf(f,
	        "usage: wstrust token [--socket PATH] (--profile NAME | --endpoint URL) [options]\n"
	        "\n"
	        "Request a token from the wstrust broker and print it.\n"
	        "\n"
	        "  --socket PATH          broker socket (default: $WSTRUST_SOCKET, else %s)\n"
	        "  --profile NAME         broker profile to use\n"
	        "  --endpoint URL         STS URL; the broker serves it from the profile with that endpoint\n"
	        "  --applies-to URI       AppliesTo address (default: the profile's)\n"
	        "  --token-type URI       token type to request (default: the profile's)\n"
	        "  --trust-version V      1.3 or 2005 (default: the profile's with --profile, 2005 with --endpoint)\n"
	        "  --key-type T           bearer, symmetric or asymmetric (default: the profile's)\n"
	        "  --key-size BITS        key size for a symmetric key (ISSUED_TOKEN_KEY_SIZE)\n"
	        "  --entropy E            client, server or combined (ISSUED_TOKEN_KEY_ENTROPY; default server)\n"
	        "  --action A             issue, new-context or renew-context (REQUEST_ACTION; default issue)\n"
	        "  --existing-token FILE  the token to renew (XML; EXISTING_TOKEN, with --action renew-context)\n"
	        "  --sc-version V         SecureConversation version: 2005 or 1.3 (default 2005)\n"
	        "  --bearer-version V     WS-Trust 1.3 Bearer URI: original-specification, original-schema\n"
	        "                         or errata-01 (BEARER_KEY_TYPE_VERSION)\n"
	        "  --local-params FILE    XML elements written into the RST (LOCAL_REQUEST_PARAMETERS)\n"
	        "  --service-params FILE  XML elements for the STS (SERVICE_REQUEST_PARAMETERS; with 1.3\n"
	        "                         inside wst:SecondaryParameters)\n"
	        "  --max-reply BYTES      largest STS reply to accept (MESSAGE_PROPERTIES heap max size)\n"
	        "  --timeout MS           give up after MS milliseconds (default 30000)\n"
	        "  --format xml|json      xml: the token element; json: token and its properties (default xml)\n"
	        "  -h, --help             this help\n"
	        "\n"
	        "json keys: token, token_type, key_type (bearer|symmetric|asymmetric), valid_from,\n"
	        "valid_till (RFC 3339 UTC or null), attached_reference and unattached_reference (XML,\n"
	        "only when the STS sent them), proof_key (base64; only when the broker released the\n"
	        "symmetric proof key), proof_key_withheld (true when the broker keeps it).\n"
	        "\n"
	        "On failure nothing is printed on stdout, the errors go to stderr, and the exit status is 1.\n",
	        WSTRUST_DEFAULT_SOCKET);
}

static bool parse_format(const char *s, enum format *f, bool allow_pretty)
{
	if (strcmp(s, "json") == 0)
		*f = FMT_JSON;
	else if (strcmp(s, "xml") == 0)
		*f = FMT_XML;
	else if (allow_pretty && strcmp(s, "pretty") == 0)
		*f = FMT_PRETTY;
	else
		return false;
	return true;
}

struct choice {
	const char *name;
	int value;
};

/* One of a fixed set of words; a usage error names them all. */
static bool pick(const char *flag, const char *arg, const struct choice *c, int *out)
{
	for (const struct choice *k = c; k->name; k++)
		if (strcmp(arg, k->name) == 0) {
			*out = k->value;
			return true;
		}
	char list[256] = "";
	for (const struct choice *k = c; k->name; k++) {
		if (k != c)
			strncat(list, k->name[0] && k[1].name ? ", " : " or ", sizeof(list) - strlen(list) - 1);
		strncat(list, k->name, sizeof(list) - strlen(list) - 1);
	}
	complain("%s must be %s, not %s", flag, list, arg);
	return false;
}

static bool parse_number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return false;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return false;
	*out = v;
	return true;
}

static int cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "profile", required_argument, NULL, 'p' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "applies-to", required_argument, NULL, 'a' },
		{ "token-type", required_argument, NULL, 't' },
		{ "trust-version", required_argument, NULL, 'v' },
		{ "key-type", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "format", required_argument, NULL, 'f' },
		{ "key-size", required_argument, NULL, 'K' },
		{ "entropy", required_argument, NULL, 'E' },
		{ "action", required_argument, NULL, 'A' },
		{ "existing-token", required_argument, NULL, 'X' },
		{ "sc-version", required_argument, NULL, 'S' },
		{ "bearer-version", required_argument, NULL, 'B' },
		{ "local-params", required_argument, NULL, 'L' },
		{ "service-params", required_argument, NULL, 'P' },
		{ "max-reply", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct choice entropies[] = {
		{ "client", WS_SECURITY_KEY_ENTROPY_MODE_CLIENT_ONLY },
		{ "server", WS_SECURITY_KEY_ENTROPY_MODE_SERVER_ONLY },
		{ "combined", WS_SECURITY_KEY_ENTROPY_MODE_COMBINED },
		{ NULL, 0 },
	};
	static const struct choice actions[] = {
		{ "issue", WS_REQUEST_SECURITY_TOKEN_ACTION_ISSUE },
		{ "new-context", WS_REQUEST_SECURITY_TOKEN_ACTION_NEW_CONTEXT },
		{ "renew-context", WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT },
		{ NULL, 0 },
	};
	static const struct choice sc_versions[] = {
		{ "2005", WS_SECURE_CONVERSATION_VERSION_FEBRUARY_2005 },
		{ "1.3", WS_SECURE_CONVERSATION_VERSION_1_3 },
		{ NULL, 0 },
	};
	static const struct choice bearer_versions[] = {
		{ "original-specification", WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ORIGINAL_SPECIFICATION },
		{ "original-schema", WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ORIGINAL_SCHEMA },
		{ "errata-01", WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ERRATA_01 },
		{ NULL, 0 },
	};
	struct request rq = { 0 };
	enum format fmt = FMT_XML;
	int c;
	optind = 1;
	/* getopt's own messages ("unrecognized option") name argv[0]. */
	argv[0] = (char *)prog;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': rq.socket = optarg; break;
		case 'p': rq.profile = optarg; break;
		case 'e': rq.endpoint = optarg; break;
		case 'a': rq.applies_to = optarg; break;
		case 't': rq.token_type = optarg; break;
		case 'v':
			if (strcmp(optarg, "1.3") == 0)
				rq.trust_version = WS_TRUST_VERSION_1_3;
			else if (strcmp(optarg, "2005") == 0)
				rq.trust_version = WS_TRUST_VERSION_FEBRUARY_2005;
			else {
				complain("--trust-version must be 1.3 or 2005, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'k':
			if (strcmp(optarg, "bearer") == 0)
				rq.key_type = WS_SECURITY_KEY_TYPE_NONE;
			else if (strcmp(optarg, "symmetric") == 0)
				rq.key_type = WS_SECURITY_KEY_TYPE_SYMMETRIC;
			else if (strcmp(optarg, "asymmetric") == 0)
				rq.key_type = WS_SECURITY_KEY_TYPE_ASYMMETRIC;
			else {
				complain("--key-type must be bearer, symmetric or asymmetric, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'T': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || v > UINT32_MAX) {
				complain("--timeout must be a positive number of milliseconds, not %s", optarg);
				return EXIT_USAGE;
			}
			rq.timeout_ms = v;
			break;
		}
		case 'f':
			if (!parse_format(optarg, &fmt, false)) {
				complain("--format must be xml or json, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'K':
			if (!parse_number(optarg, 16384, &rq.key_size)) {
				complain("--key-size must be a positive number of bits, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'M':
			if (!parse_number(optarg, UINT32_MAX, &rq.max_reply)) {
				complain("--max-reply must be a positive number of bytes, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'E':
			if (!pick("--entropy", optarg, entropies, &rq.entropy))
				return EXIT_USAGE;
			break;
		case 'A':
			if (!pick("--action", optarg, actions, &rq.action))
				return EXIT_USAGE;
			break;
		case 'S':
			if (!pick("--sc-version", optarg, sc_versions, &rq.sc_version))
				return EXIT_USAGE;
			break;
		case 'B':
			if (!pick("--bearer-version", optarg, bearer_versions, &rq.bearer_version))
				return EXIT_USAGE;
			break;
		case 'X': rq.existing_token = optarg; break;
		case 'L': rq.local_params = optarg; break;
		case 'P': rq.service_params = optarg; break;
		case 'h':
			token_usage(stdout);
			return 0;
		default:
			token_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		complain("unexpected argument: %s", argv[optind]);
		return EXIT_USAGE;
	}
	if (!rq.profile == !rq.endpoint) {
		complain("give exactly one of --profile NAME or --endpoint URL (see wstrust token --help)");
		return EXIT_USAGE;
	}
	return run_request(&rq, fmt);
}

/* ---- wstrust demo ---- */

static volatile sig_atomic_t interrupted;
static volatile pid_t sts_pid = -1, broker_pid = -1;

static void on_signal(int sig)
{
	interrupted = sig;
	/* kill() is async-signal-safe: the children go now; the main line
	 * notices the failure and cleans up. */
	if (sts_pid > 0)
		kill(sts_pid, SIGTERM);
	if (broker_pid > 0)
		kill(broker_pid, SIGTERM);
}

static void demo_usage(FILE *f)
{
	fprintf(f,
	        "usage: wstrust demo [--keep] [--format json|xml|pretty]\n"
	        "\n"
	        "Start the development STS and a private wstrustd on loopback and a temporary\n"
	        "directory, request a SAML 2.0 bearer token for urn:example:rp through libwstrust,\n"
	        "print it, and stop both.\n"
	        "\n"
	        "  --keep                 keep the temporary directory (configs, logs) and print its path\n"
	        "  --format F             json (default), xml, or pretty (XML on stdout, a summary on stderr)\n"
	        "  -h, --help             this help\n");
}

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* A build-tree sibling of this program (../DIR/NAME from its directory), if
 * there is one, else the installed path. */
static char *find_program(const char *build_rel, const char *installed)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *dir = dirname(self);
		char cand[PATH_MAX];
		if ((size_t)snprintf(cand, sizeof(cand), "%s/../%s", dir, build_rel) < sizeof(cand) &&
		    access(cand, X_OK) == 0)
			return realpath(cand, NULL);
	}
	return strdup(installed);
}

/* Show a child's log on stderr, so a failed start explains itself. */
static void show_log(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[1024];
	bool any = false;
	while (fgets(line, sizeof(line), f)) {
		if (!any)
			fprintf(stderr, "%s: --- %s (%s) ---\n", prog, what, path);
		any = true;
		fputs(line, stderr);
		if (line[strlen(line) - 1] != '\n')
			fputc('\n', stderr);
	}
	fclose(f);
}

static pid_t spawn(char *const argv[], int in_fd, int out_fd, int err_fd)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* Children die with the CLI, even when it is SIGKILLed. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	execv(argv[0], argv);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void stop_child(volatile pid_t *pidp)
{
	pid_t pid = *pidp;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			*pidp = -1;
			return;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	*pidp = -1;
}

static bool child_dead(volatile pid_t *pidp, int *status)
{
	pid_t pid = *pidp;
	if (pid <= 0)
		return true;
	if (waitpid(pid, status, WNOHANG) == pid) {
		*pidp = -1;
		return true;
	}
	return false;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Minimal extraction of one value from the STS's one-line JSON object:
 * a number or a string (with the escapes JSON has; \u only for ASCII). */
static char *json_get(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != ':')
		return NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	char *out = malloc(strlen(p) + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p != '\\') {
				out[o++] = *p;
				continue;
			}
			p++;
			switch (*p) {
			case 'n': out[o++] = '\n'; break;
			case 't': out[o++] = '\t'; break;
			case 'u': {
				unsigned v;
				if (sscanf(p + 1, "%4x", &v) != 1 || v == 0 || v > 0x7f)
					goto bad;
				out[o++] = (char)v;
				p += 4;
				break;
			}
			case '\0': goto bad;
			default: out[o++] = *p;
			}
		}
		if (*p != '"')
			goto bad;
	} else {
		while (*p >= '0' && *p <= '9')
			out[o++] = *p++;
		if (o == 0)
			goto bad;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Read one line from fd within timeout_ms; NULL on EOF/timeout. */
static char *read_line(int fd, int timeout_ms, volatile pid_t *pidp)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (interrupted)
			break;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0) {
			int st;
			if (child_dead(pidp, &st))
				break;
			continue;
		}
		if (len + 1 >= cap) {
			if (cap > (1u << 20))
				break;
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				break;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, 1);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return buf;
		}
		len++;
	}
	free(buf);
	return NULL;
}

static bool write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		complain("cannot create %s: %s", path, strerror(errno));
		return false;
	}
	size_t len = strlen(content);
	bool ok = write(fd, content, len) == (ssize_t)len;
	if (close(fd) < 0)
		ok = false;
	if (!ok)
		complain("cannot write %s: %s", path, strerror(errno));
	return ok;
}

static bool socket_ready(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", no_argument, NULL, 'k' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool keep = false;
	enum format fmt = FMT_JSON;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keep = true; break;
		case 'f':
			if (!parse_format(optarg, &fmt, true)) {
				complain("--format must be json, xml or pretty, not %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': demo_usage(stdout); return 0;
		default: demo_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		complain("unexpected argument: %s", argv[optind]);
		return EXIT_USAGE;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = 1;
	/* $TMPDIR, else /tmp; short enough for the socket path (108 bytes). */
	const char *tmpdir = getenv("TMPDIR");
	if (!tmpdir || !*tmpdir || strlen(tmpdir) > 60)
		tmpdir = "/tmp";
	char tmpl[128];
	snprintf(tmpl, sizeof(tmpl), "%s/wstrust-demo-XXXXXX", tmpdir);
	char *dir = mkdtemp(tmpl);
	if (!dir) {
		complain("cannot create a temporary directory in %s: %s", tmpdir, strerror(errno));
		return 1;
	}
	char *sts_dir = path_join(dir, "sts"), *sts_log = path_join(dir, "sts.log");
	char *conf = path_join(dir, "wstrustd.conf"), *sock = path_join(dir, "wstrustd.sock");
	char *secret = path_join(dir, "secret"), *broker_log = path_join(dir, "wstrustd.log");
	char *devsts = NULL, *broker = NULL, *worker = NULL, *line = NULL, *port = NULL, *ca = NULL;
	int sts_in[2] = { -1, -1 }, sts_out[2] = { -1, -1 }, log_fd = -1, null_fd = -1;
	if (!sts_dir || !sts_log || !conf || !sock || !secret || !broker_log) {
		complain("out of memory");
		goto out;
	}

	/* The dev STS: from the source tree when built there, else installed. */
	char cand[PATH_MAX];
	snprintf(cand, sizeof(cand), "%s/tests/sts/devsts.py", WSTRUST_SOURCE_ROOT);
	devsts = strdup(access(cand, R_OK) == 0 ? cand : WSTRUST_DATADIR "/devsts.py");
	broker = find_program("broker/wstrustd", WSTRUST_SBINDIR "/wstrustd");
	worker = find_program("worker/wstrust-worker", WSTRUST_LIBEXECDIR "/wstrust-worker");
	if (!devsts || !broker || !worker) {
		complain("out of memory");
		goto out;
	}
	if (access(devsts, R_OK) != 0) {
		complain("the development STS is not at %s: %s", devsts, strerror(errno));
		goto out;
	}
	if (access(broker, X_OK) != 0) {
		complain("wstrustd is not at %s: %s (build the broker first)", broker, strerror(errno));
		goto out;
	}

	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	log_fd = open(sts_log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (null_fd < 0 || log_fd < 0 || pipe2(sts_in, O_CLOEXEC) < 0 || pipe2(sts_out, O_CLOEXEC) < 0) {
		complain("cannot set up the STS's pipes and log: %s", strerror(errno));
		goto out;
	}
	{
		char *sts_argv[] = { "/usr/bin/python3", devsts, "--workdir", sts_dir, "--exit-on-stdin-eof", NULL };
		sts_pid = spawn(sts_argv, sts_in[0], sts_out[1], log_fd);
	}
	if (sts_pid < 0) {
		complain("cannot start the STS: %s", strerror(errno));
		goto out;
	}
	close(sts_in[0]);
	close(sts_out[1]);
	close(log_fd);
	sts_in[0] = sts_out[1] = log_fd = -1;

	line = read_line(sts_out[0], 60000, &sts_pid);
	if (!line) {
		if (!interrupted) {
			complain("the development STS did not report ready (no JSON line within 60 s)");
			show_log("STS log", sts_log);
		}
		goto out;
	}
	port = json_get(line, "port");
	ca = json_get(line, "ca_file");
	if (!port || !ca) {
		complain("the development STS's ready line has no port or ca_file: %s", line);
		goto out;
	}

	if (!write_file(secret, "secret", 0600))
		goto out;
	{
		char endpoint[256];
		snprintf(endpoint, sizeof(endpoint), "https://127.0.0.1:%s/adfs/services/trust/13/usernamemixed", port);
		size_t n = 4096 + strlen(sock) + strlen(ca) + strlen(secret) + strlen(worker);
		char *cfg = malloc(n);
		if (!cfg) {
			complain("out of memory");
			goto out;
		}
		snprintf(cfg, n,
		         "; written by wstrust demo\n"
		         "[broker]\n"
		         "socket = %s\n"
		         "worker_path = %s\n"
		         "\n"
		         "[profile demo]\n"
		         "endpoint = %s\n"
		         "trust_version = 1.3\n"
		         "soap_version = 1.2\n"
		         "ca_file = %s\n"
		         "auth = username\n"
		         "username = alice\n"
		         "password_file = %s\n"
		         "applies_to = urn:example:rp\n"
		         "key_type = bearer\n"
		         "token_type = http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0\n",
		         sock, worker, endpoint, ca, secret);
		bool ok = write_file(conf, cfg, 0600);
		free(cfg);
		if (!ok)
			goto out;
	}

	log_fd = open(broker_log, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		complain("cannot create %s: %s", broker_log, strerror(errno));
		goto out;
	}
	{
		char *b_argv[] = { broker, "--config", conf, "--foreground", NULL };
		broker_pid = spawn(b_argv, null_fd, log_fd, log_fd);
	}
	close(log_fd);
	log_fd = -1;
	if (broker_pid < 0) {
		complain("cannot start wstrustd: %s", strerror(errno));
		goto out;
	}

	/* Wait for the broker's socket, bounded; a child that dies explains why. */
	bool ready = false;
	for (int i = 0; i < 300 && !interrupted; i++) {
		int st = 0;
		if (child_dead(&broker_pid, &st)) {
			complain("wstrustd exited before it was ready (%s %d)", WIFSIGNALED(st) ? "signal" : "status",
			         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			show_log("wstrustd log", broker_log);
			goto out;
		}
		if (child_dead(&sts_pid, &st)) {
			complain("the development STS exited unexpectedly");
			show_log("STS log", sts_log);
			goto out;
		}
		if (socket_ready(sock)) {
			ready = true;
			break;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (!ready) {
		if (!interrupted) {
			complain("wstrustd did not open %s within 15 s", sock);
			show_log("wstrustd log", broker_log);
		}
		goto out;
	}

	struct request rq = { .socket = sock, .profile = "demo" };
	status = run_request(&rq, fmt);
	if (status != 0 && !interrupted) {
		show_log("wstrustd log", broker_log);
		show_log("STS log", sts_log);
	}

out:
	stop_child(&broker_pid);
	if (sts_in[1] >= 0)
		close(sts_in[1]); /* --exit-on-stdin-eof */
	stop_child(&sts_pid);
	for (int i = 0; i < 2; i++) {
		if (sts_in[i] >= 0)
			close(sts_in[i]);
		if (sts_out[i] >= 0)
			close(sts_out[i]);
	}
	if (log_fd >= 0)
		close(log_fd);
	if (null_fd >= 0)
		close(null_fd);
	if (keep)
		fprintf(stderr, "%s: kept %s\n", prog, dir);
	else
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(sts_dir); free(sts_log); free(conf); free(sock); free(secret); free(broker_log);
	free(devsts); free(broker); free(worker); free(line); free(port); free(ca);
	if (interrupted) {
		complain("interrupted");
		return 128 + interrupted;
	}
	return status;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: wstrust COMMAND [options]\n"
	        "\n"
	        "commands:\n"
	        "  token    request a token from the wstrust broker and print it\n"
	        "  demo     run the development STS and a private broker, and request a token\n"
	        "\n"
	        "wstrust COMMAND --help describes each command.  wstrust --version prints the version.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("wstrust %s\n", WSTRUST_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (strcmp(argv[1], "demo") == 0)
		return cmd_demo(argc - 1, argv + 1);
	complain("unknown command %s (try wstrust --help)", argv[1]);
	return EXIT_USAGE;
}
