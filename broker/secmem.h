/* secmem: buffers for secrets, in libsodium guarded memory.
 *
 * Everything that holds a password, a key, or a message that embeds one
 * lives here: sodium_malloc'd (guard pages, locked while RLIMIT_MEMLOCK
 * allows), wiped when it grows and when it is freed. */
#ifndef WSTRUST_BROKER_SECMEM_H
#define WSTRUST_BROKER_SECMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A secret value (password ...).  data is NUL-terminated for convenience,
 * len excludes the NUL.  A zeroed struct is "no secret". */
struct secret {
	char *data;
	size_t len;
};

void secret_free(struct secret *s);                         /* wipes; safe on zeroed */
int secret_set(struct secret *s, const void *p, size_t len); /* copy into secure memory */

/* A growable byte buffer in secure memory.  Failures are sticky: check
 * `failed` once at the end. */
struct secbuf {
	uint8_t *data;
	size_t len, cap;
	size_t max;        /* append fails past this; 0 = no limit */
	bool failed;
};

void secbuf_init(struct secbuf *b, size_t initial, size_t max);
void secbuf_append(struct secbuf *b, const void *p, size_t n);
void secbuf_puts(struct secbuf *b, const char *s);
void secbuf_free(struct secbuf *b);                         /* wipes; safe on zeroed */

#endif
