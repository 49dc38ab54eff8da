#include "wssec.h"

#include <stdio.h>

int wssec_apply(const struct profile *p, const struct wssec_token *issued, struct secbuf *envelope, char *err,
                size_t errlen)
{
	(void)issued;
	(void)envelope;
	if (p->auth == AUTH_USERNAME || p->auth == AUTH_NONE)
		return 0;
	snprintf(err, errlen, "profile %s: this auth binding is not implemented yet", p->name);
	return -1;
}
