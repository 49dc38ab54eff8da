/* What privilege separation costs: CPU per parsed STS reply, in-process versus
 * through the sandboxed worker pool with recycled (worker_max_replies = 64)
 * and single-use (= 1) workers.  CPU is counted for the broker and all its
 * reaped children (RUSAGE_SELF + RUSAGE_CHILDREN), so worker spawns count.
 *
 *   bench_worker WORKER_PATH REPLY.xml [N]
 */
#include "parse.h"
#include "workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

static double cpu_seconds(void)
{
	struct rusage s, c;
	getrusage(RUSAGE_SELF, &s);
	getrusage(RUSAGE_CHILDREN, &c);
	return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec + c.ru_stime.tv_sec) +
	       (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec + c.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void report(const char *what, int n, double cpu, double wall)
{
	printf("%-34s %8.1f us CPU/reply %8.1f us wall/reply  (%d replies)\n", what, cpu / n * 1e6, wall / n * 1e6, n);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s WORKER_PATH REPLY.xml [N]\n", argv[0]);
		return 2;
	}
	int n = argc > 3 ? atoi(argv[3]) : 2000;
	size_t len;
	uint8_t *reply = slurp(argv[2], &len);
	if (!reply) {
		perror(argv[2]);
		return 1;
	}
	struct wt_parse_req req = { .reply = reply, .reply_len = len, .http_status = 200,
	                            .limits = WT_DEFAULT_LIMITS };

	double c0 = cpu_seconds(), w0 = wall_seconds();
	for (int i = 0; i < n; i++) {
		struct wt_result r;
		wt_parse_reply(&req, &r);
		if (r.kind != IPC_RESULT_TOKEN) {
			fprintf(stderr, "in-process parse: %s\n", r.error ? r.error : "not a token");
			return 1;
		}
		wt_result_free(&r);
	}
	report("in-process parse", n, cpu_seconds() - c0, wall_seconds() - w0);

	unsigned settings[] = { 64, 1 };
	for (size_t s = 0; s < 2; s++) {
		struct worker_cfg cfg = { .worker_path = argv[1], .worker_user = "nobody", .max_replies = settings[s],
		                          .pool_size = 1, .max_total = 4, .max_age_s = 600, .timeout_ms = 5000,
		                          .cpu_s = 10, .mem_mb = 1024 };
		struct worker_pool *p = worker_pool_new(&cfg, "bench");
		if (!p) {
			fprintf(stderr, "worker_pool_new failed\n");
			return 1;
		}
		int runs = settings[s] == 1 ? (n < 300 ? n : 300) : n;
		c0 = cpu_seconds();
		w0 = wall_seconds();
		for (int i = 0; i < runs; i++) {
			struct wt_result r;
			char err[256];
			enum worker_status st = worker_pool_parse(p, &req, &r, err, sizeof(err));
			if (st != WORKER_OK || r.kind != IPC_RESULT_TOKEN) {
				fprintf(stderr, "worker parse: %s\n", st != WORKER_OK ? err : (r.error ? r.error : "not a token"));
				return 1;
			}
			wt_result_free(&r);
		}
		worker_pool_free(p);   /* reaps: the last children's CPU is counted */
		char label[64];
		snprintf(label, sizeof(label), "sandboxed, worker_max_replies=%u", settings[s]);
		report(label, runs, cpu_seconds() - c0, wall_seconds() - w0);
	}
	free(reply);
	return 0;
}
