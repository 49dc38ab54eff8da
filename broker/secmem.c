#include "secmem.h"

#include <sodium.h>
#include <string.h>

void secret_free(struct secret *s)
{
	if (s->data)
		sodium_free(s->data);   /* sodium_free wipes before unmapping */
	s->data = NULL;
	s->len = 0;
}

int secret_set(struct secret *s, const void *p, size_t len)
{
	secret_free(s);
	s->data = sodium_malloc(len + 1);
	if (!s->data)
		return -1;
	if (len)
		memcpy(s->data, p, len);
	s->data[len] = '\0';
	s->len = len;
	return 0;
}

static bool secbuf_grow(struct secbuf *b, size_t need)
{
	if (need <= b->cap)
		return true;
	if (b->max && need > b->max)
		return false;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (b->max && ncap > b->max)
		ncap = b->max;
	uint8_t *n = sodium_malloc(ncap);
	if (!n)
		return false;
	if (b->len)
		memcpy(n, b->data, b->len);
	if (b->data)
		sodium_free(b->data);
	b->data = n;
	b->cap = ncap;
	return true;
}

void secbuf_init(struct secbuf *b, size_t initial, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
	if (initial && !secbuf_grow(b, initial))
		b->failed = true;
}

void secbuf_append(struct secbuf *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (n > SIZE_MAX - b->len - 1 || !secbuf_grow(b, b->len + n + 1)) {
		b->failed = true;
		return;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;   /* always NUL-terminated, not counted */
}

void secbuf_puts(struct secbuf *b, const char *s)
{
	secbuf_append(b, s, strlen(s));
}

void secbuf_free(struct secbuf *b)
{
	if (b->data)
		sodium_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
