/* sandbox: the worker's confinement steps (see sandbox.h, docs/SANDBOX.md). */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/futex.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- uid/gid ---- */

static int do_chroot(const char *dir, char *err, size_t errlen)
{
	if (!dir)
		return 0;
	if (chroot(dir) < 0)
		return fail(err, errlen, "chroot %s: %s", dir, strerror(errno));
	if (chdir("/") < 0)
		return fail(err, errlen, "chdir / in the chroot: %s", strerror(errno));
	return 0;
}

int sandbox_drop_privileges(const struct sandbox_opts *o, char *err, size_t errlen)
{
	if (o->drop_ids) {
		if (o->uid == 0 || o->gid == 0)
			return fail(err, errlen, "refusing to run the worker as uid/gid 0");
		/* chroot needs CAP_SYS_CHROOT: before the ids change. */
		if (do_chroot(o->chroot_dir, err, errlen) < 0)
			return -1;
		if (setgroups(0, NULL) < 0)
			return fail(err, errlen, "setgroups(0): %s", strerror(errno));
		if (setresgid(o->gid, o->gid, o->gid) < 0)
			return fail(err, errlen, "setresgid(%u): %s", (unsigned)o->gid, strerror(errno));
		if (setresuid(o->uid, o->uid, o->uid) < 0)
			return fail(err, errlen, "setresuid(%u): %s", (unsigned)o->uid, strerror(errno));
		/* Verify, as OpenSSH does: every id changed and root is gone. */
		uid_t r, e, s;
		gid_t rg, eg, sg;
		if (getresuid(&r, &e, &s) < 0 || r != o->uid || e != o->uid || s != o->uid)
			return fail(err, errlen, "uid drop to %u did not take", (unsigned)o->uid);
		if (getresgid(&rg, &eg, &sg) < 0 || rg != o->gid || eg != o->gid || sg != o->gid)
			return fail(err, errlen, "gid drop to %u did not take", (unsigned)o->gid);
		if (getgroups(0, NULL) != 0)
			return fail(err, errlen, "supplementary groups remain after setgroups(0)");
		if (setuid(0) == 0 || setgid(0) == 0)
			return fail(err, errlen, "could regain root after dropping privileges");
		return 0;
	}
	if (o->userns) {
		/* A new user namespace owned by nobody we know: the caps it grants
		 * reach only namespaces it owns (its own empty network and IPC),
		 * never the broker's files or processes.  NO_NEW_PRIVS and seccomp
		 * follow, so those caps cannot be used for anything either. */
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) < 0)
			return fail(err, errlen, "unshare(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWIPC): %s",
			            strerror(errno));
		return do_chroot(o->chroot_dir, err, errlen);
	}
	if (o->chroot_dir)
		return fail(err, errlen, "--chroot needs root or --userns");
	return 0;
}

/* ---- prctl steps ---- */

int sandbox_not_dumpable(char *err, size_t errlen)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return fail(err, errlen, "PR_SET_DUMPABLE 0: %s", strerror(errno));
	return 0;
}

int sandbox_parent_death(pid_t expected_parent, char *err, size_t errlen)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(err, errlen, "PR_SET_PDEATHSIG: %s", strerror(errno));
	/* The parent may have died before the prctl: then nobody sends the
	 * signal, so look. */
	if (getppid() != expected_parent)
		return fail(err, errlen, "parent %ld is gone", (long)expected_parent);
	return 0;
}

int sandbox_no_new_privs(char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	return 0;
}

/* ---- rlimits ---- */

static int set_limit(int res, const char *name, rlim_t soft, rlim_t hard, char *err, size_t errlen)
{
	struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
	if (setrlimit(res, &rl) < 0)
		return fail(err, errlen, "setrlimit(%s, %llu): %s", name, (unsigned long long)soft,
		            strerror(errno));
	return 0;
}

