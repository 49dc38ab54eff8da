/* RST writer: parse what it writes with libxml2 and check every element,
 * namespace and attribute; the password appears exactly once, escaped. */
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <regex.h>
#include <sodium.h>

#include "rst.h"
#include "t.h"

#define EP "https://sts.example.com/adfs/services/trust/13/usernamemixed"

static xmlDocPtr doc;
static xmlXPathContextPtr xp;

static void parse(const struct rst_msg *m)
{
	if (xp)
		xmlXPathFreeContext(xp);
	if (doc)
		xmlFreeDoc(doc);
	doc = xmlReadMemory((const char *)m->body.data, (int)m->body.len, "rst.xml", NULL, XML_PARSE_NONET);
	CHECK(doc != NULL, "the RST is not well-formed XML:\n%s", (const char *)m->body.data);
	xp = xmlXPathNewContext(doc);
	xmlXPathRegisterNs(xp, BAD_CAST "s12", BAD_CAST NS_SOAP12);
	xmlXPathRegisterNs(xp, BAD_CAST "s11", BAD_CAST NS_SOAP11);
	xmlXPathRegisterNs(xp, BAD_CAST "wsa", BAD_CAST NS_WSA10);
	xmlXPathRegisterNs(xp, BAD_CAST "wsse", BAD_CAST NS_WSSE);
	xmlXPathRegisterNs(xp, BAD_CAST "wsu", BAD_CAST NS_WSU);
	xmlXPathRegisterNs(xp, BAD_CAST "wsp", BAD_CAST NS_WSP);
	xmlXPathRegisterNs(xp, BAD_CAST "t13", BAD_CAST NS_WST13);
	xmlXPathRegisterNs(xp, BAD_CAST "t05", BAD_CAST NS_WST2005);
	xmlXPathRegisterNs(xp, BAD_CAST "ds", BAD_CAST NS_DS);
}

static int count(const char *expr)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, xp);
	CHECK(o != NULL, "bad xpath %s", expr);
	int n = o->nodesetval ? o->nodesetval->nodeNr : 0;
	xmlXPathFreeObject(o);
	return n;
}

/* The string value of the single node expr selects. */
static char *value(const char *expr)
{
	static char buf[4096];
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, xp);
	CHECK(o && o->nodesetval && o->nodesetval->nodeNr == 1, "%s selects %d nodes, expected 1", expr,
	      o && o->nodesetval ? o->nodesetval->nodeNr : -1);
	xmlChar *s = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
	snprintf(buf, sizeof buf, "%s", s ? (char *)s : "");
	xmlFree(s);
	xmlXPathFreeObject(o);
	return buf;
}

#define CHECK_VALUE(expr, want) CHECK_STREQ(value(expr), (want))
#define CHECK_COUNT(expr, n) CHECK(count(expr) == (n), "%s: %d nodes, expected %d", (expr), count(expr), (n))

static size_t occurrences(const struct rst_msg *m, const char *needle)
{
	size_t n = 0, l = strlen(needle);
	for (const uint8_t *p = m->body.data; (p = memmem(p, m->body.len - (size_t)(p - m->body.data), needle, l)); p++)
		n++;
	return n;
}

