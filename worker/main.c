/* wstrust-worker: parses untrusted STS replies inside a sandbox.
 *
 * Spawned only by the broker (broker/workers.c): fd 3 is a SOCK_SEQPACKET
 * channel, fd 4 a pipe carrying the channel's 32-byte key, the environment
 * is empty.  The worker confines itself in the order below (each step says
 * why it is where it is; docs/SANDBOX.md has the whole argument), announces
 * READY, then answers IPC_W_PARSE with IPC_W_RESULT until the broker closes
 * the channel.
 *
 * Exit status: 0 channel closed by the broker; 2 not spawned by the broker
 * (usage); 3 confinement failed; 4 channel handshake failed; 5 a frame from
 * the broker failed to arrive or decode; 6 sending failed; 7 out of memory.
 * Messages go to stderr until seccomp is installed; after that only the exit
 * status speaks. */
#include "config.h"

#include "ipc.h"
#include "parse.h"
#include "sandbox.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

enum { EXIT_CLOSED = 0, EXIT_USAGE = 2, EXIT_CONFINE = 3, EXIT_HANDSHAKE = 4, EXIT_INPUT = 5,
       EXIT_SEND = 6, EXIT_NOMEM = 7 };

#if SANDBOX_SANITIZED
/* The environment is empty, so sanitizer options live here.  LeakSanitizer
 * stops the world with threads and ptrace, the symbolizer is an exec: both
 * are things the filter rightly kills. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0:symbolize=0"; }
#endif

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
	/* One write: one line in the broker's log, whatever else writes there. */
	char line[1024] = "wstrust-worker: ";
	size_t n = strlen(line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	_exit(status);
}

static void usage(const char *why)
{
	die(EXIT_USAGE,
	    "%s\nThis program is started by wstrustd, never by hand: it needs a SOCK_SEQPACKET\n"
	    "channel on fd 3, the channel key on a pipe on fd 4, and an empty environment.\n"
	    "usage: wstrust-worker [--uid N --gid N] [--chroot DIR] [--userns] [--mem-mb N] [--cpu-s N]",
	    why);
}

static unsigned parse_num(const char *opt, const char *s, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = s && *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || errno || *end || v > max) {
		char why[128];
		snprintf(why, sizeof(why), "%s needs a number up to %lu", opt, max);
		usage(why);
	}
	return (unsigned)v;
}

static void parse_args(int argc, char **argv, struct sandbox_opts *o)
{
	bool have_uid = false, have_gid = false;
	*o = (struct sandbox_opts){ 0 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--uid") && !have_uid) {
			o->uid = parse_num(a, v, UINT_MAX - 1);
			have_uid = true;
			i++;
		} else if (!strcmp(a, "--gid") && !have_gid) {
			o->gid = parse_num(a, v, UINT_MAX - 1);
			have_gid = true;
			i++;
		} else if (!strcmp(a, "--chroot") && !o->chroot_dir && v && v[0] == '/') {
			o->chroot_dir = v;
			i++;
		} else if (!strcmp(a, "--userns") && !o->userns) {
			o->userns = true;
		} else if (!strcmp(a, "--mem-mb") && !o->mem_mb) {
			o->mem_mb = parse_num(a, v, 1u << 20);
			i++;
		} else if (!strcmp(a, "--cpu-s") && !o->cpu_s) {
			o->cpu_s = parse_num(a, v, 86400);
			i++;
		} else {
			usage("unknown, repeated or incomplete option");
		}
	}
	if (have_uid != have_gid)
		usage("--uid and --gid go together");
	o->drop_ids = have_uid;
	if (geteuid() == 0 && !o->drop_ids)
		usage("running as root needs --uid and --gid to drop to");
	if (geteuid() != 0 && o->drop_ids)
		usage("--uid/--gid need root");
	if (o->drop_ids && o->userns)
		usage("--userns is for a broker that is not root");
}

/* The broker's spawn leaves exactly this: a seqpacket unix socket on fd 3, a
 * pipe on fd 4, nothing in the environment. */
