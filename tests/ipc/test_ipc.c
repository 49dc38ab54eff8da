/* Unit tests of the IPC codec, the wire records and the authenticated channel. */
#include "ipc.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures, checks;
#define CHECK(cond)                                                                    \
	do {                                                                           \
		checks++;                                                              \
		if (!(cond)) {                                                         \
			failures++;                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                      \
	} while (0)

/* ---- codec ---- */

static struct ipc_builder build_request(void)
{
	struct ipc_builder b = { 0 };
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_str(&b, T_ENDPOINT, "https://127.0.0.1:1/x");
	ipc_put_u32(&b, T_TRUST_VERSION, 2);
	ipc_put_str(&b, T_APPLIES_TO, "urn:example:rp");
	ipc_finish(&b);
	return b;
}

static int decode(const uint8_t *p, size_t n, char *err)
{
	struct ipc_msg m;
	return ipc_decode(p, n, &m, err, 200);
}

static void test_codec_roundtrip(void)
{
	struct ipc_builder b = build_request();
	struct ipc_msg m;
	char err[200] = "";
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	CHECK(m.type == IPC_REQ_TOKEN);
	uint32_t v = 0;
	CHECK(ipc_get_u32(&m, T_TRUST_VERSION, &v) && v == 2);
	char *s = ipc_dup_str(&m, T_APPLIES_TO);
	CHECK(s && strcmp(s, "urn:example:rp") == 0);
	free(s);
	CHECK(!ipc_has(&m, T_PROFILE));
	CHECK(ipc_frame_len(b.buf) == b.len);
	ipc_builder_free(&b);

	/* u64 and repeatable strings keep their values and order */
	ipc_begin(&b, IPC_ANS_ERROR);
	ipc_put_u32(&b, T_HRESULT, 0x803D0013u);
	ipc_put_str(&b, T_ERROR_STRING, "first");
	ipc_put_str(&b, T_ERROR_STRING, "second");
	CHECK(ipc_finish(&b) == 0);
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	unsigned pos = 0;
	const uint8_t *p;
	size_t n;
	CHECK(ipc_next(&m, T_ERROR_STRING, &pos, &p, &n) && n == 5 && memcmp(p, "first", 5) == 0);
	CHECK(ipc_next(&m, T_ERROR_STRING, &pos, &p, &n) && n == 6 && memcmp(p, "second", 6) == 0);
	CHECK(!ipc_next(&m, T_ERROR_STRING, &pos, &p, &n));
	ipc_builder_free(&b);

	ipc_begin(&b, IPC_ANS_TOKEN);
	ipc_put_bytes(&b, T_TOKEN_XML, "<a/>", 4);
	ipc_put_u32(&b, T_KEY_TYPE_OUT, 1);
	ipc_put_u64(&b, T_VALID_FROM, 0x0123456789abcdefull);
	CHECK(ipc_finish(&b) == 0);
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	uint64_t t = 0;
	CHECK(ipc_get_u64(&m, T_VALID_FROM, &t) && t == 0x0123456789abcdefull);
	ipc_builder_free(&b);
}

static void test_codec_rejects(void)
{
	char err[200];
	struct ipc_builder b = build_request();
	uint8_t *x = malloc(b.len + 16);

	/* trailing byte after the last field (length adjusted so only the field walk sees it) */
	memcpy(x, b.buf, b.len);
	x[b.len] = 0;
	x[3] = (uint8_t)(b.len + 1 - 4);
	CHECK(decode(x, b.len + 1, err) < 0 && strstr(err, "truncated field"));

	/* length prefix that disagrees with the bytes received */
	memcpy(x, b.buf, b.len);
	CHECK(decode(x, b.len - 1, err) < 0 && strstr(err, "does not match"));

	/* flags must be zero */
	memcpy(x, b.buf, b.len);
	x[7] = 1;
	CHECK(decode(x, b.len, err) < 0 && strstr(err, "flags"));

	/* unknown message type */
	memcpy(x, b.buf, b.len);
	x[4] = 0x7f;
	CHECK(decode(x, b.len, err) < 0 && strstr(err, "unknown message type"));
	free(x);
	ipc_builder_free(&b);

	/* a tag the schema does not allow for this type */
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_u32(&b, T_HRESULT, 1);
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "not allowed"));
	ipc_builder_free(&b);

	/* duplicate non-repeatable field */
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_str(&b, T_ENDPOINT, "a");
	ipc_put_str(&b, T_ENDPOINT, "b");
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "repeated"));
	ipc_builder_free(&b);

	/* fixed-size field of the wrong size */
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_bytes(&b, T_TRUST_VERSION, "\0\0\0\0\0", 5);
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "must be 4 bytes"));
	ipc_builder_free(&b);

	/* NUL inside a string */
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_bytes(&b, T_APPLIES_TO, "a\0b", 3);
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "NUL"));
	ipc_builder_free(&b);

	/* over the field's own cap */
	char *big = malloc(IPC_MAX_SHORT + 2);
	memset(big, 'a', IPC_MAX_SHORT + 1);
	big[IPC_MAX_SHORT + 1] = 0;
	ipc_begin(&b, IPC_REQ_TOKEN);
	ipc_put_str(&b, T_APPLIES_TO, big);
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "too long"));
	ipc_builder_free(&b);
	free(big);

	/* a field longer than its u32 length can say fails the frame instead
	 * of vanishing from it (the bytes are never read) */
	ipc_begin(&b, IPC_ANS_ERROR);
	ipc_put_u32(&b, T_HRESULT, 1);
	ipc_put_str(&b, T_ERROR_STRING, "x");
	ipc_put_bytes(&b, T_ERROR_STRING, "", (size_t)UINT32_MAX + 1);
	CHECK(ipc_finish(&b) < 0);
	ipc_builder_free(&b);

	/* required field missing */
	ipc_begin(&b, IPC_ANS_ERROR);
	ipc_put_u32(&b, T_HRESULT, 1);
	ipc_finish(&b);
	CHECK(decode(b.buf, b.len, err) < 0 && strstr(err, "required field"));
	ipc_builder_free(&b);

	/* field length running past the frame */
	uint8_t bad[] = { 0, 0, 0, 10, 0x01, 0x00, 0, 0, 0, 3, 0, 0, 0, 200 };
	CHECK(decode(bad, sizeof(bad), err) < 0 && strstr(err, "runs past"));

	/* header-only length limits */
	uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
	CHECK(ipc_frame_len(huge) == 0);
	uint8_t tiny[4] = { 0, 0, 0, 1 };
	CHECK(ipc_frame_len(tiny) == 0);
	CHECK(decode(tiny, 3, err) < 0);
}

