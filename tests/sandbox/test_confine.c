/* The real wstrust-worker, confined, seen from outside.
 *
 * Started exactly as the broker starts it (through worker_pool), then
 * checked through /proc: seccomp mode 2, NO_NEW_PRIVS, the unprivileged
 * uid/gid and no groups or capabilities (as root), not dumpable, no fd but
 * the channel, an empty environment, an empty read-only chroot, the rlimits,
 * its own session, death with its parent.  Then real replies: every corpus
 * file parses inside the sandbox without tripping the filter, odd encodings
 * are refused cleanly, a reply past the memory limit fails cleanly and the
 * next succeeds, and a worker that met bad input is replaced.
 *
 * usage: test_confine WORKER CORPUS_DIR */
#include "check.h"
#include "log.h"
#include "ipc.h"
#include "sandbox.h"
#include "workers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *worker, *corpus;

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL); }

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* The value after "Key:" in /proc/PID/status-like text, whitespace squeezed. */
static void field(const char *text, const char *key, char *out, size_t outlen)
{
	out[0] = 0;
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, kl) || l[kl] != ':')
			continue;
		const char *v = l + kl + 1;
		size_t n = 0;
		bool space = false;
		while (*v == ' ' || *v == '\t')
			v++;
		for (; *v && *v != '\n' && n + 1 < outlen; v++) {
			if (*v == ' ' || *v == '\t') {
				space = true;
				continue;
			}
			if (space && n)
				out[n++] = ' ';
			space = false;
			out[n++] = *v;
		}
		out[n] = 0;
		return;
	}
}

/* "Max open files            4                    4                    files" */
static void limit(const char *limits, const char *name, char *soft, char *hard)
{
	const char *l = strstr(limits, name);
	CHECK(l, "no %s in /proc/PID/limits", name);
	CHECK(sscanf(l + strlen(name), "%31s %31s", soft, hard) == 2, "cannot read limit %s", name);
}

static pid_t wait_one_pid(struct worker_pool *p)
{
	int pids[4];
	for (int i = 0; i < 500; i++) {
		if (worker_pool_pids(p, pids, 4) >= 1)
			return pids[0];
		sleep_ms(10);
	}
	CHECK(0, "no worker became ready within 5 s");
	return -1;
}

static struct worker_pool *new_pool(unsigned mem_mb, unsigned cpu_s, unsigned max_replies)
{
	struct worker_cfg c = { .worker_path = worker, .mem_mb = mem_mb, .cpu_s = cpu_s, .max_replies = max_replies,
	                        .pool_size = 1, .timeout_ms = 10000 };
	struct worker_pool *p = worker_pool_new(&c, "confine");
	CHECK(p, "worker_pool_new(%s)", worker);
	return p;
}

/* Driven by hand, exactly as the broker drives it: READY, then the broker
 * closes the channel and the worker exits 0 (in every build: the sanitizer
 * runtime's exit path must pass the filter too). */
static void test_eof_exit(void)
{
	int sv[2], kp[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0 && pipe2(kp, O_CLOEXEC) == 0, "channel");
	uint8_t key[IPC_CHAN_KEYBYTES];
	CHECK(sodium_init() >= 0, "sodium_init");
	randombytes_buf(key, sizeof(key));
	CHECK(write(kp[1], key, sizeof(key)) == (ssize_t)sizeof(key), "key");
	close(kp[1]);
	int cfd = fcntl(sv[1], F_DUPFD_CLOEXEC, 5), kfd = fcntl(kp[0], F_DUPFD_CLOEXEC, 5);
	char dir[] = "/tmp/wstrust-eof-test.XXXXXX";
	char uid[16], gid[16];
	char *argv[16] = { (char *)worker, (char *)"--mem-mb", (char *)"512", (char *)"--cpu-s", (char *)"5" };
	int n = 5;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		CHECK(pw && mkdtemp(dir), "nobody / mkdtemp");
		snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
		snprintf(gid, sizeof(gid), "%u", (unsigned)pw->pw_gid);
		argv[n++] = (char *)"--uid";
		argv[n++] = uid;
		argv[n++] = (char *)"--gid";
		argv[n++] = gid;
		argv[n++] = (char *)"--chroot";
		argv[n++] = dir;
	}
	argv[n] = NULL;
	char *envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, cfd, 3);
	posix_spawn_file_actions_adddup2(&fa, kfd, 4);
	posix_spawn_file_actions_addclosefrom_np(&fa, 5);
	pid_t pid;
	CHECK(posix_spawn(&pid, worker, &fa, NULL, argv, envp) == 0, "spawn");
	posix_spawn_file_actions_destroy(&fa);
	close(cfd);
	close(kfd);
	close(sv[1]);
	close(kp[0]);
	struct ipc_chan *c = ipc_chan_new(sv[0], key, IPC_ROLE_BROKER);
	CHECK(c, "ipc_chan_new");
	uint8_t *msg;
	size_t len;
	struct ipc_msg m;
	char err[256];
	CHECK(ipc_chan_handshake(c, ipc_now_ms() + 10000) == 0, "handshake: %s", ipc_chan_error(c));
	CHECK(ipc_chan_recv(c, &msg, &len, IPC_MAX_FRAME, ipc_now_ms() + 10000) == 0, "READY: %s", ipc_chan_error(c));
	CHECK(ipc_decode(msg, len, &m, err, sizeof(err)) == 0 && m.type == IPC_W_READY, "first frame is not READY");
	free(msg);
	ipc_chan_free(c);
	close(sv[0]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker whose broker closed the channel: status %d (signal %d)",
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	if (geteuid() == 0)
		rmdir(dir);
	printf("ok - channel closed by the broker: worker exits 0\n");
}

