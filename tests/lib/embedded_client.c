/* A libwstrust application in embedded mode, driven step by step by
 * test_embedded.py so that the test can look into this process (and its
 * private broker) between the steps.
 *
 *   embedded_client URL USERNAME bearer|symmetric [CERT]
 *
 * CERT adds a TLS client certificate (WS_SSL_TRANSPORT_SECURITY_BINDING's
 * localCertCredential): "thumbprint:FILE:HEX" (WS_THUMBPRINT_CERT_CREDENTIAL,
 * storeName = FILE), "subject:FILE:CN" (WS_SUBJECT_NAME_CERT_CREDENTIAL) or
 * "file:CERT:KEY" (WSTRUST_FILE_CERT_CREDENTIAL).  An empty password line
 * leaves the username binding out.
 *
 * stdin, line by line (read with read(2), not stdio, so that no stdio
 * buffer keeps the password):
 *   1. the password                -> prints "have"   (the test finds it in our memory)
 *   2. "go": create the channel, wipe our own copies of the password, open,
 *      request a token (WS-Trust 1.3, SAML 2.0) -> prints one JSON line
 *      {"hr", "state", "errors": [b64...], "token": b64, "key": b64|null}
 *   3. "free": free the channel    -> prints "freed"
 *   4. EOF: exit 0. */
#include <wstrust/webservices.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char line[512];

static const char *read_line(void)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r <= 0)
			return n ? line : NULL;
		if (c == '\n')
			break;
		if (n + 1 < sizeof(line))
			line[n++] = c;
	}
	line[n] = '\0';
	return line;
}

