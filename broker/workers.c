/* workers: the broker's side of the sandboxed parser processes (workers.h).
 *
 * Threads: callers of worker_pool_parse own a worker while it parses; one
 * keeper thread per pool spawns workers (so that PR_SET_PDEATHSIG, which
 * fires when the *thread* that spawned a worker exits, stays tied to the
 * pool's lifetime), retires idle workers past their age, and kills busy
 * workers past their deadline (a backstop: the channel's own deadlines
 * normally fire first).
 *
 * The process must leave SIGCHLD at its default (not SIG_IGN) and never
 * wait for arbitrary children: a worker's wait status is how its death is
 * classified. */
#include "workers.h"

#include "ipc.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_MS 10000          /* spawn to READY, confinement included */
#define IDLE_RETRIES 3          /* idle workers found dead before a request gives up */
#define EXIT_GRACE_MS 500       /* a worker that closed its channel gets this long to exit */
#define SPAWN_BACKOFF_MAX_MS 2000

/* ---- the per-worker protocol, as data (OpenSSH monitor style) ---- */

enum wstate { W_SPAWNED, W_IDLE, W_BUSY };
enum wdir { FROM_WORKER, TO_WORKER };

static const struct transition {
	enum wstate state;
	enum wdir dir;
	uint16_t type;
	bool once;          /* allowed at most once in a worker's life */
	enum wstate next;
} transitions[] = {
	{ W_SPAWNED, FROM_WORKER, IPC_W_READY, true, W_IDLE },   /* confined, listening */
	{ W_IDLE, TO_WORKER, IPC_W_PARSE, false, W_BUSY },       /* one reply to parse */
	{ W_BUSY, FROM_WORKER, IPC_W_RESULT, false, W_IDLE },    /* its answer */
};
#define N_TRANSITIONS (sizeof(transitions) / sizeof(transitions[0]))

struct worker {
	pid_t pid;
	int fd;
	struct ipc_chan *chan;
	enum wstate state;
	unsigned used_once;        /* bit i: transitions[i] taken (once rows) */
	unsigned replies;
	int64_t born_ms;
	bool busy;                 /* owned by a worker_pool_parse caller */
	int64_t deadline_ms;       /* while busy; the keeper kills past it */
	bool watchdog_killed;
	struct worker *live_next;  /* every published worker */
	struct worker *idle_next;
};

struct worker_pool {
	struct worker_cfg cfg;
	char *profile, *worker_path;
	bool as_root, userns;
	uid_t uid;
	gid_t gid;
	char chroot_dir[64];

	pthread_mutex_t mu;
	pthread_cond_t keeper_cv, users_cv;
	pthread_t keeper;
	bool keeper_started, stopping;
	struct worker *live, *idle;
	unsigned n_live;           /* published + being spawned: the max_total cap */
	unsigned n_idle, n_busy, n_spawning, waiters;
	unsigned spawn_failures;   /* generation: waiters fail when it moves */
	char spawn_err[256];
	int64_t backoff_until, backoff_ms;
};

static const char *msg_name(uint16_t t)
{
	switch (t) {
	case IPC_W_READY: return "READY";
	case IPC_W_PARSE: return "PARSE";
	case IPC_W_RESULT: return "RESULT";
	case IPC_REQ_TOKEN: return "REQ_TOKEN";
	case IPC_ANS_TOKEN: return "ANS_TOKEN";
	case IPC_ANS_ERROR: return "ANS_ERROR";
	default: return "unknown";
	}
}

static const char *state_name(enum wstate s)
{
	return s == W_SPAWNED ? "starting" : s == W_IDLE ? "idle" : "busy";
}