static void test_refuses_by_hand(void)
{
	/* No channel on fd 3: usage, status 2, nothing else done. */
	int err[2];
	CHECK(pipe(err) == 0, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	char *argv[] = { (char *)worker, NULL }, *envp[] = { NULL };
	pid_t pid;
	CHECK(posix_spawn(&pid, worker, &fa, NULL, argv, envp) == 0, "spawn %s", worker);
	posix_spawn_file_actions_destroy(&fa);
	close(err[1]);
	char msg[2048] = "";
	size_t got = 0;
	ssize_t n;
	while ((n = read(err[0], msg + got, sizeof(msg) - 1 - got)) > 0)
		got += (size_t)n;
	msg[got] = 0;
	close(err[0]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "worker run by hand: status %d, expected exit 2", st);
	CHECK(strstr(msg, "fd 3"), "usage message does not say what is missing: %s", msg);
	printf("ok - run by hand: refuses with status 2\n");
}

static void test_confined(void)
{
	struct worker_pool *p = new_pool(256, 7, 0);
	pid_t pid = wait_one_pid(p);
	char path[64], v[256];
	bool root = geteuid() == 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	char *status = slurp(path, NULL);
	CHECK(status, "read %s", path);
	field(status, "Seccomp", v, sizeof(v));
	CHECK(!strcmp(v, "2"), "Seccomp: %s, expected 2 (filter)", v);
	field(status, "NoNewPrivs", v, sizeof(v));
	CHECK(!strcmp(v, "1"), "NoNewPrivs: %s", v);
	field(status, "CapEff", v, sizeof(v));
	if (root) {
		struct passwd *pw = getpwnam("nobody");
		CHECK(pw, "no user nobody");
		char want[128];
		snprintf(want, sizeof(want), "%u %u %u %u", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
		         (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
		field(status, "Uid", v, sizeof(v));
		CHECK(!strcmp(v, want), "Uid: %s, expected %s (nobody)", v, want);
		snprintf(want, sizeof(want), "%u %u %u %u", (unsigned)pw->pw_gid, (unsigned)pw->pw_gid,
		         (unsigned)pw->pw_gid, (unsigned)pw->pw_gid);
		field(status, "Gid", v, sizeof(v));
		CHECK(!strcmp(v, want), "Gid: %s, expected %s", v, want);
		field(status, "Groups", v, sizeof(v));
		CHECK(!strcmp(v, ""), "Groups: %s, expected none", v);
		field(status, "CapEff", v, sizeof(v));
		CHECK(!strcmp(v, "0000000000000000"), "CapEff: %s", v);
		field(status, "CapPrm", v, sizeof(v));
		CHECK(!strcmp(v, "0000000000000000"), "CapPrm: %s", v);

		/* Not dumpable: the files under /proc/PID belong to root, not to the worker's
		 * uid (a dumpable nobody process would own them). */
		struct stat st;
		CHECK(stat(path, &st) == 0 && st.st_uid == 0, "%s owned by uid %u: worker is dumpable", path,
		      (unsigned)st.st_uid);

		/* An empty, read-only, root-owned directory is its whole world. */
		char root_dir[256];
		snprintf(path, sizeof(path), "/proc/%ld/root", (long)pid);
		ssize_t n = readlink(path, root_dir, sizeof(root_dir) - 1);
		CHECK(n > 0, "readlink %s", path);
		root_dir[n] = 0;
		CHECK(!strncmp(root_dir, "/run/wstrust-worker.", 20) || !strncmp(root_dir, "/tmp/wstrust-worker.", 20),
		      "worker root is %s, expected its empty chroot", root_dir);
		CHECK(stat(root_dir, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0555,
		      "chroot %s: uid %u mode %o", root_dir, (unsigned)st.st_uid, st.st_mode & 07777);
		DIR *d = opendir(root_dir);
		CHECK(d, "opendir %s", root_dir);
		struct dirent *e;
		while ((e = readdir(d)))
			CHECK(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."), "chroot has %s", e->d_name);
		closedir(d);
	}
	free(status);

	/* No fd but the channel (and stderr in sanitized builds, for reports). */
	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	DIR *d = opendir(path);
	CHECK(d, "opendir %s", path);
	char fds[64] = "";
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			strcat(fds, e->d_name);
			strcat(fds, " ");
		}
	closedir(d);
	const char *want_fds = SANDBOX_SANITIZED ? "2 3 " : "3 ";
	bool same = strlen(fds) == strlen(want_fds) && (strstr(fds, "2 ") != NULL) == (SANDBOX_SANITIZED != 0)
	            && strstr(fds, "3 ");
	CHECK(same, "worker fds: %s, expected exactly %s", fds, want_fds);
	char link[128];
	snprintf(path, sizeof(path), "/proc/%ld/fd/3", (long)pid);
	ssize_t ln = readlink(path, link, sizeof(link) - 1);
	CHECK(ln > 0 && !strncmp(link, "socket:", 7), "fd 3 is not the channel socket");

	/* Empty environment. */
	size_t envlen = 1;
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	char *env = slurp(path, &envlen);
	CHECK(env && envlen == 0, "environment not empty (%zu bytes)", envlen);
	free(env);

	/* rlimits */
	snprintf(path, sizeof(path), "/proc/%ld/limits", (long)pid);
	char *limits = slurp(path, NULL);
	CHECK(limits, "read %s", path);
	char s[32], h[32];
	limit(limits, "Max open files", s, h);
	CHECK(!strcmp(s, "4") && !strcmp(h, "4"), "NOFILE %s/%s", s, h);
	limit(limits, "Max processes", s, h);
	CHECK(!strcmp(s, "0") && !strcmp(h, "0"), "NPROC %s/%s", s, h);
	limit(limits, "Max file size", s, h);
	CHECK(!strcmp(s, "0") && !strcmp(h, "0"), "FSIZE %s/%s", s, h);
	limit(limits, "Max core file size", s, h);
	CHECK(!strcmp(s, "0") && !strcmp(h, "0"), "CORE %s/%s", s, h);
	limit(limits, "Max locked memory", s, h);
	CHECK(!strcmp(s, "0") && !strcmp(h, "0"), "MEMLOCK %s/%s", s, h);
	limit(limits, "Max cpu time", s, h);
	CHECK(!strcmp(s, "7") && !strcmp(h, "8"), "CPU %s/%s, expected 7/8", s, h);
	limit(limits, "Max address space", s, h);
	if (!SANDBOX_SANITIZED)
		CHECK(!strcmp(s, "268435456") && !strcmp(h, "268435456"), "AS %s/%s, expected 256 MiB", s, h);
	free(limits);

	/* Its own session: no controlling terminal to push input into. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	char *stat_txt = slurp(path, NULL);
	CHECK(stat_txt, "read %s", path);
	long sid = 0;
	const char *rp = strrchr(stat_txt, ')');
	CHECK(rp && sscanf(rp + 2, "%*c %*d %*d %ld", &sid) == 1, "parse %s", path);
	CHECK(sid == pid, "session %ld, expected its own (%ld)", sid, (long)pid);
	free(stat_txt);

	worker_pool_free(p);
	printf("ok - confined: seccomp 2, no_new_privs, %s, not dumpable, fds {%s}, empty env, rlimits, own session\n",
	       root ? "uid/gid nobody, no caps, empty chroot" : "unprivileged", fds);
}

/* A broker that dies takes its workers with it (PR_SET_PDEATHSIG). */
static void test_parent_death(void)
{
	/* Orphans come to us, so we can see how they died. */
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER");
	int pp[2];
	CHECK(pipe(pp) == 0, "pipe");
	pid_t broker = fork();
	CHECK(broker >= 0, "fork");
	if (broker == 0) {
		close(pp[0]);
		struct worker_pool *p = new_pool(0, 0, 0);
		pid_t w = wait_one_pid(p);
		/* A grandchild keeps the broker's end of the channel open, so
		 * the worker sees no EOF when we die: only the parent-death
		 * signal can end it. */
		pid_t holder = fork();
		if (holder == 0) {
			for (;;)
				pause();
		}
		if (holder < 0 || write(pp[1], &w, sizeof(w)) != sizeof(w) || write(pp[1], &holder, sizeof(holder)) != sizeof(holder))
			_exit(1);
		for (;;)
			pause();
	}
	close(pp[1]);
	pid_t w = 0, holder = 0;
	CHECK(read(pp[0], &w, sizeof(w)) == sizeof(w) && w > 0, "no worker pid from the sub-broker");
	CHECK(read(pp[0], &holder, sizeof(holder)) == sizeof(holder) && holder > 0, "no holder pid");
	close(pp[0]);
	/* The killed broker cannot remove its empty chroot: we do. */
	char link[64], chroot_dir[256] = "";
	snprintf(link, sizeof(link), "/proc/%ld/root", (long)w);
	ssize_t rl = readlink(link, chroot_dir, sizeof(chroot_dir) - 1);
	chroot_dir[rl > 0 ? rl : 0] = 0;
	CHECK(kill(broker, SIGKILL) == 0, "kill broker");
	int st;
	CHECK(waitpid(broker, &st, 0) == broker, "reap broker");
	pid_t r = 0;
	for (int i = 0; i < 300 && r == 0; i++) {
		r = waitpid(w, &st, WNOHANG);
		if (r == 0)
			sleep_ms(10);
	}
	CHECK(r == w, "worker %ld outlived its broker by 3 s", (long)w);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "orphaned worker ended with status %d, expected SIGKILL", st);
	/* the holder was orphaned too: it comes to us */
	kill(holder, SIGKILL);
	CHECK(waitpid(holder, &st, 0) == holder, "reap the channel holder");
	if (strstr(chroot_dir, "/wstrust-worker."))
		rmdir(chroot_dir);
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0, "PR_SET_CHILD_SUBREAPER off");
	printf("ok - worker dies with its broker (SIGKILL)\n");
}

static enum worker_status parse_bytes(struct worker_pool *p, const void *data, size_t len, struct wt_result *res,
                                      char *err, size_t errlen);

static bool same_ns(pid_t pid, const char *ns)
{
	char a[64], b[64], la[64] = "", lb[64] = "";
	snprintf(a, sizeof(a), "/proc/%ld/ns/%s", (long)pid, ns);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
	CHECK(readlink(a, la, sizeof(la) - 1) > 0 && readlink(b, lb, sizeof(lb) - 1) > 0, "readlink ns/%s", ns);
	return !strcmp(la, lb);
}

/* A broker that is not root (embedded mode: the client library's private
 * broker runs as the application's user) puts each worker in its own user,
 * network and IPC namespaces, chrooted, and the same filter applies. */
static void test_not_root(void)
{
	if (geteuid() != 0) {
		printf("ok - not root already: the confinement test above ran the non-root path\n");
		return;
	}
	struct passwd *pw = getpwnam("nobody");
	CHECK(pw, "no user nobody");
	int up[2], down[2];
	CHECK(pipe(up) == 0 && pipe(down) == 0, "pipe");
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0
		    || setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
			_exit(10);
		struct worker_pool *p = new_pool(0, 0, 0);
		pid_t w = wait_one_pid(p);
		char go;
		if (write(up[1], &w, sizeof(w)) != sizeof(w) || read(down[0], &go, 1) != 1)
			_exit(11);
		struct wt_result res;
		char err[256];
		enum worker_status s = parse_bytes(p, "not xml", 7, &res, err, sizeof(err));
		if (s != WORKER_OK || res.kind != IPC_RESULT_ERROR) {
			fprintf(stderr, "non-root parse: %s (%s)\n", worker_status_str(s), err);
			_exit(12);
		}
		wt_result_free(&res);
		worker_pool_free(p);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	pid_t w = 0;
	CHECK(read(up[0], &w, sizeof(w)) == sizeof(w) && w > 0, "no worker pid from the non-root broker");
	char path[64], v[64];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)w);
	char *status = slurp(path, NULL);
	CHECK(status, "read %s", path);
	field(status, "Seccomp", v, sizeof(v));
	CHECK(!strcmp(v, "2"), "non-root worker: Seccomp %s", v);
	field(status, "NoNewPrivs", v, sizeof(v));
	CHECK(!strcmp(v, "1"), "non-root worker: NoNewPrivs %s", v);
	free(status);
	CHECK(!same_ns(w, "user"), "non-root worker shares our user namespace");
	CHECK(!same_ns(w, "net"), "non-root worker shares our network namespace");
	CHECK(!same_ns(w, "ipc"), "non-root worker shares our IPC namespace");
	char root_dir[256];
	snprintf(path, sizeof(path), "/proc/%ld/root", (long)w);
	ssize_t n = readlink(path, root_dir, sizeof(root_dir) - 1);
	CHECK(n > 0, "readlink %s", path);
	root_dir[n] = 0;
	CHECK(strstr(root_dir, "/wstrust-worker."), "non-root worker root is %s, expected its empty chroot", root_dir);
	CHECK(write(down[1], "g", 1) == 1, "go");
	int st;
	CHECK(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "non-root broker ended with status %d", st);
	close(up[0]);
	close(down[1]);
	printf("ok - not root: worker in its own user/net/ipc namespaces, chrooted, filtered, parses\n");
}

static enum worker_status parse_bytes(struct worker_pool *p, const void *data, size_t len, struct wt_result *res,
                                      char *err, size_t errlen)
{
	struct wt_parse_req req = { .reply = data, .reply_len = len, .http_status = 200, .limits = WT_DEFAULT_LIMITS };
	return worker_pool_parse(p, &req, res, err, errlen);
}

/* Every corpus file is parsed inside the real sandbox: whatever the parser
 * says about it, the filter must let it say it. */
static void test_corpus(void)
{
	static const char *const dirs[] = { "rstr", "fault", "mex", "rst" };
	struct worker_pool *p = new_pool(0, 0, 0);
	unsigned n = 0, tokens = 0, faults = 0;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dpath[1024];
		snprintf(dpath, sizeof(dpath), "%s/%s", corpus, dirs[i]);
		DIR *d = opendir(dpath);
		CHECK(d, "corpus directory %s is missing", dpath);
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char fpath[2048];
			snprintf(fpath, sizeof(fpath), "%s/%s", dpath, e->d_name);
			size_t len;
			char *data = slurp(fpath, &len);
			CHECK(data, "read %s", fpath);
			struct wt_result res;
			char err[256];
			enum worker_status s = parse_bytes(p, data, len, &res, err, sizeof(err));
			CHECK(s == WORKER_OK, "%s: %s (%s)", fpath, worker_status_str(s), err);
			tokens += res.kind == IPC_RESULT_TOKEN;
			faults += res.kind == IPC_RESULT_FAULT;
			wt_result_free(&res);
			free(data);
			n++;
		}
		closedir(d);
	}
	CHECK(n >= 10, "only %u corpus files found under %s", n, corpus);
	CHECK(tokens >= 1 && faults >= 1, "the corpus gave %u tokens and %u faults inside the sandbox", tokens, faults);
	worker_pool_free(p);
	printf("ok - %u corpus files parsed in the sandbox (%u tokens, %u faults), no violation\n", n, tokens, faults);
}

