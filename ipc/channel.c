/* The authenticated broker <-> worker channel: see ipc.h. */
#include "ipc.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SS_HEADERBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define DGRAM_MAX (IPC_CHUNK + SS_ABYTES)

/* Subkey ids: one stream per direction, so neither side can reflect the
 * other's frames back at it. */
enum { SUBKEY_BROKER_TO_WORKER = 1, SUBKEY_WORKER_TO_BROKER = 2 };
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = { 'w', 's', 't', 'c', 'h', 'a', 'n', '1' };

struct ipc_chan {
	int fd;
	bool dead;
	int64_t send_deadline;
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	uint8_t tx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	uint8_t rx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	uint8_t dgram[DGRAM_MAX + 1];
	char err[160];
};

static int chan_fail(struct ipc_chan *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int chan_fail(struct ipc_chan *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->dead = true;
	return -1;
}

const char *ipc_chan_error(const struct ipc_chan *c) { return c->err[0] ? c->err : "no error"; }

struct ipc_chan *ipc_chan_new(int fd, const uint8_t key[IPC_CHAN_KEYBYTES], enum ipc_role role)
{
	if (sodium_init() < 0)
		return NULL;
	/* Stream states hold keys: locked, guarded memory, wiped on free. */
	struct ipc_chan *c = sodium_malloc(sizeof(*c));
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	uint64_t tx_id = role == IPC_ROLE_BROKER ? SUBKEY_BROKER_TO_WORKER : SUBKEY_WORKER_TO_BROKER;
	uint64_t rx_id = role == IPC_ROLE_BROKER ? SUBKEY_WORKER_TO_BROKER : SUBKEY_BROKER_TO_WORKER;
	crypto_kdf_derive_from_key(c->tx_key, sizeof(c->tx_key), tx_id, kdf_context, key);
	crypto_kdf_derive_from_key(c->rx_key, sizeof(c->rx_key), rx_id, kdf_context, key);
	return c;
}

void ipc_chan_free(struct ipc_chan *c)
{
	if (c)
		sodium_free(c);   /* sodium_free wipes */
}

void ipc_chan_set_send_deadline(struct ipc_chan *c, int64_t deadline_ms) { c->send_deadline = deadline_ms; }

static int wait_fd(struct ipc_chan *c, short events, int64_t deadline_ms)
{
	if (!deadline_ms)
		return 0;
	for (;;) {
		int64_t left = deadline_ms - ipc_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return chan_fail(c, "timed out waiting for the peer");
		}
		struct pollfd p = { .fd = c->fd, .events = events };
		int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return chan_fail(c, "poll: %s", strerror(errno));
	}
}

static int send_dgram(struct ipc_chan *c, const uint8_t *p, size_t n)
{
	for (;;) {
		if (wait_fd(c, POLLOUT, c->send_deadline) < 0)
			return -1;
		ssize_t w = write(c->fd, p, n);
		if (w == (ssize_t)n)
			return 0;
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return chan_fail(c, "write: %s", strerror(errno));
		return chan_fail(c, "short datagram write");
	}
}

/* One datagram: returns its length, or -1 (EOF, error, timeout). */
static ssize_t recv_dgram(struct ipc_chan *c, int64_t deadline_ms)
{
	for (;;) {
		if (wait_fd(c, POLLIN, deadline_ms) < 0)
			return -1;
		/* One byte more than the largest valid datagram: SEQPACKET
		 * truncates silently, so an oversized one shows as DGRAM_MAX+1. */
		ssize_t n = read(c->fd, c->dgram, sizeof(c->dgram));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return chan_fail(c, "read: %s", strerror(errno));
		if (n == 0)
			return chan_fail(c, "peer closed the channel");
		return n;
	}
}

