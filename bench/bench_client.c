/* The wstrust side of bench_peers.py: N sequential WsRequestSecurityToken
 * calls on one channel, daemon mode (the broker serves the STS URL from its
 * profile), each token read and freed as an application would.  Prints one
 * JSON line with the wall time and this process's CPU; the broker's and
 * workers' CPU is measured by the caller from /proc.
 *
 *   bench_client STS-URL N   (WSTRUST_SOCKET names the broker) */
#include <wstrust/webservices.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec,
 * so it would report the launching Python's peak. */
static long peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static WCHAR *widen(const char *s, ULONG *len)
{
	size_t n = strlen(s);
	WCHAR *w = calloc(n + 1, sizeof(WCHAR));
	if (!w)
		exit(2);
	for (size_t i = 0; i < n; i++)
		w[i] = (WCHAR)(unsigned char)s[i];
	*len = (ULONG)n;
	return w;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_client STS-URL N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	WS_ERROR *error = NULL;
	WS_CHANNEL *channel = NULL;
	WS_ENDPOINT_ADDRESS address = { 0 };
	address.url.chars = widen(argv[1], &address.url.length);
	WS_ENDPOINT_ADDRESS appliesTo = { 0 };
	appliesTo.url.chars = widen("urn:example:rp", &appliesTo.url.length);
	WS_TRUST_VERSION trust = WS_TRUST_VERSION_1_3;
	WS_SECURITY_KEY_TYPE keyType = WS_SECURITY_KEY_TYPE_NONE;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY props[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO, &appliesTo, sizeof(appliesTo) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &trust, sizeof(trust) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &keyType, sizeof(keyType) },
	};
	HRESULT hr = WsCreateError(NULL, 0, &error);
	if (SUCCEEDED(hr))
		hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, NULL, &channel, error);
	if (SUCCEEDED(hr))
		hr = WsOpenChannel(channel, &address, NULL, error);
	double w0 = now_s(), c0 = cpu_s();
	size_t bytes = 0;
	for (int i = 0; i < n && SUCCEEDED(hr); i++) {
		WS_SECURITY_TOKEN *token = NULL;
		hr = WsRequestSecurityToken(channel, props, WsCountOf(props), &token, NULL, error);
		if (FAILED(hr))
			break;
		WS_XML_BUFFER *xml = NULL;
		hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, &xml, sizeof(xml), NULL,
		                                error);
		WS_DATETIME till;
		if (SUCCEEDED(hr))
			hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &till, sizeof(till),
			                                NULL, error);
		bytes += SUCCEEDED(hr) && till.ticks ? 1 : 0;
		WsFreeSecurityToken(token);
	}
	double wall = now_s() - w0, cpu = cpu_s() - c0;
	if (FAILED(hr)) {
		WS_STRING s;
		fprintf(stderr, "bench_client: HRESULT 0x%08lx", (unsigned long)(ULONG)hr);
		if (SUCCEEDED(WsGetErrorString(error, 0, &s)))
			for (ULONG i = 0; i < s.length; i++)
				fputc(s.chars[i] < 0x80 ? (int)s.chars[i] : '?', stderr);
		fputc('\n', stderr);
	} else {
		printf("{\"n\": %d, \"wall_s\": %.6f, \"cpu_s\": %.6f, \"tokens_with_lifetime\": %zu, \"max_rss_kb\": %ld}\n", n,
		       wall, cpu, bytes, peak_rss_kb());
	}
	if (channel) {
		WsCloseChannel(channel, NULL, NULL);
		WsFreeChannel(channel);
	}
	WsFreeError(error);
	free((void *)address.url.chars);
	free((void *)appliesTo.url.chars);
	return FAILED(hr);
}
