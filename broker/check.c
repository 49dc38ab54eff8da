#include "check.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ipc.h"

/* Each pair names the same token type two ways: the WSS SAML token profile
 * URI and the SAML assertion namespace URN (what AD FS uses). */
static const char *const type_aliases[][2] = {
	{ "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
	  "urn:oasis:names:tc:SAML:2.0:assertion" },
	{ "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
	  "urn:oasis:names:tc:SAML:1.0:assertion" },
};

static const char *canonical_type(const char *t)
{
	for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++)
		if (!strcmp(t, type_aliases[i][1]))
			return type_aliases[i][0];
	return t;
}

bool token_type_equal(const char *a, const char *b)
{
	return !strcmp(canonical_type(a), canonical_type(b));
}

bool key_type_is_bearer(const char *uri)
{
	static const char *const bearer[] = {
		"http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer",
		/* the spelling in the WS-Trust 1.3 specification text (errata) */
		"http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer",
		/* the spelling in the original WS-Trust 1.3 schema */
		"http://docs.oasis-open.org/wssx/wstrust/200512/Bearer",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
	};
	for (size_t i = 0; i < sizeof bearer / sizeof bearer[0]; i++)
		if (!strcmp(uri, bearer[i]))
			return true;
	return false;
}

static bool key_type_is(const char *uri, const char *local)
{
	char a[128], b[128];
	snprintf(a, sizeof a, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/%s", local);
	snprintf(b, sizeof b, "http://schemas.xmlsoap.org/ws/2005/02/trust/%s", local);
	return !strcmp(uri, a) || !strcmp(uri, b);
}

static bool ck_psha1(const char *uri, uint32_t trust_version)
{
	bool v13 = !strcmp(uri, "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1");
	bool v05 = !strcmp(uri, "http://schemas.xmlsoap.org/ws/2005/02/trust/CK/PSHA1");
	return trust_version == 2 ? v13 : trust_version == 1 ? v05 : v13 || v05;
}

uint64_t ws_datetime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return WS_DATETIME_UNIX_EPOCH + (uint64_t)ts.tv_sec * WS_TICKS_PER_SECOND + (uint64_t)ts.tv_nsec / 100;
}

static const char *proof_name(uint32_t k)
{
	switch (k) {
	case IPC_PROOF_BINARY_SECRET: return "a BinarySecret";
	case IPC_PROOF_COMPUTED_KEY: return "a ComputedKey";
	case IPC_PROOF_ENCRYPTED_KEY: return "an EncryptedKey";
	default: return "an unknown";
	}
}

/* Issuer entropy in either form: a BinarySecret or an xenc:EncryptedKey. */
static bool has_issuer_entropy(const struct wt_result *r)
{
	return r->entropy.len || r->entropy_enc.len;
}

static bool has_proof(const struct wt_result *r)
{
	return r->proof_kind != IPC_PROOF_NONE || r->proof_data.len || has_issuer_entropy(r) || r->ck_algorithm;
}

static const char *proof_of(const struct wt_result *r)
{
	return proof_name(r->proof_kind != IPC_PROOF_NONE ? r->proof_kind
	                  : r->ck_algorithm ? IPC_PROOF_COMPUTED_KEY : IPC_PROOF_BINARY_SECRET);
}

static const char *entropy_name(uint32_t m)
{
	return m == 1 ? "CLIENT_ONLY" : m == 3 ? "COMBINED" : "SERVER_ONLY";
}

