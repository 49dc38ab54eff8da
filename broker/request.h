/* request: one IPC_REQ_TOKEN, from decoded frame to answer frame.
 *
 * resolve profile (name or endpoint) -> policy (audited) -> validate the
 * parameters -> write the RST -> POST it -> parse the reply in a worker ->
 * check the result against the request -> IPC_ANS_TOKEN or IPC_ANS_ERROR. */
#ifndef WSTRUST_BROKER_REQUEST_H
#define WSTRUST_BROKER_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker_config.h"
#include "ipc.h"
#include "policy.h"

/* Build an IPC_ANS_ERROR: hr, up to two strings (most specific first; s2
 * may be NULL), and whether the client's channel is now FAULTED. */
void answer_error(struct ipc_builder *b, uint32_t hr, bool faulted, const char *s1, const char *s2);

/* Handle one decoded request (m->type == IPC_REQ_TOKEN).  ans is begun and
 * filled here; the caller finishes and sends it. */
void request_handle(const struct broker_config *cfg, uid_t broker_uid, const struct policy_peer *peer,
                    const struct ipc_msg *m, struct ipc_builder *ans);

#endif