int sandbox_rlimits(const struct sandbox_opts *o, char *err, size_t errlen)
{
	/* fds 0-3 at most: the channel is fd 3 and nothing may be opened. */
	if (set_limit(RLIMIT_NOFILE, "NOFILE", SANDBOX_CHANNEL_FD + 1, SANDBOX_CHANNEL_FD + 1, err, errlen) < 0
	    /* No processes: fork would fail even if the filter allowed it. */
	    || set_limit(RLIMIT_NPROC, "NPROC", 0, 0, err, errlen) < 0
	    /* No file may grow. */
	    || set_limit(RLIMIT_FSIZE, "FSIZE", 0, 0, err, errlen) < 0
	    /* No core files: a core would hold whatever reply was being parsed. */
	    || set_limit(RLIMIT_CORE, "CORE", 0, 0, err, errlen) < 0
	    /* The channel key is already locked; nothing later needs locking,
	     * and a subverted worker must not pin memory. */
	    || set_limit(RLIMIT_MEMLOCK, "MEMLOCK", 0, 0, err, errlen) < 0
	    || set_limit(RLIMIT_MSGQUEUE, "MSGQUEUE", 0, 0, err, errlen) < 0
	    || set_limit(RLIMIT_LOCKS, "LOCKS", 0, 0, err, errlen) < 0)
		return -1;
	/* Address space bounds what a hostile reply can make the parser
	 * allocate.  ASan's shadow memory needs terabytes of address space, so
	 * sanitized builds leave it (docs/SANDBOX.md). */
	if (o->mem_mb && !SANDBOX_SANITIZED
	    && set_limit(RLIMIT_AS, "AS", (rlim_t)o->mem_mb << 20, (rlim_t)o->mem_mb << 20, err, errlen) < 0)
		return -1;
	/* Soft < hard: SIGXCPU first, which the broker reports as a CPU limit;
	 * SIGKILL a second later if it is caught or ignored. */
	if (o->cpu_s && set_limit(RLIMIT_CPU, "CPU", o->cpu_s, (rlim_t)o->cpu_s + 1, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- Landlock ----
 * The installed headers know ABI 2 only; these are the later rights, by the
 * kernel's UAPI numbers. */
#define LL_FS_TRUNCATE (1ULL << 14)        /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)       /* ABI 5 */
#define LL_NET_BIND_TCP (1ULL << 0)        /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)     /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

/* struct landlock_ruleset_attr as of ABI 6.  Older kernels accept the larger
 * struct as long as the fields they do not know are zero. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

int sandbox_landlock(char *err, size_t errlen)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		fail(err, errlen, "Landlock unavailable (%s): skipped, seccomp still denies file access",
		     strerror(errno));
		return 0;
	}
	struct ll_ruleset_attr attr = { 0 };
	attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  /* ABI 1: bits 0-12 */
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 4)
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6)
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
	/* No rules: every handled right is denied everywhere. */
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return fail(err, errlen, "landlock_create_ruleset (ABI %ld): %s", abi, strerror(errno));
	long r = syscall(SYS_landlock_restrict_self, fd, 0);
	int saved = errno;
	close(fd);
	if (r < 0)
		return fail(err, errlen, "landlock_restrict_self (ABI %ld): %s", abi, strerror(saved));
	return (int)abi;
}

/* ---- seccomp ----
 *
 * THE syscall table.  Default for anything not here: SCMP_ACT_KILL_PROCESS
 * (the broker sees SIGSYS and reports a sandbox violation).  A row is a
 * syscall, an argument filter, an action (allow, or a refusal with an errno)
 * and the reason.  docs/SANDBOX.md carries the same table; keep them in
 * sync (tests/sandbox/test_docs.py checks that every syscall is there). */

enum arg_filter {
	ANY,            /* no argument filter */
	FD_CHANNEL,     /* arg0 == the channel fd */
	FD_OTHER,       /* arg0 != the channel fd */
	ONE_FD,         /* poll/ppoll: nfds (arg1) <= 1 */
	NO_EXEC,        /* arg2 (prot) without PROT_EXEC */
	SELF_SIGABRT,   /* tgkill(own pid, any tid, SIGABRT) */
	WAKE_ONLY,      /* futex: FUTEX_WAKE (private or not), nothing else */
};

struct rule {
	const char *name;
	enum arg_filter arg;
	int refuse;       /* 0: allow; else SCMP_ACT_ERRNO(refuse) */
	const char *reason;
};

