/* A stand-in worker for the pool tests only (never installed): it speaks the
 * real channel protocol, and misbehaves in the way the reply bytes name, so
 * that every way a worker can fail reaches the broker for real.  The real
 * wstrust-worker has no such modes. */
#include "ipc.h"
#include "sandbox.h"
#include "wire.h"

#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *__asan_default_options(void);
/* Let the kernel's signals through, as in a non-sanitized worker. */
const char *__asan_default_options(void) { return "handle_segv=0:handle_abort=0:detect_leaks=0"; }

static struct ipc_chan *chan;

static void send_frame(struct ipc_builder *b)
{
	if (ipc_finish(b) < 0 || ipc_chan_send(chan, b->buf, b->len) < 0)
		_exit(6);
	ipc_builder_free(b);
}

static void send_result(const struct wt_result *r)
{
	struct ipc_builder b = { 0 };
	if (wt_result_encode(r, &b) < 0)
		_exit(6);
	if (ipc_chan_send(chan, b.buf, b.len) < 0)
		_exit(6);
	ipc_builder_free(&b);
}

static void send_token(void)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "pid=%ld", (long)getpid());
	struct wt_result r = { .kind = IPC_RESULT_TOKEN, .token_type = (char *)"urn:fake" };
	r.token_xml.data = (uint8_t *)pid;
	r.token_xml.len = strlen(pid);
	send_result(&r);
}

int main(int argc, char **argv)
{
	struct sandbox_opts o = { 0 };
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--cpu-s"))
			o.cpu_s = (unsigned)atoi(argv[i + 1]);
	char err[256];
	if (sandbox_rlimits(&o, err, sizeof(err)) < 0) {
		fprintf(stderr, "fake worker: %s\n", err);
		return 3;
	}
	uint8_t key[IPC_CHAN_KEYBYTES];
	if (read(SANDBOX_KEY_FD, key, sizeof(key)) != (ssize_t)sizeof(key))
		return 2;
	close(SANDBOX_KEY_FD);
	if (sodium_init() < 0 || !(chan = ipc_chan_new(SANDBOX_CHANNEL_FD, key, IPC_ROLE_WORKER)))
		return 7;
	if (ipc_chan_handshake(chan, ipc_now_ms() + 10000) < 0)
		return 4;
	struct ipc_builder b = { 0 };
	ipc_begin(&b, IPC_W_READY);
	send_frame(&b);

	static struct ipc_msg m;
	for (;;) {
		uint8_t *buf;
		size_t len;
		if (ipc_chan_recv(chan, &buf, &len, IPC_MAX_FRAME, 0) < 0)
			return 0;
		struct wt_parse_req req;
		char *rel, *ctx;
		if (ipc_decode(buf, len, &m, err, sizeof(err)) < 0 || wt_parse_req_decode(&m, &req, &rel, &ctx) < 0)
			return 5;
		char mode[32] = "";
		memcpy(mode, req.reply, req.reply_len < sizeof(mode) - 1 ? req.reply_len : sizeof(mode) - 1);

		if (!strcmp(mode, "sleep")) {
			poll(NULL, 0, -1);
		} else if (!strcmp(mode, "nap")) {
			poll(NULL, 0, 800);   /* long enough for a spare worker to start */
			send_token();
		} else if (!strcmp(mode, "segv")) {
			kill(getpid(), SIGSEGV);
		} else if (!strcmp(mode, "sigsys")) {
			if (sandbox_no_new_privs(err, sizeof(err)) < 0
			    || sandbox_install_seccomp(SANDBOX_CHANNEL_FD, err, sizeof(err)) < 0)
				return 3;
			socket(AF_INET, SOCK_STREAM, 0);
		} else if (!strcmp(mode, "asan")) {
			/* a heap overflow after the filter: in ASan builds the
			 * sanitizer must be able to report it (exit 1) */
			if (sandbox_no_new_privs(err, sizeof(err)) < 0
			    || sandbox_install_seccomp(SANDBOX_CHANNEL_FD, err, sizeof(err)) < 0)
				return 3;
			char *volatile p = malloc(8);
			volatile char c = p[8];
			(void)c;
			send_token();
		} else if (!strcmp(mode, "cpu")) {
			for (volatile unsigned long x = 0;; x++)
				;
		} else if (!strcmp(mode, "exit")) {
			_exit(42);
		} else if (!strcmp(mode, "garbage")) {
			if (write(SANDBOX_CHANNEL_FD, "this is not a sealed chunk, not at all.", 40) != 40)
				return 6;
		} else if (!strcmp(mode, "ready")) {
			ipc_begin(&b, IPC_W_READY);
			send_frame(&b);
		} else if (!strcmp(mode, "badtype")) {
			struct wt_parse_req q = { .reply = (const uint8_t *)"x", .reply_len = 1 };
			if (wt_parse_req_encode(&q, &b) < 0)
				return 6;
			send_frame(&b);
		} else if (!strcmp(mode, "malformed")) {
			if (ipc_chan_send(chan, (const uint8_t *)"hello, broker", 13) < 0)
				return 6;
		} else if (!strcmp(mode, "badresult")) {
			ipc_begin(&b, IPC_W_RESULT);
			ipc_put_u32(&b, T_RESULT_KIND, IPC_RESULT_TOKEN);   /* and no token */
			send_frame(&b);
		} else if (!strcmp(mode, "double")) {
			send_token();
			send_token();
		} else if (!strcmp(mode, "huge")) {
			size_t n = IPC_MAX_FRAME + IPC_CHUNK;
			uint8_t *big = calloc(1, n);
			if (!big || ipc_chan_send(chan, big, n) < 0)
				return 6;
			free(big);
		} else if (!strcmp(mode, "close")) {
			close(SANDBOX_CHANNEL_FD);
			poll(NULL, 0, -1);
		} else if (!strcmp(mode, "error")) {
			struct wt_result r = { .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
			                       .error = (char *)"fake parse error" };
			send_result(&r);
		} else {
			send_token();
		}
		free(rel);
		free(ctx);
		free(buf);
	}
}