/* The proof material of a symmetric key against the entropy mode sent. */
static int check_symmetric(const struct token_expect *e, const struct wt_result *r, char *err, size_t errlen)
{
	uint32_t mode = e->entropy_mode ? e->entropy_mode : 2;
	if (r->key_size && (r->key_size < 128 || r->key_size > 512 || r->key_size % 8)) {
		snprintf(err, errlen, "the STS states a KeySize of %u bits (allowed: 128 to 512, a multiple of 8)",
		         r->key_size);
		return -1;
	}
	if (e->key_size && r->key_size && r->key_size != e->key_size) {
		snprintf(err, errlen, "the STS issued a %u-bit key, but %u bits were requested", r->key_size, e->key_size);
		return -1;
	}
	switch (mode) {
	case 1:   /* our entropy is the key: the STS must not send key material */
		if (r->proof_kind != IPC_PROOF_NONE || r->ck_algorithm) {
			snprintf(err, errlen, "CLIENT_ONLY entropy was requested (the requestor's entropy is the key), but "
			         "the STS sent %s proof token", proof_of(r));
			return -1;
		}
		if (has_issuer_entropy(r)) {
			snprintf(err, errlen, "CLIENT_ONLY entropy was requested, but the STS sent its own Entropy");
			return -1;
		}
		return 0;
	case 3:
		if (r->proof_kind != IPC_PROOF_COMPUTED_KEY) {
			snprintf(err, errlen, "COMBINED entropy was requested, but the STS sent %s proof token instead of a "
			         "ComputedKey", r->proof_kind == IPC_PROOF_NONE ? "no" : proof_of(r));
			return -1;
		}
		if (!r->ck_algorithm || !ck_psha1(r->ck_algorithm, e->trust_version)) {
			snprintf(err, errlen, "the STS's ComputedKey algorithm %s is not the requested P_SHA1 (CK/PSHA1)",
			         r->ck_algorithm ? r->ck_algorithm : "(none)");
			return -1;
		}
		if (!has_issuer_entropy(r)) {
			snprintf(err, errlen, "the STS sent a ComputedKey without its issuer Entropy");
			return -1;
		}
		if (r->entropy.len && r->entropy_enc.len) {
			snprintf(err, errlen, "the STS sent its issuer Entropy both in clear and as an EncryptedKey");
			return -1;
		}
		/* An encrypted entropy's size is checked once decrypted (proof.c). */
		if (r->entropy.len && (r->entropy.len < 16 || r->entropy.len > 64)) {
			snprintf(err, errlen, "the STS's issuer Entropy is %zu bytes (allowed: 16 to 64)", r->entropy.len);
			return -1;
		}
		return 0;
	default:
		if (r->proof_kind == IPC_PROOF_COMPUTED_KEY || r->ck_algorithm) {
			snprintf(err, errlen, "the STS sent a ComputedKey proof token, but the request carried no entropy "
			         "(%s)", entropy_name(mode));
			return -1;
		}
		if (r->proof_kind != IPC_PROOF_BINARY_SECRET && r->proof_kind != IPC_PROOF_ENCRYPTED_KEY) {
			snprintf(err, errlen, "SERVER_ONLY entropy was requested, but the STS sent no proof token "
			         "(a BinarySecret or EncryptedKey)");
			return -1;
		}
		if (has_issuer_entropy(r)) {
			snprintf(err, errlen, "the STS sent issuer Entropy, but the request carried no entropy (SERVER_ONLY)");
			return -1;
		}
		if (r->proof_kind == IPC_PROOF_BINARY_SECRET && e->key_size && r->proof_data.len * 8 != e->key_size) {
			snprintf(err, errlen, "the STS's BinarySecret is %zu bits, but %u bits were requested",
			         r->proof_data.len * 8, e->key_size);
			return -1;
		}
		return 0;
	}
}

int token_check(const struct token_expect *e, const struct wt_result *r, uint64_t now_ticks,
                struct token_verdict *v, char *err, size_t errlen)
{
	memset(v, 0, sizeof *v);
	if (r->kind != IPC_RESULT_TOKEN) {
		snprintf(err, errlen, "internal error: not a token result");
		return -1;
	}
	if (!r->token_xml.data || r->token_xml.len == 0) {
		snprintf(err, errlen, "the STS reply carries no token");
		return -1;
	}
	if (r->relates_to && e->message_id && strcmp(r->relates_to, e->message_id) != 0) {
		snprintf(err, errlen, "the STS reply answers another request: RelatesTo %s, expected %s",
		         r->relates_to, e->message_id);
		return -1;
	}
	if (e->context ? !r->context || strcmp(r->context, e->context) != 0 : r->context != NULL) {
		snprintf(err, errlen, "the STS reply has Context '%s', the request had '%s'",
		         r->context ? r->context : "(none)", e->context ? e->context : "(none)");
		return -1;
	}

	/* Token type: when we asked for one, the STS must not substitute another. */
	if (e->token_type && r->token_type && !token_type_equal(e->token_type, r->token_type)) {
		snprintf(err, errlen, "the STS issued token type %s, but %s was requested", r->token_type, e->token_type);
		return -1;
	}
	v->token_type = r->token_type ? r->token_type : e->token_type;

