/* workers: the broker's side of the sandboxed parser processes.
 *
 * A pool per profile (one STS): workers are fork+exec'd, confine themselves,
 * announce READY, then parse replies one at a time.  A worker is recycled
 * after max_replies replies or max_age_s seconds, and killed at once after
 * any error, crash, timeout or protocol violation.  Idle, already-confined
 * workers are kept ready so that a request does not wait for a spawn.
 *
 * Thread-safe: broker threads call worker_pool_parse concurrently. */
#ifndef WSTRUST_BROKER_WORKERS_H
#define WSTRUST_BROKER_WORKERS_H

#include "wire.h"

struct worker_cfg {
	const char *worker_path;  /* wstrust-worker binary */
	const char *worker_user;  /* account to drop to when the broker is root; default "nobody" */
	unsigned max_replies;     /* default 64; 1 = single-use workers */
	unsigned pool_size;       /* idle confined workers kept per profile; default 1 */
	unsigned max_total;       /* cap on live workers per pool (busy + idle); default 16 */
	unsigned max_age_s;       /* default 600 */
	unsigned timeout_ms;      /* wall clock for one parse; default 5000 */
	unsigned cpu_s;           /* RLIMIT_CPU of a worker; default 10 */
	unsigned mem_mb;          /* RLIMIT_AS of a worker; default 1024 */
};

enum worker_status {
	WORKER_OK = 0,
	WORKER_SPAWN_FAILED,        /* could not start or confine a worker */
	WORKER_SANDBOX_VIOLATION,   /* killed by SIGSYS: the seccomp filter */
	WORKER_CRASHED,             /* killed by another signal (SIGSEGV, SIGKILL ...) */
	WORKER_TIMEOUT,             /* over its wall-clock budget (then killed) */
	WORKER_CPU_LIMIT,           /* SIGXCPU / RLIMIT_CPU */
	WORKER_PROTOCOL,            /* unauthenticated, malformed, oversized or unexpected frame */
	WORKER_EXITED,              /* exited on its own in the middle of a parse */
};

struct worker_pool;

struct worker_pool *worker_pool_new(const struct worker_cfg *cfg, const char *profile);
/* Parse one reply in a worker of this pool.  On WORKER_OK, *res holds the
 * worker's typed answer (which may itself be a parse error or a SOAP fault),
 * decoded with secure memory for proof material.  Otherwise err says exactly
 * what happened to the worker ("worker killed by SIGSYS (sandbox violation)"),
 * the worker is reaped and the status is logged. */
enum worker_status worker_pool_parse(struct worker_pool *p, const struct wt_parse_req *req,
                                     struct wt_result *res, char *err, size_t errlen);
/* Pids of live workers (idle and busy), for tests and diagnostics. */
size_t worker_pool_pids(struct worker_pool *p, int *pids, size_t max);
void worker_pool_free(struct worker_pool *p);
const char *worker_status_str(enum worker_status s);

#endif
