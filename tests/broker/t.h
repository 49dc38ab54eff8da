/* Minimal test helpers: a failed CHECK prints what and where, exits 1. */
#ifndef WSTRUST_TESTS_BROKER_T_H
#define WSTRUST_TESTS_BROKER_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks;

#define CHECK(cond, ...)                                                              \
	do {                                                                            \
		t_checks++;                                                             \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
			exit(1);                                                        \
		}                                                                       \
	} while (0)

#define CHECK_STREQ(a, b) CHECK(strcmp((a), (b)) == 0, "got \"%s\", expected \"%s\"", (a), (b))
#define CHECK_CONTAINS(hay, needle) \
	CHECK(strstr((hay), (needle)) != NULL, "\"%s\" does not contain \"%s\"", (hay), (needle))

#define T_DONE(name) \
	do { printf("%s: %d checks passed\n", (name), t_checks); return 0; } while (0)

#endif
