/* Token checks: a result that breaks each rule is refused with its message;
 * a good one passes with the right verdict. */
#include "check.h"
#include "t.h"

#define MID "urn:uuid:11111111-2222-4333-8444-555555555555"
#define SAML2_URI "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
#define SAML2_URN "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML11_URI "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
#define SAML11_URN "urn:oasis:names:tc:SAML:1.0:assertion"
#define HOUR (3600ull * WS_TICKS_PER_SECOND)

static uint8_t token[] = "<saml:Assertion/>";
static uint8_t secret_bytes[16];
static uint64_t now;

static struct wt_result good(void)
{
	struct wt_result r = { 0 };
	r.kind = IPC_RESULT_TOKEN;
	r.trust_version = 2;
	r.soap_version = 12;
	r.token_xml.data = token;
	r.token_xml.len = sizeof token - 1;
	r.token_type = (char *)SAML2_URN;
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer";
	r.created = now - 60 * WS_TICKS_PER_SECOND;
	r.expires = now + HOUR;
	r.applies_to = (char *)"urn:example:rp";
	r.relates_to = (char *)MID;
	return r;
}

static const struct token_expect expect = {
	.message_id = MID, .token_type = SAML2_URI, .key_type = 1, .applies_to = "urn:example:rp",
};

static void refused(const struct token_expect *e, const struct wt_result *r, const char *msg)
{
	struct token_verdict v;
	char err[512] = "";
	CHECK(token_check(e, r, now, &v, err, sizeof err) == -1, "accepted, expected refusal \"%s\"", msg);
	CHECK_CONTAINS(err, msg);
}

static void accepted(const struct token_expect *e, const struct wt_result *r, struct token_verdict *v)
{
	char err[512] = "";
	CHECK(token_check(e, r, now, v, err, sizeof err) == 0, "refused: %s", err);
}

