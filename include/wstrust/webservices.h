/* <wstrust/webservices.h>: the Windows Web Services API (WWSAPI) subset that
 * WsRequestSecurityToken needs, for Linux.
 *
 * Names, types, struct layouts, enum values and HRESULT values are the
 * Windows SDK's (webservices.h and winerror.h of SDK 10.0.22621; enum values
 * checked against learn.microsoft.com, HRESULTs against winerror.h: the
 * "Windows Web Services Return Values" page prints 0x804D.... for some WS_E_*
 * codes, a typo: the SDK's facility is 0x3D).  Code written for Windows
 * compiles against this header with only its #include changed (and, if it
 * uses L"..." literals for WS_STRING, -fshort-wchar: see WCHAR below).
 *
 * How calls are served: libwstrust is an IPC stub.  WsOpenChannel records the
 * STS URL; WsRequestSecurityToken sends the request to the wstrust broker
 * (wstrustd) over a Unix socket, and the broker serves it from the profile
 * whose `endpoint` is that URL, with the credentials it holds.  The socket is
 * $WSTRUST_SOCKET (read with secure_getenv) or the path configured at build
 * time (meson option default_socket).  The channel's WS_SECURITY_DESCRIPTION
 * is accepted and not used in daemon mode: the broker holds the secrets.
 *
 * Modes.  Daemon mode (above, the default) keeps every credential in the
 * system broker; the security description's credentials are not used.
 * Embedded mode ($WSTRUST_MODE=embedded, or =auto and the description
 * carries a credential): the WS_SECURITY_DESCRIPTION given to WsCreateChannel
 * carries a credential -- WS_STRING_USERNAME_CREDENTIAL in a
 * WS_USERNAME_MESSAGE_SECURITY_BINDING, a localCertCredential in a
 * WS_SSL_TRANSPORT_SECURITY_BINDING, a token in a
 * WS_XML_TOKEN_MESSAGE_SECURITY_BINDING -- the library copies it into locked
 * memory, and WsOpenChannel starts a private broker for this channel
 * (wstrustd --embedded, from the installed sbindir or $WSTRUST_BROKER_PATH),
 * hands it the credential over their socketpair only, and wipes every copy
 * it made.  That broker serves the URL the channel was opened with, hands
 * the symmetric proof key to its caller, and exits with the channel
 * (WsFreeChannel) or when the connection breaks (WsAbortChannel, a broken
 * request); the credential is not kept, so a channel whose private broker
 * is gone cannot be opened again: create a new one.  Its trust anchors are
 * wstrust_set_channel_ca_file's, else $WSTRUST_CA_FILE, else the system CA
 * bundle.  $WSTRUST_MODE: "daemon" or unset ignores the credentials
 * (unchanged Windows code reaches the system broker), "embedded" requires
 * them, "auto" picks embedded exactly when they are there.  Variables are
 * read with secure_getenv.
 *
 * Thread safety, as on Windows: one object (channel, error, heap, token) is
 * used by one thread at a time; different objects in different threads are
 * independent (the library keeps no global mutable state).  An asynchronous
 * WsRequestSecurityToken runs on a library thread and calls the callback
 * exactly once, from that thread (WS_LONG_CALLBACK).
 *
 * Extensions (not in Windows) are named wstrust_* and documented where they
 * are declared, at the end of this file.
 */
#ifndef WSTRUST_WEBSERVICES_H
#define WSTRUST_WEBSERVICES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types ---- */

#ifndef WINAPI
#define WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif

typedef int32_t HRESULT;   /* Windows: LONG, 32 bits */
typedef uint32_t ULONG;
typedef int BOOL;
typedef uint8_t BYTE;
typedef uint16_t USHORT;
typedef size_t SIZE_T;
typedef uint16_t LANGID;

/* WCHAR is a UTF-16 code unit, as on Windows.  Programs built with
 * -fshort-wchar (so that L"..." is UTF-16) get wchar_t; others char16_t,
 * which has the same size and representation, so both link against the same
 * library. */
#if defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2
typedef wchar_t WCHAR;
#elif defined(__cplusplus)
typedef char16_t WCHAR;
#else
#include <uchar.h>
typedef char16_t WCHAR;
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef struct _GUID {
	uint32_t Data1;
	uint16_t Data2;
	uint16_t Data3;
	uint8_t Data4[8];
} GUID;

#ifndef SUCCEEDED
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#endif
#ifndef FAILED
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#endif

/* ---- HRESULT values (winerror.h) ---- */

#ifndef S_OK
#define S_OK ((HRESULT)0x00000000)
#endif
#ifndef S_FALSE
#define S_FALSE ((HRESULT)0x00000001)
#endif
#ifndef NOERROR
#define NOERROR ((HRESULT)0x00000000)
#endif
#ifndef E_NOTIMPL
#define E_NOTIMPL ((HRESULT)0x80004001)
#endif
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003)
#endif
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005)
#endif
#ifndef E_UNEXPECTED
#define E_UNEXPECTED ((HRESULT)0x8000FFFF)
#endif
#ifndef E_ACCESSDENIED
#define E_ACCESSDENIED ((HRESULT)0x80070005)
#endif
#ifndef E_OUTOFMEMORY
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#endif
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057)
#endif

#define WS_S_ASYNC                          ((HRESULT)0x003D0000)
#define WS_S_END                            ((HRESULT)0x003D0001)
#define WS_E_INVALID_FORMAT                 ((HRESULT)0x803D0000)
#define WS_E_OBJECT_FAULTED                 ((HRESULT)0x803D0001)
#define WS_E_NUMERIC_OVERFLOW               ((HRESULT)0x803D0002)
#define WS_E_INVALID_OPERATION              ((HRESULT)0x803D0003)
#define WS_E_OPERATION_ABORTED              ((HRESULT)0x803D0004)
#define WS_E_ENDPOINT_ACCESS_DENIED         ((HRESULT)0x803D0005)
#define WS_E_OPERATION_TIMED_OUT            ((HRESULT)0x803D0006)
#define WS_E_OPERATION_ABANDONED            ((HRESULT)0x803D0007)
#define WS_E_QUOTA_EXCEEDED                 ((HRESULT)0x803D0008)
#define WS_E_NO_TRANSLATION_AVAILABLE       ((HRESULT)0x803D0009)
#define WS_E_SECURITY_VERIFICATION_FAILURE  ((HRESULT)0x803D000A)
#define WS_E_ADDRESS_IN_USE                 ((HRESULT)0x803D000B)
#define WS_E_ADDRESS_NOT_AVAILABLE          ((HRESULT)0x803D000C)
#define WS_E_ENDPOINT_NOT_FOUND             ((HRESULT)0x803D000D)
#define WS_E_ENDPOINT_NOT_AVAILABLE         ((HRESULT)0x803D000E)
#define WS_E_ENDPOINT_FAILURE               ((HRESULT)0x803D000F)
#define WS_E_ENDPOINT_UNREACHABLE           ((HRESULT)0x803D0010)
#define WS_E_ENDPOINT_ACTION_NOT_SUPPORTED  ((HRESULT)0x803D0011)
#define WS_E_ENDPOINT_TOO_BUSY              ((HRESULT)0x803D0012)
#define WS_E_ENDPOINT_FAULT_RECEIVED        ((HRESULT)0x803D0013)
#define WS_E_ENDPOINT_DISCONNECTED          ((HRESULT)0x803D0014)
#define WS_E_PROXY_FAILURE                  ((HRESULT)0x803D0015)
#define WS_E_PROXY_ACCESS_DENIED            ((HRESULT)0x803D0016)
#define WS_E_NOT_SUPPORTED                  ((HRESULT)0x803D0017)
#define WS_E_PROXY_REQUIRES_BASIC_AUTH      ((HRESULT)0x803D0018)
#define WS_E_PROXY_REQUIRES_DIGEST_AUTH     ((HRESULT)0x803D0019)
#define WS_E_PROXY_REQUIRES_NTLM_AUTH       ((HRESULT)0x803D001A)
#define WS_E_PROXY_REQUIRES_NEGOTIATE_AUTH  ((HRESULT)0x803D001B)
#define WS_E_SERVER_REQUIRES_BASIC_AUTH     ((HRESULT)0x803D001C)
#define WS_E_SERVER_REQUIRES_DIGEST_AUTH    ((HRESULT)0x803D001D)
#define WS_E_SERVER_REQUIRES_NTLM_AUTH      ((HRESULT)0x803D001E)
#define WS_E_SERVER_REQUIRES_NEGOTIATE_AUTH ((HRESULT)0x803D001F)
#define WS_E_INVALID_ENDPOINT_URL           ((HRESULT)0x803D0020)
#define WS_E_OTHER                          ((HRESULT)0x803D0021)
#define WS_E_SECURITY_TOKEN_EXPIRED         ((HRESULT)0x803D0022)
#define WS_E_SECURITY_SYSTEM_FAILURE        ((HRESULT)0x803D0023)

