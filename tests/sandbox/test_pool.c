/* Broker survival at the pool level: every way a worker can fail, driven
 * through a stand-in worker (fake_worker.c) that speaks the real channel
 * protocol, ends that request with its precise status, and the next request
 * succeeds in a fresh worker.  Also: recycling (max_replies, errors), the
 * live-worker cap, spawn failure.
 *
 * usage: test_pool FAKE_WORKER */
#include "check.h"
#include "log.h"
#include "sandbox.h"
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *fake;

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL); }

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct worker_pool *pool(unsigned max_replies, unsigned timeout_ms, unsigned max_total)
{
	struct worker_cfg c = { .worker_path = fake, .max_replies = max_replies, .pool_size = 1,
	                        .max_total = max_total, .timeout_ms = timeout_ms, .cpu_s = 1 };
	struct worker_pool *p = worker_pool_new(&c, "test");
	CHECK(p, "worker_pool_new");
	return p;
}

/* Parse `mode`; returns the status, the serving pid for token results. */
static enum worker_status parse(struct worker_pool *p, const char *mode, long *pid, char *err, size_t errlen)
{
	struct wt_parse_req req = { .reply = (const uint8_t *)mode, .reply_len = strlen(mode),
	                            .limits = WT_DEFAULT_LIMITS };
	struct wt_result res;
	err[0] = 0;
	enum worker_status s = worker_pool_parse(p, &req, &res, err, errlen);
	if (pid)
		*pid = 0;
	if (s == WORKER_OK && res.kind == IPC_RESULT_TOKEN && pid)
		sscanf((const char *)res.token_xml.data, "pid=%ld", pid);
	if (s == WORKER_OK && res.kind == IPC_RESULT_ERROR)
		*pid = -1;
	wt_result_free(&res);
	return s;
}

static long ok_parse(struct worker_pool *p)
{
	char err[256];
	long pid;
	enum worker_status s = parse(p, "ok", &pid, err, sizeof(err));
	CHECK(s == WORKER_OK, "a normal parse failed: %s (%s)", worker_status_str(s), err);
	CHECK(pid > 0, "no pid in the fake token");
	return pid;
}

static bool alive(long pid) { return kill((pid_t)pid, 0) == 0; }

/* One failure mode: expected status, a word its message must carry, and the
 * next request succeeds in another worker. */
static void expect_failure(const char *mode, enum worker_status want, const char *word)
{
	/* A roomy budget: these end long before it, and on a loaded machine the
	 * CPU-limit case must not turn into a timeout. */
	struct worker_pool *p = pool(0, 20000, 0);
	long before = ok_parse(p);
	char err[256];
	long pid;
	int64_t t0 = mono_ms();
	enum worker_status s = parse(p, mode, &pid, err, sizeof(err));
	CHECK(s == want, "mode %s: expected %s, got %s (%s)", mode, worker_status_str(want), worker_status_str(s), err);
	CHECK(strstr(err, word), "mode %s: message \"%s\" lacks \"%s\"", mode, err, word);
	CHECK(!alive(before), "mode %s: failed worker %ld still exists (not reaped?)", mode, before);
	long after = ok_parse(p);
	CHECK(after != before, "mode %s: the next parse reused the failed worker", mode);
	printf("ok - %s -> %s: %s (%lld ms)\n", mode, worker_status_str(s), err, (long long)(mono_ms() - t0));
	worker_pool_free(p);
}

static void test_recycling(void)
{
	/* max_replies = 3: three replies from one worker, then a new one */
	struct worker_pool *p = pool(3, 2000, 0);
	long a = ok_parse(p), b = ok_parse(p), c = ok_parse(p), d = ok_parse(p);
	CHECK(a == b && b == c, "max_replies=3: pids %ld %ld %ld", a, b, c);
	CHECK(d != c, "max_replies=3: the 4th reply came from the same worker %ld", d);
	CHECK(!alive(a), "retired worker %ld still exists", a);
	worker_pool_free(p);

	/* max_replies = 1: single-use workers */
	p = pool(1, 2000, 0);
	long pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = ok_parse(p);
		for (int j = 0; j < i; j++)
			CHECK(pids[i] != pids[j], "max_replies=1: worker %ld served twice", pids[i]);
	}
	worker_pool_free(p);

	/* a worker whose reply was a parse error is discarded */
	p = pool(0, 2000, 0);
	a = ok_parse(p);
	char err[256];
	long pid;
	CHECK(parse(p, "error", &pid, err, sizeof(err)) == WORKER_OK && pid == -1, "error result: %s", err);
	CHECK(!alive(a), "worker %ld that met bad input still exists", a);
	b = ok_parse(p);
	CHECK(b != a, "worker %ld kept after an error result", a);
	worker_pool_free(p);
	printf("ok - recycling: max_replies 3 and 1, discard after an error result\n");
}

