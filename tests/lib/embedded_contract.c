/* The channel contract in embedded mode, against the dev STS (run by
 * test_embedded.py):
 *
 *   embedded_contract STS_URL SLOW_URL PASSWORD
 *
 * SLOW_URL answers after 20 s (dev STS /test/slow).  Checks the private
 * broker's lifecycle: one per channel, kept across requests and across
 * close/reset/open to the same URL, kept after a request that timed out at
 * the STS, ended by an abort (the pending call completes once with
 * WS_E_OPERATION_ABORTED) and by WsFreeChannel, always reaped. */
#include <wstrust/webservices.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                       \
		if (!(cond)) {                                                         \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			failures++;                                                        \
		}                                                                      \
	} while (0)

static WS_STRING ascii16(const char *s, WCHAR *w, size_t cap)
{
	size_t n = strlen(s);
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++)
		w[i] = (WCHAR)(unsigned char)s[i];
	WS_STRING r = { (ULONG)n, w };
	return r;
}

/* Our wstrustd children (the private brokers), by /proc. */
static int brokers(pid_t *first)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)getpid());
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[512];
		snprintf(cpath, sizeof(cpath), "%s/%s/children", path, e->d_name);
		FILE *f = fopen(cpath, "r");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1) {
			char exe[64], target[512];
			snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
			ssize_t l = readlink(exe, target, sizeof(target) - 1);
			if (l > 0) {
				target[l] = '\0';
				if (strstr(target, "wstrustd")) {
					if (n == 0 && first)
						*first = pid;
					n++;
				}
			}
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static WS_SECURITY_DESCRIPTION *credentials(const char *password)
{
	static WS_STRING_USERNAME_CREDENTIAL uc;
	static WS_USERNAME_MESSAGE_SECURITY_BINDING ub;
	static WS_SECURITY_BINDING *b[1];
	static WS_SECURITY_DESCRIPTION sd;
	static WCHAR user16[8], pw16[256];
	uc.credential.credentialType = WS_STRING_USERNAME_CREDENTIAL_TYPE;
	uc.username = ascii16("alice", user16, 8);
	uc.password = ascii16(password, pw16, 256);
	ub.binding.bindingType = WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE;
	ub.bindingUsage = WS_SUPPORTING_MESSAGE_SECURITY_USAGE;
	ub.clientCredential = &uc.credential;
	b[0] = &ub.binding;
	sd.securityBindings = b;
	sd.securityBindingCount = 1;
	return &sd;
}

static WS_CHANNEL_STATE state(WS_CHANNEL *ch)
{
	WS_CHANNEL_STATE s = (WS_CHANNEL_STATE)-1;
	WsGetChannelProperty(ch, WS_CHANNEL_PROPERTY_STATE, &s, sizeof(s), NULL);
	return s;
}

static HRESULT open_url(WS_CHANNEL *ch, const char *url)
{
	WCHAR w[1024];
	WS_ENDPOINT_ADDRESS a = { ascii16(url, w, 1024), NULL, NULL, NULL };
	return WsOpenChannel(ch, &a, NULL, NULL);
}

static WS_TRUST_VERSION tv = WS_TRUST_VERSION_1_3;
static WS_SECURITY_KEY_TYPE kt = WS_SECURITY_KEY_TYPE_NONE;
static WS_REQUEST_SECURITY_TOKEN_PROPERTY props[] = {
	{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &tv, sizeof(tv) },
	{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &kt, sizeof(kt) },
};

static HRESULT request(WS_CHANNEL *ch, WS_ERROR *e)
{
	WS_SECURITY_TOKEN *t = NULL;
	HRESULT hr = WsRequestSecurityToken(ch, props, 2, &t, NULL, e);
	CHECK(SUCCEEDED(hr) == (t != NULL), "token %p with hr 0x%08x", (void *)t, (unsigned)hr);
	WsFreeSecurityToken(t);
	return hr;
}

static void first_error(WS_ERROR *e, char *buf, size_t n)
{
	const char *s = "";
	if (wstrust_get_error_string_utf8(e, 0, &s) != S_OK || !s)
		s = "";
	snprintf(buf, n, "%s", s);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int calls;
static HRESULT async_hr;

static void CALLBACK done(HRESULT hr, WS_CALLBACK_MODEL model, void *state_)
{
	(void)model;
	(void)state_;
	pthread_mutex_lock(&mu);
	calls++;
	async_hr = hr;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	const char *url = argv[1], *slow = argv[2], *password = argv[3];
	WS_ERROR *e = NULL;
	WsCreateError(NULL, 0, &e);
	char msg[1024];
	HRESULT hr;

	/* 1. One private broker per channel, kept across requests. */
	WS_CHANNEL *ch = NULL;
	CHECK(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, credentials(password), &ch, e) == S_OK,
	      "create");
	CHECK(brokers(NULL) == 0, "no broker before WsOpenChannel");
	CHECK(open_url(ch, url) == S_OK, "open");
	pid_t b1 = 0, b = 0;
	CHECK(brokers(&b1) == 1, "one broker after open");
	CHECK((hr = request(ch, e)) == S_OK, "first request 0x%08x", (unsigned)hr);
	CHECK((hr = request(ch, e)) == S_OK, "second request 0x%08x", (unsigned)hr);
	CHECK(brokers(&b) == 1 && b == b1, "the same broker serves both requests");

	/* 2. Close, reset, open to the same URL: the same broker. */
	CHECK(WsCloseChannel(ch, NULL, e) == S_OK && state(ch) == WS_CHANNEL_STATE_CLOSED, "close");
	CHECK(brokers(&b) == 1 && b == b1, "close keeps the private broker");
	CHECK(WsResetChannel(ch, e) == S_OK && state(ch) == WS_CHANNEL_STATE_CREATED, "reset");
	CHECK(open_url(ch, url) == S_OK, "reopen");
	CHECK((hr = request(ch, e)) == S_OK, "request after reopen 0x%08x", (unsigned)hr);
	CHECK(brokers(&b) == 1 && b == b1, "reopen reuses the broker");
	/* ... but not for another URL. */
	WsCloseChannel(ch, NULL, NULL);
	WsResetChannel(ch, NULL);
	WsResetError(e);
	hr = open_url(ch, slow);
	CHECK(hr == WS_E_INVALID_OPERATION, "open to another URL 0x%08x", (unsigned)hr);

	/* 3. A request that times out at the STS: FAULTED, broker kept, a
	 *    reset and reopen work. */
	WS_CHANNEL *ch2 = NULL;
	ULONG timeout = 1500;
	WS_CHANNEL_PROPERTY cp = { WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT, &timeout, sizeof(timeout) };
	CHECK(WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, &cp, 1, credentials(password), &ch2, e) == S_OK,
	      "create 2");
	CHECK(open_url(ch2, slow) == S_OK, "open 2");
	CHECK(brokers(NULL) == 2, "two channels, two brokers");
	WsResetError(e);
	hr = request(ch2, e);
	first_error(e, msg, sizeof(msg));
	CHECK(hr == WS_E_OPERATION_TIMED_OUT, "slow STS: 0x%08x %s", (unsigned)hr, msg);
	CHECK(state(ch2) == WS_CHANNEL_STATE_FAULTED, "timed out -> FAULTED (%d)", (int)state(ch2));
	CHECK(WsResetChannel(ch2, e) == S_OK && open_url(ch2, slow) == S_OK, "reset and reopen after a timeout");
	CHECK(brokers(NULL) == 2, "the timed-out channel keeps its broker");

	/* 4. Abort during a pending async request: completes once, ABORTED,
	 *    the broker ends and is reaped. */
	WS_SECURITY_TOKEN *t = NULL;
	WS_ASYNC_CONTEXT ac = { done, NULL };
	ULONG longer = 60000;
	WsSetChannelProperty(ch2, WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT, &longer, sizeof(longer), NULL);
	hr = WsRequestSecurityToken(ch2, props, 2, &t, &ac, e);
	CHECK(hr == WS_S_ASYNC, "async 0x%08x", (unsigned)hr);
	sleep_ms(300);
	CHECK(WsAbortChannel(ch2, e) == S_OK, "abort");
	pthread_mutex_lock(&mu);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	while (calls == 0 && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
		;
	pthread_mutex_unlock(&mu);
	sleep_ms(200);
	CHECK(calls == 1, "callback ran %d times", calls);
	CHECK(async_hr == WS_E_OPERATION_ABORTED, "aborted call: 0x%08x", (unsigned)async_hr);
	CHECK(t == NULL, "no token after abort");
	CHECK(state(ch2) == WS_CHANNEL_STATE_FAULTED, "aborted -> FAULTED");
	CHECK(brokers(NULL) == 1, "the aborted channel's broker is gone");
	/* Its credentials were wiped when sent: no second private broker. */
	WsResetChannel(ch2, NULL);
	WsResetError(e);
	hr = open_url(ch2, slow);
	CHECK(hr == WS_E_INVALID_OPERATION, "reopen without a broker 0x%08x", (unsigned)hr);
	WsFreeChannel(ch2);

	/* 5. WsFreeChannel ends and reaps the broker. */
	WsFreeChannel(ch);
	CHECK(brokers(NULL) == 0, "no broker after WsFreeChannel");
	CHECK(kill(b1, 0) != 0, "broker %d is gone", (int)b1);

	WsFreeError(e);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("all embedded contract checks passed\n");
	return failures ? 1 : 0;
}
