/* The filter enforced: each case runs in a fresh child that installs the
 * worker's exact filter (worker/sandbox.c, compiled into this probe without
 * sanitizers) and then makes one call.  The parent asserts how the child
 * ended: killed by SIGSYS, or the errno the filter documents, or success.
 * Run as root or not: NO_NEW_PRIVS is set first, as in the worker. */
#include "check.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if SANDBOX_SANITIZED
#error "the filter probe must be built without sanitizers (override_options: b_sanitize=none)"
#endif

enum expect { DIES_SIGSYS, DIES_SIGABRT, FAILS_WITH, SUCCEEDS };

/* Each case returns 0 (success) or an errno from the call it makes. */
typedef int (*case_fn)(int chan);

static int ret(long r) { return r < 0 ? errno : 0; }

static int c_socket(int chan) { (void)chan; return ret(socket(AF_INET, SOCK_STREAM, 0)); }
static int c_socketpair(int chan) { int sv[2]; (void)chan; return ret(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)); }
static int c_connect(int chan)
{
	struct sockaddr_un { sa_family_t f; char p[108]; } a = { AF_UNIX, "/run/wstrust/wstrustd.sock" };
	return ret(connect(chan, (struct sockaddr *)&a, sizeof(a)));
}
static int c_sendmsg(int chan)
{
	struct msghdr mh = { 0 };
	return ret(sendmsg(chan, &mh, 0));
}
static int c_execve(int chan) { (void)chan; char *argv[] = { (char *)"/bin/true", NULL }; return ret(execve("/bin/true", argv, argv + 1)); }
static int c_ptrace(int chan) { (void)chan; return ret(ptrace(PTRACE_ATTACH, getppid(), 0, 0)); }
static int c_fork(int chan) { (void)chan; return ret(syscall(SYS_fork)); }
static int c_vfork(int chan) { (void)chan; return ret(syscall(SYS_vfork)); }
static int c_clone(int chan) { (void)chan; return ret(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }
static int c_clone3(int chan)
{
	(void)chan;
	struct clone_args ca = { .exit_signal = SIGCHLD };
	return ret(syscall(SYS_clone3, &ca, sizeof(ca)));
}
static int c_kill(int chan) { (void)chan; return ret(kill(getppid(), 0)); }
static int c_kill_self(int chan) { (void)chan; return ret(kill(getpid(), SIGTERM)); }
static int c_tgkill_other(int chan) { (void)chan; return ret(syscall(SYS_tgkill, getppid(), getppid(), SIGABRT)); }
static int c_tgkill_sigterm(int chan) { (void)chan; return ret(syscall(SYS_tgkill, getpid(), getpid(), SIGTERM)); }
static int c_mmap_exec(int chan)
{
	(void)chan;
	return ret((long)(intptr_t)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
}
static int c_mmap_rw(int chan)
{
	(void)chan;
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	memset(p, 1, 1 << 20);
	return ret(munmap(p, 1 << 20));
}
static int c_mprotect_exec(int chan)
{
	(void)chan;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return ret(mprotect(p, 4096, PROT_READ | PROT_EXEC));
}
static int c_mprotect_ro(int chan)
{
	(void)chan;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return ret(mprotect(p, 4096, PROT_READ));
}
static int c_pkey_mprotect(int chan)
{
	(void)chan;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return ret(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_EXEC, -1));
}
static int c_memfd(int chan) { (void)chan; return ret(syscall(SYS_memfd_create, "x", 0)); }
static int c_setuid(int chan) { (void)chan; return ret(syscall(SYS_setuid, 0)); }
static int c_unshare(int chan) { (void)chan; return ret(syscall(SYS_unshare, 0)); }
static int c_prctl(int chan) { (void)chan; return ret(syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0)); }
static int c_ioctl(int chan) { return ret(syscall(SYS_ioctl, chan, FIONREAD, &(int){ 0 })); }
static int c_close(int chan) { return ret(syscall(SYS_close, chan)); }
static int c_dup(int chan) { return ret(syscall(SYS_dup, chan)); }
static int c_poll2(int chan)
{
	struct pollfd p[2] = { { .fd = chan, .events = POLLIN }, { .fd = chan, .events = POLLIN } };
	return ret(syscall(SYS_poll, p, 2, 0));
}
static int c_int80(int chan)
{
	(void)chan;
	long r = 20;   /* getpid in the i386 ABI */
	__asm__ volatile("int $0x80" : "+a"(r) : : "memory");
	return 0;
}

