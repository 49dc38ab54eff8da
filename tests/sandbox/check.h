/* A tiny assert for the sandbox tests: says what failed, where, and exits 1. */
#ifndef WSTRUST_TESTS_SANDBOX_CHECK_H
#define WSTRUST_TESTS_SANDBOX_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_count;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		check_count++;                                                        \
		if (!(cond)) {                                                        \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

#endif
