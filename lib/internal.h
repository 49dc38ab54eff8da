/* libwstrust internals shared by the files of lib/. */
#ifndef WSTRUST_LIB_INTERNAL_H
#define WSTRUST_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wstrust/webservices.h>

/* Everything else in the library is hidden (-fvisibility=hidden); the
 * version script keeps the export list to Ws* and wstrust_*. */
#define WS_EXPORT __attribute__((visibility("default")))

/* ---- error object ---- */

/* Record a failure in `error` (may be NULL): the strings given become
 * indexes 0.. (most specific first), before any already there.  Returns hr. */
HRESULT err_set(WS_ERROR *error, HRESULT hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Record several strings at once, most specific first. */
HRESULT err_set_list(WS_ERROR *error, HRESULT hr, char *const *strings, unsigned n);
void err_set_original(WS_ERROR *error, HRESULT original);

/* ---- UTF-16 <-> UTF-8 ---- */

/* Strict: unpaired surrogates and embedded NULs are refused (NULL, errno
 * EILSEQ); the result is malloc'd and NUL-terminated. */
char *utf16_to_utf8(const WCHAR *s, size_t n);
/* Invalid UTF-8 (overlong, surrogates, > U+10FFFF) is refused.  *out malloc'd. */
int utf8_to_utf16(const char *s, size_t n, WCHAR **out, size_t *outn);

/* ---- heap ---- */

void *heap_alloc(WS_HEAP *heap, size_t size, WS_ERROR *error, HRESULT *hr);

/* ---- XML buffers ----
 * The library parses no XML: a buffer is the bytes it was made from.  A
 * buffer lives on a heap (WsCreateXmlBuffer, WsReadXmlBuffer) or inside a
 * token (owned = false). */
struct _WS_XML_BUFFER {
	uint8_t *bytes;
	size_t len;
};

/* ---- tokens ---- */

struct token_fields {
	const uint8_t *xml; size_t xml_len;
	const char *token_type;
	uint32_t key_type;
	uint64_t valid_from, valid_till;
	const uint8_t *attached; size_t attached_len;
	const uint8_t *unattached; size_t unattached_len;
	const uint8_t *proof; size_t proof_len;
	bool proof_withheld;
};

/* Copies everything; NULL on OOM. */
WS_SECURITY_TOKEN *token_new(const struct token_fields *f);
/* The token's own XML (for EXISTING_TOKEN). */
void token_xml(const WS_SECURITY_TOKEN *t, const uint8_t **xml, size_t *len);

/* Default request deadline when the channel sets none (ms). */
#define WSTRUST_DEFAULT_TIMEOUT_MS 30000u

#endif
