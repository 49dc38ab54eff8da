/* transport: plain http only when the profile allows it AND the host is a
 * loopback address; a DNS name that merely starts with "127." is not one.
 * Connections are never handed from one broker thread to another (libcurl's
 * shared connection cache is not thread-safe), while one thread reuses its
 * own. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_config.h"
#include "ipc.h"
#include "t.h"
#include "transport.h"

/* A keep-alive HTTP/1.1 server on loopback that counts connections. */
static atomic_int accepted;
static int listen_fd;

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;
	for (;;) {
		char *end;
		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			ssize_t n = have < sizeof buf ? read(fd, buf + have, sizeof buf - have) : -1;
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		size_t hlen = (size_t)(end + 4 - buf), clen = 0;
		char *cl = memmem(buf, hlen, "Content-Length:", 15);
		if (cl)
			clen = strtoul(cl + 15, NULL, 10);
		while (have < hlen + clen) {
			ssize_t n = have < sizeof buf ? read(fd, buf + have, sizeof buf - have) : -1;
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 4\r\n\r\n<x/>";
		if (write(fd, ans, sizeof ans - 1) != (ssize_t)(sizeof ans - 1))
			goto out;
		memmove(buf, buf + hlen + clen, have - hlen - clen);
		have -= hlen + clen;
	}
out:
	close(fd);
	return NULL;
}

static void *accept_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		atomic_fetch_add(&accepted, 1);
		pthread_t t;
		if (pthread_create(&t, NULL, conn_thread, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}

static char server_url[128];

static enum transport_status post(const char *url, char *err, size_t errlen);

/* Requests from one thread: its own connection, reused. */
static void *client_thread(void *arg)
{
	int n = (int)(intptr_t)arg;
	char err[1024];
	for (int i = 0; i < n; i++) {
		enum transport_status st = post(server_url, err, sizeof err);
		CHECK(st == TRANSPORT_OK, "POST %s: status %d (%s)", server_url, (int)st, err);
	}
	return NULL;
}

static void test_connections_per_thread(void)
{
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	CHECK(listen_fd >= 0 && bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	      getsockname(listen_fd, (struct sockaddr *)&sa, &sl) == 0 && listen(listen_fd, 16) == 0, "listen");
	snprintf(server_url, sizeof server_url, "http://127.0.0.1:%u/sts", (unsigned)ntohs(sa.sin_port));
	pthread_t acc;
	CHECK(pthread_create(&acc, NULL, accept_thread, NULL) == 0, "pthread_create");
	pthread_detach(acc);

	pthread_t a, b;
	CHECK(pthread_create(&a, NULL, client_thread, (void *)(intptr_t)3) == 0, "pthread_create");
	pthread_join(a, NULL);
	CHECK(atomic_load(&accepted) == 1, "one thread's 3 requests used %d connections (no reuse)",
	      atomic_load(&accepted));
	CHECK(pthread_create(&b, NULL, client_thread, (void *)(intptr_t)1) == 0, "pthread_create");
	pthread_join(b, NULL);
	CHECK(atomic_load(&accepted) == 2,
	      "another thread rode on the first thread's connection (%d connections): a shared curl "
	      "connection cache is not thread-safe", atomic_load(&accepted));
}

static enum transport_status post(const char *url, char *err, size_t errlen)
{
	static const uint8_t body[] = "<x/>";
	struct http_request rq = {
		.url = url,
		.body = body,
		.body_len = sizeof body - 1,
		.soap_version = 12,
		.action = "urn:test",
		.allow_insecure_http = true,
		.max_reply = 4096,
		.deadline_ms = ipc_now_ms() + 5000,
	};
	struct http_reply rp;
	err[0] = 0;
	enum transport_status st = transport_post(&rq, &rp, err, errlen);
	http_reply_free(&rp);
	return st;
}

int main(void)
{
	if (sodium_init() < 0 || transport_global_init() != 0)
		return 1;
	char err[1024];
	static const char *const not_loopback[] = {
		"http://127.0.0.1.example.invalid:9/sts",
		"http://127.attacker.invalid/sts",
		"http://127.0.0.1@example.invalid/sts",
		"http://example.invalid/sts",
	};
	for (size_t i = 0; i < sizeof not_loopback / sizeof not_loopback[0]; i++) {
		CHECK(post(not_loopback[i], err, sizeof err) == TRANSPORT_BAD_URL, "plain http allowed to %s (%s)",
		      not_loopback[i], err);
		CHECK_CONTAINS(err, "refusing plain http");
	}
	/* Loopback literals pass the check (nothing listens on port 1). */
	static const char *const loopback[] = { "http://127.0.0.1:1/sts", "http://127.9.8.7:1/sts", "http://[::1]:1/sts" };
	for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
		enum transport_status st = post(loopback[i], err, sizeof err);
		CHECK(st != TRANSPORT_BAD_URL && st != TRANSPORT_OK, "%s: status %d (%s)", loopback[i], (int)st, err);
	}
	test_connections_per_thread();
	T_DONE("transport");
}