	/* Key type and proof material. */
	bool sct = e->request_action == 2 || e->request_action == 3;
	uint32_t want = e->key_type ? e->key_type : sct ? 2 : 0;
	if (want == 1) {
		if (r->key_type && !key_type_is_bearer(r->key_type)) {
			snprintf(err, errlen, "a bearer token was requested, but the STS issued key type %s", r->key_type);
			return -1;
		}
		if (has_proof(r)) {
			snprintf(err, errlen, "a bearer token was requested, but the STS sent %s proof token", proof_of(r));
			return -1;
		}
		v->key_type_out = 1;
	} else if (want == 2) {
		if (r->key_type && !key_type_is(r->key_type, "SymmetricKey")) {
			snprintf(err, errlen, "a symmetric key was requested, but the STS issued key type %s", r->key_type);
			return -1;
		}
		if (check_symmetric(e, r, err, errlen) != 0)
			return -1;
		v->key_type_out = 2;
		v->proof_withheld = true;
	} else if (want == 3) {
		if (r->key_type && !key_type_is(r->key_type, "PublicKey")) {
			snprintf(err, errlen, "an asymmetric (PublicKey) key was requested, but the STS issued key type %s",
			         r->key_type);
			return -1;
		}
		if (has_proof(r)) {
			snprintf(err, errlen, "an asymmetric key was requested (UseKey: the client certificate), but the "
			         "STS sent %s proof token", proof_of(r));
			return -1;
		}
		if (r->key_size) {
			snprintf(err, errlen, "an asymmetric key was requested, but the STS states a KeySize of %u bits",
			         r->key_size);
			return -1;
		}
		v->key_type_out = 3;
	} else {
		/* Nothing asked: take what the STS says, but only what we can hold. */
		if (r->proof_kind == IPC_PROOF_COMPUTED_KEY || r->ck_algorithm) {
			snprintf(err, errlen, "the STS sent a ComputedKey proof token, but the request carried no entropy");
			return -1;
		}
		if (r->proof_kind == IPC_PROOF_BINARY_SECRET || r->proof_kind == IPC_PROOF_ENCRYPTED_KEY) {
			if (r->key_type && !key_type_is(r->key_type, "SymmetricKey")) {
				snprintf(err, errlen, "the STS sent %s proof token with key type %s", proof_name(r->proof_kind),
				         r->key_type);
				return -1;
			}
			if (check_symmetric(e, r, err, errlen) != 0)
				return -1;
			v->key_type_out = 2;
			v->proof_withheld = true;
		} else if (r->key_type && key_type_is(r->key_type, "PublicKey")) {
			v->key_type_out = 3;
		} else if (r->key_type && key_type_is(r->key_type, "SymmetricKey")) {
			snprintf(err, errlen, "the STS issued a symmetric-key token without a proof token");
			return -1;
		} else if (!r->key_type || key_type_is_bearer(r->key_type)) {
			if (has_issuer_entropy(r)) {
				snprintf(err, errlen, "the STS sent issuer entropy with a bearer token");
				return -1;
			}
			v->key_type_out = 1;
		} else {
			snprintf(err, errlen, "the STS issued unknown key type %s", r->key_type);
			return -1;
		}
	}

	/* SecureConversation: the answer must be a SecurityContextToken, and a
	 * renewal keeps its Identifier. */
	if (sct) {
		if (!r->sct_id) {
			snprintf(err, errlen, "the STS answered a %s request without a SecurityContextToken",
			         e->request_action == 2 ? "NEW_CONTEXT" : "RENEW_CONTEXT");
			return -1;
		}
		if (e->request_action == 3 && e->renew_sct_id && strcmp(r->sct_id, e->renew_sct_id) != 0) {
			snprintf(err, errlen, "the renewed security context token has Identifier %s, but %s was renewed",
			         r->sct_id, e->renew_sct_id);
			return -1;
		}
	}

	/* AppliesTo: when both sides name one, they must agree. */
	if (e->applies_to && r->applies_to && strcmp(e->applies_to, r->applies_to) != 0) {
		snprintf(err, errlen, "the STS issued a token for %s, but %s was requested", r->applies_to, e->applies_to);
		return -1;
	}

	/* Lifetime, when the STS states one. */
	if (r->expires) {
		if (r->created && r->expires <= r->created) {
			snprintf(err, errlen, "the token's Lifetime ends before it begins (Expires <= Created)");
			return -1;
		}
		if (r->expires <= now_ticks) {
			snprintf(err, errlen, "the token has already expired (wst:Lifetime Expires is in the past)");
			return -1;
		}
		uint64_t from = r->created ? r->created : now_ticks;
		if (r->expires - from > CHECK_MAX_LIFETIME_S * WS_TICKS_PER_SECOND ||
		    r->expires - now_ticks > CHECK_MAX_LIFETIME_S * WS_TICKS_PER_SECOND) {
			snprintf(err, errlen, "the token's Lifetime is longer than one year: refused as implausible");
			return -1;
		}
	}
	return 0;
}
