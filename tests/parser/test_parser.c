/* test_parser: the STS reply parser (worker/parse.c) against the whole
 * conformance corpus, hostile XML, legitimate variety, and xsd:dateTime.
 *
 * Every check names what it expected; the run fails (exit 1) if any check
 * fails.  Signature checks run the xmlsec1 command-line tool on the
 * extracted token: a corpus token whose signature verifies in the original
 * document must verify after extraction (that is what byte-exact means). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <sodium.h>

#include "config.h"
#include "parse.h"

static int failures, checks;
static const char *current = "";

#define CHECK(cond, ...)                                                                        \
	do {                                                                                        \
		checks++;                                                                               \
		if (!(cond)) {                                                                          \
			failures++;                                                                         \
			fprintf(stderr, "%s:%d: [%s] FAILED %s: ", __FILE__, __LINE__, current, #cond); \
			fprintf(stderr, __VA_ARGS__);                                                       \
			fputc('\n', stderr);                                                                \
		}                                                                                       \
	} while (0)

static const char *nz(const char *s)
{
	return s ? s : "(null)";
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

#define CHECK_STR(got, want) CHECK(str_eq((got), (want)), "%s: got \"%s\", want \"%s\"", #got, nz(got), nz(want))

static const char *source_root(void)
{
	const char *r = getenv("WSTRUST_SOURCE_ROOT");
	return r && *r ? r : WSTRUST_SOURCE_ROOT;
}

static uint8_t *read_file(const char *rel, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/parser/%s", source_root(), rel);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = xmalloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static struct wt_parse_req base_req(const void *buf, size_t len)
{
	return (struct wt_parse_req){ .reply = buf, .reply_len = len, .http_status = 200, .limits = WT_DEFAULT_LIMITS };
}

static int parse_with(const struct wt_parse_req *req, struct wt_result *out)
{
	int rc = wt_parse_reply(req, out);
	CHECK((rc == 0) == (out->kind != IPC_RESULT_ERROR), "return %d does not match kind %u", rc, out->kind);
	CHECK(out->kind == IPC_RESULT_ERROR || out->error == NULL, "non-error result carries error \"%s\"", nz(out->error));
	CHECK(!out->secure, "worker-side results are plain heap");
	/* Whatever the parser says must fit the broker <-> worker wire format. */
	struct ipc_builder b = { 0 };
	int enc = wt_result_encode(out, &b);
	CHECK(enc == 0, "result does not encode (kind %u)", out->kind);
	if (enc == 0) {
		struct ipc_msg m;
		struct wt_result back;
		char err[256] = "";
		int dec = ipc_decode(b.buf, b.len, &m, err, sizeof(err));
		if (dec == 0)
			dec = wt_result_decode(&m, &back, false, err, sizeof(err));
		CHECK(dec == 0 && back.kind == out->kind, "result does not decode: %s", err);
		if (dec == 0)
			wt_result_free(&back);
	}
	ipc_builder_free(&b);
	return rc;
}

static void expect_error_req(const struct wt_parse_req *req, uint32_t code, const char *sub)
{
	struct wt_result r;
	parse_with(req, &r);
	CHECK(r.kind == IPC_RESULT_ERROR, "want ERROR %u \"%s\", got kind %u", code, sub, r.kind);
	CHECK(r.error_code == code, "error_code %u, want %u (error: %s)", r.error_code, code, nz(r.error));
	CHECK(r.error && strstr(r.error, sub), "error \"%s\" lacks \"%s\"", nz(r.error), sub);
	wt_result_free(&r);
}

static void expect_error(const char *doc, uint32_t code, const char *sub)
{
	struct wt_parse_req req = base_req(doc, strlen(doc));
	expect_error_req(&req, code, sub);
}

/* ---- byte-exactness ---- */

static int xml_errors;
static void count_error(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	if (e && e->level >= XML_ERR_ERROR)
		xml_errors++;
}

/* The blob is well-formed, namespace-complete XML on its own... */
static void check_standalone(const struct wt_blob *b, const char *what)
{
	xml_errors = 0;
	xmlSetStructuredErrorFunc(NULL, count_error);
	xmlDocPtr d = xmlReadMemory((const char *)b->data, (int)b->len, NULL, NULL, XML_PARSE_NONET);
	xmlSetStructuredErrorFunc(NULL, NULL);
	CHECK(d && xml_errors == 0, "%s does not parse on its own (%d errors)", what, xml_errors);
	xmlFreeDoc(d);
}

/* ... and, once the namespace declarations we inserted after the element
 * name are taken out again, a verbatim substring of the original input. */
static void check_byte_exact(const uint8_t *orig, size_t olen, const struct wt_blob *b, const char *what)
{
	CHECK(b->data && b->len > 2 && b->data[0] == '<', "%s is not an element", what);
	if (!b->data || b->len < 2)
		return;
	check_standalone(b, what);
	const char *s = (const char *)b->data;
	size_t name_end = 1;
	while (name_end < b->len && !strchr(" \t\r\n/>", s[name_end]))
		name_end++;
	size_t cut = name_end;
	bool found = false;
	for (;;) {
		/* head = "<qname", tail = the rest after `cut` */
		size_t tlen = b->len - cut;
		for (const uint8_t *p = orig; p && !found;) {
			p = memmem(p, olen - (size_t)(p - orig), s, name_end);
			if (!p)
				break;
			size_t left = olen - (size_t)(p - orig) - name_end;
			found = left >= tlen && !memcmp(p + name_end, s + cut, tlen);
			p++;
		}
		if (found || strncmp(s + cut, " xmlns", 6))
			break;
		/* skip one inserted declaration: ` xmlns[:p]="..."` */
		const char *q = memchr(s + cut, '"', b->len - cut);
		q = q ? memchr(q + 1, '"', b->len - (size_t)(q + 1 - s)) : NULL;
		if (!q)
			break;
		cut = (size_t)(q + 1 - s);
	}
	CHECK(found, "%s is not the input's bytes plus inserted namespace declarations", what);
}

/* ---- xmlsec1 ---- */

static bool have_xmlsec1(void)
{
	return system("xmlsec1 --version >/dev/null 2>&1") == 0;
}

/* 1 = verifies, 0 = does not. */
static int xmlsec_verify(const void *data, size_t len)
{
	char path[] = "/tmp/wstrust-parser-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd),
		 "xmlsec1 --verify --insecure --enabled-key-data x509,rsa "
		 "--id-attr:AssertionID urn:oasis:names:tc:SAML:1.0:assertion:Assertion "
		 "--id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion %s >/dev/null 2>&1",
		 path);
	int st = system(cmd);
	unlink(path);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const uint8_t *skip_boms(const uint8_t *p, size_t *len)
{
	while (*len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
		p += 3;
		*len -= 3;
	}
	return p;
}

/* ---- the corpus ---- */

#define T13 "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define T05 "http://schemas.xmlsoap.org/ws/2005/02/trust"
#define SAML11 "urn:oasis:names:tc:SAML:1.0:assertion"
#define SAML2URN "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAMLV2 "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
#define NOPROOF "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"
#define SOAP12 "http://www.w3.org/2003/05/soap-envelope"

struct expect {
	const char *file;
	uint32_t kind, trust, soap;
	const char *token_type, *key_type;
	uint32_t key_size;
	uint64_t created, expires;
	const char *applies_to;
	uint32_t proof_kind;
	size_t proof_len;
	const char *ck;
	size_t entropy_len;
	const char *sct_id, *sct_instance, *relates_to, *context;
	const char *token_start; /* token_xml begins with this */
	bool attached, unattached;
	bool signed_token;       /* carries a ds:Signature: check verification */
	bool verifies;           /* SOURCES.md: intact signature (checked against the original) */
	uint32_t error_code;
	const char *error_sub;
	const char *fault_code, *subcode, *reason, *detail_sub;
};

/* Lifetimes are WS_DATETIME ticks.  Two worked by hand:
 *  2014-01-27T08:15:45.003Z: 1970-01-01 is 621355968000000000 ticks; to
 *  2014-01-01 are 44*365+11 leap days = 16071 days, +26 = 16097 days;
 *  16097*86400 + 8*3600+15*60+45 = 1390810545 s -> *10^7 + 30000 (.003 s)
 *  = 635264073450030000.  Expires is one hour later: +36000000000.
 *  2024-02-14T02:06:53.311Z: 19767 days after 1970 (54*365+13 leap days +44),
 *  1707876413 s -> 638434732133110000; Expires 15 h later (+540000000000).
 * The others were computed with Python's datetime, independently of C. */
