/* ipc: the strict message codec and the authenticated broker<->worker channel.
 *
 * Every byte that crosses a process boundary in wstrust goes through this
 * file's decoders: client -> broker (Unix stream socket), broker <-> worker
 * (SOCK_SEQPACKET socketpair under libsodium secretstream).
 *
 * Message layout (all integers big-endian):
 *
 *   u32 length   bytes after this field (type + flags + fields), <= IPC_MAX_FRAME
 *   u16 type     one of enum ipc_type; requests even, answers odd
 *   u16 flags    must be 0
 *   fields*      u16 tag | u32 len | len bytes
 *
 * Decoding is schema-driven: each message type has a table of the tags it may
 * carry, each with a kind (fixed-size integers must be exactly their size),
 * a maximum length, whether it is required and whether it may repeat.  An
 * unknown tag, a duplicate non-repeatable tag, a missing required tag, a
 * string containing NUL, or a byte past the last field is an error.
 */
#ifndef WSTRUST_IPC_H
#define WSTRUST_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_HDR_LEN 8u
/* Large enough for a token at the maximum reply quota plus its metadata. */
#define IPC_MAX_REPLY (16u * 1024u * 1024u)
#define IPC_MAX_FRAME (IPC_MAX_REPLY + 256u * 1024u)
#define IPC_MAX_FIELDS 64u
/* Short fields (URIs, names, ids): generous for real values, small enough
 * that a hostile peer cannot make the receiver allocate much. */
#define IPC_MAX_SHORT 8192u

enum ipc_type {
	/* client -> broker (even) and broker -> client (odd) */
	IPC_REQ_TOKEN = 0x0100,
	IPC_ANS_TOKEN = 0x0101,
	IPC_ANS_ERROR = 0x0103,
	/* broker -> worker (even) and worker -> broker (odd) */
	IPC_W_READY = 0x0201,   /* unsolicited, once, after confinement */
	IPC_W_PARSE = 0x0202,   /* one STS reply to parse */
	IPC_W_RESULT = 0x0203,  /* answer to IPC_W_PARSE */
};

enum ipc_kind { IPC_U32 = 1, IPC_U64, IPC_STR, IPC_BYTES };

/* Field tags.  Numbers are wire format: never renumber, only add. */
enum ipc_tag {
	/* request parameters (client -> broker) */
	T_PROFILE = 1,          /* str: profile name (CLI) */
	T_ENDPOINT = 2,         /* str: STS URL as given to WsOpenChannel */
	T_APPLIES_TO = 3,       /* str */
	T_TRUST_VERSION = 4,    /* u32: WS_TRUST_VERSION (1 = Feb 2005, 2 = 1.3) */
	T_TOKEN_TYPE = 5,       /* str: URI */
	T_KEY_TYPE = 6,         /* u32: WS_SECURITY_KEY_TYPE (1 bearer, 2 sym, 3 asym) */
	T_KEY_SIZE = 7,         /* u32: bits */
	T_ENTROPY_MODE = 8,     /* u32: WS_SECURITY_KEY_ENTROPY_MODE */
	T_REQUEST_ACTION = 9,   /* u32: WS_REQUEST_SECURITY_TOKEN_ACTION */
	T_SC_VERSION = 10,      /* u32: WS_SECURE_CONVERSATION_VERSION */
	T_BEARER_VERSION = 11,  /* u32: WS_TRUST_BEARER_KEY_TYPE_VERSION */
	T_LOCAL_PARAMS = 12,    /* bytes: XML fragment */
	T_SERVICE_PARAMS = 13,  /* bytes: XML fragment */
	T_EXISTING_TOKEN = 14,  /* bytes: token XML */
	T_MAX_REPLY = 15,       /* u32: reply size quota in bytes */
	T_TIMEOUT_MS = 16,      /* u32: whole-request deadline */
	T_EMBEDDED = 17,        /* u32: 1 when the caller owns this broker */