int ipc_chan_handshake(struct ipc_chan *c, int64_t deadline_ms)
{
	uint8_t hdr[SS_HEADERBYTES];
	crypto_secretstream_xchacha20poly1305_init_push(&c->tx, hdr, c->tx_key);
	int64_t saved = c->send_deadline;
	c->send_deadline = deadline_ms;
	int r = send_dgram(c, hdr, sizeof(hdr));
	c->send_deadline = saved;
	if (r < 0)
		return -1;
	ssize_t n = recv_dgram(c, deadline_ms);
	if (n < 0)
		return -1;
	if (n != SS_HEADERBYTES)
		return chan_fail(c, "bad handshake datagram (%zd bytes)", n);
	if (crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, c->dgram, c->rx_key) != 0)
		return chan_fail(c, "bad stream header");
	sodium_memzero(c->tx_key, sizeof(c->tx_key));
	sodium_memzero(c->rx_key, sizeof(c->rx_key));
	return 0;
}

int ipc_chan_send(struct ipc_chan *c, const uint8_t *msg, size_t len)
{
	if (c->dead)
		return -1;
	size_t off = 0;
	do {
		size_t n = len - off > IPC_CHUNK ? IPC_CHUNK : len - off;
		bool last = off + n == len;
		unsigned char tag = last ? crypto_secretstream_xchacha20poly1305_TAG_PUSH
		                         : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
		unsigned long long clen;
		crypto_secretstream_xchacha20poly1305_push(&c->tx, c->dgram, &clen, msg + off, n, NULL, 0, tag);
		int r = send_dgram(c, c->dgram, (size_t)clen);
		sodium_memzero(c->dgram, (size_t)clen);
		if (r < 0)
			return -1;
		off += n;
	} while (off < len);
	return 0;
}

int ipc_chan_recv(struct ipc_chan *c, uint8_t **msg, size_t *len, size_t max, int64_t deadline_ms)
{
	*msg = NULL;
	*len = 0;
	if (c->dead)
		return -1;
	uint8_t *buf = NULL;
	size_t used = 0, cap = 0;
	for (;;) {
		ssize_t n = recv_dgram(c, deadline_ms);
		if (n < 0)
			goto fail;
		if ((size_t)n < SS_ABYTES || (size_t)n > DGRAM_MAX) {
			chan_fail(c, "datagram of %zd bytes is not a sealed chunk", n);
			goto fail;
		}
		size_t plen = (size_t)n - SS_ABYTES;
		if (plen > max - used) {
			chan_fail(c, "message exceeds %zu bytes", max);
			goto fail;
		}
		/* Never buf == NULL below (NULL + 0 is undefined); and no realloc:
		 * the broker's messages carry proof keys, so an outgrown buffer
		 * is wiped, not left in the heap. */
		if (!buf || used + plen > cap) {
			size_t ncap = cap ? cap : IPC_CHUNK;
			while (ncap < used + plen)
				ncap *= 2;
			uint8_t *nb = malloc(ncap);
			if (!nb) {
				chan_fail(c, "out of memory");
				goto fail;
			}
			if (buf) {
				memcpy(nb, buf, used);
				sodium_memzero(buf, used);
				free(buf);
			}
			buf = nb;
			cap = ncap;
		}
		unsigned char tag;
		unsigned long long mlen;
		if (crypto_secretstream_xchacha20poly1305_pull(&c->rx, buf + used, &mlen, &tag, c->dgram,
		                                               (unsigned long long)n, NULL, 0) != 0) {
			chan_fail(c, "chunk failed authentication (tampered, replayed, reordered or forged)");
			goto fail;
		}
		used += (size_t)mlen;
		if (tag == crypto_secretstream_xchacha20poly1305_TAG_PUSH)
			break;
		if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
			chan_fail(c, "unexpected stream tag %u", tag);
			goto fail;
		}
	}
	if (!buf && !(buf = malloc(1))) {
		chan_fail(c, "out of memory");
		return -1;
	}
	*msg = buf;
	*len = used;
	return 0;
fail:
	if (buf)
		sodium_memzero(buf, used);
	free(buf);
	return -1;
}
