/* parse: turn one untrusted STS reply into a typed wt_result.
 *
 * Runs inside the sandboxed worker; uses libxml2 only (plus libsodium's
 * base64 decoder).  Hostile-XML rules: any DOCTYPE is refused before the
 * parser reads its internal subset, entity references other than the five
 * predefined ones are refused, no network, no XInclude processing, and the
 * limits in wt_parse_req.limits (depth, attributes, elements, text length)
 * are enforced while parsing, so a hostile reply costs bounded time and
 * memory and ends in a precise error.
 *
 * Byte-exactness: token_xml, attached, unattached, an EncryptedKey proof and
 * a fault Detail are the element's exact bytes from the reply, with the
 * namespace declarations in scope from its ancestors (and not redeclared on
 * the element) inserted into its start tag.  That keeps an enveloped
 * signature inside the token verifiable after extraction.  Exact bytes apply
 * to UTF-8 input; UTF-16 (or another declared encoding) is first converted
 * to UTF-8 and the bytes are those of the converted document.
 */
#ifndef WSTRUST_WORKER_PARSE_H
#define WSTRUST_WORKER_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Parse one untrusted STS reply.  Always fills *out (zeroed first): kind
 * TOKEN, FAULT, or ERROR with error_code (enum ipc_parse_error) and a
 * precise `error` string.  Never crashes, never exceeds the limits in
 * req->limits.  Returns 0 for TOKEN/FAULT, -1 for ERROR.  Results are on the
 * plain heap (out->secure = false); free them with wt_result_free.
 *
 * Details of the contract:
 * - soap_version 0 means a bare RSTR/RSTRC root (WS-Federation wresult).
 * - req->trust_version nonzero and the body's differs: MISMATCH.
 *   req->soap_version nonzero and a token reply's envelope differs: MISMATCH
 *   (a fault is returned whatever its SOAP version).
 * - req->relates_to set and a reply-RelatesTo header present but different:
 *   MISMATCH; absent is accepted (the broker decides).
 * - req->context set: the RSTR with that Context is chosen; if none matches
 *   and some RSTR carries a different Context: MISMATCH.
 * - Fault codes are "{namespace}local" (plain "local" for a QName without
 *   a namespace); absent code/reason stay NULL.
 * - Strings are trimmed of XML whitespace where they are URIs, ids, dates or
 *   numbers; base64 may contain whitespace anywhere.
 * - A zero limit means the default (WT_DEFAULT_LIMITS); max_nodes counts
 *   elements, comments and processing instructions.  Fixed limits besides:
 *   256 namespace declarations in scope (libxml2 resolves each prefix by a
 *   linear walk over them), and the first well-formedness error ends the
 *   parse (libxml2 2.9 would otherwise resynchronise past our attribute
 *   checks).
 * - Accepted encodings: UTF-8 (up to two leading BOMs), UTF-16 LE/BE, and a
 *   declared ISO-8859-1 or US-ASCII; others need iconv (file access, which the
 *   sandbox forbids) and are refused.
 * - Each thread keeps one libxml2 parser context, reused while parses
 *   succeed and dropped after any error.  Call xmlInitParser() before
 *   confinement. */
int wt_parse_reply(const struct wt_parse_req *req, struct wt_result *out);

/* xsd:dateTime -> WS_DATETIME ticks (100 ns since 0001-01-01T00:00:00Z,
 * UTC), any TZ offset or Z, fractional seconds up to 7 digits kept (more
 * truncated); -1 on anything malformed or out of range.  No timezone = UTC.
 * The string must not carry surrounding whitespace (callers trim). */
int wt_parse_datetime(const char *s, size_t len, uint64_t *ticks);

#endif