	/* token answer (broker -> client) */
	T_TOKEN_XML = 32,       /* bytes: the token element, byte-exact */
	T_TOKEN_TYPE_URI = 33,  /* str */
	T_KEY_TYPE_OUT = 34,    /* u32: WS_SECURITY_KEY_TYPE */
	T_VALID_FROM = 35,      /* u64: WS_DATETIME ticks, 0 = none */
	T_VALID_TILL = 36,      /* u64: WS_DATETIME ticks, 0 = none */
	T_ATTACHED_REF = 37,    /* bytes: XML */
	T_UNATTACHED_REF = 38,  /* bytes: XML */
	T_PROOF_KEY = 39,       /* bytes: symmetric proof key, when released */
	T_PROOF_WITHHELD = 40,  /* u32: 1 when a proof key exists but policy keeps it */

	/* error answer (broker -> client) */
	T_HRESULT = 48,         /* u32 */
	T_ERROR_STRING = 49,    /* str, repeatable, most specific first */
	T_CHANNEL_FAULTED = 50, /* u32: 1 = transport/protocol failure (FAULTED) */

	/* broker -> worker parse request */
	T_REPLY = 64,           /* bytes: raw HTTP body from the STS */
	T_HTTP_STATUS = 65,     /* u32 */
	T_EXPECT_TRUST = 66,    /* u32: trust version the RST used */
	T_EXPECT_SOAP = 67,     /* u32: 11 or 12 */
	T_EXPECT_RELATES = 68,  /* str: MessageID of the RST */
	T_EXPECT_CONTEXT = 69,  /* str: Context attribute of the RST */
	T_MAX_DEPTH = 70,       /* u32 */
	T_MAX_TEXT = 71,        /* u32: longest text node */
	T_MAX_ATTRS = 72,       /* u32: attributes per element */
	T_MAX_NODES = 73,       /* u32: elements in the document */

	/* worker -> broker result */
	T_RESULT_KIND = 96,     /* u32: enum ipc_result_kind */
	T_R_TOKEN_XML = 97,     /* bytes */
	T_R_TOKEN_TYPE = 98,    /* str */
	T_R_KEY_TYPE = 99,      /* str: KeyType URI as sent */
	T_R_KEY_SIZE = 100,     /* u32 */
	T_R_CREATED = 101,      /* u64: WS_DATETIME ticks */
	T_R_EXPIRES = 102,      /* u64: WS_DATETIME ticks */
	T_R_APPLIES_TO = 103,   /* str */
	T_R_ATTACHED = 104,     /* bytes */
	T_R_UNATTACHED = 105,   /* bytes */
	T_R_PROOF_KIND = 106,   /* u32: enum ipc_proof_kind */
	T_R_PROOF_DATA = 107,   /* bytes: BinarySecret bytes or EncryptedKey XML */
	T_R_CK_ALGORITHM = 108, /* str: ComputedKey algorithm URI */
	T_R_ENTROPY = 109,      /* bytes: issuer Entropy BinarySecret */
	T_R_RELATES_TO = 110,   /* str */
	T_R_CONTEXT = 111,      /* str */
	T_R_FAULT_CODE = 112,   /* str: {ns}local of the code value */
	T_R_FAULT_SUBCODE = 113,/* str, repeatable: {ns}local, outermost first */
	T_R_FAULT_REASON = 114, /* str */
	T_R_FAULT_DETAIL = 115, /* bytes */
	T_R_ERROR = 116,        /* str: why parsing failed */
	T_R_SCT_ID = 117,       /* str: SecurityContextToken Identifier */
	T_R_SCT_INSTANCE = 118, /* str */
	T_R_TRUST_VERSION = 119,/* u32: trust version of the RSTR body */
	T_R_SOAP_VERSION = 120, /* u32: 11, 12, or 0 for a bare RSTR */
	T_R_ERROR_CODE = 121,   /* u32: enum ipc_parse_error */
	T_R_ENTROPY_ENC = 122,  /* bytes: issuer Entropy as xenc:EncryptedKey XML */
};