static void test_stream_frames(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct ipc_builder b = build_request();
	CHECK(ipc_write_frame(sv[0], b.buf, b.len, ipc_now_ms() + 1000) == 0);
	uint8_t *got = NULL;
	size_t n = 0;
	CHECK(ipc_read_frame(sv[1], &got, &n, IPC_MAX_FRAME, ipc_now_ms() + 1000) == 0);
	CHECK(n == b.len && got && memcmp(got, b.buf, n) == 0);
	free(got);

	/* a frame over the reader's maximum is refused before it is buffered */
	CHECK(ipc_write_frame(sv[0], b.buf, b.len, ipc_now_ms() + 1000) == 0);
	CHECK(ipc_read_frame(sv[1], &got, &n, 8, ipc_now_ms() + 1000) < 0 && errno == EMSGSIZE);

	/* nothing arrives: the deadline holds */
	int64_t t0 = ipc_now_ms();
	int s2[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s2) == 0);
	CHECK(ipc_read_frame(s2[1], &got, &n, IPC_MAX_FRAME, ipc_now_ms() + 100) < 0 && errno == ETIMEDOUT);
	CHECK(ipc_now_ms() - t0 < 2000);

	/* truncated frame then EOF */
	CHECK(write(s2[0], b.buf, b.len - 2) == (ssize_t)(b.len - 2));
	close(s2[0]);
	CHECK(ipc_read_frame(s2[1], &got, &n, IPC_MAX_FRAME, ipc_now_ms() + 1000) < 0 && errno == EPROTO);
	close(s2[1]);
	close(sv[0]);
	close(sv[1]);
	ipc_builder_free(&b);
}