/* The one logging function of this file. */
static void wlog(enum log_level lvl, const struct worker_pool *p, pid_t pid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void wlog(enum log_level lvl, const struct worker_pool *p, pid_t pid, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (pid > 0)
		log_msg(lvl, "worker %ld (profile %s): %s", (long)pid, p->profile, line);
	else
		log_msg(lvl, "workers (profile %s): %s", p->profile, line);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Take the transition for (state, dir, type), or say precisely why not. */
static int step(struct worker *w, enum wdir dir, uint16_t type, char *err, size_t errlen)
{
	for (unsigned i = 0; i < N_TRANSITIONS; i++) {
		const struct transition *t = &transitions[i];
		if (t->once && t->dir == dir && t->type == type && (w->used_once & (1u << i))) {
			set_err(err, errlen, "worker sent a second %s", msg_name(type));
			return -1;
		}
	}
	for (unsigned i = 0; i < N_TRANSITIONS; i++) {
		const struct transition *t = &transitions[i];
		if (t->state != w->state || t->dir != dir || t->type != type)
			continue;
		if (t->once)
			w->used_once |= 1u << i;
		w->state = t->next;
		return 0;
	}
	set_err(err, errlen, "worker sent %s (0x%04x) while %s", msg_name(type), type, state_name(w->state));
	return -1;
}

const char *worker_status_str(enum worker_status s)
{
	switch (s) {
	case WORKER_OK: return "ok";
	case WORKER_SPAWN_FAILED: return "spawn failed";
	case WORKER_SANDBOX_VIOLATION: return "sandbox violation";
	case WORKER_CRASHED: return "crashed";
	case WORKER_TIMEOUT: return "timeout";
	case WORKER_CPU_LIMIT: return "CPU limit";
	case WORKER_PROTOCOL: return "protocol violation";
	case WORKER_EXITED: return "exited";
	}
	return "unknown";
}

/* ---- death ---- */

static const char *exit_meaning(int code)
{
	switch (code) {
	case 0: return "closed";
	case 2: return "not started as the broker starts it";
	case 3: return "confinement failed; its message is on stderr";
	case 4: return "channel handshake failed";
	case 5: return "a frame from the broker did not arrive or decode";
	case 6: return "sending failed";
	case 7: return "out of memory";
	default: return "unexpected status";
	}
}

/* What a wait status means for the request. */
static enum worker_status classify(const struct worker_pool *p, int st, char *err, size_t errlen)
{
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		const char *abbr = sigabbrev_np(sig);
		if (sig == SIGSYS) {
			set_err(err, errlen, "worker killed by SIGSYS (sandbox violation)");
			return WORKER_SANDBOX_VIOLATION;
		}
		if (sig == SIGXCPU) {
			set_err(err, errlen, "worker killed by SIGXCPU (over its CPU limit of %u s)", p->cfg.cpu_s);
			return WORKER_CPU_LIMIT;
		}
		if (abbr)
			set_err(err, errlen, "worker killed by SIG%s", abbr);
		else
			set_err(err, errlen, "worker killed by signal %d", sig);
		return WORKER_CRASHED;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	set_err(err, errlen, "worker exited with status %d (%s)", code, exit_meaning(code));
	return WORKER_EXITED;
}

static int reap(pid_t pid, int *st)
{
	for (;;) {
		pid_t r = waitpid(pid, st, 0);
		if (r == pid)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

/* Wait up to ms for the worker to exit by itself. 1 = exited, 0 = still there. */
static int reap_within(pid_t pid, int *st, int ms)
{
	for (int i = 0; i <= ms; i++) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return r == pid ? 1 : -1;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return 0;
}

static void free_worker(struct worker *w)
{
	if (w->chan)
		ipc_chan_free(w->chan);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

/* Unlink a published worker from the pool's lists; caller holds mu. */
static void detach_locked(struct worker_pool *p, struct worker *w)
{
	for (struct worker **pp = &p->live; *pp; pp = &(*pp)->live_next)
		if (*pp == w) {
			*pp = w->live_next;
			break;
		}
	for (struct worker **pp = &p->idle; *pp; pp = &(*pp)->idle_next)
		if (*pp == w) {
			*pp = w->idle_next;
			p->n_idle--;
			break;
		}
	if (w->busy)
		p->n_busy--;
	w->busy = false;
	w->deadline_ms = 0;
	p->n_live--;
	pthread_cond_signal(&p->keeper_cv);   /* a replacement may be due */
	pthread_cond_broadcast(&p->users_cv); /* a slot under max_total freed */
}

enum how { ALIVE_BAD,   /* misbehaving or late: kill it, hint stands */
           MAYBE_DEAD   /* channel closed: it is dying or died; see how */ };

/* End a worker that failed and say what happened.  The worker is already
 * detached (no other thread can see it). */
static enum worker_status end_worker(struct worker_pool *p, struct worker *w, enum how how,
                                     enum worker_status hint, bool watchdog, char *err, size_t errlen)
{
	int st = 0;
	enum worker_status s = hint;
	char why[256];
	snprintf(why, sizeof(why), "%s", err && errlen ? err : "");
	int exited = how == MAYBE_DEAD ? reap_within(w->pid, &st, EXIT_GRACE_MS) : 0;
	if (exited == 0) {
		kill(w->pid, SIGKILL);
		exited = reap(w->pid, &st) == 0 ? 1 : -1;
		/* Our own SIGKILL says nothing; any other death came first. */
		if (exited == 1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && how == MAYBE_DEAD && !watchdog) {
			set_err(err, errlen, "worker closed its channel but kept running (killed)");
			s = WORKER_PROTOCOL;
		} else if (exited == 1 && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
			s = classify(p, st, err, errlen);
		}
	} else if (exited == 1) {
		s = classify(p, st, err, errlen);
		if (watchdog && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
			s = WORKER_TIMEOUT;
			set_err(err, errlen, "%s", why);
		}
	}
	if (exited < 0) {
		set_err(err, errlen, "worker vanished: waitpid: %s", strerror(errno));
		s = WORKER_CRASHED;
	}
	wlog(LOG_LVL_WARN, p, w->pid, "%s: %s", worker_status_str(s), err ? err : "");
	free_worker(w);
	return s;
}

/* A worker that did its job (or aged out): end it quietly. */
static void retire(struct worker_pool *p, struct worker *w, const char *why)
{
	int st;
	kill(w->pid, SIGKILL);
	reap(w->pid, &st);
	wlog(LOG_LVL_DEBUG, p, w->pid, "retired after %u replies (%s)", w->replies, why);
	free_worker(w);
}

/* ---- spawn ---- */

static int64_t now_ms(void) { return ipc_now_ms(); }

struct argv_buf {
	char *argv[16];
	char nums[5][24];
};

static void build_argv(const struct worker_pool *p, struct argv_buf *a)
{
	unsigned n = 0, k = 0;
	a->argv[n++] = p->worker_path;
	if (p->as_root) {
		a->argv[n++] = (char *)"--uid";
		snprintf(a->nums[k], sizeof(a->nums[k]), "%u", (unsigned)p->uid);
		a->argv[n++] = a->nums[k++];
		a->argv[n++] = (char *)"--gid";
		snprintf(a->nums[k], sizeof(a->nums[k]), "%u", (unsigned)p->gid);
		a->argv[n++] = a->nums[k++];
	} else if (p->userns) {
		a->argv[n++] = (char *)"--userns";
	}
	if (p->chroot_dir[0]) {
		a->argv[n++] = (char *)"--chroot";
		a->argv[n++] = (char *)p->chroot_dir;
	}
	a->argv[n++] = (char *)"--mem-mb";
	snprintf(a->nums[k], sizeof(a->nums[k]), "%u", p->cfg.mem_mb);
	a->argv[n++] = a->nums[k++];
	a->argv[n++] = (char *)"--cpu-s";
	snprintf(a->nums[k], sizeof(a->nums[k]), "%u", p->cfg.cpu_s);
	a->argv[n++] = a->nums[k++];
	a->argv[n] = NULL;
}

/* exec, never fork alone: the worker starts from a clean image and never
 * holds a copy of the broker's memory.  Only the channel (fd 3), the key
 * pipe (fd 4), /dev/null on 0-1 and the broker's stderr on 2 reach it; the
 * environment is empty; signals are reset; it gets its own session. */
static int start_process(const struct worker_pool *p, int chan_fd, int key_fd, pid_t *pid, char *err,
                         size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	struct argv_buf a;
	char *envp[] = { NULL };
	int rc;

	build_argv(p, &a);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	rc = posix_spawn_file_actions_adddup2(&fa, chan_fd, 3);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, key_fd, 4);
	if (!rc)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (!rc)   /* dup2 onto itself clears CLOEXEC, so stderr reaches the worker */
		rc = fcntl(2, F_GETFD) >= 0 ? posix_spawn_file_actions_adddup2(&fa, 2, 2)
		                            : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 5);
	if (!rc)
		rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&at, &all);
	if (!rc)
		rc = posix_spawn(pid, p->worker_path, &fa, &at, a.argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		set_err(err, errlen, "cannot start worker %s: %s", p->worker_path, strerror(rc));
		return -1;
	}
	return 0;
}

/* Spawn, hand over the key, wait for READY.  NULL with err on failure. */
static struct worker *spawn_worker(struct worker_pool *p, char *err, size_t errlen)
{
	int sv[2] = { -1, -1 }, kp[2] = { -1, -1 }, cfd = -1, kfd = -1;
	uint8_t *key = NULL, *msg = NULL;
	struct worker *w = NULL;
	size_t len;
	pid_t pid = -1;           /* started, not yet owned by w */
	char why[256];
	struct ipc_msg m;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(kp, O_CLOEXEC) < 0) {
		set_err(err, errlen, "cannot create a worker channel: %s", strerror(errno));
		goto fail;
	}
	/* One fresh key per worker, in locked memory, wiped once the channel
	 * has derived its stream keys.  32 bytes fit in any pipe buffer. */
	if (!(key = sodium_malloc(IPC_CHAN_KEYBYTES))) {
		set_err(err, errlen, "out of secure memory for a worker key");
		goto fail;
	}
	randombytes_buf(key, IPC_CHAN_KEYBYTES);
	if (write(kp[1], key, IPC_CHAN_KEYBYTES) != (ssize_t)IPC_CHAN_KEYBYTES) {
		set_err(err, errlen, "cannot write the worker key: %s", strerror(errno));
		goto fail;
	}
	/* Above 4, so that moving them to 3 and 4 cannot clobber each other. */
	if ((cfd = fcntl(sv[1], F_DUPFD_CLOEXEC, 5)) < 0 || (kfd = fcntl(kp[0], F_DUPFD_CLOEXEC, 5)) < 0) {
		set_err(err, errlen, "cannot arrange worker fds: %s", strerror(errno));
		goto fail;
	}
	if (start_process(p, cfd, kfd, &pid, err, errlen) < 0)
		goto fail;

	if (!(w = calloc(1, sizeof(*w)))) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	w->pid = pid;
	pid = -1;
	w->fd = sv[0];
	sv[0] = -1;
	w->born_ms = now_ms();
	w->state = W_SPAWNED;
	w->chan = ipc_chan_new(w->fd, key, IPC_ROLE_BROKER);
	sodium_free(key);
	key = NULL;
	if (!w->chan) {
		set_err(err, errlen, "out of secure memory for a worker channel");
		goto fail;
	}
	/* Our copies of the child's ends go, so that its death shows as EOF. */
	close(sv[1]);
	close(kp[0]);
	close(kp[1]);
	close(cfd);
	close(kfd);
	sv[1] = kp[0] = kp[1] = cfd = kfd = -1;

	int64_t deadline = now_ms() + READY_MS;
	if (ipc_chan_handshake(w->chan, deadline) < 0
	    || ipc_chan_recv(w->chan, &msg, &len, IPC_MAX_FRAME, deadline) < 0) {
		bool late = now_ms() >= deadline;
		snprintf(why, sizeof(why), "%s", late ? "not READY within 10 s" : ipc_chan_error(w->chan));
		end_worker(p, w, late ? ALIVE_BAD : MAYBE_DEAD, late ? WORKER_TIMEOUT : WORKER_PROTOCOL, false, why,
		           sizeof(why));
		w = NULL;
		set_err(err, errlen, "worker failed before READY: %s", why);
		goto fail;
	}
	if (ipc_decode(msg, len, &m, why, sizeof(why)) < 0 || step(w, FROM_WORKER, m.type, why, sizeof(why)) < 0) {
		end_worker(p, w, ALIVE_BAD, WORKER_PROTOCOL, false, why, sizeof(why));
		w = NULL;
		set_err(err, errlen, "worker failed before READY: %s", why);
		goto fail;
	}
	free(msg);
	return w;

fail:
	free(msg);
	if (key)
		sodium_free(key);
	int fds[] = { sv[0], sv[1], kp[0], kp[1], cfd, kfd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (w)
		pid = w->pid;
	if (pid > 0) {
		int st;
		kill(pid, SIGKILL);
		reap(pid, &st);
	}
	if (w)
		free_worker(w);
	return NULL;
}

/* ---- the keeper thread ---- */

/* Workers that will come back to the idle list when their parse ends. */
static unsigned returning_locked(const struct worker_pool *p, int64_t now)
{
	unsigned n = 0;
	for (const struct worker *w = p->live; w; w = w->live_next)
		if (w->busy && w->replies + 1 < p->cfg.max_replies
		    && now - w->born_ms < (int64_t)p->cfg.max_age_s * 1000)
			n++;
	return n;
}

static bool need_spawn_locked(const struct worker_pool *p, int64_t now)
{
	if (p->stopping || p->n_live >= p->cfg.max_total || now < p->backoff_until)
		return false;
	unsigned ready = p->n_idle + p->n_spawning;
	return ready < p->waiters || ready + returning_locked(p, now) < p->cfg.pool_size;
}

static void *keeper_main(void *arg)
{
	struct worker_pool *p = arg;
	char err[256];
	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		int64_t now = now_ms(), wake = now + 1000;

		/* Watchdog: a busy worker past its deadline dies now. */
		for (struct worker *w = p->live; w; w = w->live_next) {
			if (!w->busy || !w->deadline_ms)
				continue;
			if (now >= w->deadline_ms && !w->watchdog_killed) {
				kill(w->pid, SIGKILL);
				w->watchdog_killed = true;
			} else if (w->deadline_ms < wake) {
				wake = w->deadline_ms;
			}
		}

		/* Age: idle workers past max_age_s retire. */
		struct worker *old = NULL;
		for (struct worker *w = p->idle; w; w = w->idle_next)
			if (now - w->born_ms >= (int64_t)p->cfg.max_age_s * 1000) {
				old = w;
				break;
			}
		if (old) {
			detach_locked(p, old);
			pthread_mutex_unlock(&p->mu);
			retire(p, old, "max_age_s");
			pthread_mutex_lock(&p->mu);
			continue;
		}

		if (need_spawn_locked(p, now)) {
			p->n_spawning++;
			p->n_live++;
			pthread_mutex_unlock(&p->mu);
			struct worker *w = spawn_worker(p, err, sizeof(err));
			pthread_mutex_lock(&p->mu);
			p->n_spawning--;
			if (w) {
				w->state = W_IDLE;
				w->live_next = p->live;
				p->live = w;
				w->idle_next = p->idle;
				p->idle = w;
				p->n_idle++;
				p->backoff_ms = 0;
				wlog(LOG_LVL_DEBUG, p, w->pid, "ready");
			} else {
				p->n_live--;
				p->spawn_failures++;
				snprintf(p->spawn_err, sizeof(p->spawn_err), "%s", err);
				p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 100;
				if (p->backoff_ms > SPAWN_BACKOFF_MAX_MS)
					p->backoff_ms = SPAWN_BACKOFF_MAX_MS;
				p->backoff_until = now_ms() + p->backoff_ms;
				wlog(LOG_LVL_ERROR, p, 0, "%s", err);
			}
			pthread_cond_broadcast(&p->users_cv);
			continue;
		}
		if (p->backoff_until > now && p->backoff_until < wake)
			wake = p->backoff_until;
		for (struct worker *w = p->idle; w; w = w->idle_next) {
			int64_t due = w->born_ms + (int64_t)p->cfg.max_age_s * 1000;
			if (due < wake)
				wake = due;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t left = wake > now ? wake - now : 0;
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->keeper_cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- pool ---- */

static pthread_once_t userns_once = PTHREAD_ONCE_INIT;
static bool userns_ok;

/* Can an unprivileged process here make a user namespace?  Asked once, in a
 * child that does nothing else, and logged once either way. */
static void probe_userns(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) == 0 ? 0 : 1);
	int st;
	userns_ok = pid > 0 && reap(pid, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (userns_ok)
		log_msg(LOG_LVL_INFO, "workers: not root; each worker enters its own user namespace");
	else
		log_msg(LOG_LVL_WARN, "workers: not root and user namespaces are unavailable here: workers run "
		                      "as uid %u, confined by rlimits, Landlock and seccomp only",
		        (unsigned)getuid());
}

static int make_chroot_dir(struct worker_pool *p)
{
	static const char *const bases[] = { "/run", "/tmp" };
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		snprintf(p->chroot_dir, sizeof(p->chroot_dir), "%s/wstrust-worker.XXXXXX", bases[i]);
		/* Empty, and read-only for everyone: the worker's whole view of
		 * the file system. */
		if (mkdtemp(p->chroot_dir) && chmod(p->chroot_dir, 0555) == 0)
			return 0;
		if (p->chroot_dir[0] && access(p->chroot_dir, F_OK) == 0)
			rmdir(p->chroot_dir);
	}
	p->chroot_dir[0] = 0;
	return -1;
}

static void fill_defaults(struct worker_cfg *c)
{
	if (!c->worker_user || !c->worker_user[0])
		c->worker_user = "nobody";
	if (!c->max_replies)
		c->max_replies = 64;
	/* pool_size 0 is a setting: no idle workers, spawn on demand. */
	if (!c->max_total)
		c->max_total = 16;
	if (c->max_total < c->pool_size)
		c->max_total = c->pool_size;
	if (!c->max_age_s)
		c->max_age_s = 600;
	if (!c->timeout_ms)
		c->timeout_ms = 5000;
	if (!c->cpu_s)
		c->cpu_s = 10;
	if (!c->mem_mb)
		c->mem_mb = 1024;
}

struct worker_pool *worker_pool_new(const struct worker_cfg *cfg, const char *profile)
{
	if (!cfg || !cfg->worker_path || cfg->worker_path[0] != '/') {
		log_msg(LOG_LVL_ERROR, "workers: worker_path '%s' must be an absolute path",
		        cfg && cfg->worker_path ? cfg->worker_path : "");
		return NULL;
	}
	if (sodium_init() < 0)
		return NULL;
	struct worker_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *cfg;
	fill_defaults(&p->cfg);
	p->profile = strdup(profile ? profile : "");
	p->worker_path = strdup(cfg->worker_path);
	p->cfg.worker_path = p->worker_path;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->keeper_cv, &ca);
	pthread_cond_init(&p->users_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!p->profile || !p->worker_path)
		goto fail;

	/* Writing to a worker that just died must fail with EPIPE, not kill
	 * the broker.  Only the default is changed; a handler stays. */
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);

	if (access(p->worker_path, X_OK) < 0) {
		log_msg(LOG_LVL_ERROR, "workers: worker_path %s is not executable: %s", p->worker_path, strerror(errno));
		goto fail;
	}
	p->as_root = geteuid() == 0;
	if (p->as_root) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		int rc = getpwnam_r(p->cfg.worker_user, &pw, buf, sizeof(buf), &res);
		if (rc || !res) {
			log_msg(LOG_LVL_ERROR, "workers: worker_user %s: %s", p->cfg.worker_user,
			        rc ? strerror(rc) : "no such user; create it or set [broker] worker_user");
			goto fail;
		}
		if (res->pw_uid == 0 || res->pw_gid == 0) {
			log_msg(LOG_LVL_ERROR, "workers: worker_user %s has uid or gid 0; pick an unprivileged account",
			        p->cfg.worker_user);
			goto fail;
		}
		p->uid = res->pw_uid;
		p->gid = res->pw_gid;
	} else {
		pthread_once(&userns_once, probe_userns);
		p->userns = userns_ok;
	}
	if ((p->as_root || p->userns) && make_chroot_dir(p) < 0) {
		log_msg(LOG_LVL_ERROR, "workers: cannot create an empty chroot directory under /run or /tmp: %s",
		        strerror(errno));
		goto fail;
	}
	if (pthread_create(&p->keeper, NULL, keeper_main, p) != 0) {
		log_msg(LOG_LVL_ERROR, "workers: cannot start the pool thread");
		goto fail;
	}
	p->keeper_started = true;
	return p;