/* ---- embedded mode (added by the CLIENT helper for issues 5/6; lead: review) ----
 * The library starts a private `wstrustd --embedded FD` on a socketpair and
 * sends IPC_EMB_SETUP first, exactly once: the STS endpoint, the channel's
 * envelope settings and the caller's credentials (this message is their only
 * way into the broker: never argv, env or files).  The broker answers
 * IPC_EMB_READY (no fields) or IPC_ANS_ERROR; then the connection carries
 * IPC_REQ_TOKEN / answers as in daemon mode.  A daemon never accepts it. */
enum ipc_embedded_type {
	IPC_EMB_SETUP = 0x0110,
	IPC_EMB_READY = 0x0111,
};

enum ipc_embedded_tag {
	T_EMB_ENDPOINT = 128,        /* str, required: the STS URL given to WsOpenChannel */
	T_EMB_AUTH = 129,            /* u32, required: WS_SECURITY_BINDING_TYPE of the credential
	                                (1 SSL client cert, 4 username, 6 XML token) */
	T_EMB_SOAP_VERSION = 130,    /* u32: 11 or 12 (WS_CHANNEL_PROPERTY_ENVELOPE_VERSION) */
	T_EMB_CA_FILE = 131,         /* str: trust anchors (PEM bundle); absent = system bundle */
	T_EMB_USERNAME = 132,        /* str */
	T_EMB_PASSWORD = 133,        /* bytes, secret */
	T_EMB_CERT_FILE = 134,       /* str: PEM (certificate, may hold the key) or PKCS#12 path */
	T_EMB_KEY_FILE = 135,        /* str: PEM private key path, when not in the cert file */
	T_EMB_KEY_PASSWORD = 136,    /* bytes, secret: for an encrypted key or a PKCS#12 file */
	T_EMB_CERT_THUMBPRINT = 137, /* str: SHA-1 hex the certificate must have */
	T_EMB_CERT_SUBJECT = 138,    /* str: common name the certificate's subject must have */
	T_EMB_TOKEN_XML = 139,       /* bytes: the token to present (WS_XML_TOKEN binding) */
	T_EMB_TOKEN_KEY = 140,       /* bytes, secret: its symmetric proof key, when it has one */
	T_EMB_TOKEN_VALID_TILL = 141,/* u64: WS_DATETIME ticks, 0 = unknown */
};

enum ipc_result_kind { IPC_RESULT_TOKEN = 1, IPC_RESULT_FAULT = 2, IPC_RESULT_ERROR = 3 };

enum ipc_proof_kind {
	IPC_PROOF_NONE = 0,
	IPC_PROOF_BINARY_SECRET = 1,
	IPC_PROOF_COMPUTED_KEY = 2,
	IPC_PROOF_ENCRYPTED_KEY = 3,
};

/* Why the worker could not turn a reply into a token or a fault. */
enum ipc_parse_error {
	IPC_PERR_MALFORMED = 1,   /* not well-formed XML, or not SOAP/WS-Trust */
	IPC_PERR_FORBIDDEN = 2,   /* DOCTYPE, entity, XInclude ... */
	IPC_PERR_LIMIT = 3,       /* depth, size, attribute count, text length */
	IPC_PERR_STRUCTURE = 4,   /* duplicate/conflicting/misplaced elements */
	IPC_PERR_MISMATCH = 5,    /* RelatesTo / Context / version do not match */
	IPC_PERR_VALUE = 6,       /* a value that does not parse (date, base64 ...) */
};

struct ipc_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *data;   /* points into the decoded buffer */
};

/* A decoded message.  Borrowed: valid as long as the buffer it was decoded
 * from. */
struct ipc_msg {
	uint16_t type;
	unsigned nfields;
	struct ipc_field fields[IPC_MAX_FIELDS];
};

/* Decode one whole frame (header included).  Returns 0, or -1 with a reason
 * in err.  Validates against the schema of the message's type. */
int ipc_decode(const uint8_t *buf, size_t len, struct ipc_msg *out, char *err, size_t errlen);

/* Length a frame announces, from its first 4 bytes; 0 when it is invalid. */
size_t ipc_frame_len(const uint8_t hdr[4]);

/* Typed getters.  Return true when the field is present (and then it is known
 * valid for its kind: the schema was checked by ipc_decode). */
