#include "federation.h"

#include <stdio.h>
#include <string.h>

#include "hresult.h"

int federation_token(const struct broker_config *cfg, const struct profile *p, int64_t deadline,
                     struct fed_token **out, struct request_failure *f)
{
	(void)cfg;
	(void)deadline;
	*out = NULL;
	memset(f, 0, sizeof *f);
	f->hr = (uint32_t)E_NOTIMPL;
	snprintf(f->msg, sizeof f->msg, "profile %s: auth = issued_token is not implemented yet", p->name);
	return -1;
}

const struct wssec_token *federation_wssec(const struct fed_token *t)
{
	(void)t;
	return NULL;
}

void federation_release(struct fed_token *t) { (void)t; }

void federation_flush(void) {}