static int c_openat(int chan) { (void)chan; return ret(openat(AT_FDCWD, "/etc/passwd", O_RDONLY)); }
static int c_open(int chan) { (void)chan; return ret(syscall(SYS_open, "/etc/passwd", O_RDONLY)); }
static int c_openat_creat(int chan) { (void)chan; return ret(syscall(SYS_openat, AT_FDCWD, "/tmp/x-wstrust-probe", O_CREAT | O_WRONLY, 0600)); }
static int c_stat(int chan) { (void)chan; struct stat st; return ret(syscall(SYS_stat, "/", &st)); }
static int c_lstat(int chan) { (void)chan; struct stat st; return ret(syscall(SYS_lstat, "/", &st)); }
static int c_fstat(int chan) { struct stat st; return ret(syscall(SYS_fstat, chan, &st)); }
static int c_newfstatat(int chan) { (void)chan; struct stat st; return ret(syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0)); }
static int c_statx(int chan) { (void)chan; char buf[256]; return ret(syscall(SYS_statx, AT_FDCWD, "/", 0, 0x7ff, buf)); }
static int c_access(int chan) { (void)chan; return ret(syscall(SYS_access, "/", F_OK)); }
static int c_readlink(int chan) { (void)chan; char b[64]; return ret(syscall(SYS_readlink, "/proc/self/exe", b, sizeof(b))); }

static int c_read_other(int chan) { (void)chan; char b[4]; return ret(read(0, b, sizeof(b))); }
static int c_write_other(int chan) { (void)chan; return ret(write(1, "x", 1)); }
static int c_write_stderr(int chan) { (void)chan; return ret(write(2, "probe: this must not appear\n", 28)); }
static int c_writev(int chan)
{
	struct iovec v = { (void *)"x", 1 };
	return ret(writev(chan, &v, 1));
}
static int c_write_badptr(int chan) { return ret(syscall(SYS_write, chan, (void *)16, 8)); }
static int c_read_badptr(int chan)
{
	/* the parent sent a datagram before forking: reading it into a bad
	 * pointer must fail with EFAULT, not kill */
	return ret(syscall(SYS_read, chan, (void *)16, 8));
}
static int c_write_chan(int chan) { return ret(write(chan, "ok", 2) == 2 ? 0 : -1); }
static int c_poll1(int chan)
{
	struct pollfd p = { .fd = chan, .events = POLLOUT };
	return ret(poll(&p, 1, 0));
}
static int c_brk_malloc(int chan)
{
	(void)chan;
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)i * 1024 + 1);
		if (!p)
			return ENOMEM;
		memset(p, 0, (size_t)i * 1024 + 1);
		free(p);
	}
	void *big = malloc(8 << 20);
	big = realloc(big, 32 << 20);   /* mremap */
	free(big);
	return 0;
}
static int c_clock(int chan) { (void)chan; struct timespec ts; return ret(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts)); }
static int c_getrandom(int chan) { (void)chan; char b[16]; return ret(syscall(SYS_getrandom, b, sizeof(b), 0)); }
static int c_abort(int chan) { (void)chan; abort(); }
static int c_double_free(int chan)
{
	/* glibc's heap check writes its message (refused: EBADF), then aborts */
	(void)chan;
	void *volatile p = malloc(64);
	free(p);
	free(p);
	return 0;
}