static void test_killed_idle(void)
{
	struct worker_pool *p = pool(0, 2000, 0);
	long a = ok_parse(p);
	int pids[8];
	CHECK(worker_pool_pids(p, pids, 8) == 1 && pids[0] == a, "one idle worker expected");
	CHECK(kill((pid_t)a, SIGKILL) == 0, "kill");
	sleep_ms(50);
	char err[256];
	long pid;
	/* The dead idle worker saw nothing of this request: it is reaped and
	 * the request is served by a fresh one. */
	enum worker_status s = parse(p, "ok", &pid, err, sizeof(err));
	CHECK(s == WORKER_OK && pid > 0 && pid != a, "killed idle worker: %s (%s) pid %ld", worker_status_str(s), err, pid);
	CHECK(kill((pid_t)a, 0) < 0 && errno == ESRCH, "dead idle worker %ld not reaped", a);
	worker_pool_free(p);
	printf("ok - worker killed while idle is reaped and replaced; the request succeeds\n");
}

struct bg {
	struct worker_pool *p;
	const char *mode;
	enum worker_status s;
	long pid;
	char err[256];
};

static void *bg_parse(void *arg)
{
	struct bg *b = arg;
	b->s = parse(b->p, b->mode, &b->pid, b->err, sizeof(b->err));
	return NULL;
}

static void test_killed_busy(void)
{
	struct worker_pool *p = pool(0, 5000, 0);
	long a = ok_parse(p);
	struct bg b = { .p = p, .mode = "sleep" };
	pthread_t t;
	pthread_create(&t, NULL, bg_parse, &b);
	sleep_ms(200);
	CHECK(kill((pid_t)a, SIGKILL) == 0, "kill");
	pthread_join(t, NULL);
	CHECK(b.s == WORKER_CRASHED && strstr(b.err, "SIGKILL"), "killed busy worker: %s (%s)", worker_status_str(b.s), b.err);
	CHECK(ok_parse(p) != a, "dead worker reused");
	worker_pool_free(p);
	printf("ok - worker killed during a parse -> crashed: %s\n", b.err);
}

static void test_cap(void)
{
	/* max_total 1: two concurrent requests share one worker, in turn */
	struct worker_pool *p = pool(0, 2000, 1);
	ok_parse(p);
	struct bg b1 = { .p = p, .mode = "nap" }, b2 = { .p = p, .mode = "nap" };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, bg_parse, &b1);
	pthread_create(&t2, NULL, bg_parse, &b2);
	int pids[8];
	for (int i = 0; i < 20; i++) {
		CHECK(worker_pool_pids(p, pids, 8) <= 1, "more than max_total=1 workers live");
		sleep_ms(20);
	}
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(b1.s == WORKER_OK && b2.s == WORKER_OK, "capped parses: %s / %s", b1.err, b2.err);
	CHECK(b1.pid == b2.pid, "max_total=1 yet two workers served");
	worker_pool_free(p);

	/* max_total 2, pool_size 1: a second concurrent request gets a second
	 * worker instead of waiting */
	p = pool(0, 2000, 2);
	ok_parse(p);
	b1 = (struct bg){ .p = p, .mode = "nap" };
	b2 = (struct bg){ .p = p, .mode = "nap" };
	pthread_create(&t1, NULL, bg_parse, &b1);
	pthread_create(&t2, NULL, bg_parse, &b2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(b1.s == WORKER_OK && b2.s == WORKER_OK, "parallel parses: %s / %s", b1.err, b2.err);
	CHECK(b1.pid != b2.pid, "max_total=2: both requests waited for one worker");
	CHECK(worker_pool_pids(p, pids, 8) <= 2, "more than max_total=2 workers live");
	worker_pool_free(p);
	printf("ok - max_total caps live workers; demand spawns up to it\n");
}

