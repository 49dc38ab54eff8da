/* federation: the first hop's cache against reloads.  A token obtained
 * while federation_flush ran (a request of the old configuration still in
 * flight at SIGHUP) must not be cached: the flush promised to wipe every
 * cached token and its proof key.  request_obtain is stubbed here: it
 * blocks until released and counts its calls. */
#include <pthread.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "federation.h"
#include "ipc.h"
#include "t.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int calls, entered;
static bool release_obtain = true;

static uint64_t ticks_from_now(long s)
{
	return ((uint64_t)(time(NULL) + s) + 62135596800ull) * 10000000ull;
}

int request_obtain(const struct broker_config *cfg, const struct profile *p, const struct token_params *tp,
                   struct obtained_token *out, struct request_failure *f)
{
	(void)cfg;
	(void)p;
	(void)tp;
	(void)f;
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&mu);
	calls++;
	entered++;
	pthread_cond_broadcast(&cv);
	while (!release_obtain)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	static const char tok[] = "<t:Token xmlns:t=\"urn:t\"/>";
	wt_blob_set(&out->res.token_xml, tok, sizeof tok - 1, false);
	out->res.kind = IPC_RESULT_TOKEN;
	out->res.expires = ticks_from_now(3600);
	out->key_type_out = KEY_TYPE_BEARER;
	return 0;
}

void obtained_token_free(struct obtained_token *t)
{
	wt_result_free(&t->res);
	secret_free(&t->proof_key);
	memset(t, 0, sizeof *t);
}

static struct broker_config cfg = { .generation = 7 };
static struct profile idp = { .name = "idp", .endpoint = "https://idp.example/sts" };
static struct profile rp = { .name = "rp", .endpoint = "https://rp.example/sts", .auth = AUTH_ISSUED_TOKEN,
                             .issuer = &idp };

static void *hop(void *arg)
{
	(void)arg;
	struct fed_token *t = NULL;
	struct request_failure f;
	int rc = federation_token(&cfg, &rp, ipc_now_ms() + 10000, &t, &f);
	CHECK(rc == 0 && t, "federation_token: %s", f.msg);
	federation_release(t);
	return NULL;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	/* The cache works: the second request reuses the first token. */
	hop(NULL);
	hop(NULL);
	CHECK(calls == 1, "issuer asked %d times, the cached token was not reused", calls);
	federation_flush();
	hop(NULL);
	CHECK(calls == 2, "the flush did not drop the cached token (%d calls)", calls);

	/* A flush while the issuer is being asked: that token is not cached. */
	federation_flush();
	pthread_mutex_lock(&mu);
	release_obtain = false;
	entered = 0;
	pthread_mutex_unlock(&mu);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, hop, NULL) == 0, "pthread_create");
	pthread_mutex_lock(&mu);
	while (!entered)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	federation_flush();   /* SIGHUP while the old config's request runs */
	pthread_mutex_lock(&mu);
	release_obtain = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(th, NULL);
	CHECK(calls == 3, "%d calls", calls);
	hop(NULL);
	CHECK(calls == 4, "a token obtained across federation_flush was cached (and reused): it outlived the wipe");
	/* ... while one obtained after the flush is cached again. */
	hop(NULL);
	CHECK(calls == 4, "%d calls: the cache stopped working", calls);
	federation_flush();
	T_DONE("federation");
}