/* ---- opaque objects ---- */

typedef struct _WS_CHANNEL WS_CHANNEL;
typedef struct _WS_ERROR WS_ERROR;
typedef struct _WS_HEAP WS_HEAP;
typedef struct _WS_XML_BUFFER WS_XML_BUFFER;
typedef struct _WS_XML_READER WS_XML_READER;
typedef struct _WS_XML_WRITER WS_XML_WRITER;
typedef struct _WS_SECURITY_TOKEN WS_SECURITY_TOKEN;
typedef struct _WS_MESSAGE WS_MESSAGE;

/* ---- strings, bytes, time ---- */

typedef struct _WS_STRING {
	ULONG length;   /* in WCHARs */
	WCHAR *chars;   /* UTF-16, not necessarily zero-terminated */
} WS_STRING;

#define WsCountOf(arrayValue) (sizeof(arrayValue) / sizeof(arrayValue[0]))
#define WS_STRING_VALUE(S) { (ULONG)(WsCountOf(S) - 1), (WCHAR *)(S) }
#define WS_STRING_EMPTY { 0, NULL }

typedef struct _WS_XML_DICTIONARY WS_XML_DICTIONARY;

typedef struct _WS_XML_STRING {
	ULONG length;   /* in bytes */
	BYTE *bytes;    /* UTF-8 */
	WS_XML_DICTIONARY *dictionary;
	ULONG id;
} WS_XML_STRING;

struct _WS_XML_DICTIONARY {
	GUID guid;
	WS_XML_STRING *strings;
	ULONG stringCount;
	BOOL isConst;
};

#define WS_XML_STRING_VALUE(S) { (ULONG)(WsCountOf(S) - 1), (BYTE *)(S), NULL, 0 }
#define WS_XML_STRING_NULL { 0, NULL, NULL, 0 }

typedef struct _WS_BYTES {
	ULONG length;
	BYTE *bytes;
} WS_BYTES;

typedef enum {
	WS_DATETIME_FORMAT_UTC = 0,
	WS_DATETIME_FORMAT_LOCAL = 1,
	WS_DATETIME_FORMAT_NONE = 2,
} WS_DATETIME_FORMAT;

/* 100-nanosecond ticks since 0001-01-01T00:00:00 (proleptic Gregorian). */
typedef struct _WS_DATETIME {
	uint64_t ticks;
	WS_DATETIME_FORMAT format;
} WS_DATETIME;

/* ---- async model ---- */

typedef enum {
	WS_SHORT_CALLBACK = 0,
	WS_LONG_CALLBACK = 1,
} WS_CALLBACK_MODEL;

typedef void (CALLBACK *WS_ASYNC_CALLBACK)(HRESULT errorCode, WS_CALLBACK_MODEL callbackModel,
                                           void *callbackState);

typedef struct _WS_ASYNC_CONTEXT {
	WS_ASYNC_CALLBACK callback;
	void *callbackState;
} WS_ASYNC_CONTEXT;

/* ---- error object ---- */

typedef enum {
	WS_ERROR_PROPERTY_STRING_COUNT = 0,         /* ULONG, read only */
	WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE = 1,  /* HRESULT */
	WS_ERROR_PROPERTY_LANGID = 2,               /* LANGID */
} WS_ERROR_PROPERTY_ID;