struct probe_case {
	const char *name;
	case_fn fn;
	enum expect expect;
	int err;   /* FAILS_WITH */
};

static const struct probe_case cases[] = {
	/* everything the worker must never do: killed, SIGSYS */
	{ "socket", c_socket, DIES_SIGSYS, 0 },
	{ "socketpair", c_socketpair, DIES_SIGSYS, 0 },
	{ "connect", c_connect, DIES_SIGSYS, 0 },
	{ "sendmsg", c_sendmsg, DIES_SIGSYS, 0 },
	{ "execve", c_execve, DIES_SIGSYS, 0 },
	{ "ptrace", c_ptrace, DIES_SIGSYS, 0 },
	{ "fork", c_fork, DIES_SIGSYS, 0 },
	{ "vfork", c_vfork, DIES_SIGSYS, 0 },
	{ "clone", c_clone, DIES_SIGSYS, 0 },
	{ "clone3", c_clone3, DIES_SIGSYS, 0 },
	{ "kill(parent)", c_kill, DIES_SIGSYS, 0 },
	{ "kill(self, SIGTERM)", c_kill_self, DIES_SIGSYS, 0 },
	{ "tgkill(parent, SIGABRT)", c_tgkill_other, DIES_SIGSYS, 0 },
	{ "tgkill(self, SIGTERM)", c_tgkill_sigterm, DIES_SIGSYS, 0 },
	{ "mmap PROT_EXEC", c_mmap_exec, DIES_SIGSYS, 0 },
	{ "mprotect PROT_EXEC", c_mprotect_exec, DIES_SIGSYS, 0 },
	{ "pkey_mprotect PROT_EXEC", c_pkey_mprotect, DIES_SIGSYS, 0 },
	{ "memfd_create", c_memfd, DIES_SIGSYS, 0 },
	{ "setuid(0)", c_setuid, DIES_SIGSYS, 0 },
	{ "unshare", c_unshare, DIES_SIGSYS, 0 },
	{ "prctl(SET_DUMPABLE)", c_prctl, DIES_SIGSYS, 0 },
	{ "ioctl(channel)", c_ioctl, DIES_SIGSYS, 0 },
	{ "close(channel)", c_close, DIES_SIGSYS, 0 },
	{ "dup(channel)", c_dup, DIES_SIGSYS, 0 },
	{ "poll with 2 fds", c_poll2, DIES_SIGSYS, 0 },
	{ "int 0x80 (i386 ABI)", c_int80, DIES_SIGSYS, 0 },
	/* files: refused with EACCES (documented choice) */
	{ "openat", c_openat, FAILS_WITH, EACCES },
	{ "open", c_open, FAILS_WITH, EACCES },
	{ "openat O_CREAT", c_openat_creat, FAILS_WITH, EACCES },
	{ "stat", c_stat, FAILS_WITH, EACCES },
	{ "lstat", c_lstat, FAILS_WITH, EACCES },
	{ "fstat", c_fstat, FAILS_WITH, EACCES },
	{ "newfstatat", c_newfstatat, FAILS_WITH, EACCES },
	{ "statx", c_statx, FAILS_WITH, EACCES },
	{ "access", c_access, FAILS_WITH, EACCES },
	{ "readlink", c_readlink, FAILS_WITH, EACCES },
	/* allowed calls with bad arguments: fail harmlessly */
	{ "read(fd 0)", c_read_other, FAILS_WITH, EBADF },
	{ "write(fd 1)", c_write_other, FAILS_WITH, EBADF },
	{ "write(fd 2)", c_write_stderr, FAILS_WITH, EBADF },
	{ "writev(channel)", c_writev, FAILS_WITH, EBADF },
	{ "write(channel, bad pointer)", c_write_badptr, FAILS_WITH, EFAULT },
	{ "read(channel, bad pointer)", c_read_badptr, FAILS_WITH, EFAULT },
	/* what the worker needs: works */
	{ "write(channel)", c_write_chan, SUCCEEDS, 0 },
	{ "poll(channel)", c_poll1, SUCCEEDS, 0 },
	{ "mmap/munmap rw", c_mmap_rw, SUCCEEDS, 0 },
	{ "mprotect PROT_READ", c_mprotect_ro, SUCCEEDS, 0 },
	{ "malloc/realloc/free", c_brk_malloc, SUCCEEDS, 0 },
	{ "clock_gettime", c_clock, SUCCEEDS, 0 },
	{ "getrandom", c_getrandom, SUCCEEDS, 0 },
	/* abort() is a crash, not a sandbox violation */
	{ "abort()", c_abort, DIES_SIGABRT, 0 },
	{ "double free (glibc fatal path)", c_double_free, DIES_SIGABRT, 0 },
};

