/* rst: writes the WS-Trust RequestSecurityToken message (never parses).
 *
 * The envelope is produced with libxml2's xmlTextWriter.  Secrets (the
 * password, the requestor entropy) never enter libxml2's buffers: the writer
 * emits a random placeholder for each, and the final message is assembled in
 * secure memory as prefix + escaped secret + suffix.  Only the assembled
 * message (struct rst_msg.body) is sent.
 *
 * Every shape is written down, with examples, in docs/RST.md:
 *   trust_version  1 = Feb 2005 (ns http://schemas.xmlsoap.org/ws/2005/02/trust)
 *                  2 = 1.3      (ns http://docs.oasis-open.org/ws-sx/ws-trust/200512)
 *   soap_version   11 or 12; WS-Addressing 1.0 headers either way.
 *   request_action ISSUE: T/RST/Issue, RequestType T/Issue.
 *                  NEW_CONTEXT: <SC trust ns>/RST/SCT, RequestType T/Issue,
 *                  TokenType <SC ns>/sct.  RENEW_CONTEXT: <SC trust ns>/RST/SCT/Renew,
 *                  RequestType T/Renew, RenewTarget = wsse:Reference to the
 *                  SCT's Identifier.  (SC Feb 2005 actions live in the 2005
 *                  trust namespace, SC 1.3's in the 1.3 one, as in WCF.)
 *   key_type       bearer: 1.3 Bearer URI per bearer_version / 2005 NoProofKey;
 *                  symmetric: T/SymmetricKey [+ KeySize] [+ Entropy [+ CK/PSHA1]];
 *                  asymmetric: T/PublicKey + UseKey (the client certificate).
 * The header always has wsa:To with wsu:Id "_1" and wsse:Security with
 * wsu:Timestamp wsu:Id "_0" (and the UsernameToken's wsu:Id "_2") so that
 * wssec can sign Timestamp and To by Id. */
#ifndef WSTRUST_BROKER_RST_H
#define WSTRUST_BROKER_RST_H

#include <stdint.h>
#include <time.h>

#include "secmem.h"

#define NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_WSA10 "http://www.w3.org/2005/08/addressing"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WSU "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#define NS_WSP "http://schemas.xmlsoap.org/ws/2004/09/policy"
#define NS_WST13 "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WST2005 "http://schemas.xmlsoap.org/ws/2005/02/trust"
#define WSA_ANONYMOUS NS_WSA10 "/anonymous"
#define WSSE_PASSWORD_TEXT \
	"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
#define NS_WSC2005 "http://schemas.xmlsoap.org/ws/2005/02/sc"
#define NS_WSC13 "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
/* The three WS-Trust 1.3 Bearer spellings (WS_SECURITY_BEARER_KEY_TYPE_VERSION;
 * MS-LWSSP 2.2.2 lists all three): */
#define KEYTYPE_BEARER_13_SPEC "http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer"   /* 1: original spec text */
#define KEYTYPE_BEARER_13_SCHEMA "http://docs.oasis-open.org/wssx/wstrust/200512/Bearer"  /* 2: original schema */
#define KEYTYPE_BEARER_13 NS_WST13 "/Bearer"                                              /* 3: errata 01 (default) */
#define KEYTYPE_NOPROOFKEY_2005 "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"

/* WS_REQUEST_SECURITY_TOKEN_ACTION */
enum { RST_ACTION_ISSUE = 1, RST_ACTION_NEW_CONTEXT = 2, RST_ACTION_RENEW_CONTEXT = 3 };

struct rst_request {
	uint32_t trust_version;     /* 1 or 2 */
	uint32_t soap_version;      /* 11 or 12 */
	uint32_t request_action;    /* RST_ACTION_* */
	uint32_t sc_version;        /* NEW/RENEW_CONTEXT: 1 Feb 2005 (also 0, the default), 2 1.3 */
	const char *to;             /* wsa:To: the STS endpoint */
	const char *applies_to;     /* NULL: no AppliesTo */
	const char *token_type;     /* NULL: no TokenType (the SCT type for NEW/RENEW_CONTEXT) */
	uint32_t key_type;          /* 0: no KeyType; 1 bearer, 2 symmetric, 3 asymmetric */
	uint32_t bearer_version;    /* 1.3 bearer URI: 1, 2, 3 (0 = 3, errata 01) */
	uint32_t key_size;          /* bits; 0: no KeySize (symmetric only) */
	uint32_t entropy_mode;      /* 1 CLIENT_ONLY / 3 COMBINED: Entropy (3: + ComputedKeyAlgorithm) */
	const struct secret *entropy; /* requestor entropy bytes, for entropy modes 1 and 3 */
	const uint8_t *use_key_cert;  /* asymmetric: DER certificate for UseKey */
	size_t use_key_cert_len;
	const char *renew_sct_id;   /* RENEW_CONTEXT: the SCT's wsc:Identifier */
	const uint8_t *local_params;   /* validated XML fragments (broker_request.c) */
	size_t local_len;
	const uint8_t *service_params;
	size_t service_len;
	const char *context;        /* NULL: no Context attribute */
	/* UsernameToken (WS_USERNAME_MESSAGE_SECURITY_BINDING); NULL: none */
	const char *username;
	const struct secret *password;
	/* Timestamp: created = now (0: the clock), expires = created + ttl_s (0: 300) */
	time_t now;
	unsigned ttl_s;
};

#define RST_MAX_SECRETS 4
#define RST_MARKER_LEN 32   /* hex characters */

/* A secret the envelope names by a random marker until rst_splice. */
struct rst_slot {
	char marker[RST_MARKER_LEN + 1];
	const char *value;          /* the caller's password, or entropy_b64 */
	size_t len;
};

struct rst_msg {
	/* The whole envelope, in secure memory.  rst_build leaves a random
	 * marker where each secret goes (the password, the requestor entropy),
	 * so that wssec_apply can parse and sign it without the secrets ever
	 * entering libxml2's heap; rst_splice then puts them in. */
	struct secbuf body;
	struct rst_slot slots[RST_MAX_SECRETS];
	size_t nslots;
	struct secret entropy_b64;   /* owned: base64 of the requestor entropy */
	char message_id[64];         /* "urn:uuid:<v4>", for RelatesTo */
	char action[128];            /* wsa:Action, for the HTTP headers */
	char created[32], expires[32];
	char *context;               /* copy of the Context sent, or NULL */
};

/* 0, or -1 with a message in err (a parameter the writer refuses, e.g. a
 * password with a control character, or OOM).  The body is complete. */
int rst_build(const struct rst_request *r, struct rst_msg *out, char *err, size_t errlen);
/* The same, but the body still holds the secret markers: for a message
 * wssec_apply will parse; call rst_splice before sending it.  r->password
 * must outlive that call. */
int rst_build_unspliced(const struct rst_request *r, struct rst_msg *out, char *err, size_t errlen);
/* Replace each marker (exactly once in the body) by its escaped secret. */
int rst_splice(struct rst_msg *m, char *err, size_t errlen);
void rst_msg_free(struct rst_msg *m);   /* wipes */

/* Helpers shared with the tests and the token checks. */
void rst_new_uuid(char out[64]);                   /* "urn:uuid:xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
void rst_format_time(char out[32], time_t t, long ms);   /* 2024-01-02T03:04:05.678Z */
/* XML-escape s into b (& < > " '); -1 on a control character other than tab. */
int rst_escape_into(struct secbuf *b, const char *s, size_t len);

#endif
