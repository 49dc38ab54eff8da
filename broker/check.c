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
	if (e->key_type == 1) {
		if (r->key_type && !key_type_is_bearer(r->key_type)) {
			snprintf(err, errlen, "a bearer token was requested, but the STS issued key type %s", r->key_type);
			return -1;
		}
		if (r->proof_kind != IPC_PROOF_NONE || r->proof_data.len || r->entropy.len || r->ck_algorithm) {
			snprintf(err, errlen, "a bearer token was requested, but the STS sent %s proof token",
			         proof_name(r->proof_kind != IPC_PROOF_NONE ? r->proof_kind :
			                    r->ck_algorithm ? IPC_PROOF_COMPUTED_KEY : IPC_PROOF_BINARY_SECRET));
			return -1;
		}
		v->key_type_out = 1;
	} else if (e->key_type == 0) {
		/* Nothing asked: take what the STS says, but only what we can hold. */
		if (r->proof_kind == IPC_PROOF_COMPUTED_KEY || r->ck_algorithm) {
			snprintf(err, errlen, "the STS sent a ComputedKey proof token, but the request carried no entropy");
			return -1;
		}
		if (r->proof_kind == IPC_PROOF_ENCRYPTED_KEY) {
			snprintf(err, errlen, "the STS sent an EncryptedKey proof token: not supported yet");
			return -1;
		}
		if (r->proof_kind == IPC_PROOF_BINARY_SECRET) {
			if (r->key_type && !key_type_is(r->key_type, "SymmetricKey")) {
				snprintf(err, errlen, "the STS sent a BinarySecret proof token with key type %s", r->key_type);
				return -1;
			}
			v->key_type_out = 2;
			v->proof_withheld = true;
		} else if (r->key_type && key_type_is(r->key_type, "PublicKey")) {
			v->key_type_out = 3;
		} else if (r->key_type && key_type_is(r->key_type, "SymmetricKey")) {
			snprintf(err, errlen, "the STS issued a symmetric-key token without a proof token");
			return -1;
		} else if (!r->key_type || key_type_is_bearer(r->key_type)) {
			v->key_type_out = 1;
		} else {
			snprintf(err, errlen, "the STS issued unknown key type %s", r->key_type);
			return -1;
		}
	} else {
		snprintf(err, errlen, "not supported yet: checking key type %u", e->key_type);
		return -1;
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