/* Declared encodings that need iconv's modules (files the worker cannot
 * open) are refused as errors, not killed. */
static void test_encodings(void)
{
	static const char *const docs[] = {
		"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a>\xc1</a>",
		"<?xml version=\"1.0\" encoding=\"EUC-JP\"?><a/>",
		"<?xml version=\"1.0\" encoding=\"ISO-8859-5\"?><a/>",
		"<?xml version=\"1.0\" encoding=\"no-such-charset\"?><a/>",
		"\xff\xfe<\0a\0/\0>\0",
	};
	struct worker_pool *p = new_pool(0, 0, 0);
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		size_t len = i == 4 ? 10 : strlen(docs[i]);
		struct wt_result res;
		char err[256];
		enum worker_status s = parse_bytes(p, docs[i], len, &res, err, sizeof(err));
		CHECK(s == WORKER_OK, "encoding case %zu: %s (%s)", i, worker_status_str(s), err);
		CHECK(res.kind == IPC_RESULT_ERROR, "encoding case %zu: a bare <a/> was taken as kind %u", i, res.kind);
		wt_result_free(&res);
	}
	worker_pool_free(p);
	printf("ok - encodings needing files are refused cleanly\n");
}

static void test_bad_input_recycles(void)
{
	struct worker_pool *p = new_pool(0, 0, 0);
	pid_t a = wait_one_pid(p);
	struct wt_result res;
	char err[256];
	enum worker_status s = parse_bytes(p, "this is not XML", 15, &res, err, sizeof(err));
	CHECK(s == WORKER_OK && res.kind == IPC_RESULT_ERROR, "not XML: %s %s, kind %u", worker_status_str(s), err,
	      res.kind);
	CHECK(res.error && res.error[0], "parse error without a message");
	wt_result_free(&res);
	CHECK(kill(a, 0) < 0 && errno == ESRCH, "worker %ld kept after bad input", (long)a);
	pid_t b = wait_one_pid(p);
	CHECK(b != a, "same worker after bad input");
	worker_pool_free(p);
	printf("ok - bad input: error result, worker replaced\n");
}

