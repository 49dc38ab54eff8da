/* libFuzzer target: a worker's answer as the broker reads it. */
#include "ipc.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m;
	char err[256];
	if (ipc_decode(data, size, &m, err, sizeof(err)) != 0)
		return 0;
	struct wt_result r;
	(void)wt_result_decode(&m, &r, true, err, sizeof(err));
	wt_result_free(&r);
	return 0;
}
