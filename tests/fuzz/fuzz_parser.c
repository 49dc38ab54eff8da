/* libFuzzer target: one untrusted STS reply through the worker's parser,
 * with the default limits.  Beyond "no crash, no leak", it asserts the
 * parser's output always fits the broker <-> worker wire format: the result
 * encodes and decodes back to the same kind. */
#include <stdlib.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wt_parse_req req = {
		.reply = data,
		.reply_len = size,
		.http_status = 200,
		.limits = WT_DEFAULT_LIMITS,
	};
	struct wt_result r;
	int rc = wt_parse_reply(&req, &r);
	if ((rc == 0) != (r.kind == IPC_RESULT_TOKEN || r.kind == IPC_RESULT_FAULT))
		abort();
	if (r.kind == IPC_RESULT_ERROR && (!r.error || !r.error_code))
		abort();

	struct ipc_builder b = { 0 };
	if (wt_result_encode(&r, &b) != 0)
		abort(); /* the parser produced something the wire cannot carry */
	struct ipc_msg m;
	struct wt_result back;
	char err[256];
	if (ipc_decode(b.buf, b.len, &m, err, sizeof(err)) != 0 ||
	    wt_result_decode(&m, &back, false, err, sizeof(err)) != 0 || back.kind != r.kind)
		abort();
	wt_result_free(&back);
	ipc_builder_free(&b);
	wt_result_free(&r);
	return 0;
}