int main(void)
{
	now = ws_datetime_now();
	struct token_verdict v;
	struct wt_result r = good();

	/* The good case: bearer, reported type is the STS's. */
	accepted(&expect, &r, &v);
	CHECK(v.key_type_out == 1 && !v.proof_withheld, "verdict key type %u", v.key_type_out);
	CHECK_STREQ(v.token_type, SAML2_URN);

	/* RelatesTo */
	r = good();
	r.relates_to = (char *)"urn:uuid:99999999-2222-4333-8444-555555555555";
	refused(&expect, &r, "the STS reply answers another request: RelatesTo urn:uuid:9999");
	r.relates_to = NULL;   /* absent is allowed (2005 RSTRs often have none) */
	accepted(&expect, &r, &v);

	/* Context */
	r = good();
	r.context = (char *)"ctx";
	refused(&expect, &r, "Context 'ctx', the request had '(none)'");
	struct token_expect ec = expect;
	ec.context = "abc";
	r.context = (char *)"abd";
	refused(&ec, &r, "Context 'abd', the request had 'abc'");
	r.context = NULL;
	refused(&ec, &r, "Context '(none)', the request had 'abc'");
	r.context = (char *)"abc";
	accepted(&ec, &r, &v);

	/* Token type, with SAML aliases */
	r = good();
	r.token_type = (char *)SAML11_URN;
	refused(&expect, &r, "the STS issued token type " SAML11_URN ", but " SAML2_URI " was requested");
	r.token_type = (char *)SAML2_URI;
	accepted(&expect, &r, &v);
	struct token_expect e11 = expect;
	e11.token_type = SAML11_URI;
	r.token_type = (char *)SAML11_URN;
	accepted(&e11, &r, &v);
	e11.token_type = SAML11_URN;
	r.token_type = (char *)SAML11_URI;
	accepted(&e11, &r, &v);
	r.token_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct";
	refused(&e11, &r, "issued token type");
	r.token_type = NULL;   /* the STS did not say: the requested type is reported */
	accepted(&e11, &r, &v);
	CHECK_STREQ(v.token_type, SAML11_URN);
	struct token_expect eany = expect;
	eany.token_type = NULL;   /* none requested: any type accepted */
	r = good();
	r.token_type = (char *)"urn:custom:type";
	accepted(&eany, &r, &v);
	CHECK_STREQ(v.token_type, "urn:custom:type");

	/* Key type: bearer requested */
	r = good();
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey";
	refused(&expect, &r, "a bearer token was requested, but the STS issued key type http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey");
	r.key_type = (char *)"http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey";
	accepted(&expect, &r, &v);
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer";
	accepted(&expect, &r, &v);
	r.key_type = NULL;
	accepted(&expect, &r, &v);
	CHECK(v.key_type_out == 1, "bearer verdict");
	r.proof_kind = IPC_PROOF_BINARY_SECRET;
	r.proof_data.data = secret_bytes;
	r.proof_data.len = sizeof secret_bytes;
	refused(&expect, &r, "a bearer token was requested, but the STS sent a BinarySecret proof token");
	r = good();
	r.proof_kind = IPC_PROOF_COMPUTED_KEY;
	r.ck_algorithm = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1";
	refused(&expect, &r, "the STS sent a ComputedKey proof token");
	r = good();
	r.proof_kind = IPC_PROOF_ENCRYPTED_KEY;
	refused(&expect, &r, "the STS sent an EncryptedKey proof token");
	r = good();
	r.entropy.data = secret_bytes;
	r.entropy.len = sizeof secret_bytes;
	refused(&expect, &r, "proof token");

	/* Key type: none requested */
	struct token_expect enone = expect;
	enone.key_type = 0;
	r = good();
	r.key_type = NULL;
	accepted(&enone, &r, &v);
	CHECK(v.key_type_out == 1, "no key type, no proof: bearer");
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey";
	refused(&enone, &r, "symmetric-key token without a proof token");
	r.proof_kind = IPC_PROOF_BINARY_SECRET;
	r.proof_data.data = secret_bytes;
	r.proof_data.len = sizeof secret_bytes;
	accepted(&enone, &r, &v);
	CHECK(v.key_type_out == 2 && v.proof_withheld, "BinarySecret: symmetric, withheld");
	r.proof_kind = IPC_PROOF_COMPUTED_KEY;
	refused(&enone, &r, "ComputedKey proof token, but the request carried no entropy");
	r.proof_kind = IPC_PROOF_ENCRYPTED_KEY;
	refused(&enone, &r, "EncryptedKey proof token: not supported yet");
	r = good();
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey";
	accepted(&enone, &r, &v);
	CHECK(v.key_type_out == 3, "PublicKey: asymmetric");
	r.key_type = (char *)"urn:weird";
	refused(&enone, &r, "unknown key type urn:weird");

	/* AppliesTo */
	r = good();
	r.applies_to = (char *)"urn:other:rp";
	refused(&expect, &r, "the STS issued a token for urn:other:rp, but urn:example:rp was requested");
	r.applies_to = NULL;
	accepted(&expect, &r, &v);

	/* Lifetime */
	r = good();
	r.expires = r.created;
	refused(&expect, &r, "Lifetime ends before it begins");
	r.created = now - 2 * HOUR;
	r.expires = now - HOUR;
	refused(&expect, &r, "already expired");
	r.created = now;
	r.expires = now + 367ull * 24 * HOUR;
	refused(&expect, &r, "longer than one year");
	r.created = 0;
	refused(&expect, &r, "longer than one year");
	r.expires = now + HOUR;
	accepted(&expect, &r, &v);
	r.created = 0;
	r.expires = 0;   /* no Lifetime at all: accepted, times reported as 0 */
	accepted(&expect, &r, &v);

	/* Empty token */
	r = good();
	r.token_xml.len = 0;
	refused(&expect, &r, "carries no token");
	r = good();
	r.kind = IPC_RESULT_FAULT;
	refused(&expect, &r, "not a token result");

	CHECK(token_type_equal(SAML2_URN, SAML2_URI) && token_type_equal(SAML2_URI, SAML2_URN) &&
	      !token_type_equal(SAML2_URN, SAML11_URN), "aliases");
	CHECK(ws_datetime_now() > 638000000000000000ull, "ws_datetime_now is not WS_DATETIME ticks");
	T_DONE("test_check");
}
