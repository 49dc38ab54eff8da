/* The strict message codec: see ipc.h for the frame layout. */
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- schema ---- */

struct field_rule {
	uint16_t tag;
	uint8_t kind;       /* enum ipc_kind */
	bool required;
	bool repeat;
	uint32_t max;       /* for STR/BYTES */
};

#define U32(t) { t, IPC_U32, false, false, 4 }
#define U64(t) { t, IPC_U64, false, false, 8 }
#define STR(t) { t, IPC_STR, false, false, IPC_MAX_SHORT }
#define BIG(t) { t, IPC_BYTES, false, false, IPC_MAX_REPLY }
#define REQ(r) { (r).tag, (r).kind, true, (r).repeat, (r).max }

static const struct field_rule req_token_rules[] = {
	STR(T_PROFILE), STR(T_ENDPOINT), STR(T_APPLIES_TO), U32(T_TRUST_VERSION),
	STR(T_TOKEN_TYPE), U32(T_KEY_TYPE), U32(T_KEY_SIZE), U32(T_ENTROPY_MODE),
	U32(T_REQUEST_ACTION), U32(T_SC_VERSION), U32(T_BEARER_VERSION),
	{ T_LOCAL_PARAMS, IPC_BYTES, false, false, 1u << 20 },
	{ T_SERVICE_PARAMS, IPC_BYTES, false, false, 1u << 20 },
	{ T_EXISTING_TOKEN, IPC_BYTES, false, false, 1u << 20 },
	U32(T_MAX_REPLY), U32(T_TIMEOUT_MS), U32(T_EMBEDDED),
};

static const struct field_rule ans_token_rules[] = {
	{ T_TOKEN_XML, IPC_BYTES, true, false, IPC_MAX_REPLY },
	STR(T_TOKEN_TYPE_URI), { T_KEY_TYPE_OUT, IPC_U32, true, false, 4 },
	U64(T_VALID_FROM), U64(T_VALID_TILL), BIG(T_ATTACHED_REF), BIG(T_UNATTACHED_REF),
	{ T_PROOF_KEY, IPC_BYTES, false, false, 1024 }, U32(T_PROOF_WITHHELD),
};

static const struct field_rule ans_error_rules[] = {
	{ T_HRESULT, IPC_U32, true, false, 4 },
	{ T_ERROR_STRING, IPC_STR, true, true, IPC_MAX_SHORT },
	U32(T_CHANNEL_FAULTED),
};

static const struct field_rule w_ready_rules[] = { { 0, 0, false, false, 0 } };

static const struct field_rule w_parse_rules[] = {
	{ T_REPLY, IPC_BYTES, true, false, IPC_MAX_REPLY },
	U32(T_HTTP_STATUS), U32(T_EXPECT_TRUST), U32(T_EXPECT_SOAP),
	STR(T_EXPECT_RELATES), STR(T_EXPECT_CONTEXT),
	U32(T_MAX_DEPTH), U32(T_MAX_TEXT), U32(T_MAX_ATTRS), U32(T_MAX_NODES),
};

static const struct field_rule w_result_rules[] = {
	{ T_RESULT_KIND, IPC_U32, true, false, 4 },
	BIG(T_R_TOKEN_XML), STR(T_R_TOKEN_TYPE), STR(T_R_KEY_TYPE), U32(T_R_KEY_SIZE),
	U64(T_R_CREATED), U64(T_R_EXPIRES), STR(T_R_APPLIES_TO),
	BIG(T_R_ATTACHED), BIG(T_R_UNATTACHED), U32(T_R_PROOF_KIND),
	BIG(T_R_PROOF_DATA), STR(T_R_CK_ALGORITHM), { T_R_ENTROPY, IPC_BYTES, false, false, 1024 },
	STR(T_R_RELATES_TO), STR(T_R_CONTEXT), STR(T_R_FAULT_CODE),
	{ T_R_FAULT_SUBCODE, IPC_STR, false, true, IPC_MAX_SHORT },
	{ T_R_FAULT_REASON, IPC_STR, false, false, 64u * 1024u }, BIG(T_R_FAULT_DETAIL),
	STR(T_R_ERROR), STR(T_R_SCT_ID), STR(T_R_SCT_INSTANCE),
	U32(T_R_TRUST_VERSION), U32(T_R_SOAP_VERSION), U32(T_R_ERROR_CODE),
	{ T_R_ENTROPY_ENC, IPC_BYTES, false, false, 64u * 1024u },
};