static bool matches(const char *re, const char *s)
{
	regex_t r;
	CHECK(regcomp(&r, re, REG_EXTENDED | REG_NOSUB) == 0, "regex %s", re);
	bool ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

#include "rst_doc.inc"

int main(void)
{
	CHECK(sodium_init() >= 0, "sodium_init");
	struct secret pw = { 0 };
	CHECK(secret_set(&pw, "a<b&c", 5) == 0, "secret_set");
	char err[256];
	struct rst_msg m;

	/* ---- WS-Trust 1.3, SOAP 1.2, everything set ---- */
	struct rst_request r = {
		.trust_version = 2, .soap_version = 12, .request_action = RST_ACTION_ISSUE,
		.to = EP, .applies_to = "urn:example:rp", .key_type = 1,
		.token_type = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
		.username = "alice", .password = &pw,
		.now = 1700000000, /* 2023-11-14T22:13:20Z */
	};
	CHECK(rst_build(&r, &m, err, sizeof err) == 0, "rst_build: %s", err);
	parse(&m);
	const char *H = "/s12:Envelope/s12:Header";
	char x[512];
	CHECK_COUNT("/s12:Envelope", 1);
	CHECK_COUNT("/s12:Envelope/*", 2);
	CHECK_COUNT("/s12:Envelope/s12:Header/*", 5);
	/* WS-Addressing 1.0 headers */
	snprintf(x, sizeof x, "%s/wsa:Action", H);
	CHECK_VALUE(x, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue");
	snprintf(x, sizeof x, "%s/wsa:Action/@s12:mustUnderstand", H);
	CHECK_VALUE(x, "1");
	CHECK_STREQ(m.action, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue");
	snprintf(x, sizeof x, "%s/wsa:MessageID", H);
	CHECK_VALUE(x, m.message_id);
	CHECK(matches("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", m.message_id),
	      "MessageID %s is not a v4 urn:uuid", m.message_id);
	snprintf(x, sizeof x, "%s/wsa:ReplyTo/wsa:Address", H);
	CHECK_VALUE(x, "http://www.w3.org/2005/08/addressing/anonymous");
	snprintf(x, sizeof x, "%s/wsa:To", H);
	CHECK_VALUE(x, EP);
	snprintf(x, sizeof x, "%s/wsa:To/@s12:mustUnderstand", H);
	CHECK_VALUE(x, "1");
	/* WS-Security: Timestamp + UsernameToken */
	snprintf(x, sizeof x, "%s/wsse:Security/@s12:mustUnderstand", H);
	CHECK_VALUE(x, "1");
	snprintf(x, sizeof x, "%s/wsse:Security/*", H);
	CHECK_COUNT(x, 2);
	snprintf(x, sizeof x, "%s/wsse:Security/wsu:Timestamp/@wsu:Id", H);
	CHECK_VALUE(x, "_0");
	snprintf(x, sizeof x, "%s/wsa:To/@wsu:Id", H);
	CHECK_VALUE(x, "_1");   /* wssec signs Timestamp and To by these Ids */
	snprintf(x, sizeof x, "%s/wsse:Security/wsu:Timestamp/wsu:Created", H);
	CHECK_VALUE(x, "2023-11-14T22:13:20.000Z");
	snprintf(x, sizeof x, "%s/wsse:Security/wsu:Timestamp/wsu:Expires", H);
	CHECK_VALUE(x, "2023-11-14T22:18:20.000Z");
	snprintf(x, sizeof x, "%s/wsse:Security/wsse:UsernameToken/@wsu:Id", H);
	CHECK_VALUE(x, "_2");
	snprintf(x, sizeof x, "%s/wsse:Security/wsse:UsernameToken/wsse:Username", H);
	CHECK_VALUE(x, "alice");
	snprintf(x, sizeof x, "%s/wsse:Security/wsse:UsernameToken/wsse:Password", H);
	CHECK_VALUE(x, "a<b&c");
	snprintf(x, sizeof x, "%s/wsse:Security/wsse:UsernameToken/wsse:Password/@Type", H);
	CHECK_VALUE(x, "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText");
	/* The password: exactly once in the document, escaped on the wire. */
	CHECK_COUNT("//text()[. = 'a<b&c']", 1);
	CHECK(occurrences(&m, "a&lt;b&amp;c") == 1, "escaped password occurs %zu times", occurrences(&m, "a&lt;b&amp;c"));
	CHECK(occurrences(&m, "a<b&c") == 0, "raw password on the wire");
	/* Body */
	const char *B = "/s12:Envelope/s12:Body/t13:RequestSecurityToken";
	CHECK_COUNT(B, 1);
	snprintf(x, sizeof x, "%s/*", B);
	CHECK_COUNT(x, 4);
	snprintf(x, sizeof x, "%s/wsp:AppliesTo/wsa:EndpointReference/wsa:Address", B);
	CHECK_VALUE(x, "urn:example:rp");
	snprintf(x, sizeof x, "%s/t13:KeyType", B);
	CHECK_VALUE(x, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer");
	snprintf(x, sizeof x, "%s/t13:RequestType", B);
	CHECK_VALUE(x, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue");
	snprintf(x, sizeof x, "%s/t13:TokenType", B);
	CHECK_VALUE(x, "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0");
	snprintf(x, sizeof x, "%s/@Context", B);
	CHECK_COUNT(x, 0);
	rst_msg_free(&m);
	CHECK(m.body.data == NULL, "body not freed");

	/* Two messages never share a MessageID. */
	struct rst_msg m2;
	CHECK(rst_build(&r, &m, err, sizeof err) == 0 && rst_build(&r, &m2, err, sizeof err) == 0, "%s", err);
	CHECK(strcmp(m.message_id, m2.message_id) != 0, "MessageID reused");
	rst_msg_free(&m);
	rst_msg_free(&m2);

	/* ---- February 2005, SOAP 1.1, minimal: no AppliesTo/TokenType ---- */
	struct rst_request r05 = r;
	r05.trust_version = 1;
	r05.soap_version = 11;
	r05.applies_to = NULL;
	r05.token_type = NULL;
	r05.context = "ctx-1&2";
	CHECK(rst_build(&r05, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_COUNT("/s11:Envelope/s11:Header/wsa:Action[@s11:mustUnderstand='1']", 1);
	CHECK_VALUE("/s11:Envelope/s11:Header/wsa:Action", "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/Issue");
	CHECK_COUNT("/s11:Envelope/s11:Header/wsse:Security[@s11:mustUnderstand='1']/wsse:UsernameToken", 1);
	CHECK_VALUE("/s11:Envelope/s11:Body/t05:RequestSecurityToken/t05:KeyType",
	            "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey");
	CHECK_VALUE("/s11:Envelope/s11:Body/t05:RequestSecurityToken/t05:RequestType",
	            "http://schemas.xmlsoap.org/ws/2005/02/trust/Issue");
	CHECK_VALUE("/s11:Envelope/s11:Body/t05:RequestSecurityToken/@Context", "ctx-1&2");
	CHECK_STREQ(m.context, "ctx-1&2");
	CHECK_COUNT("//wsp:AppliesTo", 0);
	CHECK_COUNT("//t05:TokenType", 0);
	CHECK_COUNT("//s12:*", 0);
	rst_msg_free(&m);

	/* No key type: no KeyType element.  No username: no UsernameToken. */
	struct rst_request rn = r;
	rn.key_type = 0;
	rn.username = NULL;
	rn.password = NULL;
	CHECK(rst_build(&rn, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_COUNT("//t13:KeyType", 0);
	CHECK_COUNT("//wsse:UsernameToken", 0);
	CHECK_COUNT("//wsu:Timestamp", 1);
	rst_msg_free(&m);

	/* Escaping of every special character; tab allowed. */
	struct secret pw2 = { 0 };
	secret_set(&pw2, "&<>\"'\tZ", 7);
	r.password = &pw2;
	CHECK(rst_build(&r, &m, err, sizeof err) == 0, "%s", err);
	CHECK(occurrences(&m, "&amp;&lt;&gt;&quot;&apos;\tZ") == 1, "escaping wrong:\n%s", (char *)m.body.data);
	parse(&m);
	CHECK_VALUE("//wsse:Password", "&<>\"'\tZ");
	rst_msg_free(&m);
	secret_free(&pw2);

	/* Unspliced (for wssec_apply, which parses the envelope with libxml2):
	 * the password is not in the body, only its marker, until rst_splice. */
	secret_set(&pw2, "Hunter2-secret", 14);
	CHECK(rst_build_unspliced(&r, &m, err, sizeof err) == 0, "%s", err);
	CHECK(m.nslots == 1 && occurrences(&m, "Hunter2-secret") == 0, "password in the unspliced envelope");
	CHECK(occurrences(&m, m.slots[0].marker) == 1, "marker not in the unspliced envelope");
	char marker[RST_MARKER_LEN + 1];
	memcpy(marker, m.slots[0].marker, sizeof marker);
	CHECK(rst_splice(&m, err, sizeof err) == 0, "%s", err);
	CHECK(occurrences(&m, "Hunter2-secret") == 1 && occurrences(&m, marker) == 0, "splice did not put it in");
	rst_msg_free(&m);
	secret_free(&pw2);

	/* Control characters in a password are refused, never sent. */
	secret_set(&pw2, "ab\ncd", 5);
	CHECK(rst_build(&r, &m, err, sizeof err) == -1, "newline in password accepted");
	CHECK_CONTAINS(err, "control character");
	CHECK(m.body.data == NULL, "body left after refusal");
	secret_free(&pw2);
	/* ... and in other strings. */
	r.password = &pw;
	r.applies_to = "urn:x\r\ny";
	CHECK(rst_build(&r, &m, err, sizeof err) == -1, "CRLF in AppliesTo accepted");
	CHECK_CONTAINS(err, "AppliesTo contains a control character");
	r.applies_to = "urn:example:rp";
	/* Values that look like markup are escaped by the writer. */
	r.applies_to = "urn:a<b>&\"c\"";
	CHECK(rst_build(&r, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_VALUE("//wsp:AppliesTo/wsa:EndpointReference/wsa:Address", "urn:a<b>&\"c\"");
	rst_msg_free(&m);

	/* Symmetric key, KeySize, COMBINED entropy: Entropy/BinarySecret Nonce
	 * (base64 of the requestor entropy, written through a placeholder) and
	 * ComputedKeyAlgorithm P_SHA1. */
	struct secret ent = { 0 };
	CHECK(secret_set(&ent, "0123456789abcdef0123456789ABCDEF", 32) == 0, "secret_set");
	struct rst_request rs = r;
	rs.key_type = 2;
	rs.key_size = 256;
	rs.entropy_mode = 3;
	rs.entropy = &ent;
	CHECK(rst_build(&rs, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_VALUE("//t13:RequestSecurityToken/t13:KeyType", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey");
	CHECK_VALUE("//t13:RequestSecurityToken/t13:KeySize", "256");
	CHECK_VALUE("//t13:RequestSecurityToken/t13:Entropy/t13:BinarySecret/@Type",
	            "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Nonce");
	CHECK_VALUE("//t13:RequestSecurityToken/t13:Entropy/t13:BinarySecret",
	            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY=");
	CHECK_VALUE("//t13:RequestSecurityToken/t13:ComputedKeyAlgorithm",
	            "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1");
	CHECK(occurrences(&m, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY=") == 1, "entropy not exactly once");
	rst_msg_free(&m);
	/* CLIENT_ONLY: Entropy without ComputedKeyAlgorithm */
	rs.entropy_mode = 1;
	CHECK(rst_build(&rs, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_COUNT("//t13:Entropy/t13:BinarySecret", 1);
	CHECK_COUNT("//t13:ComputedKeyAlgorithm", 0);
	rst_msg_free(&m);
	/* SERVER_ONLY: neither */
	rs.entropy_mode = 0;
	CHECK(rst_build(&rs, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_COUNT("//t13:Entropy", 0);
	CHECK_COUNT("//t13:ComputedKeyAlgorithm", 0);
	rst_msg_free(&m);
	rs.entropy_mode = 3;
	rs.entropy = NULL;
	CHECK(rst_build(&rs, &m, err, sizeof err) == -1, "entropy mode without entropy accepted");
	rs.entropy = &ent;

	/* The three WS-Trust 1.3 Bearer spellings; Feb 2005 is NoProofKey. */
	static const char *const bearer[] = { "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
		"http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer",
		"http://docs.oasis-open.org/wssx/wstrust/200512/Bearer",
		"http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer" };
	for (uint32_t bv = 0; bv <= 3; bv++) {
		struct rst_request rb = r;
		rb.bearer_version = bv;
		CHECK(rst_build(&rb, &m, err, sizeof err) == 0, "%s", err);
		parse(&m);
		CHECK_VALUE("//t13:KeyType", bearer[bv]);
		rst_msg_free(&m);
		rb.trust_version = 1;
		CHECK(rst_build(&rb, &m, err, sizeof err) == 0, "%s", err);
		parse(&m);
		CHECK_VALUE("//t05:KeyType", "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey");
		rst_msg_free(&m);
	}

	/* Asymmetric: PublicKey + UseKey with the certificate (DER, base64). */
	struct rst_request ra = r;
	ra.key_type = 3;
	CHECK(rst_build(&ra, &m, err, sizeof err) == -1, "PublicKey without a certificate accepted");
	CHECK_CONTAINS(err, "client_cert");
	static const uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	ra.use_key_cert = der;
	ra.use_key_cert_len = sizeof der;
	CHECK(rst_build(&ra, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_VALUE("//t13:KeyType", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey");
	CHECK_VALUE("//t13:UseKey/ds:KeyInfo/ds:X509Data/ds:X509Certificate", "MAMCAQE=");
	CHECK_COUNT("//t13:KeySize", 0);
	rst_msg_free(&m);

	/* SCT issue (NEW_CONTEXT): the action of the SC version's trust
	 * namespace, RequestType Issue, TokenType <SC ns>/sct. */
	struct rst_request rc = r;
	rc.key_type = 0;
	rc.token_type = NULL;
	rc.request_action = RST_ACTION_NEW_CONTEXT;
	rc.sc_version = 2;
	CHECK(rst_build(&rc, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_STREQ(m.action, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT");
	CHECK_VALUE("//wsa:Action", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT");
	CHECK_VALUE("//t13:RequestType", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue");
	CHECK_VALUE("//t13:TokenType", "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct");
	CHECK_COUNT("//t13:KeyType", 0);
	rst_msg_free(&m);
	rc.trust_version = 1;
	rc.sc_version = 1;
	CHECK(rst_build(&rc, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_STREQ(m.action, "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/SCT");
	CHECK_VALUE("//t05:TokenType", "http://schemas.xmlsoap.org/ws/2005/02/sc/sct");
	rst_msg_free(&m);
	/* SCT renew: RequestType Renew + RenewTarget referencing the Identifier */
	rc.request_action = RST_ACTION_RENEW_CONTEXT;
	CHECK(rst_build(&rc, &m, err, sizeof err) == -1, "RENEW_CONTEXT without an Identifier accepted");
	rc.renew_sct_id = "urn:uuid:00000000-0000-4000-8000-000000000001";
	CHECK(rst_build(&rc, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_STREQ(m.action, "http://schemas.xmlsoap.org/ws/2005/02/trust/RST/SCT/Renew");
	CHECK_VALUE("//t05:RequestType", "http://schemas.xmlsoap.org/ws/2005/02/trust/Renew");
	CHECK_VALUE("//t05:RenewTarget/wsse:SecurityTokenReference/wsse:Reference/@URI",
	            "urn:uuid:00000000-0000-4000-8000-000000000001");
	CHECK_VALUE("//t05:RenewTarget/wsse:SecurityTokenReference/wsse:Reference/@ValueType",
	            "http://schemas.xmlsoap.org/ws/2005/02/sc/sct");
	rst_msg_free(&m);

	/* LOCAL params at the top level; SERVICE params in SecondaryParameters
	 * (1.3) or after the local ones (Feb 2005). */
	static const char lp[] = "<wst:Claims xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\" "
	                         "Dialect=\"urn:d\"><c Uri=\"urn:c1\"/></wst:Claims>";
	static const char sp[] = "<x:Hint xmlns:x=\"urn:x\">1</x:Hint><x:Two xmlns:x=\"urn:x\"/>";
	struct rst_request rp = r;
	rp.local_params = (const uint8_t *)lp;
	rp.local_len = strlen(lp);
	rp.service_params = (const uint8_t *)sp;
	rp.service_len = strlen(sp);
	CHECK(rst_build(&rp, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_VALUE("//t13:RequestSecurityToken/t13:Claims/@Dialect", "urn:d");
	CHECK_COUNT("//t13:RequestSecurityToken/t13:SecondaryParameters/*", 2);
	CHECK_COUNT("//t13:RequestSecurityToken/t13:SecondaryParameters/*[local-name()='Hint']", 1);
	CHECK_COUNT("//t13:RequestSecurityToken/*[local-name()='Hint']", 0);
	rst_msg_free(&m);
	rp.trust_version = 1;
	CHECK(rst_build(&rp, &m, err, sizeof err) == 0, "%s", err);
	parse(&m);
	CHECK_COUNT("//t05:SecondaryParameters", 0);
	CHECK_COUNT("//t05:RequestSecurityToken/*[local-name()='Hint']", 1);
	CHECK_COUNT("//t05:RequestSecurityToken/*[local-name()='Hint']/preceding-sibling::*[local-name()='Claims']", 1);
	rst_msg_free(&m);
	secret_free(&ent);

	r.request_action = 4;
	CHECK(rst_build(&r, &m, err, sizeof err) == -1, "action 4 accepted");
	r.request_action = RST_ACTION_ISSUE;
	r.trust_version = 3;
	CHECK(rst_build(&r, &m, err, sizeof err) == -1, "trust version 3 accepted");

	check_doc_examples();

	/* Real clock: Created is now (ms precision), Expires 5 minutes later. */
	r.trust_version = 2;
	r.now = 0;
	CHECK(rst_build(&r, &m, err, sizeof err) == 0, "%s", err);
	CHECK(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", m.created), "created %s",
	      m.created);
	time_t now = time(NULL);
	struct tm tm = { 0 };
	strptime(m.created, "%Y-%m-%dT%H:%M:%S", &tm);
	time_t created = timegm(&tm);
	CHECK(created >= now - 5 && created <= now + 5, "Created %s is not now", m.created);
	strptime(m.expires, "%Y-%m-%dT%H:%M:%S", &tm);
	CHECK(timegm(&tm) - created == 300, "Expires %s is not Created + 300 s", m.expires);
	CHECK(!strcmp(m.created + 19, m.expires + 19), "milliseconds differ");
	rst_msg_free(&m);

	xmlXPathFreeContext(xp);
	xmlFreeDoc(doc);
	secret_free(&pw);
	T_DONE("test_rst");
}