fail:
	worker_pool_free(p);
	return NULL;
}

size_t worker_pool_pids(struct worker_pool *p, int *pids, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&p->mu);
	for (struct worker *w = p->live; w; w = w->live_next)
		if (n < max)
			pids[n++] = w->pid;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void worker_pool_free(struct worker_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->keeper_cv);
	pthread_cond_broadcast(&p->users_cv);
	/* Callers still parsing, or waiting for a worker, leave first. */
	while (p->n_busy || p->waiters)
		pthread_cond_wait(&p->users_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	if (p->keeper_started)
		pthread_join(p->keeper, NULL);
	while (p->idle) {
		struct worker *w = p->idle;
		detach_locked(p, w);
		retire(p, w, "pool closed");
	}
	if (p->chroot_dir[0])
		rmdir(p->chroot_dir);
	pthread_cond_destroy(&p->keeper_cv);
	pthread_cond_destroy(&p->users_cv);
	pthread_mutex_destroy(&p->mu);
	free(p->profile);
	free(p->worker_path);
	free(p);
}

/* ---- one parse ---- */

/* Wait for an idle worker (LIFO: the warmest), bounded.  Holds mu on entry
 * and exit. */
static struct worker *take_locked(struct worker_pool *p, char *err, size_t errlen, enum worker_status *s)
{
	int64_t give_up = now_ms() + p->cfg.timeout_ms + READY_MS;
	unsigned failures = p->spawn_failures;
	for (;;) {
		while (p->idle) {
			struct worker *w = p->idle;
			if (now_ms() - w->born_ms < (int64_t)p->cfg.max_age_s * 1000) {
				p->idle = w->idle_next;
				p->n_idle--;
				w->idle_next = NULL;
				return w;
			}
			detach_locked(p, w);
			pthread_mutex_unlock(&p->mu);
			retire(p, w, "max_age_s");
			pthread_mutex_lock(&p->mu);
		}
		*s = WORKER_SPAWN_FAILED;
		if (p->stopping) {
			set_err(err, errlen, "worker pool is shutting down");
			return NULL;
		}
		if (p->spawn_failures != failures) {
			set_err(err, errlen, "%s", p->spawn_err);
			return NULL;
		}
		int64_t now = now_ms();
		if (now >= give_up) {
			set_err(err, errlen, "no worker became free within %u ms (%u live, max_total %u)",
			        p->cfg.timeout_ms + READY_MS, p->n_live, p->cfg.max_total);
			return NULL;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t left = give_up - now;
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		p->waiters++;
		pthread_cond_signal(&p->keeper_cv);
		pthread_cond_timedwait(&p->users_cv, &p->mu, &ts);
		p->waiters--;
		if (p->stopping)
			pthread_cond_broadcast(&p->users_cv);   /* worker_pool_free waits for us */
	}
}

/* Detach a failed worker and end it; the request fails with what it says. */
static enum worker_status fail_worker(struct worker_pool *p, struct worker *w, enum how how, enum worker_status hint,
                                      char *err, size_t errlen)
{
	pthread_mutex_lock(&p->mu);
	bool watchdog = w->watchdog_killed;
	detach_locked(p, w);
	pthread_mutex_unlock(&p->mu);
	if (watchdog) {
		set_err(err, errlen, "worker did not answer within %u ms (killed)", p->cfg.timeout_ms);
		hint = WORKER_TIMEOUT;
	}
	return end_worker(p, w, how, hint, watchdog, err, errlen);
}

enum worker_status worker_pool_parse(struct worker_pool *p, const struct wt_parse_req *req, struct wt_result *res,
                                     char *err, size_t errlen)
{
	struct ipc_builder b = { 0 };
	uint8_t *msg = NULL;
	size_t len;
	struct ipc_msg m;
	enum worker_status s;
	char buf[256];
	if (!err || !errlen) {
		err = buf;
		errlen = sizeof(buf);
	}
	err[0] = 0;
	memset(res, 0, sizeof(*res));

	/* Encoded before a worker is taken: a request that cannot be framed
	 * costs no worker. */
	if (wt_parse_req_encode(req, &b) < 0) {
		ipc_builder_free(&b);
		set_err(err, errlen, "reply of %zu bytes does not fit in a worker frame (max %u)", req->reply_len,
		        IPC_MAX_REPLY);
		return WORKER_PROTOCOL;
	}

	/* An idle worker that died (killed by an admin, the OOM killer) or spoke
	 * out of turn while idle has seen none of this request: end it, log what
	 * happened, and give the request to another worker.  Bounded, so a pool
	 * whose workers keep dying fails the request instead of spinning. */
	struct worker *w = NULL;
	int64_t deadline = 0;
	for (unsigned attempt = 0;; attempt++) {
		pthread_mutex_lock(&p->mu);
		w = take_locked(p, err, errlen, &s);
		if (!w) {
			pthread_mutex_unlock(&p->mu);
			ipc_builder_free(&b);
			return s;
		}
		deadline = now_ms() + p->cfg.timeout_ms;
		step(w, TO_WORKER, IPC_W_PARSE, NULL, 0);   /* IDLE -> BUSY, always allowed */
		p->n_busy++;
		w->busy = true;
		w->deadline_ms = deadline + 250;            /* the watchdog is the backstop */
		pthread_cond_signal(&p->keeper_cv);         /* a spare may be due */
		pthread_mutex_unlock(&p->mu);

		struct pollfd pf = { .fd = w->fd, .events = POLLIN };
		if (poll(&pf, 1, 0) != 1)
			break;
		if (attempt == IDLE_RETRIES) {
			ipc_builder_free(&b);
			if (pf.revents & (POLLHUP | POLLERR))
				return fail_worker(p, w, MAYBE_DEAD, WORKER_CRASHED, err, errlen);
			set_err(err, errlen, "worker sent a frame while idle");
			return fail_worker(p, w, ALIVE_BAD, WORKER_PROTOCOL, err, errlen);
		}
		char idle_err[256] = "worker sent a frame while idle";
		if (pf.revents & (POLLHUP | POLLERR))
			fail_worker(p, w, MAYBE_DEAD, WORKER_CRASHED, idle_err, sizeof(idle_err));
		else
			fail_worker(p, w, ALIVE_BAD, WORKER_PROTOCOL, idle_err, sizeof(idle_err));
	}

	ipc_chan_set_send_deadline(w->chan, deadline);
	int rc = ipc_chan_send(w->chan, b.buf, b.len);
	ipc_builder_free(&b);
	if (rc < 0) {
		bool late = now_ms() >= deadline;
		set_err(err, errlen, "%s", late ? "" : ipc_chan_error(w->chan));
		if (late) {
			set_err(err, errlen, "worker did not take the reply within %u ms (killed)", p->cfg.timeout_ms);
			return fail_worker(p, w, ALIVE_BAD, WORKER_TIMEOUT, err, errlen);
		}
		return fail_worker(p, w, MAYBE_DEAD, WORKER_PROTOCOL, err, errlen);
	}
	if (ipc_chan_recv(w->chan, &msg, &len, IPC_MAX_FRAME, deadline) < 0) {
		if (now_ms() >= deadline) {
			set_err(err, errlen, "worker did not answer within %u ms (killed)", p->cfg.timeout_ms);
			return fail_worker(p, w, ALIVE_BAD, WORKER_TIMEOUT, err, errlen);
		}
		/* EOF is a death to classify; anything else (authentication,
		 * size) is a protocol violation, unless the worker died of
		 * something first. */
		struct pollfd pf = (struct pollfd){ .fd = w->fd, .events = POLLIN };
		bool eof = poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR));
		set_err(err, errlen, "worker sent a bad frame: %s", ipc_chan_error(w->chan));
		return fail_worker(p, w, eof ? MAYBE_DEAD : ALIVE_BAD, WORKER_PROTOCOL, err, errlen);
	}
	char why[256];
	if (ipc_decode(msg, len, &m, why, sizeof(why)) < 0) {
		set_err(err, errlen, "worker sent a malformed frame: %s", why);
		goto protocol;
	}
	if (step(w, FROM_WORKER, m.type, err, errlen) < 0)
		goto protocol;
	if (wt_result_decode(&m, res, true, why, sizeof(why)) < 0) {
		wt_result_free(res);
		memset(res, 0, sizeof(*res));
		set_err(err, errlen, "worker sent an invalid result: %s", why);
		goto protocol;
	}
	sodium_memzero(msg, len);
	free(msg);
	msg = NULL;

	pthread_mutex_lock(&p->mu);
	w->replies++;   /* under mu: the keeper counts replies */
	const char *retire_why = w->watchdog_killed               ? "deadline passed as it answered"
	                         : res->kind == IPC_RESULT_ERROR   ? "it met a reply it could not parse"
	                         : w->replies >= p->cfg.max_replies ? "max_replies"
	                         : now_ms() - w->born_ms >= (int64_t)p->cfg.max_age_s * 1000 ? "max_age_s"
	                         : p->stopping                      ? "pool closing"
	                                                            : NULL;
	if (retire_why) {
		detach_locked(p, w);
	} else {
		w->deadline_ms = 0;
		w->busy = false;
		p->n_busy--;
		w->idle_next = p->idle;
		p->idle = w;
		p->n_idle++;
		pthread_cond_broadcast(&p->users_cv);
	}
	pthread_mutex_unlock(&p->mu);
	if (retire_why)
		retire(p, w, retire_why);
	return WORKER_OK;

protocol:
	if (msg)
		sodium_memzero(msg, len);
	free(msg);
	return fail_worker(p, w, ALIVE_BAD, WORKER_PROTOCOL, err, errlen);
}
