/* libFuzzer target: a client's frame as the broker reads it. */
#include "ipc.h"
#include "broker_request.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m;
	char err[256];
	if (ipc_decode(data, size, &m, err, sizeof(err)) != 0)
		return 0;
	struct token_request req;
	(void)token_request_decode(&m, &req, err, sizeof(err));
	token_request_free(&req);   /* its contract: free on success and failure */
	return 0;
}
