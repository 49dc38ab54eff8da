/* Client request decoding: what is refused before any work, and how. */
#include "broker_request.h"
#include "t.h"

static struct ipc_builder b;
static uint8_t frame[1 << 16];
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
	ipc_put_u32(&b, T_KEY_TYPE, 2);
	refused("not supported yet: ISSUED_TOKEN_KEY_TYPE symmetric");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_TYPE, 9);
	refused("ISSUED_TOKEN_KEY_TYPE 9 is not a WS_SECURITY_KEY_TYPE");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_KEY_SIZE, 256);
	refused("ISSUED_TOKEN_KEY_SIZE needs a symmetric key type");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_ENTROPY_MODE, 2);
	refused("ISSUED_TOKEN_KEY_ENTROPY needs a symmetric key type");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_REQUEST_ACTION, 2);
	refused("not supported yet: REQUEST_ACTION NEW_CONTEXT");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_bytes(&b, T_LOCAL_PARAMS, "<x/>", 4);
	refused("not supported yet: LOCAL_REQUEST_PARAMETERS");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_bytes(&b, T_EXISTING_TOKEN, "<x/>", 4);
	refused("not supported yet: EXISTING_TOKEN");
	begin();
	ipc_put_str(&b, T_PROFILE, "a");
	ipc_put_u32(&b, T_MAX_REPLY, 0);
	refused("quota of 0 bytes");

	ipc_builder_free(&b);
	T_DONE("test_request_decode");
}
