/* federation: the issued-token binding's first hop.
 *
 * A profile with auth = issued_token presents a token obtained from its
 * issuer_profile.  The broker obtains that token itself (request_obtain) and
 * caches it, with its proof key, for its lifetime (minus a margin), so a
 * second request reuses it. */
#ifndef WSTRUST_BROKER_FEDERATION_H
#define WSTRUST_BROKER_FEDERATION_H

#include "broker_config.h"
#include "request.h"
#include "wssec.h"

struct fed_token;   /* a cached issued token; reference counted */

/* The token to present for profile p (p->auth == AUTH_ISSUED_TOKEN): cached
 * or freshly obtained.  0 and *out (release with federation_release), or -1
 * with *f filled (the issuer STS's error, with context). */
int federation_token(const struct broker_config *cfg, const struct profile *p, int64_t deadline,
                     struct fed_token **out, struct request_failure *f);
const struct wssec_token *federation_wssec(const struct fed_token *t);
void federation_release(struct fed_token *t);
void federation_flush(void);   /* on reload and exit: wipe every cached token (not presets) */

/* Embedded mode (WS_XML_TOKEN_MESSAGE_SECURITY_BINDING): the caller's own
 * token becomes profile p's presented token, in place of one obtained from
 * an issuer_profile; federation_token then returns it for every request, so
 * request_obtain and wssec_apply present it exactly like an obtained one.
 * p->auth must be AUTH_ISSUED_TOKEN, p->issuer NULL.
 *
 * xml: the token element, copied byte-exact into secure memory (a bearer
 * token is a credential too).  key: its symmetric proof key (copied into
 * secure memory), or NULL.  The key type follows: a key -> symmetric
 * (HMAC-SHA256 proof of possession; the token must be a SAML 1.1/2.0
 * holder-of-key assertion); no key -> bearer, or asymmetric when the token
 * is a SAML holder-of-key assertion and p has a client_key (the
 * certificate credential).  valid_till: WS_DATETIME ticks, 0 = unknown;
 * the earlier of it and the assertion's Conditions NotOnOrAfter counts.
 * Refused when expired or unusable: -1, *hr and a message for the caller.
 * Wiped by federation_preset_clear. */
int federation_preset(const struct broker_config *cfg, const struct profile *p, const uint8_t *xml, size_t xml_len,
                      const uint8_t *key, size_t key_len, uint64_t valid_till, uint32_t *hr, char *err,
                      size_t errlen);
void federation_preset_clear(void);   /* wipe every preset token (embedded broker's exit) */

#endif