static void run_case(const struct probe_case *c)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair");
	CHECK(write(sv[0], "datagram", 8) == 8, "prime the channel");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char err[256];
		/* The channel at the worker's fd number, stdio as the test has it
		 * (the filter must hold whatever fds exist). */
		if (dup2(sv[1], SANDBOX_CHANNEL_FD) < 0)
			_exit(200);
		if (sandbox_no_new_privs(err, sizeof(err)) < 0 || sandbox_install_seccomp(SANDBOX_CHANNEL_FD, err, sizeof(err)) < 0) {
			fprintf(stderr, "probe: %s\n", err);
			_exit(201);
		}
		int e = c->fn(SANDBOX_CHANNEL_FD);
		_exit(e > 0 && e < 200 ? e : e ? 199 : 0);
	}
	close(sv[1]);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	close(sv[0]);
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) >= 200), "%s: the probe could not install the filter", c->name);
	switch (c->expect) {
	case DIES_SIGSYS:
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s: expected death by SIGSYS, got %s %d", c->name,
		      WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		break;
	case DIES_SIGABRT:
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: expected death by SIGABRT, got %s %d", c->name,
		      WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		break;
	case FAILS_WITH:
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == c->err, "%s: expected errno %s, got %s %d (%s)", c->name,
		      strerror(c->err), WIFSIGNALED(st) ? "signal" : "exit",
		      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		      WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : strsignal(WTERMSIG(st)));
		break;
	case SUCCEEDS:
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: expected success, got %s %d (%s)", c->name,
		      WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
		      WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : strsignal(WTERMSIG(st)));
		break;
	}
	printf("ok - %s\n", c->name);
}

/* Landlock alone (no seccomp): no file can be opened, not even for
 * reading, and no signal reaches a process outside the domain. */
static void landlock_case(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char err[256];
		if (sandbox_no_new_privs(err, sizeof(err)) < 0)
			_exit(201);
		int abi = sandbox_landlock(err, sizeof(err));
		if (abi < 0) {
			fprintf(stderr, "probe: %s\n", err);
			_exit(201);
		}
		if (abi == 0) {
			printf("note - %s\n", err);
			_exit(100);
		}
		if (open("/etc/passwd", O_RDONLY) >= 0 || errno != EACCES)
			_exit(1);
		if (open("/", O_RDONLY | O_DIRECTORY) >= 0 || errno != EACCES)
			_exit(2);
		if (open("/tmp/wstrust-landlock-probe", O_WRONLY | O_CREAT, 0600) >= 0 || errno != EACCES)
			_exit(3);
		if (abi >= 6 && (kill(getppid(), 0) == 0 || errno != EPERM))
			_exit(4);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 100),
	      "Landlock: check %d failed (1 read, 2 directory, 3 create, 4 signal)", WEXITSTATUS(st));
	printf("ok - Landlock %s\n", WEXITSTATUS(st) == 0 ? "denies every file access and outside signals"
	                                                   : "not in this kernel (seccomp still refuses files)");
}

int main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);
	landlock_case();
	printf("%zu passed, 0 failed\n", n + 1);
	return 0;
}