/* embedded-mode setup (see ipc.h); secrets are small, files are paths. */
static const struct field_rule emb_setup_rules[] = {
	{ T_EMB_ENDPOINT, IPC_STR, true, false, IPC_MAX_SHORT },
	{ T_EMB_AUTH, IPC_U32, true, false, 4 },
	U32(T_EMB_SOAP_VERSION), STR(T_EMB_CA_FILE), STR(T_EMB_USERNAME),
	{ T_EMB_PASSWORD, IPC_BYTES, false, false, 4096 },
	STR(T_EMB_CERT_FILE), STR(T_EMB_KEY_FILE),
	{ T_EMB_KEY_PASSWORD, IPC_BYTES, false, false, 4096 },
	STR(T_EMB_CERT_THUMBPRINT), STR(T_EMB_CERT_SUBJECT),
	{ T_EMB_TOKEN_XML, IPC_BYTES, false, false, 1u << 20 },
	{ T_EMB_TOKEN_KEY, IPC_BYTES, false, false, 1024 },
	U64(T_EMB_TOKEN_VALID_TILL),
};

struct schema {
	uint16_t type;
	const struct field_rule *rules;
	size_t nrules;
};

#define SCHEMA(t, r) { t, r, sizeof(r) / sizeof((r)[0]) }
static const struct schema schemas[] = {
	SCHEMA(IPC_REQ_TOKEN, req_token_rules),
	SCHEMA(IPC_ANS_TOKEN, ans_token_rules),
	SCHEMA(IPC_ANS_ERROR, ans_error_rules),
	{ IPC_W_READY, w_ready_rules, 0 },
	SCHEMA(IPC_W_PARSE, w_parse_rules),
	SCHEMA(IPC_W_RESULT, w_result_rules),
	SCHEMA(IPC_EMB_SETUP, emb_setup_rules),
	{ IPC_EMB_READY, w_ready_rules, 0 },
};

static const struct schema *find_schema(uint16_t type)
{
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
		if (schemas[i].type == type)
			return &schemas[i];
	return NULL;
}

