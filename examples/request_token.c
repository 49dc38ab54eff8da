/* Request a SAML 2.0 bearer token from an AD FS "usernamemixed" endpoint with
 * WsRequestSecurityToken, written the way it is written for Windows.  The
 * only line that differs from the Windows program is the #include (there:
 * <windows.h> and <webservices.h>).  Build on Linux with -fshort-wchar, so
 * that L"..." literals are UTF-16 as on Windows, and link with -lwstrust.
 *
 * On Linux it runs in either mode without a change (docs/API.md):
 *   daemon (the default): the credentials below are not used; the system
 *     broker serves the STS URL from its profile and holds the password
 *     itself ($WSTRUST_SOCKET or the default socket);
 *   embedded (WSTRUST_MODE=embedded): the library starts a private wstrustd
 *     for the channel and hands it alice's password over their socketpair,
 *     then wipes its copies; $WSTRUST_CA_FILE names the STS's CA when the
 *     system bundle does not know it.
 *
 * usage: request_token [STS-URL]   (prints the token XML on stdout) */
#include <wstrust/webservices.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void PrintError(HRESULT errorCode, WS_ERROR *error)
{
	fprintf(stderr, "Failure: errorCode=0x%lx\n", (unsigned long)(ULONG)errorCode);
	if (error == NULL)
		return;
	ULONG errorCount = 0;
	if (FAILED(WsGetErrorProperty(error, WS_ERROR_PROPERTY_STRING_COUNT, &errorCount, sizeof(errorCount))))
		return;
	for (ULONG i = 0; i < errorCount; i++) {
		WS_STRING string;
		if (FAILED(WsGetErrorString(error, i, &string)))
			return;
		for (ULONG c = 0; c < string.length; c++)
			fputc(string.chars[c] < 0x80 ? (int)string.chars[c] : '?', stderr);
		fputc('\n', stderr);
	}
}