static long vmsize_mb(pid_t pid)
{
	char path[64], v[64];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	char *status = slurp(path, NULL);
	CHECK(status, "read %s", path);
	field(status, "VmSize", v, sizeof(v));
	free(status);
	return atol(v) / 1024;
}

static void test_memory_limit(void)
{
	if (SANDBOX_SANITIZED) {
		/* ASan's shadow needs terabytes of address space: sanitized
		 * workers run without RLIMIT_AS (docs/SANDBOX.md); the regular
		 * build of this same test checks the limit. */
		printf("ok - memory limit: not applicable under ASan (checked by the regular build)\n");
		return;
	}
	struct worker_pool *probe = new_pool(0, 0, 0);
	long base = vmsize_mb(wait_one_pid(probe));
	worker_pool_free(probe);

	/* Room to start and to parse a small reply, not to receive a 12 MiB
	 * one: without the limit this reply would come back as a parse error
	 * (OK status); with it, the worker runs out of memory and exits. */
	unsigned mem = (unsigned)base + 6;
	struct worker_pool *p = new_pool(mem, 0, 0);
	size_t big_len = 12u << 20;
	char *big = malloc(big_len);
	CHECK(big, "malloc");
	memset(big, ' ', big_len);
	memcpy(big, "<a>", 3);
	memcpy(big + big_len - 4, "</a>", 4);
	struct wt_result res;
	char err[256];
	enum worker_status s = parse_bytes(p, big, big_len, &res, err, sizeof(err));
	free(big);
	CHECK(s == WORKER_EXITED || s == WORKER_CRASHED, "12 MiB reply in %u MiB: %s (%s) kind %u", mem,
	      worker_status_str(s), err, res.kind);
	wt_result_free(&res);
	char err2[256];
	enum worker_status s2 = parse_bytes(p, "<a/>", 4, &res, err2, sizeof(err2));
	CHECK(s2 == WORKER_OK, "small reply after the memory failure: %s (%s)", worker_status_str(s2), err2);
	wt_result_free(&res);
	worker_pool_free(p);
	printf("ok - memory limit (%u MiB): large reply fails cleanly (%s: %s), next one succeeds\n", mem,
	       worker_status_str(s), err);
}

int main(int argc, char **argv)
{
	CHECK(argc == 3, "usage: test_confine WORKER CORPUS_DIR");
	static char path[4096];
	CHECK(realpath(argv[1], path), "%s not found", argv[1]);
	worker = path;
	corpus = argv[2];
	log_init(false, LOG_LVL_INFO);

	test_parent_death();   /* first: these fork, and the process has no threads yet */
	test_not_root();
	test_refuses_by_hand();
	test_eof_exit();
	test_confined();
	test_bad_input_recycles();
	test_encodings();
	test_corpus();
	test_memory_limit();
	printf("%d passed, 0 failed\n", check_count);
	return 0;
}
