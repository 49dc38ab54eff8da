/* UTF-16 (WS_STRING) <-> UTF-8 (the IPC wire and the broker). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *utf16_to_utf8(const WCHAR *s, size_t n)
{
	if (n > SIZE_MAX / 3 - 1) {
		errno = EOVERFLOW;
		return NULL;
	}
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint16_t)s[i];
		if (c >= 0xD800 && c <= 0xDBFF) {
			if (i + 1 >= n || (uint16_t)s[i + 1] < 0xDC00 || (uint16_t)s[i + 1] > 0xDFFF)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + ((uint16_t)s[i + 1] - 0xDC00);
			i++;
		} else if (c >= 0xDC00 && c <= 0xDFFF) {
			goto bad;
		}
		if (c == 0)
			goto bad;
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xC0 | (c >> 6));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xE0 | (c >> 12));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			out[o++] = (char)(0xF0 | (c >> 18));
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = '\0';
	return out;
bad:
	/* may be a password's prefix */
	explicit_bzero(out, o);
	free(out);
	errno = EILSEQ;
	return NULL;
}

int utf8_to_utf16(const char *s, size_t n, WCHAR **out, size_t *outn)
{
	const uint8_t *p = (const uint8_t *)s;
	WCHAR *w = malloc((n + 1) * sizeof(WCHAR));
	if (!w)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = p[i];
		unsigned extra;
		uint32_t min;
		if (c < 0x80) { extra = 0; min = 0; }
		else if ((c & 0xE0) == 0xC0) { extra = 1; c &= 0x1F; min = 0x80; }
		else if ((c & 0xF0) == 0xE0) { extra = 2; c &= 0x0F; min = 0x800; }
		else if ((c & 0xF8) == 0xF0) { extra = 3; c &= 0x07; min = 0x10000; }
		else goto bad;
		for (unsigned k = 1; k <= extra; k++) {
			if (i + k >= n || (p[i + k] & 0xC0) != 0x80)
				goto bad;
			c = (c << 6) | (p[i + k] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			goto bad;
		i += extra + 1;
		if (c >= 0x10000) {
			c -= 0x10000;
			w[o++] = (WCHAR)(0xD800 + (c >> 10));
			w[o++] = (WCHAR)(0xDC00 + (c & 0x3FF));
		} else {
			w[o++] = (WCHAR)c;
		}
	}
	w[o] = 0;
	*out = w;
	*outn = o;
	return 0;
bad:
	free(w);
	errno = EILSEQ;
	return -1;
}
