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

#define T13 "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define T05 "http://schemas.xmlsoap.org/ws/2005/02/trust"
static uint8_t issuer_entropy[32], key32[32];
static uint8_t ek_xml[] = "<e:EncryptedKey xmlns:e=\"http://www.w3.org/2001/04/xmlenc#\"/>";

static struct wt_result sym(uint32_t proof_kind)
{
	struct wt_result r = good();
	r.key_type = (char *)T13 "/SymmetricKey";
	r.proof_kind = proof_kind;
	r.key_size = 256;
	if (proof_kind == IPC_PROOF_BINARY_SECRET || proof_kind == IPC_PROOF_ENCRYPTED_KEY)
		r.proof_data = (struct wt_blob){ key32, sizeof key32 };
	if (proof_kind == IPC_PROOF_COMPUTED_KEY) {
		r.ck_algorithm = (char *)T13 "/CK/PSHA1";
		r.entropy = (struct wt_blob){ issuer_entropy, sizeof issuer_entropy };
	}
	return r;
}

static void test_symmetric(void)
{
	struct token_verdict v;
	struct token_expect e = expect;
	e.key_type = 2;
	e.trust_version = 2;
	e.key_size = 256;
	/* SERVER_ONLY (default): BinarySecret or EncryptedKey */
	struct wt_result r = sym(IPC_PROOF_BINARY_SECRET);
	accepted(&e, &r, &v);
	CHECK(v.key_type_out == 2 && v.proof_withheld, "symmetric verdict");
	r = sym(IPC_PROOF_ENCRYPTED_KEY);
	accepted(&e, &r, &v);
	r = sym(IPC_PROOF_COMPUTED_KEY);
	refused(&e, &r, "the STS sent a ComputedKey proof token, but the request carried no entropy (SERVER_ONLY)");
	r = sym(IPC_PROOF_NONE);
	refused(&e, &r, "SERVER_ONLY entropy was requested, but the STS sent no proof token");
	r = sym(IPC_PROOF_BINARY_SECRET);
	r.entropy = (struct wt_blob){ issuer_entropy, sizeof issuer_entropy };
	refused(&e, &r, "the STS sent issuer Entropy, but the request carried no entropy");
	r = sym(IPC_PROOF_BINARY_SECRET);
	r.key_type = (char *)T13 "/Bearer";
	refused(&e, &r, "a symmetric key was requested, but the STS issued key type " T13 "/Bearer");
	r.key_type = NULL;   /* no KeyType in the reply: fine */
	accepted(&e, &r, &v);
	/* key size */
	r = sym(IPC_PROOF_BINARY_SECRET);
	r.key_size = 128;
	refused(&e, &r, "the STS issued a 128-bit key, but 256 bits were requested");
	r.key_size = 0;
	r.proof_data.len = 16;
	refused(&e, &r, "the STS's BinarySecret is 128 bits, but 256 bits were requested");
	r = sym(IPC_PROOF_BINARY_SECRET);
	r.key_size = 1024;
	refused(&e, &r, "KeySize of 1024 bits");

	/* CLIENT_ONLY: nothing from the STS */
	e.entropy_mode = 1;
	r = sym(IPC_PROOF_NONE);
	accepted(&e, &r, &v);
	CHECK(v.key_type_out == 2, "client only: symmetric");
	r = sym(IPC_PROOF_BINARY_SECRET);
	refused(&e, &r, "CLIENT_ONLY entropy was requested (the requestor's entropy is the key), but the STS sent a "
	                "BinarySecret proof token");
	r = sym(IPC_PROOF_COMPUTED_KEY);
	refused(&e, &r, "CLIENT_ONLY entropy was requested (the requestor's entropy is the key), but the STS sent a "
	                "ComputedKey proof token");
	r = sym(IPC_PROOF_NONE);
	r.entropy = (struct wt_blob){ issuer_entropy, sizeof issuer_entropy };
	refused(&e, &r, "CLIENT_ONLY entropy was requested, but the STS sent its own Entropy");

	/* COMBINED: ComputedKey P_SHA1 of the right version + issuer entropy */
	e.entropy_mode = 3;
	r = sym(IPC_PROOF_COMPUTED_KEY);
	accepted(&e, &r, &v);
	r = sym(IPC_PROOF_BINARY_SECRET);
	refused(&e, &r, "COMBINED entropy was requested, but the STS sent a BinarySecret proof token instead of a "
	                "ComputedKey");
	r = sym(IPC_PROOF_NONE);
	refused(&e, &r, "COMBINED entropy was requested, but the STS sent no proof token");
	r = sym(IPC_PROOF_COMPUTED_KEY);
	r.ck_algorithm = (char *)T05 "/CK/PSHA1";
	refused(&e, &r, "the STS's ComputedKey algorithm " T05 "/CK/PSHA1 is not the requested P_SHA1");
	r.ck_algorithm = (char *)"urn:other";
	refused(&e, &r, "ComputedKey algorithm urn:other");
	r = sym(IPC_PROOF_COMPUTED_KEY);
	memset(&r.entropy, 0, sizeof r.entropy);
	refused(&e, &r, "the STS sent a ComputedKey without its issuer Entropy");
	r = sym(IPC_PROOF_COMPUTED_KEY);
	r.entropy.len = 8;
	refused(&e, &r, "issuer Entropy is 8 bytes");
	/* COMBINED with the issuer entropy as an xenc:EncryptedKey (decrypted
	 * and size-checked by proof.c): accepted, but never both forms. */
	r = sym(IPC_PROOF_COMPUTED_KEY);
	memset(&r.entropy, 0, sizeof r.entropy);
	r.entropy_enc = (struct wt_blob){ ek_xml, sizeof ek_xml - 1 };
	accepted(&e, &r, &v);
	CHECK(v.key_type_out == 2 && v.proof_withheld, "combined with encrypted entropy: symmetric verdict");
	r.entropy = (struct wt_blob){ issuer_entropy, sizeof issuer_entropy };
	refused(&e, &r, "the STS sent its issuer Entropy both in clear and as an EncryptedKey");
	/* ... and only with COMBINED */
	r = sym(IPC_PROOF_BINARY_SECRET);
	r.entropy_enc = (struct wt_blob){ ek_xml, sizeof ek_xml - 1 };
	e.entropy_mode = 2;
	refused(&e, &r, "the STS sent issuer Entropy, but the request carried no entropy (SERVER_ONLY)");
	e.entropy_mode = 0;
	refused(&e, &r, "the STS sent issuer Entropy, but the request carried no entropy (SERVER_ONLY)");
	r = sym(IPC_PROOF_NONE);
	r.entropy_enc = (struct wt_blob){ ek_xml, sizeof ek_xml - 1 };
	e.entropy_mode = 1;
	refused(&e, &r, "CLIENT_ONLY entropy was requested, but the STS sent its own Entropy");
	e.entropy_mode = 3;

	e.trust_version = 1;
	r = sym(IPC_PROOF_COMPUTED_KEY);
	r.key_type = (char *)T05 "/SymmetricKey";
	r.ck_algorithm = (char *)T05 "/CK/PSHA1";
	accepted(&e, &r, &v);
	memset(&r.entropy, 0, sizeof r.entropy);
	r.entropy_enc = (struct wt_blob){ ek_xml, sizeof ek_xml - 1 };
	accepted(&e, &r, &v);
}

