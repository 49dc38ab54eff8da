/* Client request decoding: what is refused before any work, and how. */
#include "broker_request.h"
#include "t.h"

static struct ipc_builder b;
static uint8_t frame[1 << 17];
static struct ipc_msg msg;

static void begin(void)
{
	ipc_builder_free(&b);
	ipc_begin(&b, IPC_REQ_TOKEN);
}

static int decode(struct token_request *r, char *err, size_t errlen)
{
	CHECK(ipc_finish(&b) == 0, "ipc_finish");
	memcpy(frame, b.buf, b.len);
	char derr[256];
	CHECK(ipc_decode(frame, b.len, &msg, derr, sizeof derr) == 0, "ipc_decode: %s", derr);
	return token_request_decode(&msg, r, err, errlen);
}

static void refused(const char *want)
{
	struct token_request r;
	char err[512] = "";
	CHECK(decode(&r, err, sizeof err) == -1, "accepted, expected \"%s\"", want);
	CHECK_CONTAINS(err, want);
	token_request_free(&r);
}

int main(void)
{
	struct token_request r;
	char err[512];

	begin();
	ipc_put_str(&b, T_PROFILE, "adfs");
	ipc_put_str(&b, T_APPLIES_TO, "urn:example:rp");
	ipc_put_u32(&b, T_TRUST_VERSION, 2);
	ipc_put_u32(&b, T_KEY_TYPE, 1);
	ipc_put_u32(&b, T_MAX_REPLY, 0xffffffffu);
	ipc_put_u32(&b, T_TIMEOUT_MS, 1500);
	CHECK(decode(&r, err, sizeof err) == 0, "%s", err);
	CHECK_STREQ(r.profile, "adfs");
	CHECK(r.endpoint == NULL && r.token_type == NULL, "absent strings");
	CHECK_STREQ(r.applies_to, "urn:example:rp");
	CHECK(r.trust_version == 2 && r.key_type == 1 && r.request_action == 1 && r.timeout_ms == 1500,
	      "values");
	CHECK(r.max_reply == IPC_MAX_REPLY, "max_reply not capped: %u", r.max_reply);
	token_request_free(&r);

	begin();
	refused("no profile name and no endpoint address");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_str(&b, T_ENDPOINT, "https://x/");
	refused("not both");
	begin();
	ipc_put_str(&b, T_ENDPOINT, "https://x/ y");
	refused("endpoint address: empty, or contains spaces or control characters");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_str(&b, T_APPLIES_TO, "urn:a\nb");
	refused("APPLIES_TO");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_TRUST_VERSION, 3);
	refused("TRUST_VERSION 3 is not a WS_TRUST_VERSION");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 9);
	refused("ISSUED_TOKEN_KEY_TYPE 9 is not a WS_SECURITY_KEY_TYPE");

	/* Symmetric with every knob: accepted and carried. */
	static const char claims[] = " <wst:Claims xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\" "
	                             "Dialect=\"urn:d\"><x Uri=\"urn:c\"/></wst:Claims>\n<y:Z xmlns:y=\"urn:y\"/> ";
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 2);
	ipc_put_u32(&b, T_KEY_SIZE, 192);
	ipc_put_u32(&b, T_ENTROPY_MODE, 3);
	ipc_put_u32(&b, T_BEARER_VERSION, 2);
	ipc_put_u32(&b, T_SC_VERSION, 2);
	ipc_put_u32(&b, T_EMBEDDED, 1);
	ipc_put_bytes(&b, T_LOCAL_PARAMS, claims, strlen(claims));
	ipc_put_bytes(&b, T_SERVICE_PARAMS, "<a/><b/>", 8);
	CHECK(decode(&r, err, sizeof err) == 0, "%s", err);
	CHECK(r.key_type == 2 && r.key_size == 192 && r.entropy_mode == 3 && r.bearer_version == 2 &&
	      r.sc_version == 2 && r.embedded, "values");
	CHECK(r.local_len == strlen(claims) && !memcmp(r.local_params, claims, r.local_len), "local params");
	CHECK(r.service_len == 8 && !memcmp(r.service_params, "<a/><b/>", 8), "service params");
	token_request_free(&r);

	/* Ranges */
	static const struct { uint16_t tag; uint32_t v; const char *msg; } bad[] = {
		{ T_KEY_SIZE, 64, "ISSUED_TOKEN_KEY_SIZE 64 bits: must be 128 to 512, a multiple of 8" },
		{ T_KEY_SIZE, 520, "ISSUED_TOKEN_KEY_SIZE 520 bits" },
		{ T_KEY_SIZE, 129, "ISSUED_TOKEN_KEY_SIZE 129 bits" },
		{ T_ENTROPY_MODE, 0, "ISSUED_TOKEN_KEY_ENTROPY (WS_SECURITY_KEY_ENTROPY_MODE) 0 is not a valid value" },
		{ T_ENTROPY_MODE, 4, "ISSUED_TOKEN_KEY_ENTROPY" },
		{ T_SC_VERSION, 3, "SECURE_CONVERSATION_VERSION (WS_SECURE_CONVERSATION_VERSION) 3" },
		{ T_BEARER_VERSION, 4, "BEARER_KEY_TYPE_VERSION (WS_SECURITY_BEARER_KEY_TYPE_VERSION) 4" },
		{ T_REQUEST_ACTION, 4, "REQUEST_ACTION 4 is not a WS_REQUEST_SECURITY_TOKEN_ACTION" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		begin();
		ipc_put_str(&b, T_PROFILE, "a");
		ipc_put_u32(&b, bad[i].tag, bad[i].v);
		refused(bad[i].msg);
	}

	/* Contradictions, each naming the property */
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 1);
	ipc_put_u32(&b, T_KEY_SIZE, 256);
	refused("ISSUED_TOKEN_KEY_SIZE needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is bearer");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 1);
	ipc_put_u32(&b, T_ENTROPY_MODE, 2);
	refused("ISSUED_TOKEN_KEY_ENTROPY needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is bearer");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 3);
	ipc_put_u32(&b, T_KEY_SIZE, 256);
	refused("ISSUED_TOKEN_KEY_SIZE needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is asymmetric)");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 3);
	ipc_put_u32(&b, T_ENTROPY_MODE, 1);
	refused("ISSUED_TOKEN_KEY_ENTROPY needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is asymmetric)");
	/* key size without a key type: decided with the profile (request.c) */
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_SIZE, 256);
	CHECK(decode(&r, err, sizeof err) == 0, "%s", err);
	token_request_free(&r);

	static const char sct[] = "<c:SecurityContextToken xmlns:c=\"http://schemas.xmlsoap.org/ws/2005/02/sc\" "
	                          "xmlns:u=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\" "
	                          "u:Id=\"x\"><c:Identifier> urn:uuid:abc </c:Identifier><c:Instance>urn:uuid:i1</c:Instance>"
	                          "</c:SecurityContextToken>";
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_bytes(&b, T_EXISTING_TOKEN, sct, strlen(sct));
	refused("EXISTING_TOKEN is only allowed with REQUEST_ACTION RENEW_CONTEXT (this request: ISSUE)");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 2);
	ipc_put_bytes(&b, T_EXISTING_TOKEN, sct, strlen(sct));
	refused("EXISTING_TOKEN is only allowed with REQUEST_ACTION RENEW_CONTEXT (this request: NEW_CONTEXT)");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 3);
	refused("REQUEST_ACTION RENEW_CONTEXT needs EXISTING_TOKEN");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 2);
	ipc_put_u32(&b, T_KEY_TYPE, 1);
	refused("ISSUED_TOKEN_KEY_TYPE bearer contradicts REQUEST_ACTION NEW_CONTEXT");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 2);
	ipc_put_str(&b, T_TOKEN_TYPE, "urn:oasis:names:tc:SAML:2.0:assertion");
	refused("ISSUED_TOKEN_TYPE urn:oasis:names:tc:SAML:2.0:assertion contradicts REQUEST_ACTION NEW_CONTEXT");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 2);
	ipc_put_u32(&b, T_KEY_TYPE, 2);
	ipc_put_u32(&b, T_ENTROPY_MODE, 3);
	CHECK(decode(&r, err, sizeof err) == 0, "NEW_CONTEXT symmetric: %s", err);
	CHECK(r.request_action == 2, "action");
	token_request_free(&r);

	/* RENEW_CONTEXT reads the SCT's Identifier, Instance and version */
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 3);
	ipc_put_bytes(&b, T_EXISTING_TOKEN, sct, strlen(sct));
	CHECK(decode(&r, err, sizeof err) == 0, "RENEW_CONTEXT: %s", err);
	CHECK_STREQ(r.existing_sct_id, "urn:uuid:abc");
	CHECK_STREQ(r.existing_sct_instance, "urn:uuid:i1");
	CHECK(r.existing_sc_version == 1 && r.existing_len == strlen(sct), "sc version %u", r.existing_sc_version);
	token_request_free(&r);
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 3);
	ipc_put_u32(&b, T_SC_VERSION, 2);
	ipc_put_bytes(&b, T_EXISTING_TOKEN, sct, strlen(sct));
	refused("EXISTING_TOKEN is a WS-SecureConversation February 2005 token, but SECURE_CONVERSATION_VERSION is 1.3");
	static const struct { const char *xml; const char *msg; } badtok[] = {
		{ "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/>",
		  "RENEW_CONTEXT renews a security context token (wsc:SecurityContextToken), not "
		  "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion" },
		{ "<c:SecurityContextToken xmlns:c=\"http://schemas.xmlsoap.org/ws/2005/02/sc\"/>",
		  "no usable wsc:Identifier" },
		{ "<c:SecurityContextToken xmlns:c=\"http://schemas.xmlsoap.org/ws/2005/02/sc\"><c:Identifier>a b"
		  "</c:Identifier></c:SecurityContextToken>", "no usable wsc:Identifier" },
		{ "<a/><b/>", "EXISTING_TOKEN: 2 elements, expected one token" },
		{ "<a>", "EXISTING_TOKEN: not well-formed XML" },
	};
	for (size_t i = 0; i < sizeof badtok / sizeof badtok[0]; i++) {
		begin();
		ipc_put_str(&b, T_PROFILE, "a");
		ipc_put_u32(&b, T_REQUEST_ACTION, 3);
		ipc_put_bytes(&b, T_EXISTING_TOKEN, badtok[i].xml, strlen(badtok[i].xml));
		refused(badtok[i].msg);
	}

	/* LOCAL/SERVICE parameters: strict XML, top-level elements only */
	static const struct { const char *xml; const char *msg; } badxml[] = {
		{ "", "LOCAL_REQUEST_PARAMETERS: no element" },
		{ "   ", "LOCAL_REQUEST_PARAMETERS: no element" },
		{ "text<a/>", "LOCAL_REQUEST_PARAMETERS: top-level text: only elements are allowed" },
		{ "<a/><!-- c -->", "top-level comment: only elements are allowed" },
		{ "<a/><?pi x?>", "top-level processing instruction" },
		{ "<a>", "LOCAL_REQUEST_PARAMETERS: not well-formed XML" },
		{ "<a></b>", "not well-formed XML" },
		{ "<p:a/>", "not well-formed XML" },   /* undeclared prefix */
		{ "<a>&ent;</a>", "not well-formed XML" },
		{ "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "DOCTYPE and ENTITY declarations are not allowed" },
		{ "<a/></wstrust-fragment><b>", "not well-formed XML" },
		{ "<a xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"/etc/passwd\"/></a>", NULL },
		/* key material the caller would know while the broker withholds "its" proof key */
		{ "<t:Entropy xmlns:t=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\"><t:BinarySecret>AAAA"
		  "</t:BinarySecret></t:Entropy>", "LOCAL_REQUEST_PARAMETERS: wst:Entropy is not allowed" },
		{ "<a/><t:SecondaryParameters xmlns:t=\"http://schemas.xmlsoap.org/ws/2005/02/trust\"><t:UseKey/>"
		  "</t:SecondaryParameters>", "wst:UseKey is not allowed" },
		{ "<t:ComputedKeyAlgorithm xmlns:t=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\">x"
		  "</t:ComputedKeyAlgorithm>", "wst:ComputedKeyAlgorithm is not allowed" },
		/* other WS-Trust parameters (Claims, KeyType in secondary parameters ...) pass */
		{ "<t:Claims xmlns:t=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\"/><Entropy/>", NULL },
	};
	for (size_t i = 0; i < sizeof badxml / sizeof badxml[0]; i++) {
		begin();
		ipc_put_str(&b, T_PROFILE, "a");
		ipc_put_bytes(&b, T_LOCAL_PARAMS, badxml[i].xml, strlen(badxml[i].xml));
		if (badxml[i].msg) {
			refused(badxml[i].msg);
		} else {
			/* XInclude is never processed: it stays an element, passed on as is */
			CHECK(decode(&r, err, sizeof err) == 0, "%s", err);
			token_request_free(&r);
		}
	}
	static char deep[8192];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "<a>");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "</a>");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_bytes(&b, T_SERVICE_PARAMS, deep, n);
	refused("SERVICE_REQUEST_PARAMETERS: XML nested deeper than 32 elements");
	/* 32 levels are fine */
	n = 0;
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "<a>");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(deep + n, sizeof deep - n, "</a>");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_bytes(&b, T_SERVICE_PARAMS, deep, n);
	CHECK(decode(&r, err, sizeof err) == 0, "32 levels: %s", err);
	token_request_free(&r);
	char perr[256];
	CHECK(xml_strict_parse((const uint8_t *)"<a/>", REQUEST_MAX_XML + 1, true, 8, perr, sizeof perr) == NULL,
	      "over 1 MiB accepted");
	CHECK_CONTAINS(perr, "more than 1048576");

	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_MAX_REPLY, 0);
	refused("quota of 0 bytes");

	ipc_builder_free(&b);
	T_DONE("test_request_decode");
}