static void check_spawned_by_broker(void)
{
	int type = 0, domain = 0;
	socklen_t l1 = sizeof(type), l2 = sizeof(domain);
	if (getsockopt(SANDBOX_CHANNEL_FD, SOL_SOCKET, SO_TYPE, &type, &l1) < 0
	    || getsockopt(SANDBOX_CHANNEL_FD, SOL_SOCKET, SO_DOMAIN, &domain, &l2) < 0
	    || type != SOCK_SEQPACKET || domain != AF_UNIX)
		usage("fd 3 is not a SOCK_SEQPACKET unix socket");
	struct stat st;
	if (fstat(SANDBOX_KEY_FD, &st) < 0 || !S_ISFIFO(st.st_mode))
		usage("fd 4 is not a pipe");
	if (environ && environ[0])
		usage("the environment is not empty");
}

/* Exactly IPC_CHAN_KEYBYTES, then EOF. */
static int read_key(uint8_t *key)
{
	size_t got = 0;
	while (got < IPC_CHAN_KEYBYTES) {
		ssize_t n = read(SANDBOX_KEY_FD, key + got, IPC_CHAN_KEYBYTES - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	uint8_t extra;
	return read(SANDBOX_KEY_FD, &extra, 1) == 0 ? 0 : -1;
}

static int send_msg(struct ipc_chan *c, struct ipc_builder *b)
{
	int r = ipc_finish(b) < 0 ? -1 : ipc_chan_send(c, b->buf, b->len);
	ipc_builder_free(b);
	return r;
}

/* A result too large for one frame becomes an error result. */
static int send_result(struct ipc_chan *c, const struct wt_result *res)
{
	struct ipc_builder b = { .secure = true };   /* may carry proof keys */
	if (wt_result_encode(res, &b) == 0)
		return send_msg(c, &b);
	ipc_builder_free(&b);
	struct wt_result e = { .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_LIMIT,
	                       .error = (char *)"the parsed result exceeds the channel's frame limit" };
	if (wt_result_encode(&e, &b) < 0) {
		ipc_builder_free(&b);
		return -1;
	}
	return send_msg(c, &b);
}

static bool broker_closed(void)
{
	struct pollfd p = { .fd = SANDBOX_CHANNEL_FD, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void serve(struct ipc_chan *c)
{
	static struct ipc_msg m;
	char err[256];
	for (;;) {
		uint8_t *buf;
		size_t len;
		if (ipc_chan_recv(c, &buf, &len, IPC_MAX_FRAME, 0) < 0)
			_exit(broker_closed() ? EXIT_CLOSED
			      : strstr(ipc_chan_error(c), "out of memory") ? EXIT_NOMEM : EXIT_INPUT);
		struct wt_parse_req req;
		char *relates = NULL, *context = NULL;
		if (ipc_decode(buf, len, &m, err, sizeof(err)) < 0 || m.type != IPC_W_PARSE
		    || wt_parse_req_decode(&m, &req, &relates, &context) < 0)
			_exit(EXIT_INPUT);
		struct wt_result res;
		wt_parse_reply(&req, &res);   /* -1 is a parse error, carried in res */
		if (res.kind != IPC_RESULT_TOKEN && res.kind != IPC_RESULT_FAULT && res.kind != IPC_RESULT_ERROR)
			_exit(EXIT_NOMEM);
		if (send_result(c, &res) < 0)
			_exit(EXIT_SEND);
		wt_result_free(&res);
		free(relates);
		free(context);
		sodium_memzero(buf, len);
		free(buf);
	}
}

int main(int argc, char **argv)
{
	char err[256];
	/* The process that started us: checked again once the parent-death
	 * signal is armed. */
	pid_t parent = getppid();

	/* 1. Refuse to run unless spawned by the broker, with the options it
	 * chose: nobody else can hand us a channel and its key. */
	struct sandbox_opts o;
	parse_args(argc, argv, &o);
	check_spawned_by_broker();

	/* 2. Fixed fds.  Nothing above 4 may survive (the broker closes them
	 * too; this is the worker's own guarantee).  The key goes into locked
	 * memory and its pipe is closed; the channel keeps fd 3.  stdin and
	 * stdout have no use; stderr stays until just before seccomp so a
	 * failed step can say why. */
	if (close_range(SANDBOX_KEY_FD + 1, ~0U, 0) < 0)
		die(EXIT_CONFINE, "close_range: %s", strerror(errno));
	/* libsodium before anything that needs randomness or locked memory,
	 * and before seccomp: it may open /dev/urandom on old kernels. */
	if (sodium_init() < 0)
		die(EXIT_CONFINE, "sodium_init failed");
	uint8_t *key = sodium_malloc(IPC_CHAN_KEYBYTES);
	if (!key)
		die(EXIT_NOMEM, "out of memory for the channel key");
	if (read_key(key) < 0)
		die(EXIT_USAGE, "fd 4 did not carry exactly %u key bytes", IPC_CHAN_KEYBYTES);
	close(SANDBOX_KEY_FD);
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	/* The channel state lives in locked memory: allocate it while
	 * RLIMIT_MEMLOCK still allows locking.  The key is wiped at once. */
	struct ipc_chan *chan = ipc_chan_new(SANDBOX_CHANNEL_FD, key, IPC_ROLE_WORKER);
	sodium_free(key);
	if (!chan)
		die(EXIT_NOMEM, "out of memory for the channel");

	/* 3. Drop uid/gid (root: chroot into the broker's empty directory,
	 * then nobody) or enter a user namespace (not root).  First, because
	 * the next two settings are reset by a credential change. */
	if (sandbox_drop_privileges(&o, err, sizeof(err)) < 0)
		die(EXIT_CONFINE, "%s", err);

	/* 4. Not dumpable: no ptrace or /proc/PID/mem by the same uid (another
	 * worker, another nobody process), no core. */
	if (sandbox_not_dumpable(err, sizeof(err)) < 0)
		die(EXIT_CONFINE, "%s", err);

	/* 5. Die with the broker: an orphaned worker has no reason to live. */
	if (sandbox_parent_death(parent, err, sizeof(err)) < 0)
		die(EXIT_CONFINE, "%s", err);

	/* 6. rlimits: bounded memory and CPU, no files, no processes, no core. */
	if (sandbox_rlimits(&o, err, sizeof(err)) < 0)
		die(EXIT_CONFINE, "%s", err);

	/* 7. NO_NEW_PRIVS: no exec can gain privileges (and the capabilities a
	 * user namespace gave are useless after the filter); required by
	 * Landlock and seccomp. */
	if (sandbox_no_new_privs(err, sizeof(err)) < 0)
		die(EXIT_CONFINE, "%s", err);

	/* 8. Landlock: a second, independent wall around the file system (and
	 * TCP, signals, abstract sockets) should the filter ever let a call
	 * through.  A kernel without it is not fatal: seccomp still refuses
	 * every file syscall. */
	int abi = sandbox_landlock(err, sizeof(err));
	if (abi < 0)
		die(EXIT_CONFINE, "%s", err);

	/* libxml2's global set-up before the filter, so nothing lazy runs
	 * later. */
	xmlInitParser();

	/* stderr goes now: the filter lets write() reach the channel only.
	 * Sanitized builds keep it for the sanitizer's report. */
	if (!SANDBOX_SANITIZED)
		close(STDERR_FILENO);

	/* 9. seccomp, last: every later syscall is checked against the table
	 * in sandbox.c; anything else kills the process (SIGSYS). */
	if (sandbox_install_seccomp(SANDBOX_CHANNEL_FD, err, sizeof(err)) < 0) {
		if (SANDBOX_SANITIZED)
			die(EXIT_CONFINE, "%s", err);
		_exit(EXIT_CONFINE);
	}

	/* 10. Only now talk: handshake, READY, then one reply at a time. */
	if (ipc_chan_handshake(chan, ipc_now_ms() + 10000) < 0)
		_exit(EXIT_HANDSHAKE);
	struct ipc_builder b = { 0 };
	ipc_begin(&b, IPC_W_READY);
	if (send_msg(chan, &b) < 0)
		_exit(EXIT_SEND);
	serve(chan);
	return 0;
}
