/* libFuzzer target: a worker's answer as the broker reads it. */
#include "ipc.h"
#include "wire.h"

#include <sodium.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Proof material is decoded into sodium_malloc'd memory, as in the broker,
 * which also calls sodium_init first. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

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
