/* libwstrust internals shared by the files of lib/. */
#ifndef WSTRUST_LIB_INTERNAL_H
#define WSTRUST_LIB_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
/* Its symmetric key (len 0: none) and expiry (ticks, 0: unknown), for the
 * XML token binding in embedded mode. */
void token_proof(const WS_SECURITY_TOKEN *t, const uint8_t **key, size_t *len);
uint64_t token_valid_till(const WS_SECURITY_TOKEN *t);

/* ---- embedded mode (embedded.c) ---- */

struct emb_creds;
/* The credentials in sd, copied (secrets into locked memory); *out NULL
 * when it carries none. */
HRESULT emb_creds_from_description(const WS_SECURITY_DESCRIPTION *sd, struct emb_creds **out, WS_ERROR *error);
void emb_creds_free(struct emb_creds *c);   /* wipes */
/* Start the private broker and hand it the credentials: *credsp is wiped
 * and freed (set to NULL) once they were sent, whatever the outcome; kept
 * when nothing was sent (the broker could not be started). */
HRESULT emb_start(struct emb_creds **credsp, const char *url, uint32_t soap, const char *ca_file,
                  int64_t deadline, int *fd_out, pid_t *pid_out, WS_ERROR *error);
/* Close the connection and reap the broker. */
void emb_stop(int fd, pid_t pid);

/* Default request deadline when the channel sets none (ms). */
#define WSTRUST_DEFAULT_TIMEOUT_MS 30000u

#endif