int main(int argc, char **argv)
{
	HRESULT hr = S_OK;
	WS_ERROR *error = NULL;
	WS_HEAP *heap = NULL;
	WS_CHANNEL *channel = NULL;
	WS_SECURITY_TOKEN *securityToken = NULL;
	WS_XML_WRITER *writer = NULL;
	WCHAR urlBuffer[512];

	WS_ENDPOINT_ADDRESS address = { 0 };
	WS_STRING url = WS_STRING_VALUE(L"https://sts.contoso.com/adfs/services/trust/13/usernamemixed");
	address.url = url;
	if (argc > 1) {
		/* the STS URL from the command line (ASCII) */
		size_t n = strlen(argv[1]);
		if (n >= 512)
			return 2;
		for (size_t i = 0; i < n; i++)
			urlBuffer[i] = (WCHAR)(unsigned char)argv[1][i];
		address.url.chars = urlBuffer;
		address.url.length = (ULONG)n;
	}

	/* Transport security (TLS) plus a username/password for the STS. */
	WS_SSL_TRANSPORT_SECURITY_BINDING sslBinding = { 0 };
	sslBinding.binding.bindingType = WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE;

	WS_STRING_USERNAME_CREDENTIAL usernameCredential = { 0 };
	usernameCredential.credential.credentialType = WS_STRING_USERNAME_CREDENTIAL_TYPE;
	WS_STRING username = WS_STRING_VALUE(L"alice");
	WS_STRING password = WS_STRING_VALUE(L"secret");
	usernameCredential.username = username;
	usernameCredential.password = password;

	WS_USERNAME_MESSAGE_SECURITY_BINDING usernameBinding = { 0 };
	usernameBinding.binding.bindingType = WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE;
	usernameBinding.bindingUsage = WS_SUPPORTING_MESSAGE_SECURITY_USAGE;
	usernameBinding.clientCredential = &usernameCredential.credential;

	WS_SECURITY_BINDING *securityBindings[2] = { &sslBinding.binding, &usernameBinding.binding };
	WS_SECURITY_DESCRIPTION securityDescription = { 0 };
	securityDescription.securityBindings = securityBindings;
	securityDescription.securityBindingCount = 2;

	hr = WsCreateError(NULL, 0, &error);
	if (FAILED(hr))
		goto Exit;
	hr = WsCreateHeap(/*maxSize*/ 1 << 20, /*trimSize*/ 512, NULL, 0, &heap, error);
	if (FAILED(hr))
		goto Exit;
	hr = WsCreateChannel(WS_CHANNEL_TYPE_REQUEST, WS_HTTP_CHANNEL_BINDING, NULL, 0, &securityDescription, &channel,
	                     error);
	if (FAILED(hr))
		goto Exit;
	hr = WsOpenChannel(channel, &address, NULL, error);
	if (FAILED(hr))
		goto Exit;

	WS_ENDPOINT_ADDRESS appliesTo = { 0 };
	WS_STRING appliesToUrl = WS_STRING_VALUE(L"urn:example:rp");
	appliesTo.url = appliesToUrl;
	WS_TRUST_VERSION trustVersion = WS_TRUST_VERSION_1_3;
	WS_XML_STRING tokenType = WS_XML_STRING_VALUE("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0");
	WS_SECURITY_KEY_TYPE keyType = WS_SECURITY_KEY_TYPE_NONE;

	WS_REQUEST_SECURITY_TOKEN_PROPERTY properties[4];
	properties[0].id = WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO;
	properties[0].value = &appliesTo;
	properties[0].valueSize = sizeof(appliesTo);
	properties[1].id = WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION;
	properties[1].value = &trustVersion;
	properties[1].valueSize = sizeof(trustVersion);
	properties[2].id = WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE;
	properties[2].value = &tokenType;
	properties[2].valueSize = sizeof(tokenType);
	properties[3].id = WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE;
	properties[3].value = &keyType;
	properties[3].valueSize = sizeof(keyType);

	hr = WsRequestSecurityToken(channel, properties, WsCountOf(properties), &securityToken, NULL, error);
	if (FAILED(hr))
		goto Exit;

	WS_SECURITY_KEY_TYPE issuedKeyType;
	WS_DATETIME validFrom, validTill;
	WS_XML_BUFFER *tokenXml = NULL;
	hr = WsGetSecurityTokenProperty(securityToken, WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE, &issuedKeyType,
	                                sizeof(issuedKeyType), NULL, error);
	if (FAILED(hr))
		goto Exit;
	hr = WsGetSecurityTokenProperty(securityToken, WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME, &validFrom,
	                                sizeof(validFrom), NULL, error);
	if (FAILED(hr))
		goto Exit;
	hr = WsGetSecurityTokenProperty(securityToken, WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME, &validTill,
	                                sizeof(validTill), NULL, error);
	if (FAILED(hr))
		goto Exit;
	hr = WsGetSecurityTokenProperty(securityToken, WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML, &tokenXml,
	                                sizeof(tokenXml), NULL, error);
	if (FAILED(hr))
		goto Exit;

	hr = WsCreateWriter(NULL, 0, &writer, error);
	if (FAILED(hr))
		goto Exit;
	WS_XML_WRITER_TEXT_ENCODING encoding = { 0 };
	encoding.encoding.encodingType = WS_XML_WRITER_ENCODING_TYPE_TEXT;
	encoding.charSet = WS_CHARSET_UTF8;
	void *bytes = NULL;
	ULONG byteCount = 0;
	hr = WsWriteXmlBufferToBytes(writer, tokenXml, &encoding.encoding, NULL, 0, heap, &bytes, &byteCount, error);
	if (FAILED(hr))
		goto Exit;

	fprintf(stderr, "key type %d, valid from %llu till %llu (ticks)\n", (int)issuedKeyType,
	        (unsigned long long)validFrom.ticks, (unsigned long long)validTill.ticks);
	fwrite(bytes, 1, byteCount, stdout);
	fputc('\n', stdout);

	hr = WsCloseChannel(channel, NULL, error);

Exit:
	if (FAILED(hr))
		PrintError(hr, error);
	if (writer != NULL)
		WsFreeWriter(writer);
	if (securityToken != NULL)
		WsFreeSecurityToken(securityToken);
	if (channel != NULL)
		WsFreeChannel(channel);
	if (heap != NULL)
		WsFreeHeap(heap);
	if (error != NULL)
		WsFreeError(error);
	return SUCCEEDED(hr) ? 0 : 1;
}