typedef struct _WS_ERROR_PROPERTY {
	WS_ERROR_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_ERROR_PROPERTY;

/* ---- heap ---- */

typedef enum {
	WS_HEAP_PROPERTY_MAX_SIZE = 0,        /* SIZE_T */
	WS_HEAP_PROPERTY_TRIM_SIZE = 1,       /* SIZE_T */
	WS_HEAP_PROPERTY_REQUESTED_SIZE = 2,  /* SIZE_T, read only */
	WS_HEAP_PROPERTY_ACTUAL_SIZE = 3,     /* SIZE_T, read only */
} WS_HEAP_PROPERTY_ID;

typedef struct _WS_HEAP_PROPERTY {
	WS_HEAP_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_HEAP_PROPERTY;

typedef struct _WS_HEAP_PROPERTIES {
	WS_HEAP_PROPERTY *properties;
	ULONG propertyCount;
} WS_HEAP_PROPERTIES;

/* ---- XML buffers, readers, writers (what a caller needs to hand XML in and
 * get it out: the library keeps XML as bytes and parses none of it) ---- */

typedef ULONG WS_XML_BUFFER_PROPERTY_ID;

typedef struct _WS_XML_BUFFER_PROPERTY {
	WS_XML_BUFFER_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_XML_BUFFER_PROPERTY;

typedef enum {
	WS_XML_READER_PROPERTY_MAX_DEPTH = 0,
	WS_XML_READER_PROPERTY_ALLOW_FRAGMENT = 1,
	WS_XML_READER_PROPERTY_MAX_ATTRIBUTES = 2,
	WS_XML_READER_PROPERTY_READ_DECLARATION = 3,
	WS_XML_READER_PROPERTY_CHARSET = 4,
	WS_XML_READER_PROPERTY_ROW = 5,
	WS_XML_READER_PROPERTY_COLUMN = 6,
	WS_XML_READER_PROPERTY_UTF8_TRIM_SIZE = 7,
	WS_XML_READER_PROPERTY_STREAM_BUFFER_SIZE = 8,
	WS_XML_READER_PROPERTY_IN_ATTRIBUTE = 9,
	WS_XML_READER_PROPERTY_STREAM_MAX_ROOT_MIME_PART_SIZE = 10,
	WS_XML_READER_PROPERTY_STREAM_MAX_MIME_HEADERS_SIZE = 11,
	WS_XML_READER_PROPERTY_MAX_MIME_PARTS = 12,
	WS_XML_READER_PROPERTY_ALLOW_INVALID_CHARACTER_REFERENCES = 13,
	WS_XML_READER_PROPERTY_MAX_NAMESPACES = 14,
} WS_XML_READER_PROPERTY_ID;

typedef struct _WS_XML_READER_PROPERTY {
	WS_XML_READER_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_XML_READER_PROPERTY;

typedef enum {
	WS_XML_WRITER_PROPERTY_MAX_DEPTH = 0,
	WS_XML_WRITER_PROPERTY_ALLOW_FRAGMENT = 1,
	WS_XML_WRITER_PROPERTY_MAX_ATTRIBUTES = 2,
	WS_XML_WRITER_PROPERTY_WRITE_DECLARATION = 3,
	WS_XML_WRITER_PROPERTY_INDENT = 4,
	WS_XML_WRITER_PROPERTY_BUFFER_TRIM_SIZE = 5,
	WS_XML_WRITER_PROPERTY_CHARSET = 6,
	WS_XML_WRITER_PROPERTY_BUFFERS = 7,
	WS_XML_WRITER_PROPERTY_BUFFER_MAX_SIZE = 8,
	WS_XML_WRITER_PROPERTY_BYTES = 9,
	WS_XML_WRITER_PROPERTY_IN_ATTRIBUTE = 10,
	WS_XML_WRITER_PROPERTY_MAX_MIME_PARTS_BUFFER_SIZE = 11,
	WS_XML_WRITER_PROPERTY_INITIAL_BUFFER = 12,
	WS_XML_WRITER_PROPERTY_ALLOW_INVALID_CHARACTER_REFERENCES = 13,
	WS_XML_WRITER_PROPERTY_MAX_NAMESPACES = 14,
	WS_XML_WRITER_PROPERTY_BYTES_WRITTEN = 15,
	WS_XML_WRITER_PROPERTY_BYTES_TO_CLOSE = 16,
	WS_XML_WRITER_PROPERTY_COMPRESS_EMPTY_ELEMENTS = 17,
	WS_XML_WRITER_PROPERTY_EMIT_UNCOMPRESSED_EMPTY_ELEMENTS = 18,
} WS_XML_WRITER_PROPERTY_ID;

typedef struct _WS_XML_WRITER_PROPERTY {
	WS_XML_WRITER_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_XML_WRITER_PROPERTY;

typedef enum {
	WS_CHARSET_AUTO = 0,
	WS_CHARSET_UTF8 = 1,
	WS_CHARSET_UTF16LE = 2,
	WS_CHARSET_UTF16BE = 3,
} WS_CHARSET;

typedef enum {
	WS_XML_READER_ENCODING_TYPE_TEXT = 1,
	WS_XML_READER_ENCODING_TYPE_BINARY = 2,
	WS_XML_READER_ENCODING_TYPE_MTOM = 3,
	WS_XML_READER_ENCODING_TYPE_RAW = 4,
} WS_XML_READER_ENCODING_TYPE;

typedef struct _WS_XML_READER_ENCODING {
	WS_XML_READER_ENCODING_TYPE encodingType;
} WS_XML_READER_ENCODING;

typedef struct _WS_XML_READER_TEXT_ENCODING {
	WS_XML_READER_ENCODING encoding;
	WS_CHARSET charSet;
} WS_XML_READER_TEXT_ENCODING;

typedef enum {
	WS_XML_WRITER_ENCODING_TYPE_TEXT = 1,
	WS_XML_WRITER_ENCODING_TYPE_BINARY = 2,
	WS_XML_WRITER_ENCODING_TYPE_MTOM = 3,
	WS_XML_WRITER_ENCODING_TYPE_RAW = 4,
} WS_XML_WRITER_ENCODING_TYPE;

typedef struct _WS_XML_WRITER_ENCODING {
	WS_XML_WRITER_ENCODING_TYPE encodingType;
} WS_XML_WRITER_ENCODING;

typedef struct _WS_XML_WRITER_TEXT_ENCODING {
	WS_XML_WRITER_ENCODING encoding;
	WS_CHARSET charSet;
} WS_XML_WRITER_TEXT_ENCODING;

typedef enum {
	WS_XML_READER_INPUT_TYPE_BUFFER = 1,
	WS_XML_READER_INPUT_TYPE_STREAM = 2,
} WS_XML_READER_INPUT_TYPE;

typedef struct _WS_XML_READER_INPUT {
	WS_XML_READER_INPUT_TYPE inputType;
} WS_XML_READER_INPUT;

typedef struct _WS_XML_READER_BUFFER_INPUT {
	WS_XML_READER_INPUT input;
	void *encodedData;
	ULONG encodedDataSize;
} WS_XML_READER_BUFFER_INPUT;

/* ---- endpoint address ---- */

typedef enum {
	WS_DNS_ENDPOINT_IDENTITY_TYPE = 1,
	WS_UPN_ENDPOINT_IDENTITY_TYPE = 2,
	WS_SPN_ENDPOINT_IDENTITY_TYPE = 3,
	WS_RSA_ENDPOINT_IDENTITY_TYPE = 4,
	WS_CERT_ENDPOINT_IDENTITY_TYPE = 5,
	WS_UNKNOWN_ENDPOINT_IDENTITY_TYPE = 6,
} WS_ENDPOINT_IDENTITY_TYPE;

typedef struct _WS_ENDPOINT_IDENTITY {
	WS_ENDPOINT_IDENTITY_TYPE identityType;
} WS_ENDPOINT_IDENTITY;

typedef struct _WS_ENDPOINT_ADDRESS {
	WS_STRING url;
	WS_XML_BUFFER *headers;
	WS_XML_BUFFER *extensions;
	WS_ENDPOINT_IDENTITY *identity;
} WS_ENDPOINT_ADDRESS;

/* ---- messages (only what properties refer to) ---- */

typedef enum {
	WS_ENVELOPE_VERSION_SOAP_1_1 = 1,
	WS_ENVELOPE_VERSION_SOAP_1_2 = 2,
	WS_ENVELOPE_VERSION_NONE = 3,
} WS_ENVELOPE_VERSION;

typedef enum {
	WS_ADDRESSING_VERSION_0_9 = 1,
	WS_ADDRESSING_VERSION_1_0 = 2,
	WS_ADDRESSING_VERSION_TRANSPORT = 3,
} WS_ADDRESSING_VERSION;

typedef enum {
	WS_MESSAGE_PROPERTY_STATE = 0,
	WS_MESSAGE_PROPERTY_HEAP = 1,
	WS_MESSAGE_PROPERTY_ENVELOPE_VERSION = 2,
	WS_MESSAGE_PROPERTY_ADDRESSING_VERSION = 3,
	WS_MESSAGE_PROPERTY_HEADER_BUFFER = 4,
	WS_MESSAGE_PROPERTY_HEADER_POSITION = 5,
	WS_MESSAGE_PROPERTY_BODY_READER = 6,
	WS_MESSAGE_PROPERTY_BODY_WRITER = 7,
	WS_MESSAGE_PROPERTY_IS_ADDRESSED = 8,
	WS_MESSAGE_PROPERTY_HEAP_PROPERTIES = 9,
	WS_MESSAGE_PROPERTY_XML_READER_PROPERTIES = 10,
	WS_MESSAGE_PROPERTY_XML_WRITER_PROPERTIES = 11,
	WS_MESSAGE_PROPERTY_IS_FAULT = 12,
	WS_MESSAGE_PROPERTY_MAX_PROCESSED_HEADERS = 13,
	WS_MESSAGE_PROPERTY_USERNAME = 14,
	WS_MESSAGE_PROPERTY_ENCODED_CERT = 15,
	WS_MESSAGE_PROPERTY_TRANSPORT_SECURITY_WINDOWS_TOKEN = 16,
	WS_MESSAGE_PROPERTY_HTTP_HEADER_AUTH_WINDOWS_TOKEN = 17,
	WS_MESSAGE_PROPERTY_MESSAGE_SECURITY_WINDOWS_TOKEN = 18,
	WS_MESSAGE_PROPERTY_SAML_ASSERTION = 19,
	WS_MESSAGE_PROPERTY_SECURITY_CONTEXT = 20,
	WS_MESSAGE_PROPERTY_PROTECTION_LEVEL = 21,
} WS_MESSAGE_PROPERTY_ID;

typedef struct _WS_MESSAGE_PROPERTY {
	WS_MESSAGE_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_MESSAGE_PROPERTY;

typedef struct _WS_MESSAGE_PROPERTIES {
	WS_MESSAGE_PROPERTY *properties;
	ULONG propertyCount;
} WS_MESSAGE_PROPERTIES;

/* ---- channel ---- */

typedef enum {
	WS_CHANNEL_TYPE_INPUT = 0x1,
	WS_CHANNEL_TYPE_OUTPUT = 0x2,
	WS_CHANNEL_TYPE_SESSION = 0x4,
	WS_CHANNEL_TYPE_INPUT_SESSION = (0x1 | 0x4),
	WS_CHANNEL_TYPE_OUTPUT_SESSION = (0x2 | 0x4),
	WS_CHANNEL_TYPE_DUPLEX = (0x1 | 0x2),
	WS_CHANNEL_TYPE_DUPLEX_SESSION = (0x1 | 0x2 | 0x4),
	WS_CHANNEL_TYPE_REQUEST = 0x8,
	WS_CHANNEL_TYPE_REPLY = 0x10,
} WS_CHANNEL_TYPE;

typedef enum {
	WS_HTTP_CHANNEL_BINDING = 0,
	WS_TCP_CHANNEL_BINDING = 1,
	WS_UDP_CHANNEL_BINDING = 2,
	WS_CUSTOM_CHANNEL_BINDING = 3,
	WS_NAMEDPIPE_CHANNEL_BINDING = 4,
} WS_CHANNEL_BINDING;

typedef enum {
	WS_CHANNEL_STATE_CREATED = 0,
	WS_CHANNEL_STATE_OPENING = 1,
	WS_CHANNEL_STATE_ACCEPTING = 2,
	WS_CHANNEL_STATE_OPEN = 3,
	WS_CHANNEL_STATE_FAULTED = 4,
	WS_CHANNEL_STATE_CLOSING = 5,
	WS_CHANNEL_STATE_CLOSED = 6,
} WS_CHANNEL_STATE;

typedef enum {
	WS_CHANNEL_PROPERTY_MAX_BUFFERED_MESSAGE_SIZE = 0,
	WS_CHANNEL_PROPERTY_MAX_STREAMED_MESSAGE_SIZE = 1,
	WS_CHANNEL_PROPERTY_MAX_STREAMED_START_SIZE = 2,
	WS_CHANNEL_PROPERTY_MAX_STREAMED_FLUSH_SIZE = 3,
	WS_CHANNEL_PROPERTY_ENCODING = 4,
	WS_CHANNEL_PROPERTY_ENVELOPE_VERSION = 5,
	WS_CHANNEL_PROPERTY_ADDRESSING_VERSION = 6,
	WS_CHANNEL_PROPERTY_MAX_SESSION_DICTIONARY_SIZE = 7,
	WS_CHANNEL_PROPERTY_STATE = 8,
	WS_CHANNEL_PROPERTY_ASYNC_CALLBACK_MODEL = 9,
	WS_CHANNEL_PROPERTY_IP_VERSION = 10,
	WS_CHANNEL_PROPERTY_RESOLVE_TIMEOUT = 11,
	WS_CHANNEL_PROPERTY_CONNECT_TIMEOUT = 12,
	WS_CHANNEL_PROPERTY_SEND_TIMEOUT = 13,
	WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT = 14,
	WS_CHANNEL_PROPERTY_RECEIVE_TIMEOUT = 15,
	WS_CHANNEL_PROPERTY_CLOSE_TIMEOUT = 16,
	WS_CHANNEL_PROPERTY_ENABLE_TIMEOUTS = 17,
	WS_CHANNEL_PROPERTY_TRANSFER_MODE = 18,
	WS_CHANNEL_PROPERTY_MULTICAST_INTERFACE = 19,
	WS_CHANNEL_PROPERTY_MULTICAST_HOPS = 20,
	WS_CHANNEL_PROPERTY_REMOTE_ADDRESS = 21,
	WS_CHANNEL_PROPERTY_REMOTE_IP_ADDRESS = 22,
	WS_CHANNEL_PROPERTY_HTTP_CONNECTION_ID = 23,
	WS_CHANNEL_PROPERTY_CUSTOM_CHANNEL_CALLBACKS = 24,
	WS_CHANNEL_PROPERTY_CUSTOM_CHANNEL_PARAMETERS = 25,
	WS_CHANNEL_PROPERTY_CUSTOM_CHANNEL_INSTANCE = 26,
	WS_CHANNEL_PROPERTY_TRANSPORT_URL = 27,
	WS_CHANNEL_PROPERTY_NO_DELAY = 28,
	WS_CHANNEL_PROPERTY_SEND_KEEP_ALIVES = 29,
	WS_CHANNEL_PROPERTY_KEEP_ALIVE_TIME = 30,
	WS_CHANNEL_PROPERTY_KEEP_ALIVE_INTERVAL = 31,
	WS_CHANNEL_PROPERTY_MAX_HTTP_SERVER_CONNECTIONS = 32,
	WS_CHANNEL_PROPERTY_IS_SESSION_SHUT_DOWN = 33,
	WS_CHANNEL_PROPERTY_CHANNEL_TYPE = 34,
	WS_CHANNEL_PROPERTY_TRIM_BUFFERED_MESSAGE_SIZE = 35,
	WS_CHANNEL_PROPERTY_ENCODER = 36,
	WS_CHANNEL_PROPERTY_DECODER = 37,
	WS_CHANNEL_PROPERTY_PROTECTION_LEVEL = 38,
	WS_CHANNEL_PROPERTY_COOKIE_MODE = 39,
	WS_CHANNEL_PROPERTY_HTTP_PROXY_SETTING_MODE = 40,
	WS_CHANNEL_PROPERTY_CUSTOM_HTTP_PROXY = 41,
	WS_CHANNEL_PROPERTY_HTTP_MESSAGE_MAPPING = 42,
	WS_CHANNEL_PROPERTY_ENABLE_HTTP_REDIRECT = 43,
	WS_CHANNEL_PROPERTY_HTTP_REDIRECT_CALLBACK_CONTEXT = 44,
	WS_CHANNEL_PROPERTY_FAULTS_AS_ERRORS = 45,
	WS_CHANNEL_PROPERTY_ALLOW_UNSECURED_FAULTS = 46,
	WS_CHANNEL_PROPERTY_HTTP_SERVER_SPN = 47,
	WS_CHANNEL_PROPERTY_HTTP_PROXY_SPN = 48,
	WS_CHANNEL_PROPERTY_MAX_HTTP_REQUEST_HEADERS_BUFFER_SIZE = 49,
} WS_CHANNEL_PROPERTY_ID;

typedef struct _WS_CHANNEL_PROPERTY {
	WS_CHANNEL_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_CHANNEL_PROPERTY;

typedef struct _WS_CHANNEL_PROPERTIES {
	WS_CHANNEL_PROPERTY *properties;
	ULONG propertyCount;
} WS_CHANNEL_PROPERTIES;

/* ---- security description ----
 * Daemon mode: accepted and not used (the broker holds the credentials).
 * Embedded mode: the credentials it carries go to a private broker; see
 * "Modes" at the top of this file and docs/API.md. */

typedef enum {
	WS_SSL_TRANSPORT_SECURITY_BINDING_TYPE = 1,
	WS_TCP_SSPI_TRANSPORT_SECURITY_BINDING_TYPE = 2,
	WS_HTTP_HEADER_AUTH_SECURITY_BINDING_TYPE = 3,
	WS_USERNAME_MESSAGE_SECURITY_BINDING_TYPE = 4,
	WS_KERBEROS_APREQ_MESSAGE_SECURITY_BINDING_TYPE = 5,
	WS_XML_TOKEN_MESSAGE_SECURITY_BINDING_TYPE = 6,
	WS_SAML_MESSAGE_SECURITY_BINDING_TYPE = 7,
	WS_SECURITY_CONTEXT_MESSAGE_SECURITY_BINDING_TYPE = 8,
	WS_NAMEDPIPE_SSPI_TRANSPORT_SECURITY_BINDING_TYPE = 9,
} WS_SECURITY_BINDING_TYPE;

typedef enum {
	WS_SECURITY_BINDING_PROPERTY_REQUIRE_SSL_CLIENT_CERT = 1,
	WS_SECURITY_BINDING_PROPERTY_WINDOWS_INTEGRATED_AUTH_PACKAGE = 2,
	WS_SECURITY_BINDING_PROPERTY_REQUIRE_SERVER_AUTH = 3,
	WS_SECURITY_BINDING_PROPERTY_ALLOW_ANONYMOUS_CLIENTS = 4,
	WS_SECURITY_BINDING_PROPERTY_ALLOWED_IMPERSONATION_LEVEL = 5,
	WS_SECURITY_BINDING_PROPERTY_HTTP_HEADER_AUTH_SCHEME = 6,
	WS_SECURITY_BINDING_PROPERTY_HTTP_HEADER_AUTH_TARGET = 7,
	WS_SECURITY_BINDING_PROPERTY_HTTP_HEADER_AUTH_BASIC_REALM = 8,
	WS_SECURITY_BINDING_PROPERTY_HTTP_HEADER_AUTH_DIGEST_REALM = 9,
	WS_SECURITY_BINDING_PROPERTY_HTTP_HEADER_AUTH_DIGEST_DOMAIN = 10,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_KEY_SIZE = 11,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_KEY_ENTROPY_MODE = 12,
	WS_SECURITY_BINDING_PROPERTY_MESSAGE_PROPERTIES = 13,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_MAX_PENDING_CONTEXTS = 14,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_MAX_ACTIVE_CONTEXTS = 15,
	WS_SECURITY_BINDING_PROPERTY_SECURE_CONVERSATION_VERSION = 16,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_SUPPORT_RENEW = 17,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_RENEWAL_INTERVAL = 18,
	WS_SECURITY_BINDING_PROPERTY_SECURITY_CONTEXT_ROLLOVER_INTERVAL = 19,
	WS_SECURITY_BINDING_PROPERTY_CERT_FAILURES_TO_IGNORE = 20,
	WS_SECURITY_BINDING_PROPERTY_DISABLE_CERT_REVOCATION_CHECK = 21,
	WS_SECURITY_BINDING_PROPERTY_DISALLOWED_SECURE_PROTOCOLS = 22,
	WS_SECURITY_BINDING_PROPERTY_CERTIFICATE_VALIDATION_CALLBACK_CONTEXT = 23,
} WS_SECURITY_BINDING_PROPERTY_ID;

typedef struct _WS_SECURITY_BINDING_PROPERTY {
	WS_SECURITY_BINDING_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_SECURITY_BINDING_PROPERTY;

typedef struct _WS_SECURITY_BINDING_PROPERTIES {
	WS_SECURITY_BINDING_PROPERTY *properties;
	ULONG propertyCount;
} WS_SECURITY_BINDING_PROPERTIES;

typedef struct _WS_SECURITY_BINDING {
	WS_SECURITY_BINDING_TYPE bindingType;
	WS_SECURITY_BINDING_PROPERTY *properties;
	ULONG propertyCount;
} WS_SECURITY_BINDING;

typedef enum {
	WS_SECURITY_PROPERTY_TRANSPORT_PROTECTION_LEVEL = 1,
	WS_SECURITY_PROPERTY_ALGORITHM_SUITE = 2,
	WS_SECURITY_PROPERTY_ALGORITHM_SUITE_NAME = 3,
	WS_SECURITY_PROPERTY_MAX_ALLOWED_LATENCY = 4,
	WS_SECURITY_PROPERTY_TIMESTAMP_VALIDITY_DURATION = 5,
	WS_SECURITY_PROPERTY_MAX_ALLOWED_CLOCK_SKEW = 6,
	WS_SECURITY_PROPERTY_TIMESTAMP_USAGE = 7,
	WS_SECURITY_PROPERTY_SECURITY_HEADER_LAYOUT = 8,
	WS_SECURITY_PROPERTY_SECURITY_HEADER_VERSION = 9,
	WS_SECURITY_PROPERTY_EXTENDED_PROTECTION_POLICY = 10,
	WS_SECURITY_PROPERTY_EXTENDED_PROTECTION_SCENARIO = 11,
	WS_SECURITY_PROPERTY_SERVICE_IDENTITIES = 12,
} WS_SECURITY_PROPERTY_ID;

typedef struct _WS_SECURITY_PROPERTY {
	WS_SECURITY_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_SECURITY_PROPERTY;

typedef struct _WS_SECURITY_PROPERTIES {
	WS_SECURITY_PROPERTY *properties;
	ULONG propertyCount;
} WS_SECURITY_PROPERTIES;

typedef struct _WS_SECURITY_DESCRIPTION {
	WS_SECURITY_BINDING **securityBindings;
	ULONG securityBindingCount;
	WS_SECURITY_PROPERTY *properties;
	ULONG propertyCount;
} WS_SECURITY_DESCRIPTION;

typedef enum {
	WS_SUBJECT_NAME_CERT_CREDENTIAL_TYPE = 1,
	WS_THUMBPRINT_CERT_CREDENTIAL_TYPE = 2,
	WS_CUSTOM_CERT_CREDENTIAL_TYPE = 3,
} WS_CERT_CREDENTIAL_TYPE;

typedef struct _WS_CERT_CREDENTIAL {
	WS_CERT_CREDENTIAL_TYPE credentialType;
} WS_CERT_CREDENTIAL;

/* Windows reads these from a certificate store; wstrust has no store, so
 * storeName is the path of a file (absolute): PEM (the certificate, and its
 * unencrypted private key unless a separate key is given) or PKCS#12 (.p12 /
 * .pfx, without a password).  storeLocation is ignored.  subjectName, when
 * given, must equal the certificate's subject common name; thumbprint, when
 * given, its SHA-1 fingerprint in hex (colons and spaces ignored). */
typedef struct _WS_SUBJECT_NAME_CERT_CREDENTIAL {
	WS_CERT_CREDENTIAL credential;
	ULONG storeLocation;
	WS_STRING storeName;
	WS_STRING subjectName;
} WS_SUBJECT_NAME_CERT_CREDENTIAL;

typedef struct _WS_THUMBPRINT_CERT_CREDENTIAL {
	WS_CERT_CREDENTIAL credential;
	ULONG storeLocation;
	WS_STRING storeName;
	WS_STRING thumbprint;
} WS_THUMBPRINT_CERT_CREDENTIAL;

/* wstrust extension: a certificate and key in files, with the password of
 * an encrypted PEM key or of a PKCS#12 file.  credential.credentialType is
 * WSTRUST_FILE_CERT_CREDENTIAL_TYPE.  The password is a secret: it is
 * handled like WS_STRING_USERNAME_CREDENTIAL's (see embedded mode below). */
#define WSTRUST_FILE_CERT_CREDENTIAL_TYPE ((WS_CERT_CREDENTIAL_TYPE)0x57540001)

typedef struct _WSTRUST_FILE_CERT_CREDENTIAL {
	WS_CERT_CREDENTIAL credential;
	WS_STRING certFile;      /* absolute path: PEM or PKCS#12 */
	WS_STRING keyFile;       /* absolute path of a PEM key; empty: the key is in certFile */
	WS_STRING keyPassword;   /* empty: the key is not encrypted */
} WSTRUST_FILE_CERT_CREDENTIAL;

typedef struct _WS_SSL_TRANSPORT_SECURITY_BINDING {
	WS_SECURITY_BINDING binding;
	WS_CERT_CREDENTIAL *localCertCredential;
} WS_SSL_TRANSPORT_SECURITY_BINDING;

typedef enum {
	WS_SUPPORTING_MESSAGE_SECURITY_USAGE = 1,
} WS_MESSAGE_SECURITY_USAGE;

typedef enum {
	WS_STRING_USERNAME_CREDENTIAL_TYPE = 1,
} WS_USERNAME_CREDENTIAL_TYPE;

typedef struct _WS_USERNAME_CREDENTIAL {
	WS_USERNAME_CREDENTIAL_TYPE credentialType;
} WS_USERNAME_CREDENTIAL;

typedef struct _WS_STRING_USERNAME_CREDENTIAL {
	WS_USERNAME_CREDENTIAL credential;
	WS_STRING username;
	WS_STRING password;
} WS_STRING_USERNAME_CREDENTIAL;

typedef HRESULT (CALLBACK *WS_VALIDATE_PASSWORD_CALLBACK)(void *passwordValidatorCallbackState,
                                                          const WS_STRING *username,
                                                          const WS_STRING *password,
                                                          const WS_ASYNC_CONTEXT *asyncContext,
                                                          WS_ERROR *error);

typedef struct _WS_USERNAME_MESSAGE_SECURITY_BINDING {
	WS_SECURITY_BINDING binding;
	WS_MESSAGE_SECURITY_USAGE bindingUsage;
	WS_USERNAME_CREDENTIAL *clientCredential;
	WS_VALIDATE_PASSWORD_CALLBACK passwordValidator;
	void *passwordValidatorCallbackState;
} WS_USERNAME_MESSAGE_SECURITY_BINDING;

typedef struct _WS_XML_TOKEN_MESSAGE_SECURITY_BINDING {
	WS_SECURITY_BINDING binding;
	WS_MESSAGE_SECURITY_USAGE bindingUsage;
	WS_SECURITY_TOKEN *xmlToken;
} WS_XML_TOKEN_MESSAGE_SECURITY_BINDING;

/* ---- WS-Trust request ---- */

typedef enum {
	WS_TRUST_VERSION_FEBRUARY_2005 = 0x1,
	WS_TRUST_VERSION_1_3 = 0x2,
} WS_TRUST_VERSION;

typedef enum {
	WS_SECURE_CONVERSATION_VERSION_FEBRUARY_2005 = 0x1,
	WS_SECURE_CONVERSATION_VERSION_1_3 = 0x2,
} WS_SECURE_CONVERSATION_VERSION;

typedef enum {
	WS_SECURITY_KEY_TYPE_NONE = 1,        /* bearer */
	WS_SECURITY_KEY_TYPE_SYMMETRIC = 2,
	WS_SECURITY_KEY_TYPE_ASYMMETRIC = 3,  /* refused by Windows in requests; a wstrust extension */
} WS_SECURITY_KEY_TYPE;

typedef enum {
	WS_SECURITY_KEY_ENTROPY_MODE_CLIENT_ONLY = 1,
	WS_SECURITY_KEY_ENTROPY_MODE_SERVER_ONLY = 2,
	WS_SECURITY_KEY_ENTROPY_MODE_COMBINED = 3,
} WS_SECURITY_KEY_ENTROPY_MODE;

typedef enum {
	WS_REQUEST_SECURITY_TOKEN_ACTION_ISSUE = 1,
	WS_REQUEST_SECURITY_TOKEN_ACTION_NEW_CONTEXT = 2,
	WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT = 3,
} WS_REQUEST_SECURITY_TOKEN_ACTION;

typedef enum {
	WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ORIGINAL_SPECIFICATION = 1,
	WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ORIGINAL_SCHEMA = 2,
	WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ERRATA_01 = 3,
} WS_SECURITY_BEARER_KEY_TYPE_VERSION;

/* What `value` points to, and the valueSize it must have:
 *   APPLIES_TO                   WS_ENDPOINT_ADDRESS        (url only; absent = no AppliesTo)
 *   TRUST_VERSION                WS_TRUST_VERSION           (default FEBRUARY_2005, as on
 *                                                             Windows; see wstrust_open_channel_profile)
 *   SECURE_CONVERSATION_VERSION  WS_SECURE_CONVERSATION_VERSION
 *   ISSUED_TOKEN_TYPE            WS_XML_STRING              (absent = no TokenType element)
 *   REQUEST_ACTION               WS_REQUEST_SECURITY_TOKEN_ACTION (default ISSUE)
 *   EXISTING_TOKEN               WS_SECURITY_TOKEN *        (only with RENEW_CONTEXT)
 *   ISSUED_TOKEN_KEY_TYPE        WS_SECURITY_KEY_TYPE       (absent = no KeyType element)
 *   ISSUED_TOKEN_KEY_SIZE        ULONG (bits; not with a bearer key)
 *   ISSUED_TOKEN_KEY_ENTROPY     WS_SECURITY_KEY_ENTROPY_MODE (not with a bearer key)
 *   LOCAL/SERVICE_REQUEST_PARAMETERS  WS_XML_BUFFER *
 *   MESSAGE_PROPERTIES           WS_MESSAGE_PROPERTIES: WS_MESSAGE_PROPERTY_HEAP_PROPERTIES
 *                                with WS_HEAP_PROPERTY_MAX_SIZE caps the reply size
 *   BEARER_KEY_TYPE_VERSION      WS_SECURITY_BEARER_KEY_TYPE_VERSION
 * An unknown id, a duplicate id, a wrong valueSize or value, or a
 * contradictory combination fails with E_INVALIDARG and an error string that
 * names the property, before anything is sent. */
typedef enum {
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO = 1,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION = 2,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_SECURE_CONVERSATION_VERSION = 3,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE = 4,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION = 5,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN = 6,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE = 7,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE = 8,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY = 9,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS = 10,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_SERVICE_REQUEST_PARAMETERS = 11,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_MESSAGE_PROPERTIES = 12,
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION = 13,
} WS_REQUEST_SECURITY_TOKEN_PROPERTY_ID;

typedef struct _WS_REQUEST_SECURITY_TOKEN_PROPERTY {
	WS_REQUEST_SECURITY_TOKEN_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_REQUEST_SECURITY_TOKEN_PROPERTY;

/* ---- security tokens ---- */

/* Value types for WsGetSecurityTokenProperty:
 *   KEY_TYPE                   WS_SECURITY_KEY_TYPE
 *   VALID_FROM_TIME / TILL     WS_DATETIME: the RSTR's wst:Lifetime Created /
 *                              Expires; ticks 0 when the STS sent no Lifetime
 *   SERIALIZED_XML             WS_XML_BUFFER *, owned by the token (valid until
 *                              WsFreeSecurityToken): the token element, byte-exact
 *   ATTACHED/UNATTACHED_REFERENCE_XML  WS_XML_BUFFER *, owned by the token;
 *                              E_INVALIDARG when the STS sent none
 *   SYMMETRIC_KEY              WS_BYTES copied onto `heap`
 * `heap` must be non-NULL for SYMMETRIC_KEY and NULL for the others. */
typedef enum {
	WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE = 1,
	WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME = 2,
	WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME = 3,
	WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML = 4,
	WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML = 5,
	WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML = 6,
	WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY = 7,
} WS_SECURITY_TOKEN_PROPERTY_ID;

typedef enum {
	WS_XML_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE = 1,    /* WS_XML_BUFFER * */
	WS_XML_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE = 2,  /* WS_XML_BUFFER * */
	WS_XML_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME = 3,       /* WS_DATETIME */
	WS_XML_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME = 4,       /* WS_DATETIME */
} WS_XML_SECURITY_TOKEN_PROPERTY_ID;

typedef struct _WS_XML_SECURITY_TOKEN_PROPERTY {
	WS_XML_SECURITY_TOKEN_PROPERTY_ID id;
	void *value;
	ULONG valueSize;
} WS_XML_SECURITY_TOKEN_PROPERTY;

typedef enum {
	WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE_TYPE = 1,
	WS_NCRYPT_ASYMMETRIC_SECURITY_KEY_HANDLE_TYPE = 2,
	WS_CAPI_ASYMMETRIC_SECURITY_KEY_HANDLE_TYPE = 3,
} WS_SECURITY_KEY_HANDLE_TYPE;

typedef struct _WS_SECURITY_KEY_HANDLE {
	WS_SECURITY_KEY_HANDLE_TYPE keyHandleType;
} WS_SECURITY_KEY_HANDLE;

typedef struct _WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE {
	WS_SECURITY_KEY_HANDLE keyHandle;
	WS_BYTES rawKeyBytes;
} WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE;

/* ================= functions ================= */

/* Error object.  Strings: index 0 is the most specific.  ORIGINAL_ERROR_CODE
 * is NOERROR unless a system error was mapped (then the errno value); as on
 * Windows, its text is then one more string, at the last index, counted in
 * STRING_COUNT.  WsAddErrorString inserts a string at index 0. */
HRESULT WINAPI WsCreateError(const WS_ERROR_PROPERTY *properties, ULONG propertyCount, WS_ERROR **error);
HRESULT WINAPI WsAddErrorString(WS_ERROR *error, const WS_STRING *string);
HRESULT WINAPI WsGetErrorString(WS_ERROR *error, ULONG index, WS_STRING *string);
HRESULT WINAPI WsGetErrorProperty(WS_ERROR *error, WS_ERROR_PROPERTY_ID id, void *buffer, ULONG bufferSize);
HRESULT WINAPI WsSetErrorProperty(WS_ERROR *error, WS_ERROR_PROPERTY_ID id, const void *value, ULONG valueSize);
HRESULT WINAPI WsResetError(WS_ERROR *error);
void WINAPI WsFreeError(WS_ERROR *error);

/* Heap: every WsAlloc block lives until WsResetHeap / WsFreeHeap.  A heap
 * refuses to grow past maxSize (WS_E_QUOTA_EXCEEDED). */
HRESULT WINAPI WsCreateHeap(SIZE_T maxSize, SIZE_T trimSize, const WS_HEAP_PROPERTY *properties,
                            ULONG propertyCount, WS_HEAP **heap, WS_ERROR *error);
HRESULT WINAPI WsAlloc(WS_HEAP *heap, SIZE_T size, void **ptr, WS_ERROR *error);
HRESULT WINAPI WsGetHeapProperty(WS_HEAP *heap, WS_HEAP_PROPERTY_ID id, void *value, ULONG valueSize,
                                 WS_ERROR *error);
HRESULT WINAPI WsResetHeap(WS_HEAP *heap, WS_ERROR *error);
void WINAPI WsFreeHeap(WS_HEAP *heap);

/* XML buffers.  The library keeps XML as the bytes it was given or received
 * (UTF-8 text encoding only) and never parses it: the broker checks any XML a
 * caller sends.  WsReadXmlBuffer takes the reader's whole input (one or more
 * top-level elements); WsWriteXmlBufferToBytes returns the buffer's bytes
 * exactly (encoding NULL or UTF-8 text). */
HRESULT WINAPI WsCreateXmlBuffer(WS_HEAP *heap, const WS_XML_BUFFER_PROPERTY *properties, ULONG propertyCount,
                                 WS_XML_BUFFER **buffer, WS_ERROR *error);
HRESULT WINAPI WsCreateReader(const WS_XML_READER_PROPERTY *properties, ULONG propertyCount,
                              WS_XML_READER **reader, WS_ERROR *error);
HRESULT WINAPI WsSetInput(WS_XML_READER *reader, const WS_XML_READER_ENCODING *encoding,
                          const WS_XML_READER_INPUT *input, const WS_XML_READER_PROPERTY *properties,
                          ULONG propertyCount, WS_ERROR *error);
HRESULT WINAPI WsReadXmlBuffer(WS_XML_READER *reader, WS_HEAP *heap, WS_XML_BUFFER **xmlBuffer, WS_ERROR *error);
void WINAPI WsFreeReader(WS_XML_READER *reader);
HRESULT WINAPI WsCreateWriter(const WS_XML_WRITER_PROPERTY *properties, ULONG propertyCount,
                              WS_XML_WRITER **writer, WS_ERROR *error);
HRESULT WINAPI WsWriteXmlBufferToBytes(WS_XML_WRITER *writer, WS_XML_BUFFER *xmlBuffer,
                                       const WS_XML_WRITER_ENCODING *encoding,
                                       const WS_XML_WRITER_PROPERTY *properties, ULONG propertyCount,
                                       WS_HEAP *heap, void **bytes, ULONG *byteCount, WS_ERROR *error);
void WINAPI WsFreeWriter(WS_XML_WRITER *writer);

/* Channel.  Only WS_CHANNEL_TYPE_REQUEST over WS_HTTP_CHANNEL_BINDING.
 * Properties honoured: RECEIVE_RESPONSE_TIMEOUT (ULONG ms; the whole request's
 * deadline, default 30000), ENABLE_TIMEOUTS (BOOL), MAX_BUFFERED_MESSAGE_SIZE
 * (ULONG: reply size quota); STATE and CHANNEL_TYPE can be read; other known
 * ids are accepted and ignored.
 * WsOpenChannel records the URL and does not connect (like an HTTP channel):
 * the broker is reached on the first request, and the connection is kept for
 * the next ones.  States: CREATED -open-> OPEN; a request that fails on
 * transport or protocol -> FAULTED; close -> CLOSED; abort -> FAULTED;
 * reset (from CREATED, CLOSED or FAULTED) -> CREATED.  Open and close complete
 * at once: they return their result and never call an async callback. */
HRESULT WINAPI WsCreateChannel(WS_CHANNEL_TYPE channelType, WS_CHANNEL_BINDING channelBinding,
                               const WS_CHANNEL_PROPERTY *properties, ULONG propertyCount,
                               const WS_SECURITY_DESCRIPTION *securityDescription, WS_CHANNEL **channel,
                               WS_ERROR *error);
HRESULT WINAPI WsOpenChannel(WS_CHANNEL *channel, const WS_ENDPOINT_ADDRESS *endpointAddress,
                             const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error);
HRESULT WINAPI WsCloseChannel(WS_CHANNEL *channel, const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error);
HRESULT WINAPI WsAbortChannel(WS_CHANNEL *channel, WS_ERROR *error);
HRESULT WINAPI WsResetChannel(WS_CHANNEL *channel, WS_ERROR *error);
void WINAPI WsFreeChannel(WS_CHANNEL *channel);
HRESULT WINAPI WsGetChannelProperty(WS_CHANNEL *channel, WS_CHANNEL_PROPERTY_ID id, void *value,
                                    ULONG valueSize, WS_ERROR *error);
HRESULT WINAPI WsSetChannelProperty(WS_CHANNEL *channel, WS_CHANNEL_PROPERTY_ID id, const void *value,
                                    ULONG valueSize, WS_ERROR *error);

/* The request.  Contract (as Windows documents it): the channel must be
 * OPEN (else WS_E_INVALID_OPERATION); on success it stays OPEN; on failure it
 * is OPEN (an STS fault, a refused or invalid request) or FAULTED (transport,
 * protocol or broker failure); *token is written only on success.
 * With asyncContext: returns WS_S_ASYNC and calls the callback exactly once
 * with the final HRESULT, on a library thread; a call that fails validation
 * returns its error at once and does not call the callback.  WsAbortChannel
 * completes a pending call with WS_E_OPERATION_ABORTED. */
HRESULT WINAPI WsRequestSecurityToken(WS_CHANNEL *channel, const WS_REQUEST_SECURITY_TOKEN_PROPERTY *properties,
                                      ULONG propertyCount, WS_SECURITY_TOKEN **token,
                                      const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error);
HRESULT WINAPI WsGetSecurityTokenProperty(WS_SECURITY_TOKEN *securityToken, WS_SECURITY_TOKEN_PROPERTY_ID id,
                                          void *value, ULONG valueSize, WS_HEAP *heap, WS_ERROR *error);
HRESULT WINAPI WsCreateXmlSecurityToken(WS_XML_BUFFER *tokenXml, WS_SECURITY_KEY_HANDLE *tokenKey,
                                        const WS_XML_SECURITY_TOKEN_PROPERTY *properties, ULONG propertyCount,
                                        WS_SECURITY_TOKEN **token, WS_ERROR *error);
void WINAPI WsFreeSecurityToken(WS_SECURITY_TOKEN *token);

/* ================= wstrust extensions (not in Windows) ================= */

/* Use the broker socket at `path` (UTF-8) for this channel instead of
 * $WSTRUST_SOCKET or the default.  Only in state CREATED. */
HRESULT wstrust_set_channel_socket(WS_CHANNEL *channel, const char *path, WS_ERROR *error);

/* Like WsOpenChannel, but names a broker profile (UTF-8) instead of the STS
 * URL: requests carry the profile name, and properties the caller does not
 * give (TRUST_VERSION included) take the profile's values.  This is what
 * `wstrust token --profile` uses. */
HRESULT wstrust_open_channel_profile(WS_CHANNEL *channel, const char *profile, WS_ERROR *error);

/* Embedded mode: the CA bundle (PEM, UTF-8 path) the private broker
 * verifies the STS's TLS certificate with, instead of $WSTRUST_CA_FILE or
 * the system bundle.  Only in state CREATED. */
HRESULT wstrust_set_channel_ca_file(WS_CHANNEL *channel, const char *path, WS_ERROR *error);

/* The token type URI the STS issued (UTF-8, owned by the token), or NULL in
 * *uri when the STS did not say. */
HRESULT wstrust_get_token_type(WS_SECURITY_TOKEN *token, const char **uri, WS_ERROR *error);

/* Error string `index` as UTF-8 (owned by the error object, valid until it is
 * reset or freed). */
HRESULT wstrust_get_error_string_utf8(WS_ERROR *error, ULONG index, const char **string);

#ifdef __cplusplus
}
#endif

#endif
