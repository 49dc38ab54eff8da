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
void federation_flush(void);   /* on reload and exit: wipe every cached token */

#endif
