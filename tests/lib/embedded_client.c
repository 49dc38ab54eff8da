/* A libwstrust application in embedded mode, driven step by step by
 * test_embedded.py so that the test can look into this process (and its
 * private broker) between the steps.
 *
 *   embedded_client URL USERNAME bearer|symmetric|asymmetric [CERT]
 *   embedded_client URL token:FILE bearer|symmetric|asymmetric [CERT]
 *
 * CERT adds a TLS client certificate (WS_SSL_TRANSPORT_SECURITY_BINDING's
 * localCertCredential): "thumbprint:FILE:HEX" (WS_THUMBPRINT_CERT_CREDENTIAL,
 * storeName = FILE), "subject:FILE:CN" (WS_SUBJECT_NAME_CERT_CREDENTIAL) or
 * "file:CERT:KEY" (WSTRUST_FILE_CERT_CREDENTIAL).  An empty password line
 * leaves the username binding out.
 *
 * token:FILE presents the XML token in FILE instead of a username
 * (WS_XML_TOKEN_MESSAGE_SECURITY_BINDING, WsCreateXmlSecurityToken): the
 * first stdin line is then its proof key in hex (empty: none), and
 * $EMB_TOKEN_VALID_TILL (WS_DATETIME ticks) its VALID_TILL_TIME property.
 * After WsCreateChannel the application frees its token and wipes its key,
 * so only the library's copy can remain.  $EMB_APPLIES_TO replaces the
 * AppliesTo urn:example:rp.
 *
 * stdin, line by line (read with read(2), not stdio, so that no stdio
 * buffer keeps the password):
 *   1. the password                -> prints "have"   (the test finds it in our memory)
 *   2. "go": create the channel, wipe our own copies of the password, open,
 *      request a token (WS-Trust 1.3, SAML 2.0) -> prints one JSON line
 *      {"hr", "state", "errors": [b64...], "token": b64, "key": b64|null,
 *      "valid_till": ticks}
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

static int unhex(const char *h, unsigned char *out, size_t max, size_t *n)
{
	size_t l = strlen(h);
	if (l % 2 || l / 2 > max)
		return -1;
	for (size_t i = 0; i < l / 2; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	*n = l / 2;
	return 0;
}

/* FILE -> a WS_SECURITY_TOKEN the way a Windows program makes one:
 * WsReadXmlBuffer, then WsCreateXmlSecurityToken with the raw key. */