bool ipc_get_u32(const struct ipc_msg *m, uint16_t tag, uint32_t *v);
bool ipc_get_u64(const struct ipc_msg *m, uint16_t tag, uint64_t *v);
/* Strings are not NUL-terminated on the wire; this copies into a new
 * NUL-terminated heap string (caller frees). NULL when absent or on OOM
 * (check ipc_has for which). */
char *ipc_dup_str(const struct ipc_msg *m, uint16_t tag);
bool ipc_get_bytes(const struct ipc_msg *m, uint16_t tag, const uint8_t **p, size_t *len);
bool ipc_has(const struct ipc_msg *m, uint16_t tag);
/* Iterate a repeatable field: *pos starts at 0. */
bool ipc_next(const struct ipc_msg *m, uint16_t tag, unsigned *pos, const uint8_t **p, size_t *len);

/* Builder.  Grows on the heap; any failure (OOM, over IPC_MAX_FRAME) is
 * sticky and reported by ipc_finish. */
struct ipc_builder {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
	bool secure;   /* buffer holds secrets: wiped on growth and on free */
};

void ipc_begin(struct ipc_builder *b, uint16_t type);
void ipc_put_u32(struct ipc_builder *b, uint16_t tag, uint32_t v);
void ipc_put_u64(struct ipc_builder *b, uint16_t tag, uint64_t v);
void ipc_put_str(struct ipc_builder *b, uint16_t tag, const char *s);
void ipc_put_bytes(struct ipc_builder *b, uint16_t tag, const void *p, size_t len);
/* Returns 0 and the finished frame in b->buf/b->len, or -1. */
int ipc_finish(struct ipc_builder *b);
void ipc_builder_free(struct ipc_builder *b);

/* Stream transport (client <-> broker): whole frames over a stream socket.
 * ipc_read_frame allocates *buf (caller frees); bounded by max and by the
 * deadline (ms since CLOCK_MONOTONIC epoch, 0 = none).
 * Return 0, or -1 with errno (ETIMEDOUT, EMSGSIZE, EPROTO, ECONNRESET...). */
int ipc_write_frame(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms);
int ipc_read_frame(int fd, uint8_t **buf, size_t *len, size_t max, int64_t deadline_ms);
int64_t ipc_now_ms(void);

/* ---- authenticated channel (broker <-> worker) ----
 *
 * A SOCK_SEQPACKET socketpair carries two libsodium secretstreams
 * (XChaCha20-Poly1305), one per direction, with subkeys derived from one
 * 32-byte key the broker makes for each worker and never reuses.  Each side
 * first sends its stream header as one datagram.  A message is split into
 * sealed chunks of at most IPC_CHUNK bytes; every chunk but the last is
 * tagged MESSAGE, the last PUSH.  Tampering, replay, reordering, dropping
 * and truncation all fail decryption or the tag sequence. */
#define IPC_CHAN_KEYBYTES 32u
#define IPC_CHUNK (32u * 1024u)

enum ipc_role { IPC_ROLE_BROKER = 1, IPC_ROLE_WORKER = 2 };

struct ipc_chan;   /* opaque; holds stream states in sodium_malloc memory */

struct ipc_chan *ipc_chan_new(int fd, const uint8_t key[IPC_CHAN_KEYBYTES], enum ipc_role role);
/* Send our header and receive the peer's.  -1 on failure / timeout. */
int ipc_chan_handshake(struct ipc_chan *c, int64_t deadline_ms);
int ipc_chan_send(struct ipc_chan *c, const uint8_t *msg, size_t len);
/* Bound later sends by a deadline (0 = block): a peer that stops reading
 * cannot stall the sender forever. */
void ipc_chan_set_send_deadline(struct ipc_chan *c, int64_t deadline_ms);
/* Receive one whole message (allocated, caller frees with free()); fails on
 * any authentication error, a message over max, EOF, or the deadline. */
int ipc_chan_recv(struct ipc_chan *c, uint8_t **msg, size_t *len, size_t max, int64_t deadline_ms);
const char *ipc_chan_error(const struct ipc_chan *c);
void ipc_chan_free(struct ipc_chan *c);   /* wipes keys; does not close fd */

#endif