/* ---- wire records ---- */

static void test_wire_roundtrip(void)
{
	struct wt_result r = { 0 };
	r.kind = IPC_RESULT_TOKEN;
	r.trust_version = 2;
	r.soap_version = 12;
	wt_blob_set(&r.token_xml, "<saml:Assertion/>", 17, false);
	r.token_type = strdup("urn:oasis:names:tc:SAML:2.0:assertion");
	r.created = 638000000000000000ull;
	r.expires = 638000036000000000ull;
	r.proof_kind = IPC_PROOF_BINARY_SECRET;
	wt_blob_set(&r.proof_data, "0123456789abcdef", 16, false);
	r.relates_to = strdup("urn:uuid:1");
	struct ipc_builder b = { 0 };
	CHECK(wt_result_encode(&r, &b) == 0);
	struct ipc_msg m;
	char err[200];
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	struct wt_result d;
	CHECK(wt_result_decode(&m, &d, true, err, sizeof(err)) == 0);
	CHECK(d.kind == IPC_RESULT_TOKEN && d.trust_version == 2 && d.soap_version == 12);
	CHECK(d.token_xml.len == 17 && memcmp(d.token_xml.data, "<saml:Assertion/>", 17) == 0);
	CHECK(d.token_type && strcmp(d.token_type, r.token_type) == 0);
	CHECK(d.created == r.created && d.expires == r.expires);
	CHECK(d.proof_kind == IPC_PROOF_BINARY_SECRET && d.proof_data.len == 16);
	CHECK(d.relates_to && strcmp(d.relates_to, "urn:uuid:1") == 0);
	wt_result_free(&d);
	wt_result_free(&r);
	ipc_builder_free(&b);

	/* a fault with subcodes */
	r = (struct wt_result){ .kind = IPC_RESULT_FAULT, .trust_version = 2, .soap_version = 12 };
	r.fault_code = strdup("{http://www.w3.org/2003/05/soap-envelope}Sender");
	r.fault_subcodes[0] = strdup("{http://docs.oasis-open.org/ws-sx/ws-trust/200512}FailedAuthentication");
	r.n_subcodes = 1;
	r.fault_reason = strdup("ID3242");
	CHECK(wt_result_encode(&r, &b) == 0);
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	CHECK(wt_result_decode(&m, &d, true, err, sizeof(err)) == 0);
	CHECK(d.n_subcodes == 1 && strstr(d.fault_subcodes[0], "FailedAuthentication"));
	CHECK(d.fault_reason && strcmp(d.fault_reason, "ID3242") == 0);
	wt_result_free(&d);
	wt_result_free(&r);
	ipc_builder_free(&b);

	/* a parse request */
	struct wt_parse_req pr = { .reply = (const uint8_t *)"<x/>", .reply_len = 4, .http_status = 200,
	                           .trust_version = 2, .soap_version = 12, .relates_to = "urn:uuid:2",
	                           .limits = WT_DEFAULT_LIMITS };
	CHECK(wt_parse_req_encode(&pr, &b) == 0);
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	struct wt_parse_req dr;
	char *rel, *ctx;
	CHECK(wt_parse_req_decode(&m, &dr, &rel, &ctx) == 0);
	CHECK(dr.reply_len == 4 && memcmp(dr.reply, "<x/>", 4) == 0 && dr.http_status == 200);
	CHECK(dr.relates_to && strcmp(dr.relates_to, "urn:uuid:2") == 0 && dr.context == NULL);
	CHECK(dr.limits.max_depth == pr.limits.max_depth);
	free(rel);
	free(ctx);
	ipc_builder_free(&b);

	/* an impossible kind is refused */
	ipc_begin(&b, IPC_W_RESULT);
	ipc_put_u32(&b, T_RESULT_KIND, 9);
	ipc_finish(&b);
	CHECK(ipc_decode(b.buf, b.len, &m, err, sizeof(err)) == 0);
	CHECK(wt_result_decode(&m, &d, true, err, sizeof(err)) < 0 && strstr(err, "unknown result kind"));
	wt_result_free(&d);
	ipc_builder_free(&b);
}

/* ---- authenticated channel, with the test as a man in the middle ---- */

