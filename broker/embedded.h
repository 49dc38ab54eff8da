/* embedded: `wstrustd --embedded FD`, the private broker a libwstrust
 * channel starts for itself (embedded mode, see include/wstrust/webservices.h
 * and docs/API.md).
 *
 * FD is one end of a socketpair whose other end is the channel.  The first
 * frame is IPC_EMB_SETUP: the STS endpoint, the envelope version, the trust
 * anchors and the caller's credentials -- the only way they reach this
 * process.  From them the broker builds an in-memory configuration with one
 * profile ("embedded"; an XML token credential becomes its presented token:
 * auth = issued_token without issuer_profile, see federation_preset),
 * answers IPC_EMB_READY (or IPC_ANS_ERROR and exits),
 * then serves token requests on FD alone, releasing symmetric proof keys to
 * its caller, until FD closes. */
#ifndef WSTRUST_BROKER_EMBEDDED_H
#define WSTRUST_BROKER_EMBEDDED_H

#include <stddef.h>

#include "broker_config.h"
#include "ipc.h"

#define EMBEDDED_SETUP_MS 30000   /* to receive the setup frame */
#define EMBEDDED_PROFILE "embedded"

/* Run the private broker on fd; returns the process exit status. */
int embedded_main(int fd);

/* Build the one-profile config from a decoded IPC_EMB_SETUP (m->type
 * checked by the caller).  0 and *out, or -1 with an HRESULT and a message
 * for the caller.  Exposed for tests. */
int embedded_config(const struct ipc_msg *m, struct broker_config **out, uint32_t *hr, char *err, size_t errlen);

/* Before each request: the private profile follows the trust version the
 * caller asks for (WsRequestSecurityToken's TRUST_VERSION property; a
 * daemon profile has one fixed version instead). */
void embedded_prepare(struct broker_config *cfg, const struct ipc_msg *m);

#endif
