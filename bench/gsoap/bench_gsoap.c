/* The gSOAP side of bench_peers.py: N sequential SAML 2.0 bearer token
 * requests (WS-Trust 1.3, SOAP 1.2, usernamemixed) with gSOAP's WS-Trust
 * plugin (wstapi.c) on one soap context, HTTP keep-alive and one TLS
 * context, as an application using gSOAP would.
 * Prints one JSON line like bench_client.c.
 *
 *   bench_gsoap STS-URL CA-FILE N [USER PASSWORD]   (default alice secret)
 *
 * CA-FILE verifies the STS's TLS certificate.  Like the peers (wstrust's
 * WsRequestSecurityToken, MSAL), the assertion is not signature-checked: it
 * is the relying party's to verify.  (wstapi.c's soap_wst_request_saml_token
 * does check it, but gSOAP's in-DOM exc-c14n re-serializes the assertion "as
 * is": it keeps an xmlns:ds declared on saml:Assertion that exclusive c14n
 * drops once the enveloped ds:Signature is removed, and whitespace of the
 * removed element, so an assertion signed like the dev STS's fails
 * "FailedCheck" although xmlsec verifies it.) */
#include "wstapi.h"
#include "wst.nsmap" /* soapcpp2 -2: SOAP 1.2 envelope */

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

/* One token: what soap_wst_request_saml_token (wstapi.c) does, with the
 * changes it has no parameter for:
 * - it sends no wsa:MessageID (soap_wsa_request with id NULL), which a
 *   request-reply exchange needs for the reply's wsa:RelatesTo (WS-Addressing
 *   1.0 Core 3.4) and the dev STS, like ADFS, requires;
 * - it sends no wsa:ReplyTo (valid: absent means anonymous) but the dev STS
 *   wants it spelled out, as wstrust's and MSAL's RSTs do;
 * - it sends a PasswordDigest UsernameToken and no wsu:Timestamp, while the
 *   usernamemixed binding (as ADFS deploys it, and as the peers send it) is
 *   PasswordText plus a wsu:Timestamp;
 * - it reads a bare RSTR, but a WS-Trust 1.3 Issue is answered with an RSTRC
 *   (see wst_bench.h), hence the __wst__RequestSecurityToken13 stub.
 * The rest is the plugin's: its RST (AppliesTo, Bearer, Issue, SAML 2.0
 * TokenType) and the wsa and wsse plugins.  The reply is deserialized into
 * gSOAP's SAML 2.0 structs and its lifetime checked, as an application would. */
static int request_one(struct soap *soap, const char *url, const char *user, const char *password)
{
	struct wst__RequestSecurityTokenType request;
	struct wst__RequestSecurityTokenResponseCollectionType rstrc;
	struct _wsp__AppliesTo_ applies_to;
	struct wsa5__EndpointReferenceType epr;

	soap_default_wst__RequestSecurityTokenType(soap, &request);
	request.KeyType = (char *)SOAP_NAMESPACE_OF_wst "/Bearer";
	request.RequestType = (char *)SOAP_NAMESPACE_OF_wst "/Issue";
	request.TokenType = (char *)"urn:oasis:names:tc:SAML:2.0:assertion";
	soap_default__wsp__AppliesTo_(soap, &applies_to);
	soap_default_wsa5__EndpointReferenceType(soap, &epr);
	epr.Address = (char *)"urn:example:rp";
	applies_to.wsa5__EndpointReference = &epr;
	request.wsp__AppliesTo = &applies_to;

	if (soap_wsa_request(soap, soap_wsa_rand_uuid(soap), url, soap_wst_rst_action) ||
	    soap_wsa_add_ReplyTo(soap, soap_wsa_anonymousURI) ||
	    soap_wsse_add_Timestamp(soap, "Time", 300) ||
	    soap_wsse_add_UsernameTokenText(soap, "User", user, password) ||
	    soap_call___wst__RequestSecurityToken13(soap, url, soap_wst_rst_action, &request, &rstrc))
		return soap->error;

	saml2__AssertionType *saml2 = NULL;
	const struct wst__RequestSecurityTokenResponseType *rstr = rstrc.RequestSecurityTokenResponse;
	if (rstrc.__sizeRequestSecurityTokenResponse == 1 && rstr->RequestedSecurityToken && rstr->TokenType &&
	    !strcmp(rstr->TokenType, "urn:oasis:names:tc:SAML:2.0:assertion"))
		saml2 = rstr->RequestedSecurityToken->saml2__Assertion;
	if (!saml2) {
		fprintf(stderr, "bench_gsoap: no SAML 2.0 assertion in the reply\n");
		return soap->error = SOAP_NO_DATA;
	}
	if (!saml2->saml2__Conditions || !saml2->saml2__Conditions->NotOnOrAfter ||
	    saml2->saml2__Conditions->NotOnOrAfter->tv_sec <= time(NULL)) {
		fprintf(stderr, "bench_gsoap: the assertion has no NotOnOrAfter or has expired\n");
		return soap->error = SOAP_NO_DATA;
	}
	return SOAP_OK;
}

/* Peak RSS of this program.  Not getrusage's ru_maxrss: Linux carries that
 * across execve, so it reports the parent's (here python3's) peak when that
 * is larger.  VmHWM belongs to this address space. */
static long peak_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 6) {
		fprintf(stderr, "usage: bench_gsoap STS-URL CA-FILE N [USER PASSWORD]\n");
		return 2;
	}
	const char *url = argv[1], *ca = argv[2];
	int n = atoi(argv[3]);
	const char *user = argc == 6 ? argv[4] : "alice", *password = argc == 6 ? argv[5] : "secret";

	soap_ssl_init();
	struct soap *soap = soap_new1(SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING);
	if (!soap)
		return 2;
	soap_register_plugin(soap, soap_wsa);
	soap_register_plugin(soap, soap_wsse);
	/* SOAP_SSL_DEFAULT: verify the server's chain and host name. */
	int rc = soap_ssl_client_context(soap, SOAP_SSL_DEFAULT, NULL, NULL, ca, NULL, NULL);

	double w0 = now_s(), c0 = cpu_s();
	for (int i = 0; i < n && rc == SOAP_OK; i++) {
		rc = request_one(soap, url, user, password);
		soap_destroy(soap);
		soap_end(soap);
	}
	double wall = now_s() - w0, cpu = cpu_s() - c0;
	if (rc != SOAP_OK) {
		fprintf(stderr, "bench_gsoap: request failed (gSOAP error %d)\n", rc);
		soap_print_fault(soap, stderr);
	} else {
		printf("{\"n\": %d, \"wall_s\": %.6f, \"cpu_s\": %.6f, \"max_rss_kb\": %ld}\n", n, wall, cpu, peak_rss_kb());
	}
	soap_closesock(soap);
	soap_free(soap);
	return rc != SOAP_OK;
}