static void say(const char *s)
{
	fputs(s, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

static void b64(const unsigned char *p, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	putchar('"');
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		putchar(t[v >> 18 & 63]);
		putchar(t[v >> 12 & 63]);
		putchar(i + 1 < n ? t[v >> 6 & 63] : '=');
		putchar(i + 2 < n ? t[v & 63] : '=');
	}
	putchar('"');
}

static WS_STRING ascii16(const char *s, WCHAR *buf)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		buf[i] = (WCHAR)(unsigned char)s[i];
	WS_STRING w = { (ULONG)n, buf };
	return w;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *url = argv[1], *user = argv[2];
	int symmetric = strcmp(argv[3], "symmetric") == 0;
	const char *cert = argc > 4 ? argv[4] : NULL;

	char password[sizeof(line)];
	WCHAR password16[sizeof(line)], user16[256], url16[512], cert16[512];
	if (!read_line())
		return 2;
	memcpy(password, line, sizeof(line));
	explicit_bzero(line, sizeof(line));
	say("have");
	if (!read_line() || strcmp(line, "go") != 0)
		return 2;

	WS_STRING_USERNAME_CREDENTIAL uc = { { WS_STRING_USERNAME_CREDENTIAL_TYPE }, ascii16(user, user16),
	                                     ascii16(password, password16) };
	WS_USERNAME_MESSAGE_SECURITY_BINDING ub = { { WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE, NULL, 0 },
	                                            WS_SUPPORTING_MESSAGE_SECURITY_USAGE, &uc.credential, NULL, NULL };
	WS_THUMBPRINT_CERT_CREDENTIAL tc = { { WS_THUMBPRINT_CERT_CREDENTIAL_TYPE }, 0, { 0, NULL }, { 0, NULL } };
	WS_SUBJECT_NAME_CERT_CREDENTIAL nc = { { WS_SUBJECT_NAME_CERT_CREDENTIAL_TYPE }, 0, { 0, NULL }, { 0, NULL } };
	WSTRUST_FILE_CERT_CREDENTIAL fc = { { WSTRUST_FILE_CERT_CREDENTIAL_TYPE }, { 0, NULL }, { 0, NULL }, { 0, NULL } };
	WS_SSL_TRANSPORT_SECURITY_BINDING sb = { { WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE, NULL, 0 }, NULL };
	WCHAR second16[512];
	if (cert) {
		char kind[16], a[400], b[400] = "";
		if (sscanf(cert, "%15[^:]:%399[^:]:%399s", kind, a, b) < 2)
			return 2;
		if (strcmp(kind, "thumbprint") == 0) {
			tc.storeName = ascii16(a, cert16);
			tc.thumbprint = ascii16(b, second16);
			sb.localCertCredential = &tc.credential;
		} else if (strcmp(kind, "subject") == 0) {
			nc.storeName = ascii16(a, cert16);
			nc.subjectName = ascii16(b, second16);
			sb.localCertCredential = &nc.credential;
		} else {
			fc.certFile = ascii16(a, cert16);
			fc.keyFile = ascii16(b, second16);
			sb.localCertCredential = &fc.credential;
		}
	}
	WS_SECURITY_BINDING *bindings[2] = { &sb.binding, &ub.binding };
	WS_SECURITY_DESCRIPTION sd = { bindings, password[0] ? 2 : 1, NULL, 0 };

	WS_ERROR *error = NULL;
	WS_CHANNEL *channel = NULL;
	WS_SECURITY_TOKEN *token = NULL;
	WS_HEAP *heap = NULL;
	WsCreateError(NULL, 0, &error);
	WsCreateHeap(1 << 20, 0, NULL, 0, &heap, NULL);
	HRESULT hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, &sd, &channel, error);
	/* The application's own copies: gone.  Only the library's may remain. */
	explicit_bzero(password, sizeof(password));
	explicit_bzero(password16, sizeof(password16));
	WS_ENDPOINT_ADDRESS address = { ascii16(url, url16), NULL, NULL, NULL };
	if (SUCCEEDED(hr))
		hr = WsOpenChannel(channel, &address, NULL, error);

	WCHAR applies16[64];
	WS_ENDPOINT_ADDRESS applies = { ascii16("urn:example:rp", applies16), NULL, NULL, NULL };
	WS_TRUST_VERSION tv = WS_TRUST_VERSION_1_3;
	WS_XML_STRING tt = WS_XML_STRING_VALUE("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0");
	WS_SECURITY_KEY_TYPE kt = symmetric ? WS_SECURITY_KEY_TYPE_SYMMETRIC : WS_SECURITY_KEY_TYPE_NONE;
	WS_REQUEST_SECURITY_TOKEN_PROPERTY props[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO, &applies, sizeof(applies) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION, &tv, sizeof(tv) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE, &tt, sizeof(tt) },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, &kt, sizeof(kt) },
	};
	if (SUCCEEDED(hr))
		hr = WsRequestSecurityToken(channel, props, 4, &token, NULL, error);

	WS_XML_BUFFER *xml = NULL;
	WS_BYTES key = { 0, NULL };
	void *bytes = NULL;
	ULONG nbytes = 0;
	if (SUCCEEDED(hr))
		hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, &xml, sizeof(xml), NULL, error);
	if (SUCCEEDED(hr)) {
		WS_XML_WRITER *w = NULL;
		WsCreateWriter(NULL, 0, &w, NULL);
		hr = WsWriteXmlBufferToBytes(w, xml, NULL, NULL, 0, heap, &bytes, &nbytes, error);
		WsFreeWriter(w);
	}
	if (SUCCEEDED(hr) && symmetric)
		hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY, &key, sizeof(key), heap, error);

	WS_CHANNEL_STATE state = WS_CHANNEL_STATE_CREATED;
	if (channel)
		WsGetChannelProperty(channel, WS_CHANNEL_PROPERTY_STATE, &state, sizeof(state), NULL);
	printf("{\"hr\": %u, \"state\": %d, \"errors\": [", (unsigned)hr, (int)state);
	ULONG count = 0;
	WsGetErrorProperty(error, WS_ERROR_PROPERTY_STRING_COUNT, &count, sizeof(count));
	for (ULONG i = 0; i < count; i++) {
		const char *s = NULL;
		wstrust_get_error_string_utf8(error, i, &s);
		if (i)
			fputs(", ", stdout);
		b64((const unsigned char *)(s ? s : ""), s ? strlen(s) : 0);
	}
	fputs("], \"token\": ", stdout);
	if (bytes)
		b64(bytes, nbytes);
	else
		fputs("null", stdout);
	fputs(", \"key\": ", stdout);
	if (key.bytes)
		b64(key.bytes, key.length);
	else
		fputs("null", stdout);
	say("}");

	if (!read_line() || strcmp(line, "free") != 0)
		return 2;
	WsFreeSecurityToken(token);
	WsFreeChannel(channel);
	say("freed");
	while (read_line())
		;
	WsFreeHeap(heap);
	WsFreeError(error);
	return 0;
}