static const struct expect corpus[] = {
	{ .file = "rstr/adfs-13-rstrc-saml11-bearer-pretty.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 12,
	  .token_type = SAML11, .key_type = T13 "/Bearer", .created = 635200817052050000ull, .expires = 635200853052050000ull,
	  .applies_to = "https://login.microsoftonline.com/extSTS.srf", .token_start = "<saml:Assertion",
	  .attached = true, .unattached = true, .signed_token = true, .verifies = false },
	{ .file = "rstr/adfs-13-rstrc-saml11-bearer-singleline.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 12,
	  .token_type = SAML11, .key_type = T13 "/Bearer", .created = 635264073450030000ull, .expires = 635264109450030000ull,
	  .applies_to = "urn:federation:MicrosoftOnline", .token_start = "<saml:Assertion", .attached = true,
	  .unattached = true, .signed_token = true, .verifies = true },
	{ .file = "rstr/adfs-13-rstrc-saml2-encryptedassertion-displaytoken.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 12, .token_type = SAMLV2, .key_type = T13 "/Bearer", .created = 637235643532810000ull,
	  .expires = 637235679532810000ull, .applies_to = "https://192.168.1.109/cloud/org/my-org/saml/metadata/alias/vcd",
	  .token_start = "<EncryptedAssertion", .attached = true, .unattached = true },
	{ .file = "rstr/adfs-13-rstrc-with-2005-action-mismatch-bom.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 12,
	  .token_type = SAML11, .key_type = NOPROOF, .created = 636432780064470000ull, .expires = 636432816064470000ull,
	  .applies_to = "urn:federation:MicrosoftOnline", .relates_to = "urn:uuid:6e8ce948-eb66-4720-916b-0695697e6e45",
	  .token_start = "<saml:Assertion", .attached = true, .unattached = true, .signed_token = true },
	{ .file = "rstr/adfs-2005-rstr-saml11-signed-relatesto-bom.xml", .kind = IPC_RESULT_TOKEN, .trust = 1, .soap = 12,
	  .token_type = SAML11, .key_type = NOPROOF, .created = 636432780064470000ull, .expires = 636432816064470000ull,
	  .applies_to = "urn:federation:MicrosoftOnline", .relates_to = "urn:uuid:6e8ce948-eb66-4720-916b-0695697e6e45",
	  .token_start = "<saml:Assertion", .attached = true, .unattached = true, .signed_token = true },
	{ .file = "rstr/adfs2-wsfed-13-rstrc-saml2-default-ns-assertion.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 0, .token_type = SAML2URN, .key_type = T13 "/Bearer", .created = 634516895391400000ull,
	  .expires = 634516931391400000ull,
	  .applies_to = "http://ws-ubuntu-talend.z.ch.zurich.com:8080/wsfedhelloworld/secure/test.html",
	  .token_start = "<Assertion", .attached = true, .unattached = true, .signed_token = true, .verifies = true },
	{ .file = "rstr/adfs3-2005-rstr-saml11-bearer-bom-xmldecl.xml", .kind = IPC_RESULT_TOKEN, .trust = 1, .soap = 12,
	  .token_type = SAML11, .key_type = NOPROOF, .created = 635739183472690000ull, .expires = 635739219472690000ull,
	  .applies_to = "urn:federation:MicrosoftOnline", .token_start = "<saml:Assertion", .attached = true,
	  .unattached = true, .signed_token = true },
	{ .file = "rstr/azure-acs-wsfed-2005-rstr-saml2-double-bom.xml", .kind = IPC_RESULT_TOKEN, .trust = 1, .soap = 0,
	  .token_type = SAML2URN, .key_type = NOPROOF, .created = 634766008347660000ull, .expires = 634766014347660000ull,
	  .applies_to = "http://rp.coding4streetcred.com/sample", .token_start = "<Assertion", .attached = true,
	  .unattached = true, .signed_token = true },
	{ .file = "rstr/cxf-sts-13-rstrc-saml2-bearer-default-ns-compact.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 0, .token_type = SAMLV2, .created = 634540922456080000ull, .expires = 634540925456080000ull,
	  .applies_to = "http://localhost:8080/wsfedhelloworld/", .token_start = "<saml2:Assertion", .attached = true,
	  .unattached = true, .signed_token = true, .verifies = true },
	{ .file = "rstr/cxf-sts-13-rstrc-saml2-bearer-default-ns-formatted.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 0, .token_type = SAMLV2, .created = 634540922456080000ull, .expires = 634540925456080000ull,
	  .applies_to = "http://localhost:8080/wsfedhelloworld/", .token_start = "<saml2:Assertion", .attached = true,
	  .unattached = true, .signed_token = true },
	{ .file = "rstr/epr-ch-idp-13-rstr-renew-soap11-whitespace-values.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_STRUCTURE, .error_sub = "RequestedSecurityToken has no element child" },
	{ .file = "rstr/epr-ch-xassertion-sts-13-rstrc-saml2-soap12.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 12,
	  .token_type = SAMLV2, .created = 637362923632000000ull, .expires = 637362932632000000ull,
	  .applies_to = "https://sp.communilty.ch", .relates_to = "urn:uuid:005300f3-c686-4960-8ae8-f8c1720eda41",
	  .token_start = "<saml2:Assertion", .attached = true, .signed_token = true },
	{ .file = "rstr/picketlink-13-rstrc-cancel-tokencancelled.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_STRUCTURE, .error_sub = "no RequestedSecurityToken" },
	{ .file = "rstr/picketlink-13-rstrc-renew-sct-2005sc-entropy.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 0,
	  .created = 634681541501870000ull, .expires = 634734251501870000ull, .entropy_len = 16,
	  .sct_id = "uuid:C4E1EB7F485444565943962E1179973151216", .sct_instance = "uuid:C4E1EB7F4855243746962E1179974951824",
	  .context = "Renew", .token_start = "<wsc:SecurityContextToken", .attached = true },
	{ .file = "rstr/picketlink-13-rstrc-saml2-hok-publickey.xml", .kind = IPC_RESULT_TOKEN, .trust = 2, .soap = 0,
	  .token_type = SAMLV2, .key_type = T13 "/PublicKey", .key_size = 128, .created = 634250900596020000ull,
	  .expires = 634250972596020000ull, .applies_to = "http://services.testcorp.org/provider2",
	  .context = "testcontext", .token_start = "<saml2:Assertion", .attached = true, .signed_token = true },
	{ .file = "rstr/picketlink-13-rstrc-saml2-hok-symmetric-binarysecret-proof.xml", .kind = IPC_RESULT_TOKEN,
	  .trust = 2, .soap = 0, .token_type = SAMLV2, .key_type = T13 "/SymmetricKey", .key_size = 128,
	  .created = 634250900596020000ull, .expires = 634250972596020000ull,
	  .applies_to = "http://services.testcorp.org/provider2", .proof_kind = IPC_PROOF_BINARY_SECRET, .proof_len = 16,
	  .entropy_len = 16, .context = "testcontext", .token_start = "<saml2:Assertion", .attached = true,
	  .signed_token = true },
	{ .file = "rstr/picketlink-13-rstrc-validate-status-invalid.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_STRUCTURE, .error_sub = "no RequestedSecurityToken" },
	{ .file = "rstr/thirdparty-sts-13-rstrc-saml11-wst13-prefix-tabs.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 12, .token_type = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
	  .created = 636030258004400000ull, .expires = 636030297004400000ull, .applies_to = "urn:federation:MicrosoftOnline",
	  .token_start = "<saml:Assertion", .attached = true, .signed_token = true },
	{ .file = "rstr/tivoli-fim-2005-rstrc-soap11-default-ns-trimmed.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_STRUCTURE, .error_sub = "no RequestedSecurityToken" },
	{ .file = "rstr/wcf-corewcf-2005-rstr-sct-cancel.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_STRUCTURE,
	  .error_sub = "no RequestedSecurityToken" },
	{ .file = "rstr/wcf-corewcf-2005-rstr-sct-computedkey-psha1-entropy.xml", .kind = IPC_RESULT_TOKEN, .trust = 1,
	  .soap = 12, .token_type = "http://schemas.xmlsoap.org/ws/2005/02/sc/sct", .key_size = 256,
	  .created = 638434732133110000ull, .expires = 638435272133110000ull, .proof_kind = IPC_PROOF_COMPUTED_KEY,
	  .ck = T05 "/CK/PSHA1", .entropy_len = 32, .sct_id = "urn:uuid:40859149-0ab7-4ee2-a7cc-22bc21adfe08",
	  .relates_to = "urn:uuid:11048819-ca8b-4cc3-8054-ab18ff4abef3", .token_start = "<c:SecurityContextToken",
	  .attached = true, .unattached = true },
	{ .file = "rstr/wif-custom-sts-wsfed-13-rstrc-saml11-context-attr.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 0, .token_type = SAML11, .key_type = T13 "/Bearer", .created = 635732628261130000ull,
	  .expires = 635732664261130000ull, .applies_to = "http://dev.pms.baxon.net/",
	  .context = "rm=0&id=passive&ru=%2fpcmsnet%2fdefault.aspx", .token_start = "<saml:Assertion", .attached = true,
	  .unattached = true, .signed_token = true, .verifies = true },
	{ .file = "rstr/wso2-carbon-sts-2005-rstr-saml2-bearer-whitespace-values.xml", .kind = IPC_RESULT_TOKEN, .trust = 1,
	  .soap = 12, .token_type = SAMLV2, .created = 634743981060250000ull, .expires = 634743984060250000ull,
	  .relates_to = "urn:uuid:29619c31-b24d-44a8-90a2-629a404f596a", .token_start = "<saml:Assertion",
	  .attached = true, .unattached = true, .signed_token = true },
	/* faults */
	{ .file = "fault/adfs-soap12-fault-13-requestfailed-msis3127.xml", .kind = IPC_RESULT_FAULT, .soap = 12,
	  .fault_code = "{" SOAP12 "}Sender", .subcode = "{" T13 "}RequestFailed",
	  .reason = "MSIS3127: The specified request failed." },
	{ .file = "fault/adfs-soap12-fault-2005-failedauthentication-msis7068-bom.xml", .kind = IPC_RESULT_FAULT,
	  .soap = 12, .relates_to = "urn:uuid:a4444a44-aaaa-4444-4444-aaaaaaaaaa", .fault_code = "{" SOAP12 "}Sender",
	  .subcode = "{" T05 "}FailedAuthentication", .reason = "MSIS7068: Access denied.", .detail_sub = "<s:Detail" },
	{ .file = "fault/wsfed-soap12-fault-empty.xml", .kind = IPC_RESULT_FAULT, .soap = 12 },
	{ .file = "fault/wsfed-soap12-fault-fed-badrequest.xml", .kind = IPC_RESULT_FAULT, .soap = 12,
	  .fault_code = "{" SOAP12 "}Sender", .subcode = "{http://schemas.xmlsoap.org/ws/2006/12/federation}BadRequest",
	  .reason = "User cancelled", .detail_sub = ">USER_CANCEL</env:Detail>" },
	/* requests and metadata are not replies: a precise error each */
	{ .file = "rst/adal-13-rst-issue-usernametoken-bearer-template.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T13 "}RequestSecurityToken" },
	{ .file = "rst/adal-2005-rst-issue-usernametoken-noproofkey-bom-singlequotes-template.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T05 "}RequestSecurityToken" },
	{ .file = "rst/epr-ch-13-rst-issue-claims-dialect-tabs.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T13 "}RequestSecurityToken" },
	{ .file = "rst/epr-ch-13-rst-issue-saml2-bearer-in-header-soap12.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T13 "}RequestSecurityToken" },
	{ .file = "rst/epr-ch-13-rst-renew-soap11-ecdsa-signed-MALFORMED.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "not well-formed XML: line 61" },
	{ .file = "rst/govcd-13-rst-issue-saml2-requestdisplaytoken-keysize0.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T13 "}RequestSecurityToken" },
	{ .file = "rst/jbossws-cxf-13-rst-publickey-usekey-x509-wsp15.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "root element {" T13 "}RequestSecurityToken is not" },
	{ .file = "rst/o365-idcrl-2005-rst-issued-saml-in-header-policyref-mbi-template.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {" T05 "}RequestSecurityToken" },
	{ .file = "rst/picketlink-13-rst-computedkeyalgorithm-secondaryparameters-whitespace.xml",
	  .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED, .error_sub = "RequestSecurityToken is not" },
	{ .file = "rst/picketlink-13-rst-onbehalfof-usernametoken.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "RequestSecurityToken is not" },
	{ .file = "rst/picketlink-13-rst-symmetrickey-entropy-keysize.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "RequestSecurityToken is not" },
	{ .file = "rst/wcf-2005-rst-sct-cancel-hmac-signed.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "SOAP Body holds {" T05 "}RequestSecurityToken" },
	{ .file = "rst/wcf-2005-rst-sct-entropy-x509-signed.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "SOAP Body holds {" T05 "}RequestSecurityToken" },
	{ .file = "rst/wso2-rampart-2005-rst-issue-claims-raw-http-capture.txt", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "Start tag expected" },
	{ .file = "mex/adfs-arupela-mex-lf.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "root element {http://schemas.xmlsoap.org/wsdl/}definitions is not" },
	{ .file = "mex/adfs-corp-microsoft-mex-crlf.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "root element {http://schemas.xmlsoap.org/wsdl/}definitions is not" },
	{ .file = "mex/adfs-mex-negative-nosoapaction.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "root element {http://schemas.xmlsoap.org/wsdl/}definitions is not" },
	{ .file = "mex/adfs-mex-wrapped-in-soap-envelope-3rdparty.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "root element {https://www.w3.org/2003/05/soap-envelope}Envelope is not" },
	{ .file = "mex/adfs-msft-mex-certauth-integrated.xml", .kind = IPC_RESULT_ERROR, .error_code = IPC_PERR_MALFORMED,
	  .error_sub = "root element {http://schemas.xmlsoap.org/wsdl/}definitions is not" },
	{ .file = "mex/adfs2-mex-ws-transfer-getresponse-soap12-huge.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "SOAP Body holds {http://schemas.xmlsoap.org/ws/2004/09/mex}Metadata" },
	{ .file = "mex/adfs3-usystech-mex-bom-no-13-usernamemixed.xml", .kind = IPC_RESULT_ERROR,
	  .error_code = IPC_PERR_MALFORMED, .error_sub = "root element {http://schemas.xmlsoap.org/wsdl/}definitions is not" },
	/* UTF-16LE with BOM: the singleline file converted with iconv */
	{ .file = "data/utf16le-bom-adfs-13-rstrc-saml11-bearer-singleline.xml", .kind = IPC_RESULT_TOKEN, .trust = 2,
	  .soap = 12, .token_type = SAML11, .key_type = T13 "/Bearer", .created = 635264073450030000ull,
	  .expires = 635264109450030000ull, .applies_to = "urn:federation:MicrosoftOnline",
	  .token_start = "<saml:Assertion", .attached = true, .unattached = true, .signed_token = true,
	  .verifies = true },
};

static unsigned verified_count;

static void check_corpus_file(const struct expect *e, bool xmlsec)
{
	current = e->file;
	size_t len;
	uint8_t *buf;
	char rel[512];
	snprintf(rel, sizeof(rel), "%s%s", strncmp(e->file, "data/", 5) ? "corpus/" : "", e->file);
	buf = read_file(rel, &len);
	struct wt_parse_req req = base_req(buf, len);
	struct wt_result r;
	parse_with(&req, &r);
	CHECK(r.kind == e->kind, "kind %u, want %u (error: %s)", r.kind, e->kind, nz(r.error));
	if (e->kind == IPC_RESULT_ERROR) {
		CHECK(r.error_code == e->error_code, "error_code %u, want %u (%s)", r.error_code, e->error_code, nz(r.error));
		CHECK(r.error && strstr(r.error, e->error_sub), "error \"%s\" lacks \"%s\"", nz(r.error), e->error_sub);
		goto out;
	}
	CHECK(r.soap_version == e->soap, "soap_version %u, want %u", r.soap_version, e->soap);
	CHECK_STR(r.relates_to, e->relates_to);
	if (e->kind == IPC_RESULT_FAULT) {
		CHECK_STR(r.fault_code, e->fault_code);
		CHECK(r.n_subcodes == (e->subcode ? 1u : 0u), "n_subcodes %u", r.n_subcodes);
		if (e->subcode)
			CHECK_STR(r.fault_subcodes[0], e->subcode);
		CHECK_STR(r.fault_reason, e->reason);
		if (e->detail_sub) {
			CHECK(r.fault_detail.data && strstr((char *)r.fault_detail.data, e->detail_sub), "detail \"%s\" lacks \"%s\"",
			      r.fault_detail.data ? (char *)r.fault_detail.data : "(none)", e->detail_sub);
			size_t olen = len;
			const uint8_t *o = skip_boms(buf, &olen);
			check_byte_exact(o, olen, &r.fault_detail, "fault detail");
		} else {
			CHECK(r.fault_detail.data == NULL, "unexpected detail");
		}
		goto out;
	}
	CHECK(r.trust_version == e->trust, "trust_version %u, want %u", r.trust_version, e->trust);
	CHECK_STR(r.token_type, e->token_type);
	CHECK_STR(r.key_type, e->key_type);
	CHECK(r.key_size == e->key_size, "key_size %u, want %u", r.key_size, e->key_size);
	CHECK(r.created == e->created, "created %" PRIu64 ", want %" PRIu64, r.created, e->created);
	CHECK(r.expires == e->expires, "expires %" PRIu64 ", want %" PRIu64, r.expires, e->expires);
	CHECK_STR(r.applies_to, e->applies_to);
	CHECK(r.proof_kind == e->proof_kind, "proof_kind %u, want %u", r.proof_kind, e->proof_kind);
	if (e->proof_kind != IPC_PROOF_COMPUTED_KEY)
		CHECK(r.proof_data.len == e->proof_len, "proof length %zu, want %zu", r.proof_data.len, e->proof_len);
	CHECK_STR(r.ck_algorithm, e->ck);
	CHECK(r.entropy.len == e->entropy_len, "entropy length %zu, want %zu", r.entropy.len, e->entropy_len);
	CHECK_STR(r.sct_id, e->sct_id);
	CHECK_STR(r.sct_instance, e->sct_instance);
	CHECK_STR(r.context, e->context);
	CHECK(r.token_xml.data && !strncmp((char *)r.token_xml.data, e->token_start, strlen(e->token_start)),
	      "token_xml starts \"%.40s\", want \"%s\"", r.token_xml.data ? (char *)r.token_xml.data : "", e->token_start);
	CHECK((r.attached.data != NULL) == e->attached, "attached reference %s", r.attached.data ? "present" : "absent");
	CHECK((r.unattached.data != NULL) == e->unattached, "unattached reference %s",
	      r.unattached.data ? "present" : "absent");
	if (strncmp(e->file, "data/utf16", 10)) {
		/* Exact bytes apply to UTF-8 input (parse.h). */
		size_t olen = len;
		const uint8_t *o = skip_boms(buf, &olen);
		check_byte_exact(o, olen, &r.token_xml, "token_xml");
		if (r.attached.data)
			check_byte_exact(o, olen, &r.attached, "attached reference");
		if (r.unattached.data)
			check_byte_exact(o, olen, &r.unattached, "unattached reference");
	} else {
		check_standalone(&r.token_xml, "token_xml");
	}
	if (e->signed_token && xmlsec) {
		int tok = xmlsec_verify(r.token_xml.data, r.token_xml.len);
		CHECK(tok == (int)e->verifies, "extracted token %s, SOURCES.md says the signature %s",
		      tok ? "verifies" : "does not verify", e->verifies ? "is intact" : "was broken by editing");
		if (strncmp(e->file, "data/", 5)) {
			/* The same verdict as on the whole original document. */
			size_t olen = len;
			const uint8_t *o = skip_boms(buf, &olen);
			int whole = xmlsec_verify(o, olen);
			CHECK(tok == whole, "extracted token verify=%d but the original document verify=%d", tok, whole);
		}
		if (tok == 1) {
			verified_count++;
			printf("signature verifies after extraction: %s\n", e->file);
			/* Control: one changed byte in the token must break it. */
			uint8_t *copy = xmalloc(r.token_xml.len);
			memcpy(copy, r.token_xml.data, r.token_xml.len);
			char *id = strstr((char *)copy, "IssueInstant=\"");
			CHECK(id != NULL, "no IssueInstant to tamper with");
			if (id)
				id[14] = id[14] == '1' ? '2' : '1';
			CHECK(xmlsec_verify(copy, r.token_xml.len) == 0, "tampered token still verifies");
			free(copy);
		}
	}
out:
	wt_result_free(&r);
	free(buf);
}

static void test_corpus(void)
{
	bool xmlsec = have_xmlsec1();
	current = "xmlsec1";
	CHECK(xmlsec, "the xmlsec1 tool is needed for the signature checks (apt-get install xmlsec1)");
	for (size_t i = 0; i < sizeof(corpus) / sizeof(*corpus); i++)
		check_corpus_file(&corpus[i], xmlsec);
	current = "corpus";
	CHECK(!xmlsec || verified_count == 5, "%u tokens verified after extraction, want 5", verified_count);

	/* Decoded values, not just lengths. */
	size_t len;
	uint8_t *buf = read_file("corpus/rstr/picketlink-13-rstrc-renew-sct-2005sc-entropy.xml", &len);
	struct wt_parse_req req = base_req(buf, len);
	struct wt_result r;
	parse_with(&req, &r);
	current = "entropy value";
	CHECK(r.entropy.len == 16 && !memcmp(r.entropy.data, "\xcc\x62\x16\xa6\xf6\x94\x67\x9e\x7e\x5b\x5e\x11\x4d\x81\x16\x1c", 16),
	      "entropy bytes differ from base64 zGIWpvaUZ55+W14RTYEWHA==");
	wt_result_free(&r);
	free(buf);
}

/* ---- constructed replies ---- */

#define ENV12 "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://www.w3.org/2005/08/addressing\">"
#define ENV11 "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
#define RSTRC_OPEN "<t:RequestSecurityTokenResponseCollection xmlns:t=\"" T13 "\">"
#define RSTRC_CLOSE "</t:RequestSecurityTokenResponseCollection>"
#define TOKEN "<t:RequestedSecurityToken><x:Tok xmlns:x=\"urn:x\" ID=\"1\">tok</x:Tok></t:RequestedSecurityToken>"
#define WSU "xmlns:u=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\""

/* A SOAP 1.2 / WS-Trust 1.3 reply with the given header and RSTR content. */
static char *reply13(const char *header, const char *rstr)
{
	size_t n = strlen(header) + strlen(rstr) + 1024;
	char *s = xmalloc(n);
	snprintf(s, n,
		 ENV12 "<s:Header>%s</s:Header><s:Body>" RSTRC_OPEN
		       "<t:RequestSecurityTokenResponse>%s</t:RequestSecurityTokenResponse>" RSTRC_CLOSE
		       "</s:Body></s:Envelope>",
		 header, rstr);
	return s;
}

static void expect_error13(const char *header, const char *rstr, uint32_t code, const char *sub)
{
	char *d = reply13(header, rstr);
	expect_error(d, code, sub);
	free(d);
}

static struct wt_result parse_ok(const char *doc, size_t len, const struct wt_parse_req *tmpl)
{
	struct wt_parse_req req = tmpl ? *tmpl : base_req(doc, len);
	req.reply = (const uint8_t *)doc;
	req.reply_len = len;
	struct wt_result r;
	parse_with(&req, &r);
	CHECK(r.kind != IPC_RESULT_ERROR, "unexpected error %u: %s", r.error_code, nz(r.error));
	return r;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *repeat(const char *unit, size_t times, const char *prefix, const char *suffix)
{
	size_t u = strlen(unit), p = strlen(prefix), s = strlen(suffix);
	char *buf = xmalloc(p + u * times + s + 1), *q = buf;
	memcpy(q, prefix, p);
	q += p;
	for (size_t i = 0; i < times; i++, q += u)
		memcpy(q, unit, u);
	memcpy(q, suffix, s + 1);
	return buf;
}

static void test_hostile(void)
{
	current = "billion laughs";
	expect_error("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		     "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		     "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
		     "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
		     "<!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>"
		     "<lolz>&lol9;</lolz>",
		     IPC_PERR_FORBIDDEN, "DOCTYPE not allowed");

	current = "quadratic blowup";
	{
		/* a 100 KB entity referenced 200000 times: 20 GB if expanded */
		char *ent = repeat("a", 100000, "<!DOCTYPE x [<!ENTITY a \"", "\">]><x>");
		char *d = repeat("&a;", 200000, ent, "</x>");
		double t0 = now_s();
		expect_error(d, IPC_PERR_FORBIDDEN, "DOCTYPE not allowed");
		double dt = now_s() - t0;
		CHECK(dt < 0.5, "took %.3f s", dt);
		free(ent);
		free(d);
	}

	current = "external entity";
	expect_error("<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>", IPC_PERR_FORBIDDEN,
		     "DOCTYPE not allowed");
	current = "external DTD";
	expect_error("<?xml version=\"1.0\"?>\n<!DOCTYPE x SYSTEM \"http://127.0.0.1:1/evil.dtd\"><x/>", IPC_PERR_FORBIDDEN,
		     "DOCTYPE not allowed");
	current = "parameter entities";
	expect_error("<!DOCTYPE x [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p; <!ENTITY % q \"<!ENTITY r 'r'>\"> %q;]><x>&r;</x>",
		     IPC_PERR_FORBIDDEN, "DOCTYPE not allowed");
	current = "entity reference without DOCTYPE";
	expect_error13("", TOKEN "<t:TokenType>&foo;</t:TokenType>", IPC_PERR_FORBIDDEN, "entity reference &foo; not allowed");
	current = "predefined entities and character references are fine";
	{
		char *d = reply13("", TOKEN "<t:TokenType>urn:a&amp;b&#x41;&lt;</t:TokenType>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.token_type, "urn:a&bA<");
		wt_result_free(&r);
		free(d);
	}

	current = "XInclude is not processed";
	{
		char *d = reply13("", "<t:RequestedSecurityToken><x:Tok xmlns:x=\"urn:x\" xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
				      "<xi:include href=\"file:///etc/passwd\" parse=\"text\"/>"
				      "<xi:include href=\"file:///etc/hostname\" parse=\"text\"/></x:Tok></t:RequestedSecurityToken>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK(r.token_xml.data && strstr((char *)r.token_xml.data, "<xi:include href=\"file:///etc/passwd\""),
		      "the xi:include element should be kept as it is");
		CHECK(r.token_xml.data && !strstr((char *)r.token_xml.data, "root:"), "/etc/passwd content leaked");
		wt_result_free(&r);
		free(d);
	}

	current = "10000-deep nesting";
	{
		char *open = repeat("<a>", 10000, "", "");
		char *d = repeat("</a>", 10000, open, "");
		double t0 = now_s();
		expect_error(d, IPC_PERR_LIMIT, "max_depth=64");
		CHECK(now_s() - t0 < 0.5, "slow");
		free(open);
		free(d);
	}
	current = "1000 attributes";
	{
		char *attrs = xmalloc(1000 * 16 + 64), *p = attrs;
		p += sprintf(p, "<x");
		for (int i = 0; i < 1000; i++)
			p += sprintf(p, " a%d=\"%d\"", i, i);
		sprintf(p, "/>");
		expect_error(attrs, IPC_PERR_LIMIT, "<x> has more than max_attrs=64");
		free(attrs);
	}
	current = "many attributes in one tag (libxml2's quadratic duplicate check)";
	{
		size_t n = 400000;
		char *big = xmalloc(n * 12 + 64), *p = big;
		p += sprintf(p, "<x");
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, " a%zu=''", i);
		sprintf(p, "/>");
		double t0 = now_s();
		expect_error(big, IPC_PERR_LIMIT, "max_attrs=64");
		CHECK(now_s() - t0 < 0.5, "took %.3f s", now_s() - t0);
		free(big);
	}
	current = "many attributes after a well-formedness error (libxml2 resynchronises)";
	{
		/* libxml2 2.9 keeps parsing after a fatal error, with our hooks
		 * off, and each of these makes it read a start tag the attribute
		 * prescan skipped: quadratic without the stop at the first error. */
		static const char *const lead[] = {
			"<r><a x \"><b",                           /* quote without '=' */
			"<r><a x='<b",                             /* '<' inside a value */
			"<?xml version=\"1.0\" x?><!DOCTYPE r><b", /* DOCTYPE after a bad declaration */
		};
		size_t n = 150000;
		for (size_t k = 0; k < sizeof(lead) / sizeof(*lead); k++) {
			char *big = xmalloc(n * 12 + 64), *p = big;
			p += sprintf(p, "%s", lead[k]);
			for (size_t i = 0; i < n; i++)
				p += sprintf(p, " a%zu=''", i);
			sprintf(p, "/>'\"/></r>");
			double t0 = now_s();
			expect_error(big, IPC_PERR_MALFORMED, "not well-formed XML");
			CHECK(now_s() - t0 < 0.5, "case %zu took %.3f s", k, now_s() - t0);
			free(big);
		}
	}
	current = "namespace declarations in scope";
	{
		/* 5 x 60 = 300 in scope: every prefixed name would be looked up
		 * through all of them. */
		char *d = xmalloc(5 * 60 * 40 + 64), *p = d;
		for (int e = 0; e < 5; e++) {
			p += sprintf(p, "<e%d", e);
			for (int i = 0; i < 60; i++)
				p += sprintf(p, " xmlns:p%d_%d=\"urn:%d\"", e, i, i);
			p += sprintf(p, ">");
		}
		sprintf(p, "<p0_0:x/>");
		expect_error(d, IPC_PERR_LIMIT, "more than 256 namespace declarations in scope at <e4>");
		/* 4 x 60 = 240 is within the limit: parsed, then refused as no Envelope */
		p = strstr(d, "<e4");
		sprintf(p, "<p0_0:x/></e3></e2></e1></e0>");
		expect_error(d, IPC_PERR_MALFORMED, "root element {}e0 is not a SOAP Envelope");
		free(d);
	}
	current = "65 namespace declarations";
	{
		char *d = xmalloc(65 * 32 + 16), *p = d;
		p += sprintf(p, "<x");
		for (int i = 0; i < 65; i++)
			p += sprintf(p, " xmlns:p%d=\"urn:%d\"", i, i);
		sprintf(p, "/>");
		expect_error(d, IPC_PERR_LIMIT, "max_attrs=64");
		free(d);
	}
	current = "10 MB text node, max_text lowered to 1 MiB";
	{
		char *d = repeat("aaaaaaaaaaaaaaaa", 10u * 1024 * 1024 / 16, "<x>", "</x>");
		struct wt_parse_req req = base_req(d, strlen(d));
		req.limits.max_text = 1u << 20;
		double t0 = now_s();
		expect_error_req(&req, IPC_PERR_LIMIT, "max_text=1048576");
		CHECK(now_s() - t0 < 1.0, "took %.3f s", now_s() - t0);
		/* the same length split by CDATA sections still counts as one run */
		memcpy(d + 3 + 600000, "<![CDATA[x]]>", 13);
		req = base_req(d, strlen(d));
		req.limits.max_text = 1u << 20;
		expect_error_req(&req, IPC_PERR_LIMIT, "max_text=1048576");
		free(d);
	}
	current = "long attribute value over max_text";
	{
		char *d = repeat("v", 5000, "<x a=\"", "\"/>");
		struct wt_parse_req req = base_req(d, strlen(d));
		req.limits.max_text = 1000;
		expect_error_req(&req, IPC_PERR_LIMIT, "attribute a is 5000 bytes, over max_text=1000");
		free(d);
	}
	current = "max_nodes";
	{
		char *d = repeat("<a/>", 200, "<x>", "</x>");
		struct wt_parse_req req = base_req(d, strlen(d));
		req.limits.max_nodes = 100;
		expect_error_req(&req, IPC_PERR_LIMIT, "max_nodes=100");
		free(d);
		d = repeat("<!--c-->", 200, "<x>", "</x>");
		req = base_req(d, strlen(d));
		req.limits.max_nodes = 100;
		expect_error_req(&req, IPC_PERR_LIMIT, "max_nodes=100");
		free(d);
	}
	current = "reply over IPC_MAX_REPLY";
	{
		size_t n = (size_t)IPC_MAX_REPLY + 1;
		uint8_t *d = calloc(1, n);
		struct wt_parse_req req = base_req(d, n);
		expect_error_req(&req, IPC_PERR_LIMIT, "over the 16777216-byte maximum");
		free(d);
	}

	current = "duplicate TokenType";
	expect_error13("", TOKEN "<t:TokenType>urn:a</t:TokenType><t:TokenType>urn:b</t:TokenType>", IPC_PERR_STRUCTURE,
		       "duplicate TokenType in RequestSecurityTokenResponse");
	current = "duplicate RequestedSecurityToken";
	expect_error13("", TOKEN TOKEN, IPC_PERR_STRUCTURE, "duplicate RequestedSecurityToken");
	current = "duplicate Lifetime / KeyType / KeySize / proof / references";
	expect_error13("", TOKEN "<t:Lifetime/><t:Lifetime/>", IPC_PERR_STRUCTURE, "duplicate Lifetime");
	expect_error13("", TOKEN "<t:KeyType>urn:a</t:KeyType><t:KeyType>urn:a</t:KeyType>", IPC_PERR_STRUCTURE,
		       "duplicate KeyType");
	expect_error13("", TOKEN "<t:KeySize>1</t:KeySize><t:KeySize>1</t:KeySize>", IPC_PERR_STRUCTURE, "duplicate KeySize");
	expect_error13("", TOKEN "<t:RequestedProofToken/><t:RequestedProofToken/>", IPC_PERR_STRUCTURE,
		       "duplicate RequestedProofToken");
	expect_error13("", TOKEN "<t:RequestedAttachedReference><r/></t:RequestedAttachedReference>"
				 "<t:RequestedAttachedReference><r/></t:RequestedAttachedReference>",
		       IPC_PERR_STRUCTURE, "duplicate RequestedAttachedReference");
	expect_error13("", TOKEN "<t:Lifetime><u:Created " WSU ">2020-01-01T00:00:00Z</u:Created><u:Created " WSU
				 ">2020-01-01T00:00:00Z</u:Created></t:Lifetime>",
		       IPC_PERR_STRUCTURE, "duplicate Created in Lifetime");
	current = "TokenType of the other WS-Trust version";
	expect_error13("", TOKEN "<o:TokenType xmlns:o=\"" T05 "\">urn:a</o:TokenType>", IPC_PERR_STRUCTURE,
		       "TokenType in the WS-Trust Feb 2005 namespace inside a WS-Trust 1.3");
	current = "RSTR in the Header";
	expect_error13("<t:RequestSecurityTokenResponse xmlns:t=\"" T13 "\">" TOKEN "</t:RequestSecurityTokenResponse>", TOKEN,
		       IPC_PERR_STRUCTURE, "RequestSecurityTokenResponse outside the Body");
	expect_error13("<w:Security xmlns:w=\"urn:w\"><t:RequestedSecurityToken xmlns:t=\"" T13
		       "\"><evil/></t:RequestedSecurityToken></w:Security>",
		       TOKEN, IPC_PERR_STRUCTURE, "RequestedSecurityToken outside the Body");
	current = "two tokens in RequestedSecurityToken";
	expect_error13("", "<t:RequestedSecurityToken><x:Tok xmlns:x=\"urn:x\">evil</x:Tok><!-- c -->\n"
			   "<x:Tok xmlns:x=\"urn:x\">signed</x:Tok></t:RequestedSecurityToken>",
		       IPC_PERR_STRUCTURE, "RequestedSecurityToken has 2 child elements, expected exactly one");
	current = "text beside the token";
	expect_error13("", "<t:RequestedSecurityToken>junk<x:Tok xmlns:x=\"urn:x\"/></t:RequestedSecurityToken>",
		       IPC_PERR_STRUCTURE, "RequestedSecurityToken contains text besides its element");
	current = "two Bodies";
	expect_error(ENV12 "<s:Body>" RSTRC_OPEN "<t:RequestSecurityTokenResponse>" TOKEN
			   "</t:RequestSecurityTokenResponse>" RSTRC_CLOSE "</s:Body><s:Body/></s:Envelope>",
		     IPC_PERR_STRUCTURE, "duplicate Body in Envelope");
	current = "Header after Body";
	expect_error(ENV12 "<s:Body/><s:Header/></s:Envelope>", IPC_PERR_STRUCTURE, "Header after Body");
	current = "two payloads in the Body";
	expect_error(ENV12 "<s:Body>" RSTRC_OPEN "<t:RequestSecurityTokenResponse>" TOKEN
			   "</t:RequestSecurityTokenResponse>" RSTRC_CLOSE RSTRC_OPEN RSTRC_CLOSE "</s:Body></s:Envelope>",
		     IPC_PERR_STRUCTURE, "SOAP Body has 2 child elements");
	current = "empty Body";
	expect_error(ENV12 "<s:Body>  </s:Body></s:Envelope>", IPC_PERR_STRUCTURE, "SOAP Body is empty");
	current = "unknown element in Envelope";
	expect_error(ENV12 "<s:Body/><x/></s:Envelope>", IPC_PERR_STRUCTURE, "unexpected {}x in Envelope");
	current = "RSTRC with something else";
	expect_error(RSTRC_OPEN "<t:Other/>" RSTRC_CLOSE, IPC_PERR_STRUCTURE,
		     "unexpected {" T13 "}Other in RequestSecurityTokenResponseCollection");
	expect_error(RSTRC_OPEN RSTRC_CLOSE, IPC_PERR_STRUCTURE, "has no RequestSecurityTokenResponse");

	current = "truncated document";
	{
		size_t len;
		uint8_t *buf = read_file("corpus/rstr/adfs-13-rstrc-saml11-bearer-singleline.xml", &len);
		for (size_t cut = 1; cut < len; cut += len / 7) {
			struct wt_parse_req req = base_req(buf, cut);
			expect_error_req(&req, IPC_PERR_MALFORMED, "not well-formed XML");
		}
		free(buf);
	}
	current = "truncated start tags";
	{
		static const char *const cuts[] = { "<t:RequestSecurityTokenResponse", "<RequestSecurityTokenResponse",
						    "<a b='1'", "<a/", "<a", "<", "<a><b", "<!--", "<?pi" };
		for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts); i++)
			expect_error(cuts[i], IPC_PERR_MALFORMED, "not well-formed XML");
	}
	current = "invalid UTF-8";
	expect_error13("", TOKEN "<t:TokenType>urn:\xC3\x28</t:TokenType>", IPC_PERR_MALFORMED, "not well-formed XML");
	expect_error13("", TOKEN "<t:TokenType>urn:\xFF\xFE</t:TokenType>", IPC_PERR_MALFORMED, "not well-formed XML");
	current = "NUL bytes";
	{
		char *d = reply13("", TOKEN "<t:TokenType>urn:aXb</t:TokenType>");
		size_t n = strlen(d);
		*strstr(d, "urn:aXb") = 0;
		struct wt_parse_req req = base_req(d, n);
		expect_error_req(&req, IPC_PERR_MALFORMED, "not well-formed XML");
		free(d);
	}
	current = "second root element";
	{
		char *d = reply13("", TOKEN);
		size_t n = strlen(d);
		char *two = xmalloc(2 * n + 1);
		memcpy(two, d, n);
		memcpy(two + n, d, n + 1);
		expect_error(two, IPC_PERR_MALFORMED, "Extra content at the end of the document");
		free(two);
		free(d);
	}
	current = "undeclared prefix";
	expect_error("<t:RequestSecurityTokenResponse/>", IPC_PERR_MALFORMED, "not well-formed XML");
	current = "triple BOM";
	expect_error("\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBF<x/>", IPC_PERR_MALFORMED, "more than two byte-order marks");

	current = "RelatesTo";
	{
		char *d = reply13("<a:RelatesTo>urn:uuid:1</a:RelatesTo>", TOKEN);
		struct wt_parse_req req = base_req(d, strlen(d));
		req.relates_to = "urn:uuid:2";
		expect_error_req(&req, IPC_PERR_MISMATCH, "RelatesTo \"urn:uuid:1\" does not match the request's MessageID \"urn:uuid:2\"");
		req.relates_to = "urn:uuid:1";
		struct wt_result r = parse_ok(d, strlen(d), &req);
		CHECK_STR(r.relates_to, "urn:uuid:1");
		wt_result_free(&r);
		free(d);
		/* absent is accepted */
		d = reply13("", TOKEN);
		req = base_req(d, strlen(d));
		req.relates_to = "urn:uuid:2";
		r = parse_ok(d, strlen(d), &req);
		CHECK_STR(r.relates_to, NULL);
		wt_result_free(&r);
		free(d);
		/* 2004/08 addressing, whitespace around the value */
		d = reply13("<w:RelatesTo xmlns:w=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"> urn:uuid:3\n</w:RelatesTo>",
			    TOKEN);
		r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.relates_to, "urn:uuid:3");
		wt_result_free(&r);
		free(d);
		/* two reply RelatesTo */
		expect_error13("<a:RelatesTo>urn:1</a:RelatesTo><a:RelatesTo>urn:2</a:RelatesTo>", TOKEN, IPC_PERR_STRUCTURE,
			       "duplicate RelatesTo in Header");
	}
	current = "trust version mismatch";
	{
		char *d = reply13("", TOKEN);
		struct wt_parse_req req = base_req(d, strlen(d));
		req.trust_version = 1;
		expect_error_req(&req, IPC_PERR_MISMATCH, "reply is WS-Trust 1.3, the request was WS-Trust Feb 2005");
		req.trust_version = 2;
		struct wt_result r = parse_ok(d, strlen(d), &req);
		wt_result_free(&r);
		current = "SOAP version mismatch";
		req.soap_version = 11;
		expect_error_req(&req, IPC_PERR_MISMATCH, "reply is SOAP 1.2, the request was SOAP 1.1");
		free(d);
	}
	current = "bad dates";
	expect_error13("", TOKEN "<t:Lifetime><u:Created " WSU ">2024-13-01T00:00:00Z</u:Created></t:Lifetime>",
		       IPC_PERR_VALUE, "Created \"2024-13-01T00:00:00Z\" is not a valid xsd:dateTime");
	expect_error13("", TOKEN "<t:Lifetime><u:Expires " WSU ">abc</u:Expires></t:Lifetime>", IPC_PERR_VALUE,
		       "Expires \"abc\" is not a valid xsd:dateTime");
	expect_error13("", TOKEN "<t:Lifetime><u:Created " WSU ">2024-01-02T00:00:00Z</u:Created><u:Expires " WSU
				 ">2024-01-01T00:00:00Z</u:Expires></t:Lifetime>",
		       IPC_PERR_VALUE, "Created is after Expires");
	current = "bad base64";
	expect_error13("", TOKEN "<t:RequestedProofToken><t:BinarySecret>not*base64</t:BinarySecret></t:RequestedProofToken>",
		       IPC_PERR_VALUE, "BinarySecret is not valid base64");
	expect_error13("", TOKEN "<t:Entropy><t:BinarySecret>AAA=AAAA</t:BinarySecret></t:Entropy>", IPC_PERR_VALUE,
		       "BinarySecret is not valid base64");
	expect_error13("", TOKEN "<t:Entropy><t:BinarySecret> </t:BinarySecret></t:Entropy>", IPC_PERR_VALUE,
		       "BinarySecret is empty");
	current = "bad KeySize";
	expect_error13("", TOKEN "<t:KeySize>12x</t:KeySize>", IPC_PERR_VALUE, "KeySize \"12x\" is not an unsigned 32-bit number");
	expect_error13("", TOKEN "<t:KeySize>4294967296</t:KeySize>", IPC_PERR_VALUE, "KeySize");
	current = "element inside TokenType";
	expect_error13("", TOKEN "<t:TokenType><b/>urn:a</t:TokenType>", IPC_PERR_STRUCTURE,
		       "TokenType contains element <b>, expected text");
	current = "unsupported proof token";
	expect_error13("", TOKEN "<t:RequestedProofToken><x:Key xmlns:x=\"urn:x\"/></t:RequestedProofToken>", IPC_PERR_STRUCTURE,
		       "unsupported RequestedProofToken content {urn:x}Key");
	current = "over-long short string";
	{
		char *tt = repeat("a", 9000, "<t:RequestedSecurityToken><x/></t:RequestedSecurityToken><t:TokenType>urn:", "</t:TokenType>");
		expect_error13("", tt, IPC_PERR_LIMIT, "TokenType is 9004 bytes, over 8192");
		free(tt);
	}
	current = "HTTP error with a non-XML body";
	{
		const char *html = "<html><body>Service Unavailable</body></html>";
		struct wt_parse_req req = base_req(html, strlen(html));
		req.http_status = 503;
		expect_error_req(&req, IPC_PERR_MALFORMED, "(HTTP status 503)");
		const char *text = "Internal Server Error";
		req = base_req(text, strlen(text));
		req.http_status = 500;
		expect_error_req(&req, IPC_PERR_MALFORMED, "reply is not XML (HTTP status 500)");
		req = base_req("", 0);
		req.http_status = 500;
		expect_error_req(&req, IPC_PERR_MALFORMED, "empty reply (HTTP status 500)");
		req = base_req(NULL, 0);
		req.http_status = 200;
		expect_error_req(&req, IPC_PERR_MALFORMED, "empty reply");
		const char *empty_body = ENV12 "<s:Body/></s:Envelope>";
		req = base_req(empty_body, strlen(empty_body));
		req.http_status = 502;
		expect_error_req(&req, IPC_PERR_MALFORMED, "SOAP Body is empty (HTTP status 502)");
	}
}

static void test_selection(void)
{
	const char *two =
		RSTRC_OPEN "<t:RequestSecurityTokenResponse Context=\"c1\"><t:TokenType>urn:one</t:TokenType>" TOKEN
		"</t:RequestSecurityTokenResponse><t:RequestSecurityTokenResponse Context=\"c2\"><t:TokenType>urn:two</t:TokenType>" TOKEN
		"</t:RequestSecurityTokenResponse>" RSTRC_CLOSE;
	current = "RSTRC: pick by Context";
	struct wt_parse_req req = base_req(two, strlen(two));
	req.context = "c2";
	struct wt_result r = parse_ok(two, strlen(two), &req);
	CHECK_STR(r.token_type, "urn:two");
	CHECK_STR(r.context, "c2");
	CHECK(r.soap_version == 0 && r.trust_version == 2, "versions %u/%u", r.soap_version, r.trust_version);
	wt_result_free(&r);
	current = "RSTRC: ambiguous without Context";
	expect_error(two, IPC_PERR_STRUCTURE, "ambiguous: 2 RequestSecurityTokenResponse elements");
	current = "RSTRC: unknown Context";
	req.context = "c3";
	expect_error_req(&req, IPC_PERR_MISMATCH, "no RequestSecurityTokenResponse has the request's Context \"c3\"");

	current = "RSTRC: the one carrying a token";
	const char *one = RSTRC_OPEN "<t:RequestSecurityTokenResponse><t:TokenType>urn:status</t:TokenType>"
				     "</t:RequestSecurityTokenResponse><t:RequestSecurityTokenResponse>"
				     "<t:TokenType>urn:tok</t:TokenType>" TOKEN "</t:RequestSecurityTokenResponse>" RSTRC_CLOSE;
	r = parse_ok(one, strlen(one), NULL);
	CHECK_STR(r.token_type, "urn:tok");
	wt_result_free(&r);
	current = "RSTRC: none carries a token";
	expect_error(RSTRC_OPEN "<t:RequestSecurityTokenResponse/><t:RequestSecurityTokenResponse/>" RSTRC_CLOSE,
		     IPC_PERR_STRUCTURE, "no RequestedSecurityToken in any of 2");
	current = "Context on a single RSTR differs";
	const char *single = "<t:RequestSecurityTokenResponse xmlns:t=\"" T13 "\" Context=\"x\">" TOKEN
			     "</t:RequestSecurityTokenResponse>";
	req = base_req(single, strlen(single));
	req.context = "y";
	expect_error_req(&req, IPC_PERR_MISMATCH, "Context");
	current = "bare RSTR when the request was SOAP";
	req = base_req(single, strlen(single));
	req.soap_version = 12;
	expect_error_req(&req, IPC_PERR_MISMATCH,
			 "reply is a bare RequestSecurityTokenResponse without a SOAP envelope, the request was SOAP 1.2");
	req.soap_version = 11;
	expect_error_req(&req, IPC_PERR_MISMATCH, "the request was SOAP 1.1");
}

static void test_variety(void)
{
	current = "CDATA, comments and PIs in the RSTR";
	{
		char *d = reply13("", "<!-- a comment --><?pi data?>" TOKEN
				      "<t:TokenType><![CDATA[urn:cdata]]><!-- x --> <![CDATA[]]></t:TokenType>"
				      "<t:KeyType><?pi?>\n  " T13 "/Bearer <!--c-->\n</t:KeyType>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.token_type, "urn:cdata");
		CHECK_STR(r.key_type, T13 "/Bearer");
		wt_result_free(&r);
		free(d);
	}
	current = "default namespaces everywhere, SOAP 1.1, 2005";
	{
		const char *d = "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>"
				"<RequestSecurityTokenResponse xmlns=\"" T05 "\"><TokenType>urn:t</TokenType>"
				"<RequestedSecurityToken><Tok xmlns=\"urn:x\"><In/></Tok></RequestedSecurityToken>"
				"<RequestedAttachedReference><Ref/></RequestedAttachedReference>"
				"<AppliesTo xmlns=\"http://www.w3.org/ns/ws-policy\"><EndpointReference "
				"xmlns=\"http://www.w3.org/2005/08/addressing\"><Address> https://rp/ </Address>"
				"</EndpointReference></AppliesTo></RequestSecurityTokenResponse></Body></Envelope>";
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK(r.soap_version == 11 && r.trust_version == 1, "versions %u/%u", r.soap_version, r.trust_version);
		CHECK_STR(r.token_type, "urn:t");
		CHECK_STR(r.applies_to, "https://rp/");
		CHECK(r.token_xml.data && !strcmp((char *)r.token_xml.data, "<Tok xmlns=\"urn:x\"><In/></Tok>"), "token %s",
		      r.token_xml.data);
		/* Ref inherits the default namespace: it must be inserted */
		CHECK(r.attached.data && !strcmp((char *)r.attached.data, "<Ref xmlns=\"" T05 "\"/>"), "attached %s",
		      r.attached.data);
		wt_result_free(&r);
	}
	current = "namespace insertion: nearest declaration wins, escaping";
	{
		const char *d = "<t:RequestSecurityTokenResponse xmlns:t=\"" T13 "\" xmlns:p=\"urn:outer\" xmlns:q=\"urn:q?a&amp;b\">"
				"<t:RequestedSecurityToken xmlns:p=\"urn:inner\" xmlns=\"urn:def\">"
				"<p:Tok xmlns:own=\"urn:own\" a=\"1\"\n  b='2'>x</p:Tok>"
				"</t:RequestedSecurityToken></t:RequestSecurityTokenResponse>";
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		const char *want = "<p:Tok xmlns:p=\"urn:inner\" xmlns=\"urn:def\" xmlns:t=\"" T13
				   "\" xmlns:q=\"urn:q?a&amp;b\" xmlns:own=\"urn:own\" a=\"1\"\n  b='2'>x</p:Tok>";
		CHECK(r.token_xml.data && !strcmp((char *)r.token_xml.data, want), "token\n%s\nwant\n%s",
		      r.token_xml.data, want);
		CHECK(r.token_xml.len == strlen(want), "length %zu", r.token_xml.len);
		wt_result_free(&r);
	}
	current = "xmlns=\"\" undeclaration is not copied";
	{
		const char *d = "<RequestSecurityTokenResponse xmlns=\"" T13 "\"><RequestedSecurityToken>"
				"<w xmlns=\"\"><Tok/></w></RequestedSecurityToken></RequestSecurityTokenResponse>";
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK(r.token_xml.data && !strcmp((char *)r.token_xml.data, "<w xmlns=\"\"><Tok/></w>"), "token %s",
		      r.token_xml.data);
		wt_result_free(&r);
	}
	current = "self-closing token, CRLF kept";
	{
		char *d = reply13("", "<t:RequestedSecurityToken>\r\n<x:T xmlns:x=\"urn:x\"\r\n/>\r\n</t:RequestedSecurityToken>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		/* inserted: nearest ancestor first, right after the name */
		const char *want = "<x:T xmlns:t=\"" T13 "\" xmlns:s=\"" SOAP12
				   "\" xmlns:a=\"http://www.w3.org/2005/08/addressing\" xmlns:x=\"urn:x\"\r\n/>";
		CHECK(r.token_xml.data && !strcmp((char *)r.token_xml.data, want), "token %s", r.token_xml.data);
		wt_result_free(&r);
		free(d);
	}
	current = "proof tokens";
	{
		char *d = reply13("", TOKEN "<t:RequestedProofToken>\n<t:BinarySecret>\n  AAEC\n  AwQF\n</t:BinarySecret>\n"
				      "</t:RequestedProofToken><t:Entropy><t:BinarySecret>/w==</t:BinarySecret></t:Entropy>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK(r.proof_kind == IPC_PROOF_BINARY_SECRET && r.proof_data.len == 6 &&
			      !memcmp(r.proof_data.data, "\0\1\2\3\4\5", 6),
		      "binary secret");
		CHECK(r.entropy.len == 1 && r.entropy.data[0] == 0xFF, "entropy");
		wt_result_free(&r);
		free(d);
		d = reply13("", TOKEN "<t:RequestedProofToken><t:ComputedKey> " T13 "/CK/PSHA1 </t:ComputedKey></t:RequestedProofToken>");
		r = parse_ok(d, strlen(d), NULL);
		CHECK(r.proof_kind == IPC_PROOF_COMPUTED_KEY, "kind %u", r.proof_kind);
		CHECK_STR(r.ck_algorithm, T13 "/CK/PSHA1");
		wt_result_free(&r);
		free(d);
		d = reply13("", TOKEN "<t:RequestedProofToken><e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">"
				      "<e:CipherData><e:CipherValue>AAAA</e:CipherValue></e:CipherData></e:EncryptedKey></t:RequestedProofToken>");
		r = parse_ok(d, strlen(d), NULL);
		CHECK(r.proof_kind == IPC_PROOF_ENCRYPTED_KEY, "kind %u", r.proof_kind);
		const char *want = "<e:EncryptedKey xmlns:t=\"" T13 "\" xmlns:s=\"" SOAP12
				   "\" xmlns:a=\"http://www.w3.org/2005/08/addressing\" xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">"
				   "<e:CipherData><e:CipherValue>AAAA</e:CipherValue></e:CipherData></e:EncryptedKey>";
		CHECK(r.proof_data.data && r.proof_data.len == strlen(want) && !memcmp(r.proof_data.data, want, strlen(want)),
		      "EncryptedKey XML %.*s", (int)r.proof_data.len, r.proof_data.data);
		wt_result_free(&r);
		free(d);
	}
	current = "issuer Entropy as xenc:EncryptedKey";
	{
		/* xmlns:e is declared on the RSTR, an ancestor: it must be carried
		 * into the extracted element; ds stays declared where it was. */
#define EK_REST " Id=\"_1\">\n  <e:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>" \
	       "<KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"/>" \
	       "<e:CipherData><e:CipherValue>AAAA</e:CipherValue></e:CipherData></e:EncryptedKey>"
#define EK_ENT "<e:EncryptedKey" EK_REST
		const char *doc = ENV12 "<s:Header/><s:Body>" RSTRC_OPEN
				  "<t:RequestSecurityTokenResponse xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\">" TOKEN
				  "<t:RequestedProofToken><t:ComputedKey>" T13 "/CK/PSHA1</t:ComputedKey></t:RequestedProofToken>"
				  "<t:Entropy>\n  <!-- encrypted to the client -->" EK_ENT "\n</t:Entropy>"
				  "</t:RequestSecurityTokenResponse>" RSTRC_CLOSE "</s:Body></s:Envelope>";
		struct wt_result r = parse_ok(doc, strlen(doc), NULL);
		const char *want = "<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\" xmlns:t=\"" T13
				   "\" xmlns:s=\"" SOAP12 "\" xmlns:a=\"http://www.w3.org/2005/08/addressing\"" EK_REST;
		CHECK(r.proof_kind == IPC_PROOF_COMPUTED_KEY, "kind %u", r.proof_kind);
		CHECK(r.entropy.data == NULL && r.entropy.len == 0, "clear entropy set for an encrypted one");
		CHECK(r.entropy_enc.data && r.entropy_enc.len == strlen(want) && !memcmp(r.entropy_enc.data, want, strlen(want)),
		      "Entropy EncryptedKey XML %.*s", (int)r.entropy_enc.len, r.entropy_enc.data);
		check_standalone(&r.entropy_enc, "Entropy EncryptedKey");
		/* It crosses the wire under its own tag, into secure memory. */
		CHECK(sodium_init() >= 0, "sodium_init");
		struct ipc_builder b = { 0 };
		struct ipc_msg m;
		struct wt_result back;
		char err[256] = "";
		CHECK(wt_result_encode(&r, &b) == 0 && ipc_decode(b.buf, b.len, &m, err, sizeof err) == 0, "encode: %s", err);
		CHECK(ipc_has(&m, T_R_ENTROPY_ENC) && !ipc_has(&m, T_R_ENTROPY), "Entropy EncryptedKey not under T_R_ENTROPY_ENC");
		CHECK(wt_result_decode(&m, &back, true, err, sizeof err) == 0, "decode: %s", err);
		CHECK(back.secure && back.entropy_enc.len == r.entropy_enc.len &&
			      !memcmp(back.entropy_enc.data, r.entropy_enc.data, r.entropy_enc.len),
		      "Entropy EncryptedKey changed on the wire");
		wt_result_free(&back);
		ipc_builder_free(&b);
		/* The broker's decoder refuses both forms in one result. */
		uint8_t clear[16] = { 1 };
		r.entropy = (struct wt_blob){ clear, sizeof clear };
		CHECK(wt_result_encode(&r, &b) == 0 && ipc_decode(b.buf, b.len, &m, err, sizeof err) == 0, "encode: %s", err);
		CHECK(wt_result_decode(&m, &back, true, err, sizeof err) == -1 &&
			      strstr(err, "issuer entropy both in clear and encrypted"),
		      "both entropy forms decoded: %s", err);
		wt_result_free(&back);
		ipc_builder_free(&b);
		r.entropy = (struct wt_blob){ 0 };
		wt_result_free(&r);

		/* exactly one of BinarySecret / EncryptedKey */
		const char *ekns = "<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\"><e:CipherData><e:CipherValue>"
				   "AAAA</e:CipherValue></e:CipherData></e:EncryptedKey>";
		char rstr[2048];
		snprintf(rstr, sizeof rstr, TOKEN "<t:Entropy><t:BinarySecret>AAAA</t:BinarySecret>%s</t:Entropy>", ekns);
		expect_error13("", rstr, IPC_PERR_STRUCTURE, "Entropy holds both a BinarySecret and an xenc:EncryptedKey");
		snprintf(rstr, sizeof rstr, TOKEN "<t:Entropy>%s<t:BinarySecret>AAAA</t:BinarySecret></t:Entropy>", ekns);
		expect_error13("", rstr, IPC_PERR_STRUCTURE, "Entropy holds both a BinarySecret and an xenc:EncryptedKey");
		expect_error13("", TOKEN "<t:Entropy/>", IPC_PERR_STRUCTURE,
			       "Entropy holds neither a BinarySecret nor an xenc:EncryptedKey");
		expect_error13("", TOKEN "<t:Entropy>\n <!-- nothing --> </t:Entropy>", IPC_PERR_STRUCTURE,
			       "Entropy holds neither a BinarySecret nor an xenc:EncryptedKey");
		snprintf(rstr, sizeof rstr, TOKEN "<t:Entropy>%s%s</t:Entropy>", ekns, ekns);
		expect_error13("", rstr, IPC_PERR_STRUCTURE, "Entropy holds 2 xenc:EncryptedKey elements");
		expect_error13("", TOKEN "<t:Entropy><t:BinarySecret>AAAA</t:BinarySecret><t:BinarySecret>AAAA</t:BinarySecret>"
				   "</t:Entropy>", IPC_PERR_STRUCTURE, "Entropy holds 2 BinarySecret elements");
		expect_error13("", TOKEN "<t:Entropy><x:EncryptedKey xmlns:x=\"urn:x\"/></t:Entropy>", IPC_PERR_STRUCTURE,
			       "unsupported Entropy content {urn:x}EncryptedKey");
		snprintf(rstr, sizeof rstr, TOKEN "<t:Entropy>AAAA%s</t:Entropy>", ekns);
		expect_error13("", rstr, IPC_PERR_STRUCTURE, "Entropy contains text besides its element");
#undef EK_ENT
#undef EK_REST
	}
	current = "SCT in WS-SecureConversation 1.3, AppliesTo 2004/09 with 2004/08 EPR";
	{
		char *d = reply13("", "<t:RequestedSecurityToken><c:SecurityContextToken "
				      "xmlns:c=\"http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512\">"
				      "<c:Identifier> urn:sct:1 </c:Identifier><c:Instance>i1</c:Instance>"
				      "</c:SecurityContextToken></t:RequestedSecurityToken>"
				      "<p:AppliesTo xmlns:p=\"http://schemas.xmlsoap.org/ws/2004/09/policy\">"
				      "<w:EndpointReference xmlns:w=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\">"
				      "<w:Address>urn:rp</w:Address></w:EndpointReference></p:AppliesTo>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.sct_id, "urn:sct:1");
		CHECK_STR(r.sct_instance, "i1");
		CHECK_STR(r.applies_to, "urn:rp");
		wt_result_free(&r);
		free(d);
	}
	current = "Lifetime with offsets and fractions";
	{
		char *d = reply13("", TOKEN "<t:Lifetime><u:Created " WSU ">\n 2014-01-27T13:45:45.0030+05:30 \n</u:Created>"
				      "<u:Expires " WSU ">2014-01-27T01:15:45.003-08:00</u:Expires></t:Lifetime>");
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK(r.created == 635264073450030000ull, "created %" PRIu64, r.created);
		CHECK(r.expires == 635264109450030000ull, "expires %" PRIu64, r.expires);
		wt_result_free(&r);
		free(d);
	}
	current = "UTF-16BE (swapped from the committed UTF-16LE file)";
	{
		size_t len;
		uint8_t *buf = read_file("data/utf16le-bom-adfs-13-rstrc-saml11-bearer-singleline.xml", &len);
		for (size_t i = 0; i + 1 < len; i += 2) {
			uint8_t t = buf[i];
			buf[i] = buf[i + 1];
			buf[i + 1] = t;
		}
		struct wt_result r = parse_ok((const char *)buf, len, NULL);
		CHECK_STR(r.applies_to, "urn:federation:MicrosoftOnline");
		CHECK(r.created == 635264073450030000ull, "created %" PRIu64, r.created);
		wt_result_free(&r);
		/* odd length: not valid UTF-16 */
		struct wt_parse_req req = base_req(buf, len - 1);
		expect_error_req(&req, IPC_PERR_MALFORMED, "");
		free(buf);
	}
	current = "ISO-8859-1 declared";
	{
		const char *d = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" ENV12
				"<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason>"
				"<s:Text xml:lang=\"fr\">\xE9t\xE9</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>";
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.fault_reason, "\xC3\xA9t\xC3\xA9");
		wt_result_free(&r);
	}
	current = "a converted token over the wire's field maximum";
	{
		/* 8.4 MB of ISO-8859-1 e-acute in five text nodes becomes a
		 * 16.8 MB UTF-8 token: over IPC_MAX_REPLY for one field, under
		 * IPC_MAX_FRAME, so only the broker's decoder would notice. */
		char *text = repeat("\xE9", 1684000, "<a>", "</a>");
		char *five = xmalloc(5 * strlen(text) + 1);
		five[0] = 0;
		for (int i = 0; i < 5; i++)
			strcat(five, text);
		size_t n = strlen(five) + 1024;
		char *d = xmalloc(n);
		snprintf(d, n, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" RSTRC_OPEN
			 "<t:RequestSecurityTokenResponse><t:RequestedSecurityToken><x:Tok xmlns:x=\"urn:x\">%s</x:Tok>"
			 "</t:RequestedSecurityToken></t:RequestSecurityTokenResponse>" RSTRC_CLOSE, five);
		expect_error(d, IPC_PERR_LIMIT, "<Tok> is 16840");
		free(text);
		free(five);
		free(d);
	}
	current = "encodings that would need iconv";
	expect_error("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><x/>", IPC_PERR_MALFORMED, "unsupported encoding \"Shift_JIS\"");
	{
		static const uint8_t ucs4[] = { '<', 0, 0, 0, 'x', 0, 0, 0, '/', 0, 0, 0, '>', 0, 0, 0 };
		struct wt_parse_req req = base_req(ucs4, sizeof(ucs4));
		expect_error_req(&req, IPC_PERR_MALFORMED, "unsupported encoding");
		static const uint8_t ebcdic[] = { 0x4C, 0x6F, 0xA7, 0x94, 0x93, 0x40 };
		req = base_req(ebcdic, sizeof(ebcdic));
		expect_error_req(&req, IPC_PERR_MALFORMED, "unsupported encoding");
	}
	current = "unsupported declared encoding";
	expect_error("<?xml version=\"1.0\" encoding=\"X-NO-SUCH\"?><x/>", IPC_PERR_MALFORMED, "unsupported encoding \"X-NO-SUCH\"");
}

static void test_faults(void)
{
	current = "SOAP 1.2 fault: language choice, nested subcodes, detail";
	{
		const char *d = ENV12 "<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode>"
				"<s:Value xmlns:w=\"" T13 "\">w:InvalidRequest</s:Value><s:Subcode><s:Value>Local</s:Value>"
				"</s:Subcode></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"de\">Fehler</s:Text>"
				"<s:Text xml:lang=\"en-GB\">Failure</s:Text></s:Reason><s:Detail><d:E xmlns:d=\"urn:d\">x</d:E>"
				"</s:Detail></s:Fault></s:Body></s:Envelope>";
		struct wt_parse_req req = base_req(d, strlen(d));
		req.http_status = 500;
		struct wt_result r = parse_ok(d, strlen(d), &req);
		CHECK(r.kind == IPC_RESULT_FAULT, "kind %u", r.kind);
		CHECK_STR(r.fault_code, "{" SOAP12 "}Sender");
		CHECK(r.n_subcodes == 2, "n_subcodes %u", r.n_subcodes);
		CHECK_STR(r.fault_subcodes[0], "{" T13 "}InvalidRequest");
		CHECK_STR(r.fault_subcodes[1], "Local");
		CHECK_STR(r.fault_reason, "Failure");
		const char *want = "<s:Detail xmlns:s=\"" SOAP12
				   "\" xmlns:a=\"http://www.w3.org/2005/08/addressing\"><d:E xmlns:d=\"urn:d\">x</d:E></s:Detail>";
		CHECK(r.fault_detail.data && !strcmp((char *)r.fault_detail.data, want), "detail %s", r.fault_detail.data);
		wt_result_free(&r);
	}
	current = "SOAP 1.2 fault: no English text, first wins";
	{
		const char *d = ENV12 "<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason>"
				"<s:Text xml:lang=\"de\">Eins</s:Text><s:Text xml:lang=\"fr\">Un</s:Text></s:Reason>"
				"</s:Fault></s:Body></s:Envelope>";
		struct wt_result r = parse_ok(d, strlen(d), NULL);
		CHECK_STR(r.fault_reason, "Eins");
		wt_result_free(&r);
	}
	current = "SOAP 1.1 fault";
	{
		const char *d = ENV11 "<soap:Body><soap:Fault><faultcode xmlns:wst=\"" T05 "\">wst:FailedAuthentication</faultcode>"
				"<faultstring>Authentication failed</faultstring><detail><e>1</e></detail></soap:Fault>"
				"</soap:Body></soap:Envelope>";
		struct wt_parse_req req = base_req(d, strlen(d));
		req.soap_version = 12; /* a fault is reported whatever its version */
		struct wt_result r = parse_ok(d, strlen(d), &req);
		CHECK(r.kind == IPC_RESULT_FAULT && r.soap_version == 11, "kind %u soap %u", r.kind, r.soap_version);
		CHECK_STR(r.fault_code, "{" T05 "}FailedAuthentication");
		CHECK_STR(r.fault_reason, "Authentication failed");
		CHECK(r.fault_detail.data && !strcmp((char *)r.fault_detail.data, "<detail xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><e>1</e></detail>"), "detail %s",
		      r.fault_detail.data);
		wt_result_free(&r);
	}
	current = "fault with a foreign RelatesTo is still the fault";
	{
		const char *d = ENV12 "<s:Header><a:RelatesTo>urn:other</a:RelatesTo></s:Header><s:Body><s:Fault>"
				"<s:Code><s:Value>s:Sender</s:Value></s:Code></s:Fault></s:Body></s:Envelope>";
		struct wt_parse_req req = base_req(d, strlen(d));
		req.relates_to = "urn:mine";
		struct wt_result r = parse_ok(d, strlen(d), &req);
		CHECK(r.kind == IPC_RESULT_FAULT, "kind %u", r.kind);
		CHECK_STR(r.relates_to, "urn:other");
		wt_result_free(&r);
	}
	current = "duplicate Code";
	expect_error(ENV12 "<s:Body><s:Fault><s:Code/><s:Code/></s:Fault></s:Body></s:Envelope>", IPC_PERR_STRUCTURE,
		     "duplicate Code in Fault");
}

/* ---- xsd:dateTime ---- */

static void dt_ok(const char *s, uint64_t want)
{
	uint64_t t = 0;
	int rc = wt_parse_datetime(s, strlen(s), &t);
	CHECK(rc == 0 && t == want, "\"%s\": rc %d ticks %" PRIu64 ", want %" PRIu64, s, rc, t, want);
}

static void dt_bad(const char *s)
{
	uint64_t t = 0;
	CHECK(wt_parse_datetime(s, strlen(s), &t) == -1, "\"%s\" should be rejected", s);
}

static void test_datetime(void)
{
	current = "wt_parse_datetime";
	const uint64_t unix0 = 621355968000000000ull; /* 1970-01-01T00:00:00Z */
	const uint64_t s = 10000000ull;
	dt_ok("0001-01-01T00:00:00Z", 0);
	dt_ok("0001-01-01T00:00:00", 0); /* no timezone = UTC */
	dt_ok("0001-01-01T00:00:00.0000001Z", 1);
	dt_ok("9999-12-31T23:59:59.9999999Z", 3155378975999999999ull);
	dt_ok("9999-12-31T23:59:59.99999999999Z", 3155378975999999999ull); /* truncated, not rounded */
	dt_ok("1970-01-01T00:00:00Z", unix0);
	dt_ok("1970-01-01T05:30:00+05:30", unix0);
	dt_ok("1969-12-31T16:00:00-08:00", unix0);
	dt_ok("1970-01-01T00:00:00+00:00", unix0);
	dt_ok("1970-01-01T00:00:00-00:00", unix0);
	dt_ok("1970-01-01T00:00:00.5Z", unix0 + 5000000);
	dt_ok("1970-01-01T00:00:00.12Z", unix0 + 1200000);
	dt_ok("1970-01-01T00:00:00.123Z", unix0 + 1230000);
	dt_ok("1970-01-01T00:00:00.1234Z", unix0 + 1234000);
	dt_ok("1970-01-01T00:00:00.12345Z", unix0 + 1234500);
	dt_ok("1970-01-01T00:00:00.123456Z", unix0 + 1234560);
	dt_ok("1970-01-01T00:00:00.1234567Z", unix0 + 1234567);
	dt_ok("1970-01-01T00:00:00.123456789Z", unix0 + 1234567);
	dt_ok("2000-01-01T00:00:00Z", unix0 + 946684800ull * s);
	dt_ok("2024-02-29T12:00:00Z", unix0 + 1709208000ull * s); /* leap day */
	dt_ok("2000-02-29T00:00:00Z", unix0 + 951782400ull * s);  /* 400-year leap */
	dt_ok("2023-12-31T24:00:00Z", unix0 + 1704067200ull * s); /* end of day = next midnight */
	dt_ok("2014-01-27T08:15:45.003Z", 635264073450030000ull);
	dt_ok("0001-01-01T14:00:00+14:00", 0);
	dt_bad("0000-01-01T00:00:00Z");
	dt_bad("0001-01-01T00:00:00+00:01"); /* before year 1 */
	dt_bad("9999-12-31T23:59:59-00:01"); /* after 9999 */
	dt_bad("10000-01-01T00:00:00Z");
	dt_bad("-0001-01-01T00:00:00Z");
	dt_bad("2023-02-29T00:00:00Z");
	dt_bad("1900-02-29T00:00:00Z");
	dt_bad("2024-13-01T00:00:00Z");
	dt_bad("2024-00-01T00:00:00Z");
	dt_bad("2024-04-31T00:00:00Z");
	dt_bad("2024-01-00T00:00:00Z");
	dt_bad("2024-01-01T25:00:00Z");
	dt_bad("2024-01-01T24:00:01Z");
	dt_bad("2024-01-01T24:00:00.1Z");
	dt_bad("2024-01-01T23:60:00Z");
	dt_bad("2024-01-01T23:59:60Z");
	dt_bad("2024-01-01T00:00:00.Z");
	dt_bad("2024-01-01T00:00:00+15:00");
	dt_bad("2024-01-01T00:00:00+14:30");
	dt_bad("2024-01-01T00:00:00+05:60");
	dt_bad("2024-01-01T00:00:00+0530");
	dt_bad("2024-01-01T00:00:00ZZ");
	dt_bad("2024-01-01T00:00:00z");
	dt_bad("2024-01-01 00:00:00Z");
	dt_bad("2024-1-01T00:00:00Z");
	dt_bad("2024-01-01T00:00Z");
	dt_bad(" 2024-01-01T00:00:00Z");
	dt_bad("2024-01-01T00:00:00Z ");
	dt_bad("abc");
	dt_bad("");
	uint64_t t;
	CHECK(wt_parse_datetime("2024-01-01T00:00:00Z", 10, &t) == -1, "length is honoured");
	CHECK(wt_parse_datetime("2024-01-01T00:00:00Z\0junk", 25, &t) == -1, "embedded NUL");
}

int main(void)
{
	test_datetime();
	test_corpus();
	test_hostile();
	test_selection();
	test_variety();
	test_faults();
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