static const struct field_rule *find_rule(const struct schema *s, uint16_t tag)
{
	for (size_t i = 0; i < s->nrules; i++)
		if (s->rules[i].tag == tag)
			return &s->rules[i];
	return NULL;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

size_t ipc_frame_len(const uint8_t hdr[4])
{
	uint32_t n = rd32(hdr);
	if (n < IPC_HDR_LEN - 4 || n > IPC_MAX_FRAME - 4)
		return 0;
	return (size_t)n + 4;
}

int ipc_decode(const uint8_t *buf, size_t len, struct ipc_msg *out, char *err, size_t errlen)
{
	out->nfields = 0;
	if (len < IPC_HDR_LEN)
		return fail(err, errlen, "frame too short (%zu bytes)", len);
	if (len > IPC_MAX_FRAME)
		return fail(err, errlen, "frame too long (%zu bytes)", len);
	if (rd32(buf) != len - 4)
		return fail(err, errlen, "frame length %u does not match %zu received", rd32(buf), len - 4);
	out->type = rd16(buf + 4);
	if (rd16(buf + 6) != 0)
		return fail(err, errlen, "frame flags must be 0");
	const struct schema *s = find_schema(out->type);
	if (!s)
		return fail(err, errlen, "unknown message type 0x%04x", out->type);

	size_t off = IPC_HDR_LEN;
	while (off < len) {
		if (len - off < 6)
			return fail(err, errlen, "truncated field header at offset %zu", off);
		uint16_t tag = rd16(buf + off);
		uint32_t flen = rd32(buf + off + 2);
		off += 6;
		if (flen > len - off)
			return fail(err, errlen, "field %u length %u runs past the frame", tag, flen);
		const struct field_rule *r = find_rule(s, tag);
		if (!r)
			return fail(err, errlen, "field %u not allowed in message 0x%04x", tag, out->type);
		switch (r->kind) {
		case IPC_U32:
		case IPC_U64:
			if (flen != r->max)
				return fail(err, errlen, "field %u must be %u bytes, got %u", tag, r->max, flen);
			break;
		case IPC_STR:
			if (memchr(buf + off, 0, flen))
				return fail(err, errlen, "field %u: string contains NUL", tag);
			/* fallthrough */
		default:
			if (flen > r->max)
				return fail(err, errlen, "field %u too long (%u > %u)", tag, flen, r->max);
		}
		if (!r->repeat)
			for (unsigned i = 0; i < out->nfields; i++)
				if (out->fields[i].tag == tag)
					return fail(err, errlen, "field %u repeated", tag);
		if (out->nfields == IPC_MAX_FIELDS)
			return fail(err, errlen, "more than %u fields", IPC_MAX_FIELDS);
		out->fields[out->nfields++] = (struct ipc_field){ tag, flen, buf + off };
		off += flen;
	}
	for (size_t i = 0; i < s->nrules; i++)
		if (s->rules[i].required && !ipc_has(out, s->rules[i].tag))
			return fail(err, errlen, "required field %u missing in message 0x%04x",
			            s->rules[i].tag, out->type);
	return 0;
}

static const struct ipc_field *find_field(const struct ipc_msg *m, uint16_t tag)
{
	for (unsigned i = 0; i < m->nfields; i++)
		if (m->fields[i].tag == tag)
			return &m->fields[i];
	return NULL;
}

bool ipc_has(const struct ipc_msg *m, uint16_t tag) { return find_field(m, tag) != NULL; }

bool ipc_get_u32(const struct ipc_msg *m, uint16_t tag, uint32_t *v)
{
	const struct ipc_field *f = find_field(m, tag);
	if (!f || f->len != 4)
		return false;
	*v = rd32(f->data);
	return true;
}

bool ipc_get_u64(const struct ipc_msg *m, uint16_t tag, uint64_t *v)
{
	const struct ipc_field *f = find_field(m, tag);
	if (!f || f->len != 8)
		return false;
	*v = (uint64_t)rd32(f->data) << 32 | rd32(f->data + 4);
	return true;
}

char *ipc_dup_str(const struct ipc_msg *m, uint16_t tag)
{
	const struct ipc_field *f = find_field(m, tag);
	if (!f)
		return NULL;
	char *s = malloc((size_t)f->len + 1);
	if (!s)
		return NULL;
	memcpy(s, f->data, f->len);
	s[f->len] = '\0';
	return s;
}

bool ipc_get_bytes(const struct ipc_msg *m, uint16_t tag, const uint8_t **p, size_t *len)
{
	const struct ipc_field *f = find_field(m, tag);
	if (!f)
		return false;
	*p = f->data;
	*len = f->len;
	return true;
}

bool ipc_next(const struct ipc_msg *m, uint16_t tag, unsigned *pos, const uint8_t **p, size_t *len)
{
	for (unsigned i = *pos; i < m->nfields; i++)
		if (m->fields[i].tag == tag) {
			*p = m->fields[i].data;
			*len = m->fields[i].len;
			*pos = i + 1;
			return true;
		}
	*pos = m->nfields;
	return false;
}

/* ---- builder ---- */

static void wipe(void *p, size_t n)
{
	/* explicit_bzero: the codec links no crypto library (the client uses it). */
	if (p && n)
		explicit_bzero(p, n);
}

static bool reserve(struct ipc_builder *b, size_t more)
{
	if (b->failed)
		return false;
	if (more > IPC_MAX_FRAME - b->len) {
		b->failed = true;
		return false;
	}
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *n = malloc(cap);
	if (!n) {
		b->failed = true;
		return false;
	}
	if (b->buf) {
		memcpy(n, b->buf, b->len);
		if (b->secure)
			wipe(b->buf, b->cap);
		free(b->buf);
	}
	b->buf = n;
	b->cap = cap;
	return true;
}

void ipc_begin(struct ipc_builder *b, uint16_t type)
{
	bool secure = b->secure;
	*b = (struct ipc_builder){ .secure = secure };
	if (reserve(b, IPC_HDR_LEN)) {
		memset(b->buf, 0, IPC_HDR_LEN);
		wr16(b->buf + 4, type);
		b->len = IPC_HDR_LEN;
	}
}

static void put_field(struct ipc_builder *b, uint16_t tag, const void *p, size_t len)
{
	if (len > UINT32_MAX) {
		b->failed = true;   /* a dropped field must not go unnoticed */
		return;
	}
	if (!reserve(b, 6 + len))
		return;
	wr16(b->buf + b->len, tag);
	wr32(b->buf + b->len + 2, (uint32_t)len);
	if (len)
		memcpy(b->buf + b->len + 6, p, len);
	b->len += 6 + len;
}

void ipc_put_u32(struct ipc_builder *b, uint16_t tag, uint32_t v)
{
	uint8_t x[4];
	wr32(x, v);
	put_field(b, tag, x, 4);
}

void ipc_put_u64(struct ipc_builder *b, uint16_t tag, uint64_t v)
{
	uint8_t x[8];
	wr32(x, (uint32_t)(v >> 32));
	wr32(x + 4, (uint32_t)v);
	put_field(b, tag, x, 8);
}

void ipc_put_str(struct ipc_builder *b, uint16_t tag, const char *s)
{
	if (s)
		put_field(b, tag, s, strlen(s));
}

void ipc_put_bytes(struct ipc_builder *b, uint16_t tag, const void *p, size_t len)
{
	put_field(b, tag, p, len);
}

int ipc_finish(struct ipc_builder *b)
{
	if (b->failed || !b->buf)
		return -1;
	wr32(b->buf, (uint32_t)(b->len - 4));
	return 0;
}

void ipc_builder_free(struct ipc_builder *b)
{
	if (b->secure)
		wipe(b->buf, b->cap);
	free(b->buf);
	bool secure = b->secure;
	*b = (struct ipc_builder){ .secure = secure };
}

/* ---- stream transport ---- */

int64_t ipc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready; -1 with errno ETIMEDOUT past the deadline. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int timeout = -1;
		if (deadline_ms) {
			int64_t left = deadline_ms - ipc_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, timeout);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int ipc_write_frame(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms)
{
	size_t off = 0;
	while (off < len) {
		if (wait_fd(fd, POLLOUT, deadline_ms) < 0)
			return -1;
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

static int read_full(int fd, uint8_t *buf, size_t len, int64_t deadline_ms)
{
	size_t off = 0;
	while (off < len) {
		if (wait_fd(fd, POLLIN, deadline_ms) < 0)
			return -1;
		ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
		if (n == 0) {
			errno = off ? EPROTO : ECONNRESET;
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

int ipc_read_frame(int fd, uint8_t **buf, size_t *len, size_t max, int64_t deadline_ms)
{
	uint8_t hdr[4];
	*buf = NULL;
	if (read_full(fd, hdr, 4, deadline_ms) < 0)
		return -1;
	size_t n = ipc_frame_len(hdr);
	if (n == 0 || n > max) {
		errno = EMSGSIZE;
		return -1;
	}
	uint8_t *b = malloc(n);
	if (!b)
		return -1;
	memcpy(b, hdr, 4);
	if (read_full(fd, b + 4, n - 4, deadline_ms) < 0) {
		int e = errno;
		explicit_bzero(b, n);   /* a partial answer may hold a proof key */
		free(b);
		errno = e == ECONNRESET ? EPROTO : e;
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}
