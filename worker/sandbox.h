/* sandbox: the worker's confinement steps, one function per step.
 *
 * wstrust-worker calls them in the order docs/SANDBOX.md explains (fixed fds,
 * privilege drop, not dumpable, parent-death signal, rlimits, NO_NEW_PRIVS,
 * Landlock, seccomp); the filter probe in tests/sandbox/ calls the same
 * functions, so what the tests prove is what the worker runs.
 *
 * Every function returns 0 on success, or -1 with a one-line reason in err.
 */
#ifndef WSTRUST_WORKER_SANDBOX_H
#define WSTRUST_WORKER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Built with AddressSanitizer?  Only such code gets the few extra syscalls
 * the sanitizer runtime needs (see sandbox.c); the probe test is compiled
 * without sanitizers, so it always checks the full filter. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif
#ifndef SANDBOX_SANITIZED
#define SANDBOX_SANITIZED 0
#endif

/* The channel is always this fd in the worker; the key pipe is the next. */
#define SANDBOX_CHANNEL_FD 3
#define SANDBOX_KEY_FD 4

struct sandbox_opts {
	bool drop_ids;          /* root: chroot, then setgroups/setresgid/setresuid */
	uid_t uid;
	gid_t gid;
	const char *chroot_dir; /* empty directory; NULL = no chroot */
	bool userns;            /* not root: enter a new user (+net, ipc) namespace */
	unsigned mem_mb;        /* RLIMIT_AS; 0 = leave it */
	unsigned cpu_s;         /* RLIMIT_CPU soft limit (hard = soft + 1); 0 = leave it */
};

/* Root: chroot(chroot_dir) + chdir("/"), setgroups(0), setresgid, setresuid,
 * then verify that every id is the new one and that root cannot be regained.
 * userns: unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC), then chroot
 * if asked.  Neither: nothing. */
int sandbox_drop_privileges(const struct sandbox_opts *o, char *err, size_t errlen);

/* PR_SET_DUMPABLE 0: no ptrace by the same uid, no core, /proc/PID owned by
 * root.  Must follow the uid change, which resets the flag. */
int sandbox_not_dumpable(char *err, size_t errlen);

/* PR_SET_PDEATHSIG SIGKILL, then check that the parent is still
 * expected_parent (it may have died before the prctl).  Must follow the uid
 * change, which clears the setting. */
int sandbox_parent_death(pid_t expected_parent, char *err, size_t errlen);

/* NOFILE, NPROC 0, FSIZE 0, CORE 0, MEMLOCK 0, MSGQUEUE 0, LOCKS 0, AS
 * (mem_mb; not in sanitized builds, whose shadow memory needs terabytes of
 * address space), CPU (cpu_s soft, cpu_s + 1 hard: SIGXCPU first). */
int sandbox_rlimits(const struct sandbox_opts *o, char *err, size_t errlen);

/* PR_SET_NO_NEW_PRIVS 1: required by Landlock and unprivileged seccomp. */
int sandbox_no_new_privs(char *err, size_t errlen);

/* Landlock with every access right the running kernel's ABI knows handled
 * and no rule: no file access at all, no TCP bind/connect, no signals or
 * abstract sockets outside the domain.  Returns the ABI applied (>= 1), or 0
 * when the kernel has no Landlock (err then says why), or -1 on error. */
int sandbox_landlock(char *err, size_t errlen);

/* The seccomp allowlist (see the table in sandbox.c), default
 * SCMP_ACT_KILL_PROCESS; channel_fd is the only fd read/write may use. */
int sandbox_install_seccomp(int channel_fd, char *err, size_t errlen);

#endif
