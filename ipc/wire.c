/* Encoding of the broker <-> worker records (wire.h). */
#include "wire.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wt_blob_set(struct wt_blob *b, const void *p, size_t len, bool secure)
{
	b->data = NULL;
	b->len = 0;
	if (!p)
		return 0;
	/* +1: never a zero-size allocation, and text blobs stay NUL-terminated. */
	uint8_t *d = secure ? sodium_malloc(len + 1) : malloc(len + 1);
	if (!d)
		return -1;
	if (len)
		memcpy(d, p, len);
	d[len] = 0;
	b->data = d;
	b->len = len;
	return 0;
}

void wt_blob_free(struct wt_blob *b, bool secure)
{
	if (b->data) {
		if (secure)
			sodium_free(b->data);
		else
			free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

static void put_blob(struct ipc_builder *b, uint16_t tag, const struct wt_blob *x)
{
	if (x->data)
		ipc_put_bytes(b, tag, x->data, x->len);
}

int wt_parse_req_encode(const struct wt_parse_req *r, struct ipc_builder *b)
{
	ipc_begin(b, IPC_W_PARSE);
	ipc_put_bytes(b, T_REPLY, r->reply, r->reply_len);
	ipc_put_u32(b, T_HTTP_STATUS, r->http_status);
	ipc_put_u32(b, T_EXPECT_TRUST, r->trust_version);
	ipc_put_u32(b, T_EXPECT_SOAP, r->soap_version);
	ipc_put_str(b, T_EXPECT_RELATES, r->relates_to);
	ipc_put_str(b, T_EXPECT_CONTEXT, r->context);
	ipc_put_u32(b, T_MAX_DEPTH, r->limits.max_depth);
	ipc_put_u32(b, T_MAX_TEXT, r->limits.max_text);
	ipc_put_u32(b, T_MAX_ATTRS, r->limits.max_attrs);
	ipc_put_u32(b, T_MAX_NODES, r->limits.max_nodes);
	return ipc_finish(b);
}

int wt_parse_req_decode(const struct ipc_msg *m, struct wt_parse_req *r, char **relates_out, char **context_out)
{
	*relates_out = *context_out = NULL;
	if (m->type != IPC_W_PARSE)
		return -1;
	memset(r, 0, sizeof(*r));
	r->limits = WT_DEFAULT_LIMITS;
	if (!ipc_get_bytes(m, T_REPLY, &r->reply, &r->reply_len))
		return -1;
	ipc_get_u32(m, T_HTTP_STATUS, &r->http_status);
	ipc_get_u32(m, T_EXPECT_TRUST, &r->trust_version);
	ipc_get_u32(m, T_EXPECT_SOAP, &r->soap_version);
	ipc_get_u32(m, T_MAX_DEPTH, &r->limits.max_depth);
	ipc_get_u32(m, T_MAX_TEXT, &r->limits.max_text);
	ipc_get_u32(m, T_MAX_ATTRS, &r->limits.max_attrs);
	ipc_get_u32(m, T_MAX_NODES, &r->limits.max_nodes);
	if (ipc_has(m, T_EXPECT_RELATES) && !(*relates_out = ipc_dup_str(m, T_EXPECT_RELATES)))
		return -1;
	if (ipc_has(m, T_EXPECT_CONTEXT) && !(*context_out = ipc_dup_str(m, T_EXPECT_CONTEXT))) {
		free(*relates_out);
		*relates_out = NULL;
		return -1;
	}
	r->relates_to = *relates_out;
	r->context = *context_out;
	return 0;
}

int wt_result_encode(const struct wt_result *r, struct ipc_builder *b)
{
	ipc_begin(b, IPC_W_RESULT);
	ipc_put_u32(b, T_RESULT_KIND, r->kind);
	ipc_put_u32(b, T_R_TRUST_VERSION, r->trust_version);
	ipc_put_u32(b, T_R_SOAP_VERSION, r->soap_version);
	ipc_put_str(b, T_R_RELATES_TO, r->relates_to);
	switch (r->kind) {
	case IPC_RESULT_TOKEN:
		put_blob(b, T_R_TOKEN_XML, &r->token_xml);
		ipc_put_str(b, T_R_TOKEN_TYPE, r->token_type);
		ipc_put_str(b, T_R_KEY_TYPE, r->key_type);
		if (r->key_size)
			ipc_put_u32(b, T_R_KEY_SIZE, r->key_size);
		if (r->created)
			ipc_put_u64(b, T_R_CREATED, r->created);
		if (r->expires)
			ipc_put_u64(b, T_R_EXPIRES, r->expires);
		ipc_put_str(b, T_R_APPLIES_TO, r->applies_to);
		put_blob(b, T_R_ATTACHED, &r->attached);
		put_blob(b, T_R_UNATTACHED, &r->unattached);
		ipc_put_u32(b, T_R_PROOF_KIND, r->proof_kind);
		put_blob(b, T_R_PROOF_DATA, &r->proof_data);
		ipc_put_str(b, T_R_CK_ALGORITHM, r->ck_algorithm);
		put_blob(b, T_R_ENTROPY, &r->entropy);
		put_blob(b, T_R_ENTROPY_ENC, &r->entropy_enc);
		ipc_put_str(b, T_R_CONTEXT, r->context);
		ipc_put_str(b, T_R_SCT_ID, r->sct_id);
		ipc_put_str(b, T_R_SCT_INSTANCE, r->sct_instance);
		break;
	case IPC_RESULT_FAULT:
		ipc_put_str(b, T_R_FAULT_CODE, r->fault_code);
		for (unsigned i = 0; i < r->n_subcodes && i < WT_MAX_SUBCODES; i++)
			ipc_put_str(b, T_R_FAULT_SUBCODE, r->fault_subcodes[i]);
		ipc_put_str(b, T_R_FAULT_REASON, r->fault_reason);
		put_blob(b, T_R_FAULT_DETAIL, &r->fault_detail);
		break;
	default:
		ipc_put_u32(b, T_R_ERROR_CODE, r->error_code);
		ipc_put_str(b, T_R_ERROR, r->error ? r->error : "unspecified parse error");
		break;
	}
	return ipc_finish(b);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A string field: absent is fine (NULL), present but unallocatable is not. */
static int get_str(const struct ipc_msg *m, uint16_t tag, char **out)
{
	*out = NULL;
	if (!ipc_has(m, tag))
		return 0;
	return (*out = ipc_dup_str(m, tag)) ? 0 : -1;
}

static int get_blob(const struct ipc_msg *m, uint16_t tag, struct wt_blob *out, bool secure)
{
	const uint8_t *p;
	size_t n;
	if (!ipc_get_bytes(m, tag, &p, &n))
		return 0;
	return wt_blob_set(out, p, n, secure);
}

int wt_result_decode(const struct ipc_msg *m, struct wt_result *r, bool secure, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->secure = secure;
	if (m->type != IPC_W_RESULT)
		return fail(err, errlen, "message 0x%04x is not a result", m->type);
	ipc_get_u32(m, T_RESULT_KIND, &r->kind);
	ipc_get_u32(m, T_R_TRUST_VERSION, &r->trust_version);
	ipc_get_u32(m, T_R_SOAP_VERSION, &r->soap_version);
	if (r->trust_version > 2 || (r->soap_version != 0 && r->soap_version != 11 && r->soap_version != 12))
		return fail(err, errlen, "result carries an impossible trust/SOAP version");
	int bad = get_str(m, T_R_RELATES_TO, &r->relates_to);
	switch (r->kind) {
	case IPC_RESULT_TOKEN:
		if (!ipc_has(m, T_R_TOKEN_XML))
			return fail(err, errlen, "token result without token XML");
		bad |= get_blob(m, T_R_TOKEN_XML, &r->token_xml, false);
		bad |= get_str(m, T_R_TOKEN_TYPE, &r->token_type);
		bad |= get_str(m, T_R_KEY_TYPE, &r->key_type);
		ipc_get_u32(m, T_R_KEY_SIZE, &r->key_size);
		ipc_get_u64(m, T_R_CREATED, &r->created);
		ipc_get_u64(m, T_R_EXPIRES, &r->expires);
		bad |= get_str(m, T_R_APPLIES_TO, &r->applies_to);
		bad |= get_blob(m, T_R_ATTACHED, &r->attached, false);
		bad |= get_blob(m, T_R_UNATTACHED, &r->unattached, false);
		ipc_get_u32(m, T_R_PROOF_KIND, &r->proof_kind);
		if (r->proof_kind > IPC_PROOF_ENCRYPTED_KEY)
			return fail(err, errlen, "unknown proof token kind %u", r->proof_kind);
		bad |= get_blob(m, T_R_PROOF_DATA, &r->proof_data, secure);
		bad |= get_str(m, T_R_CK_ALGORITHM, &r->ck_algorithm);
		bad |= get_blob(m, T_R_ENTROPY, &r->entropy, secure);
		bad |= get_blob(m, T_R_ENTROPY_ENC, &r->entropy_enc, secure);
		if (r->entropy.data && r->entropy_enc.data)
			return fail(err, errlen, "token result carries issuer entropy both in clear and encrypted");
		bad |= get_str(m, T_R_CONTEXT, &r->context);
		bad |= get_str(m, T_R_SCT_ID, &r->sct_id);
		bad |= get_str(m, T_R_SCT_INSTANCE, &r->sct_instance);
		break;
	case IPC_RESULT_FAULT: {
		bad |= get_str(m, T_R_FAULT_CODE, &r->fault_code);
		unsigned pos = 0;
		const uint8_t *p;
		size_t n;
		while (ipc_next(m, T_R_FAULT_SUBCODE, &pos, &p, &n)) {
			if (r->n_subcodes == WT_MAX_SUBCODES)
				return fail(err, errlen, "more than %d fault subcodes", WT_MAX_SUBCODES);
			char *s = malloc(n + 1);
			if (!s)
				return fail(err, errlen, "out of memory");
			memcpy(s, p, n);
			s[n] = 0;
			r->fault_subcodes[r->n_subcodes++] = s;
		}
		bad |= get_str(m, T_R_FAULT_REASON, &r->fault_reason);
		bad |= get_blob(m, T_R_FAULT_DETAIL, &r->fault_detail, false);
		break;
	}
	case IPC_RESULT_ERROR:
		ipc_get_u32(m, T_R_ERROR_CODE, &r->error_code);
		bad |= get_str(m, T_R_ERROR, &r->error);
		if (!r->error)
			return fail(err, errlen, "error result without a reason");
		break;
	default:
		return fail(err, errlen, "unknown result kind %u", r->kind);
	}
	if (bad)
		return fail(err, errlen, "out of memory decoding the result");
	return 0;
}

void wt_result_free(struct wt_result *r)
{
	bool secure = r->secure;
	wt_blob_free(&r->token_xml, false);
	wt_blob_free(&r->attached, false);
	wt_blob_free(&r->unattached, false);
	wt_blob_free(&r->fault_detail, false);
	if (!secure) {
		/* Worker side: still wipe what was proof material. */
		if (r->proof_data.data)
			sodium_memzero(r->proof_data.data, r->proof_data.len);
		if (r->entropy.data)
			sodium_memzero(r->entropy.data, r->entropy.len);
		if (r->entropy_enc.data)
			sodium_memzero(r->entropy_enc.data, r->entropy_enc.len);
	}
	wt_blob_free(&r->proof_data, secure);
	wt_blob_free(&r->entropy, secure);
	wt_blob_free(&r->entropy_enc, secure);
	free(r->token_type);
	free(r->key_type);
	free(r->applies_to);
	free(r->ck_algorithm);
	free(r->relates_to);
	free(r->context);
	free(r->sct_id);
	free(r->sct_instance);
	free(r->fault_code);
	for (unsigned i = 0; i < r->n_subcodes; i++)
		free(r->fault_subcodes[i]);
	free(r->fault_reason);
	free(r->error);
	memset(r, 0, sizeof(*r));
}
