/* transport: one SOAP POST to the STS over libcurl, bounded in size and time.
 *
 * TLS 1.2+ verified against the profile's CA file with host name checking;
 * https only (http only when the profile allows it AND the host is
 * loopback); no redirects; no proxy unless configured (the environment's
 * http_proxy is ignored); the reply is collected in secure memory (it may
 * carry proof keys) and refused past max_reply bytes. */
#ifndef WSTRUST_BROKER_TRANSPORT_H
#define WSTRUST_BROKER_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "secmem.h"

struct profile;

struct http_request {
	const struct profile *profile;   /* TLS client cert, pin, Basic credentials */
	const char *url;
	const uint8_t *body;       /* not copied (CURLOPT_POSTFIELDS) */
	size_t body_len;
	uint32_t soap_version;     /* 11: text/xml + SOAPAction; 12: application/soap+xml; action= */
	const char *action;
	const char *ca_file;
	bool allow_insecure_http;
	const char *proxy;         /* NULL: none */
	size_t max_reply;          /* bytes */
	int64_t deadline_ms;       /* ipc_now_ms() clock */
};

struct http_reply {
	struct secbuf body;
	long status;
};

enum transport_status {
	TRANSPORT_OK = 0,
	TRANSPORT_BAD_URL,         /* refused before sending (scheme, host) */
	TRANSPORT_UNREACHABLE,     /* DNS, connect */
	TRANSPORT_TLS,             /* certificate not trusted, host name mismatch, handshake */
	TRANSPORT_TIMEOUT,
	TRANSPORT_TOO_LARGE,       /* reply over max_reply */
	TRANSPORT_FAILED,          /* anything else (connection reset, protocol error ...) */
};

int transport_global_init(void);   /* once, before threads */
enum transport_status transport_post(const struct http_request *rq, struct http_reply *rp, char *err,
                                     size_t errlen);
void http_reply_free(struct http_reply *rp);

#endif