struct mitm {
	int a, a_mid, b_mid, b;   /* A <-> a_mid (test) b_mid <-> B */
	struct ipc_chan *ca, *cb;
};

static void *handshake_thread(void *arg)
{
	struct ipc_chan *c = arg;
	return (void *)(intptr_t)ipc_chan_handshake(c, ipc_now_ms() + 2000);
}

static ssize_t relay_read(int fd, uint8_t *buf, size_t cap)
{
	return recv(fd, buf, cap, 0);
}

static int mitm_setup(struct mitm *m, const uint8_t *key_a, const uint8_t *key_b)
{
	int s1[2], s2[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s1) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s2))
		return -1;
	m->a = s1[0];
	m->a_mid = s1[1];
	m->b_mid = s2[0];
	m->b = s2[1];
	m->ca = ipc_chan_new(m->a, key_a, IPC_ROLE_BROKER);
	m->cb = ipc_chan_new(m->b, key_b, IPC_ROLE_WORKER);
	pthread_t ta, tb;
	pthread_create(&ta, NULL, handshake_thread, m->ca);
	pthread_create(&tb, NULL, handshake_thread, m->cb);
	uint8_t buf[256];
	ssize_t n = relay_read(m->a_mid, buf, sizeof(buf));
	send(m->b_mid, buf, (size_t)n, 0);
	n = relay_read(m->b_mid, buf, sizeof(buf));
	send(m->a_mid, buf, (size_t)n, 0);
	void *ra, *rb;
	pthread_join(ta, &ra);
	pthread_join(tb, &rb);
	return (ra || rb) ? -1 : 0;
}

static void mitm_free(struct mitm *m)
{
	ipc_chan_free(m->ca);
	ipc_chan_free(m->cb);
	close(m->a);
	close(m->a_mid);
	if (m->b_mid >= 0)
		close(m->b_mid);
	close(m->b);
}

static int recv_b(struct mitm *m, uint8_t **msg, size_t *len)
{
	return ipc_chan_recv(m->cb, msg, len, IPC_MAX_FRAME, ipc_now_ms() + 1000);
}

/* Whether freshly malloc'd (so uninitialized: hence volatile) memory still
 * holds a 16-byte pattern some earlier owner left there. */
static bool holds(const volatile uint8_t *p, size_t n, const char *pat)
{
	for (size_t i = 0; i + 16 <= n; i++) {
		size_t k = 0;
		while (k < 16 && p[i + k] == (uint8_t)pat[k])
			k++;
		if (k == 16)
			return true;
	}
	return false;
}