static const struct rule rules[] = {
	{ "read", FD_CHANNEL, 0, "receive frames from the broker on the channel" },
	{ "write", FD_CHANNEL, 0, "send READY and results on the channel" },
	{ "read", FD_OTHER, EBADF, "no other fd exists: answer what the kernel would" },
#if !SANDBOX_SANITIZED
	{ "write", FD_OTHER, EBADF, "stderr is closed: a stray library diagnostic fails quietly" },
#endif
	{ "writev", ANY, EBADF, "glibc's fatal-error message (stack smash, heap corruption) before abort()" },
	{ "poll", ONE_FD, 0, "the channel waits for its one fd with a deadline" },
	{ "ppoll", ONE_FD, 0, "poll on architectures (and libcs) that implement it with ppoll" },
	{ "mmap", NO_EXEC, 0, "malloc of large blocks, libsodium guarded memory; never executable" },
	{ "mprotect", NO_EXEC, 0, "libsodium guard pages, malloc arenas; never executable" },
	{ "munmap", ANY, 0, "free of large blocks" },
	{ "mremap", ANY, 0, "realloc of large blocks (keeps the mapping's protection)" },
	{ "brk", ANY, 0, "malloc's main heap" },
	{ "madvise", ANY, 0, "malloc returns freed pages to the kernel" },
	{ "clock_gettime", ANY, 0, "deadlines, when the vDSO falls back to the syscall" },
	{ "getrandom", ANY, 0, "libsodium: the channel's stream header nonce" },
	{ "rt_sigprocmask", ANY, 0, "abort() unblocks SIGABRT" },
	{ "getpid", ANY, 0, "abort() signals its own process" },
	{ "gettid", ANY, 0, "abort() signals its own thread" },
	{ "tgkill", SELF_SIGABRT, 0, "abort(): SIGABRT to itself only, so the broker sees a crash, not SIGSYS" },
	{ "futex", WAKE_ONLY, 0, "glibc's pthread_once (iconv's module table) always wakes waiters; "
	                         "a single thread never waits" },
	{ "rt_sigreturn", ANY, 0, "return from a signal handler (kernel ABI)" },
	{ "exit_group", ANY, 0, "exit on EOF or on a fatal error" },
	/* Files: refused, not killed.  There is nothing to open (chroot,
	 * Landlock), but libc and libxml2 may look for a file on a benign
	 * path (gconv modules for a declared encoding, /etc/localtime); a
	 * refusal makes that fail cleanly, a kill would make a harmless reply
	 * a sandbox violation. */
	{ "open", ANY, EACCES, "no file access (legacy open)" },
	{ "openat", ANY, EACCES, "no file access" },
	{ "openat2", ANY, EACCES, "no file access" },
	{ "stat", ANY, EACCES, "no file system" },
	{ "lstat", ANY, EACCES, "no file system" },
	{ "fstat", ANY, EACCES, "no file system (stdio may fstat)" },
	{ "newfstatat", ANY, EACCES, "no file system" },
	{ "statx", ANY, EACCES, "no file system" },
	{ "access", ANY, EACCES, "no file system" },
	{ "faccessat", ANY, EACCES, "no file system" },
	{ "faccessat2", ANY, EACCES, "no file system" },
	{ "readlink", ANY, EACCES, "no file system" },
	{ "readlinkat", ANY, EACCES, "no file system" },
#if SANDBOX_SANITIZED
	/* ASan builds only (never the shipped worker, never the probe test):
	 * the sanitizer runtime writes its report to stderr (kept open in
	 * these builds), asks whether stderr is a terminal, and removes its
	 * signal stack in _exit.  Measured with strace; checked by the pool
	 * test's "asan" case and the EOF exit in sanitized builds. */
	{ "write", FD_OTHER, 0, "ASAN ONLY: the sanitizer report on stderr" },
	{ "ioctl", ANY, ENOTTY, "ASAN ONLY: the runtime asks whether stderr is a terminal" },
	{ "sigaltstack", ANY, 0, "ASAN ONLY: the runtime removes its signal stack at exit" },
#endif
};

/* SCMP_An() without its missing-initializer warning under clang. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = a, .datum_b = b };
}

static int add_rule(scmp_filter_ctx ctx, const struct rule *r, int channel_fd, char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(r->name);
	if (nr == __NR_SCMP_ERROR)
		return fail(err, errlen, "seccomp: unknown syscall %s", r->name);
	uint32_t action = r->refuse ? SCMP_ACT_ERRNO((uint32_t)r->refuse) : SCMP_ACT_ALLOW;
	struct scmp_arg_cmp cmp[2];
	unsigned n = 0;
	switch (r->arg) {
	case ANY:
		break;
	case FD_CHANNEL:
		cmp[n++] = arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)channel_fd, 0);
		break;
	case FD_OTHER:
		cmp[n++] = arg_cmp(0, SCMP_CMP_NE, (scmp_datum_t)channel_fd, 0);
		break;
	case ONE_FD:
		cmp[n++] = arg_cmp(1, SCMP_CMP_LE, 1, 0);
		break;
	case NO_EXEC:
		cmp[n++] = arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
		break;
	case SELF_SIGABRT:
		cmp[n++] = arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0);
		cmp[n++] = arg_cmp(2, SCMP_CMP_EQ, SIGABRT, 0);
		break;
	case WAKE_ONLY:   /* the op without FUTEX_PRIVATE_FLAG / FUTEX_CLOCK_REALTIME */
		cmp[n++] = arg_cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu & ~(uint32_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME),
		                   FUTEX_WAKE);
		break;
	}
	int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (rc < 0)
		return fail(err, errlen, "seccomp_rule_add(%s): %s", r->name, strerror(-rc));
	return 0;
}

int sandbox_install_seccomp(int channel_fd, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return fail(err, errlen, "seccomp_init failed");
	int rc = 0;
	/* A syscall made through another ABI (int 0x80, x32) dies too. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0) {
		fail(err, errlen, "seccomp_attr_set(ACT_BADARCH): %s", strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if ((rc = add_rule(ctx, &rules[i], channel_fd, err, errlen)) < 0)
			goto out;
	if ((rc = seccomp_load(ctx)) < 0)
		fail(err, errlen, "seccomp_load: %s", strerror(-rc));
out:
	seccomp_release(ctx);
	return rc < 0 ? -1 : 0;
}