static void test_spawn_failure(void)
{
	struct worker_cfg c = { .worker_path = "/bin/false", .timeout_ms = 1000 };
	struct worker_pool *p = worker_pool_new(&c, "test");
	CHECK(p, "worker_pool_new(/bin/false)");
	char err[256];
	long pid;
	int64_t t0 = mono_ms();
	enum worker_status s = parse(p, "ok", &pid, err, sizeof(err));
	CHECK(s == WORKER_SPAWN_FAILED && strstr(err, "status 1"), "spawn failure: %s (%s)", worker_status_str(s), err);
	CHECK(mono_ms() - t0 < 3000, "spawn failure took %lld ms to report", (long long)(mono_ms() - t0));
	worker_pool_free(p);

	c.worker_path = "/nonexistent/wstrust-worker";
	CHECK(!worker_pool_new(&c, "test"), "a pool with a missing worker binary was created");
	c.worker_path = "bin/wstrust-worker";
	CHECK(!worker_pool_new(&c, "test"), "a pool with a relative worker_path was created");
	printf("ok - spawn failure reported: %s\n", err);
}

static void test_on_demand(void)
{
	/* pool_size 0: no worker until a request comes */
	struct worker_cfg c = { .worker_path = fake, .pool_size = 0, .timeout_ms = 2000 };
	struct worker_pool *p = worker_pool_new(&c, "test");
	CHECK(p, "worker_pool_new");
	sleep_ms(100);
	int pids[4];
	CHECK(worker_pool_pids(p, pids, 4) == 0, "pool_size 0 spawned a worker before any request");
	ok_parse(p);
	worker_pool_free(p);
	printf("ok - pool_size 0 spawns on demand\n");
}

static void test_timeout(void)
{
	struct worker_pool *p = pool(0, 300, 0);
	long a = ok_parse(p);
	char err[256];
	long pid;
	int64_t t0 = mono_ms();
	enum worker_status s = parse(p, "sleep", &pid, err, sizeof(err));
	int64_t took = mono_ms() - t0;
	CHECK(s == WORKER_TIMEOUT, "sleep: %s (%s)", worker_status_str(s), err);
	CHECK(strstr(err, "300 ms"), "timeout message \"%s\" lacks the budget", err);
	CHECK(took >= 290 && took < 3000, "timeout took %lld ms for a 300 ms budget", (long long)took);
	CHECK(!alive(a), "timed-out worker still exists");
	CHECK(ok_parse(p) != a, "timed-out worker reused");
	worker_pool_free(p);
	printf("ok - timeout after %lld ms: %s\n", (long long)took, err);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_pool FAKE_WORKER");
	static char path[4096];
	CHECK(realpath(argv[1], path), "%s not found", argv[1]);
	fake = path;
	log_init(false, LOG_LVL_DEBUG);

	expect_failure("segv", WORKER_CRASHED, "SIGSEGV");
	expect_failure("sigsys", WORKER_SANDBOX_VIOLATION, "SIGSYS");
	expect_failure("cpu", WORKER_CPU_LIMIT, "SIGXCPU");
	expect_failure("exit", WORKER_EXITED, "status 42");
	expect_failure("garbage", WORKER_PROTOCOL, "authentication");
	expect_failure("ready", WORKER_PROTOCOL, "second READY");
	expect_failure("badtype", WORKER_PROTOCOL, "PARSE (0x0202) while busy");
	expect_failure("malformed", WORKER_PROTOCOL, "malformed");
	expect_failure("badresult", WORKER_PROTOCOL, "invalid result");
	expect_failure("huge", WORKER_PROTOCOL, "exceeds");
	expect_failure("close", WORKER_PROTOCOL, "kept running");
	if (SANDBOX_SANITIZED)
		expect_failure("asan", WORKER_EXITED, "status 1");
	else
		printf("ok - asan: the sanitizer-report case applies to ASan builds only\n");
	test_timeout();
	test_killed_idle();
	test_killed_busy();
	test_recycling();
	test_cap();
	test_spawn_failure();
	test_on_demand();

	/* Two results for one request: the second is found while idle. */
	struct worker_pool *p = pool(0, 2000, 0);
	char err[256];
	long pid, a;
	CHECK(parse(p, "double", &a, err, sizeof(err)) == WORKER_OK, "double: first result %s", err);
	sleep_ms(200);
	enum worker_status s = parse(p, "ok", &pid, err, sizeof(err));
	CHECK(s == WORKER_OK && pid > 0 && pid != a, "double: %s (%s) pid %ld", worker_status_str(s), err, pid);
	CHECK(kill((pid_t)a, 0) < 0 && errno == ESRCH, "double: worker %ld not killed", a);
	worker_pool_free(p);
	printf("ok - a second result sent while idle gets the worker killed; the request goes elsewhere\n");

	printf("%d passed, 0 failed\n", check_count);
	return 0;
}