static void test_channel(void)
{
	uint8_t key[IPC_CHAN_KEYBYTES], other[IPC_CHAN_KEYBYTES];
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	static uint8_t dg[IPC_CHUNK + 64], dg2[IPC_CHUNK + 64];
	uint8_t *msg;
	size_t len;
	struct mitm m;

	/* intact, including a multi-chunk message */
	CHECK(mitm_setup(&m, key, key) == 0);
	size_t big = 3 * IPC_CHUNK + 17;
	uint8_t *payload = malloc(big);
	randombytes_buf(payload, big);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"hello", 5) == 0);
	ssize_t n = relay_read(m.a_mid, dg, sizeof(dg));
	CHECK(send(m.b_mid, dg, (size_t)n, 0) == n);
	CHECK(recv_b(&m, &msg, &len) == 0 && len == 5 && memcmp(msg, "hello", 5) == 0);
	free(msg);
	/* four sealed datagrams fit in the socket buffer, so no sender thread */
	CHECK(ipc_chan_send(m.ca, payload, big) == 0);
	for (int i = 0; i < 4; i++) {
		n = relay_read(m.a_mid, dg, sizeof(dg));
		CHECK(n > 0 && send(m.b_mid, dg, (size_t)n, 0) == n);
	}
	CHECK(recv_b(&m, &msg, &len) == 0 && len == big && memcmp(msg, payload, big) == 0);
	free(msg);

	/* replay: the same sealed chunk a second time */
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"once", 4) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) == 0);
	free(msg);
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0 && strstr(ipc_chan_error(m.cb), "authentication"));
	mitm_free(&m);

	/* a flipped bit */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"hello", 5) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	dg[n / 2] ^= 0x04;
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0 && strstr(ipc_chan_error(m.cb), "authentication"));
	/* and the channel stays dead afterwards */
	CHECK(recv_b(&m, &msg, &len) < 0);
	mitm_free(&m);

	/* a dropped message */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"one", 3) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"two", 3) == 0);
	relay_read(m.a_mid, dg, sizeof(dg));
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0);
	mitm_free(&m);

	/* reordered messages */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"one", 3) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"two", 3) == 0);
	ssize_t n1 = relay_read(m.a_mid, dg, sizeof(dg));
	ssize_t n2 = relay_read(m.a_mid, dg2, sizeof(dg2));
	send(m.b_mid, dg2, (size_t)n2, 0);
	send(m.b_mid, dg, (size_t)n1, 0);
	CHECK(recv_b(&m, &msg, &len) < 0);
	mitm_free(&m);

	/* truncation: a multi-chunk message whose last chunk never arrives */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, payload, big) == 0);
	for (int i = 0; i < 3; i++) {
		n = relay_read(m.a_mid, dg, sizeof(dg));
		send(m.b_mid, dg, (size_t)n, 0);
	}
	close(m.b_mid);
	m.b_mid = -1;
	CHECK(recv_b(&m, &msg, &len) < 0 && strstr(ipc_chan_error(m.cb), "closed"));
	mitm_free(&m);

	/* an empty message (one empty PUSH chunk) arrives as length 0 */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"", 0) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) == 0 && msg != NULL && len == 0);
	free(msg);
	mitm_free(&m);

	/* a message cut short by a forged chunk: the part already decrypted
	 * (proof keys, on the broker's side) is wiped before it is freed, so
	 * the heap block malloc hands out next does not still hold it */
	CHECK(mitm_setup(&m, key, key) == 0);
	uint8_t *marked = malloc(2 * IPC_CHUNK);
	for (size_t i = 0; i < 2 * IPC_CHUNK; i++)
		marked[i] = (uint8_t)"SECRET-KEY-BYTES"[i % 16];
	CHECK(ipc_chan_send(m.ca, marked, 2 * IPC_CHUNK) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	dg[n / 2] ^= 0x01;
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0 && strstr(ipc_chan_error(m.cb), "authentication"));
	uint8_t *reused = malloc(IPC_CHUNK);
	CHECK(!holds(reused + 64, IPC_CHUNK - 64, "SECRET-KEY-BYTES"));
	free(reused);
	free(marked);
	mitm_free(&m);

	/* a message over the receiver's maximum */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.ca, payload, 1000) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(ipc_chan_recv(m.cb, &msg, &len, 999, ipc_now_ms() + 1000) < 0 &&
	      strstr(ipc_chan_error(m.cb), "exceeds"));
	mitm_free(&m);

	/* a peer with another key: nothing it sends is accepted */
	CHECK(mitm_setup(&m, key, other) == 0);
	CHECK(ipc_chan_send(m.ca, (const uint8_t *)"hello", 5) == 0);
	n = relay_read(m.a_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0);
	mitm_free(&m);

	/* a frame forged as B's own direction is not accepted back by B (reflection) */
	CHECK(mitm_setup(&m, key, key) == 0);
	CHECK(ipc_chan_send(m.cb, (const uint8_t *)"from-b", 6) == 0);
	n = relay_read(m.b_mid, dg, sizeof(dg));
	send(m.b_mid, dg, (size_t)n, 0);
	CHECK(recv_b(&m, &msg, &len) < 0);
	mitm_free(&m);

	/* nothing sent: the receive deadline holds */
	CHECK(mitm_setup(&m, key, key) == 0);
	int64_t t0 = ipc_now_ms();
	CHECK(ipc_chan_recv(m.cb, &msg, &len, 100, ipc_now_ms() + 100) < 0 && strstr(ipc_chan_error(m.cb), "timed out"));
	CHECK(ipc_now_ms() - t0 < 2000);
	mitm_free(&m);
	free(payload);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_codec_roundtrip();
	test_codec_rejects();
	test_stream_frames();
	test_wire_roundtrip();
	test_channel();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