/* Encrypted issuer entropy with a bearer token or an asymmetric key: refused. */
static void test_encrypted_entropy_elsewhere(void)
{
	struct wt_result r = good();
	r.entropy_enc = (struct wt_blob){ ek_xml, sizeof ek_xml - 1 };
	refused(&expect, &r, "a bearer token was requested, but the STS sent");
	struct token_expect e = expect;
	e.key_type = 0;
	r.key_type = NULL;
	refused(&e, &r, "the STS sent issuer entropy with a bearer token");
	e.key_type = 3;
	r.key_type = (char *)T13 "/PublicKey";
	refused(&e, &r, "an asymmetric key was requested (UseKey: the client certificate), but the STS sent");
}

static void test_asymmetric(void)
{
	struct token_verdict v;
	struct token_expect e = expect;
	e.key_type = 3;
	struct wt_result r = good();
	r.key_type = (char *)T13 "/PublicKey";
	accepted(&e, &r, &v);
	CHECK(v.key_type_out == 3 && !v.proof_withheld, "asymmetric verdict");
	r.key_type = (char *)T13 "/SymmetricKey";
	refused(&e, &r, "an asymmetric (PublicKey) key was requested, but the STS issued key type " T13 "/SymmetricKey");
	r = good();
	r.key_type = (char *)T13 "/PublicKey";
	r.proof_kind = IPC_PROOF_BINARY_SECRET;
	r.proof_data = (struct wt_blob){ key32, sizeof key32 };
	refused(&e, &r, "an asymmetric key was requested (UseKey: the client certificate), but the STS sent a "
	                "BinarySecret proof token");
	r = good();
	r.key_type = (char *)T13 "/PublicKey";
	r.key_size = 256;
	refused(&e, &r, "states a KeySize of 256 bits");
}

static void test_sct(void)
{
	struct token_verdict v;
	struct token_expect e = expect;
	e.key_type = 0;
	e.token_type = NULL;
	e.request_action = 2;
	struct wt_result r = sym(IPC_PROOF_BINARY_SECRET);
	r.key_type = NULL;
	r.token_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct";
	refused(&e, &r, "the STS answered a NEW_CONTEXT request without a SecurityContextToken");
	r.sct_id = (char *)"urn:uuid:1";
	accepted(&e, &r, &v);
	CHECK(v.key_type_out == 2, "an SCT has a symmetric key");
	struct wt_result rb = good();
	rb.sct_id = (char *)"urn:uuid:1";
	rb.key_type = NULL;
	refused(&e, &rb, "SERVER_ONLY entropy was requested, but the STS sent no proof token");
	e.request_action = 3;
	e.renew_sct_id = "urn:uuid:1";
	accepted(&e, &r, &v);
	e.renew_sct_id = "urn:uuid:2";
	refused(&e, &r, "the renewed security context token has Identifier urn:uuid:1, but urn:uuid:2 was renewed");
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
	r.ck_algorithm = NULL;
	accepted(&enone, &r, &v);
	CHECK(v.key_type_out == 2 && v.proof_withheld, "EncryptedKey: symmetric");
	r = good();
	r.key_type = (char *)"http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey";
	accepted(&enone, &r, &v);
	CHECK(v.key_type_out == 3, "PublicKey: asymmetric");
	r.key_type = (char *)"urn:weird";
	refused(&enone, &r, "unknown key type urn:weird");

	test_symmetric();
	test_encrypted_entropy_elsewhere();
	test_asymmetric();
	test_sct();

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