static HRESULT xml_token(const char *path, const unsigned char *key, size_t key_len, WS_HEAP *heap,
                         WS_SECURITY_TOKEN **token, WS_ERROR *error)
{
	static char data[1 << 20];
	FILE *f = fopen(path, "rb");
	if (!f)
		return E_INVALIDARG;
	size_t len = fread(data, 1, sizeof(data), f);
	fclose(f);
	WS_XML_READER *reader = NULL;
	WS_XML_BUFFER *buffer = NULL;
	WS_XML_READER_TEXT_ENCODING enc = { { WS_XML_READER_ENCODING_TYPE_TEXT }, WS_CHARSET_UTF8 };
	WS_XML_READER_BUFFER_INPUT input = { { WS_XML_READER_INPUT_TYPE_BUFFER }, data, (ULONG)len };
	HRESULT hr = WsCreateReader(NULL, 0, &reader, error);
	if (SUCCEEDED(hr))
		hr = WsSetInput(reader, &enc.encoding, &input.input, NULL, 0, error);
	if (SUCCEEDED(hr))
		hr = WsReadXmlBuffer(reader, heap, &buffer, error);
	WsFreeReader(reader);
	if (FAILED(hr))
		return hr;
	WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE raw = { { WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE_TYPE },
	                                            { (ULONG)key_len, (BYTE *)key } };
	const char *till = getenv("EMB_TOKEN_VALID_TILL");
	WS_DATETIME dt = { till ? strtoull(till, NULL, 10) : 0, WS_DATETIME_FORMAT_UTC };
	WS_XML_SECURITY_TOKEN_PROPERTY prop = { WS_XML_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &dt, sizeof(dt) };
	return WsCreateXmlSecurityToken(buffer, key_len ? &raw.keyHandle : NULL, till ? &prop : NULL, till ? 1 : 0,
	                                token, error);
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *url = argv[1], *user = argv[2];
	int symmetric = strcmp(argv[3], "symmetric") == 0, asymmetric = strcmp(argv[3], "asymmetric") == 0;
	const char *cert = argc > 4 ? argv[4] : NULL;
	const char *token_file = strncmp(user, "token:", 6) == 0 ? user + 6 : NULL;
	unsigned char token_key[1024];
	size_t token_key_len = 0;

	char password[sizeof(line)];
	WCHAR password16[sizeof(line)], user16[256], url16[512], cert16[512];
	if (!read_line())
		return 2;
	if (token_file) {
		if (unhex(line, token_key, sizeof(token_key), &token_key_len) != 0)
			return 2;
		password[0] = '\0';
	} else {
		memcpy(password, line, sizeof(line));
	}
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
	WS_XML_TOKEN_MESSAGE_SECURITY_BINDING xb = { { WS_XML_TOKEN_MESSAGE_SECURITY_BINDING_TYPE, NULL, 0 },
	                                             WS_SUPPORTING_MESSAGE_SECURITY_USAGE, NULL };
	WS_SECURITY_BINDING *bindings[2] = { &sb.binding, token_file ? &xb.binding : &ub.binding };
	WS_SECURITY_DESCRIPTION sd = { bindings, password[0] || token_file ? 2 : 1, NULL, 0 };

	WS_ERROR *error = NULL;
	WS_CHANNEL *channel = NULL;
	WS_SECURITY_TOKEN *token = NULL;
	WS_HEAP *heap = NULL;
	WsCreateError(NULL, 0, &error);
	WsCreateHeap(1 << 20, 0, NULL, 0, &heap, NULL);
	HRESULT hr = S_OK;
	if (token_file)
		hr = xml_token(token_file, token_key, token_key_len, heap, &xb.xmlToken, error);
	if (SUCCEEDED(hr))
		hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, &sd, &channel, error);
	/* The application's own copies: gone.  Only the library's may remain. */
	explicit_bzero(password, sizeof(password));
	explicit_bzero(password16, sizeof(password16));
	WsFreeSecurityToken(xb.xmlToken);
	explicit_bzero(token_key, sizeof(token_key));
	WS_ENDPOINT_ADDRESS address = { ascii16(url, url16), NULL, NULL, NULL };
	if (SUCCEEDED(hr))
		hr = WsOpenChannel(channel, &address, NULL, error);

	WCHAR applies16[256];
	const char *applies_to = getenv("EMB_APPLIES_TO");
	WS_ENDPOINT_ADDRESS applies = { ascii16(applies_to ? applies_to : "urn:example:rp", applies16), NULL, NULL,
	                                NULL };
	WS_TRUST_VERSION tv = WS_TRUST_VERSION_1_3;
	WS_XML_STRING tt = WS_XML_STRING_VALUE("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0");
	WS_SECURITY_KEY_TYPE kt = symmetric ? WS_SECURITY_KEY_TYPE_SYMMETRIC
	                          : asymmetric ? WS_SECURITY_KEY_TYPE_ASYMMETRIC : WS_SECURITY_KEY_TYPE_NONE;
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
	WS_DATETIME valid_till = { 0, WS_DATETIME_FORMAT_UTC };
	if (SUCCEEDED(hr))
		hr = WsGetSecurityTokenProperty(token, WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &valid_till,
		                                sizeof(valid_till), NULL, error);

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
	printf(", \"valid_till\": %llu", (unsigned long long)valid_till.ticks);
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
