/* parse: the STS reply parser (see parse.h for the contract).
 *
 * One pass of libxml2 builds the tree while our SAX hooks (wrapping libxml2's
 * own SAX2 tree builder) enforce the limits, refuse DOCTYPEs and entity
 * references, and record each element's byte range in the input.  The
 * WS-Trust / SOAP structure is then read from the tree, touching only the
 * few elements it needs; the elements handed out as XML are copied from the
 * recorded byte ranges, never re-serialized. */
#include "parse.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/dict.h>
#include <libxml/encoding.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <sodium.h>

#define NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
#define NS_TRUST2005 "http://schemas.xmlsoap.org/ws/2005/02/trust"
#define NS_TRUST13 "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_WSA2004 "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_WSA10 "http://www.w3.org/2005/08/addressing"
#define NS_WSP2004 "http://schemas.xmlsoap.org/ws/2004/09/policy"
#define NS_WSP15 "http://www.w3.org/ns/ws-policy"
#define NS_WSU "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define NS_SC2005 "http://schemas.xmlsoap.org/ws/2005/02/sc"
#define NS_SC13 "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"

/* The wire codec's caps on result fields (ipc/codec.c): checked here so the
 * reply gets a precise error instead of an encoder failure. */
#define MAX_ENTROPY 1024u
#define MAX_ENTROPY_XML (64u * 1024u)
#define MAX_REASON (64u * 1024u)

/* Namespace declarations in scope at once (shadowed ones included).  libxml2
 * resolves every prefixed name by a linear walk of them, so max_depth times
 * max_attrs of them (4096 by default) make each attribute cost thousands of
 * steps: seconds for a few MB.  Real replies have a few dozen. */
#define MAX_NS_IN_SCOPE 256u

/* 9999-12-31T23:59:59.9999999Z, .NET's DateTime.MaxValue.Ticks. */
#define MAX_TICKS 3155378975999999999ull

struct pstate {
	struct wt_limits lim;
	const uint8_t *buf;   /* the UTF-8 bytes libxml2 parses; offsets index this */
	size_t len;
	uint32_t depth, nodes;
	size_t text_run;      /* bytes of the current run of character data */
	uint32_t err_code;    /* first error wins */
	char err[1024];
	char xml_err[512];    /* libxml2's first error message, with position */
	xmlParserCtxtPtr ctxt;
	uint32_t http_status;
};

static void vfail(struct pstate *st, uint32_t code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void vfail(struct pstate *st, uint32_t code, const char *fmt, va_list ap)
{
	if (st->err_code)
		return;
	st->err_code = code;
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
}

__attribute__((format(printf, 3, 4)))
static int fail(struct pstate *st, uint32_t code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(st, code, fmt, ap);
	va_end(ap);
	return -1;
}

/* From inside a SAX callback: record the error and halt libxml2 at once. */
__attribute__((format(printf, 3, 4)))
static void stop(struct pstate *st, uint32_t code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(st, code, fmt, ap);
	va_end(ap);
	xmlStopParser(st->ctxt);
}

/* In a void SAX callback: stop and leave. */
#define HALT(...)                    \
	do {                             \
		stop(__VA_ARGS__);           \
		return;                      \
	} while (0)

static struct pstate *state_of(void *ctx)
{
	return ((xmlParserCtxtPtr)ctx)->_private;
}

/* ---- byte offsets ----
 * Elements carry their input byte range in fields the tree builder leaves
 * unused: _private = offset of '<' of the start tag, psvi = offset just past
 * the end tag's '>'.  (No schema validation runs, so psvi is ours.) */

static bool cur_offset(struct pstate *st, size_t *off)
{
	xmlParserCtxtPtr c = st->ctxt;
	/* Offsets are only meaningful in the one input we handed libxml2, with
	 * no decoder between it and our bytes. */
	if (c->inputNr != 1 || !c->input || !c->input->buf || c->input->buf->encoder)
		return false;
	long n = xmlByteConsumed(c);
	if (n < 0 || (size_t)n > st->len)
		return false;
	*off = (size_t)n;
	return true;
}

static void sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *URI,
		      int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
		      const xmlChar **attributes)
{
	struct pstate *st = state_of(ctx);
	xmlParserCtxtPtr c = st->ctxt;
	if (st->err_code)
		return;
	st->text_run = 0;
	if (++st->depth > st->lim.max_depth)
		HALT(st, IPC_PERR_LIMIT, "element nesting deeper than max_depth=%u (at <%.100s>)",
			    st->lim.max_depth, localname);
	if (++st->nodes > st->lim.max_nodes)
		HALT(st, IPC_PERR_LIMIT, "more than max_nodes=%u nodes (elements, comments, processing instructions)",
			    st->lim.max_nodes);
	if ((uint64_t)nb_attributes + (uint64_t)nb_namespaces > st->lim.max_attrs)
		HALT(st, IPC_PERR_LIMIT,
			    "element <%.100s> has more than max_attrs=%u attributes (namespace declarations included)",
			    localname, st->lim.max_attrs);
	for (int i = 0; i < nb_attributes; i++) {
		size_t vlen = (size_t)(attributes[5 * i + 4] - attributes[5 * i + 3]);
		if (vlen > st->lim.max_text)
			HALT(st, IPC_PERR_LIMIT, "attribute %.100s is %zu bytes, over max_text=%u",
				    attributes[5 * i], vlen, st->lim.max_text);
	}
	for (int i = 0; i < nb_namespaces; i++) {
		const xmlChar *href = namespaces[2 * i + 1];
		size_t vlen = href ? strlen((const char *)href) : 0;
		if (vlen > st->lim.max_text)
			HALT(st, IPC_PERR_LIMIT, "namespace URI is %zu bytes, over max_text=%u", vlen,
				    st->lim.max_text);
	}
	if (c->nsNr > 0 && (unsigned)c->nsNr / 2 > MAX_NS_IN_SCOPE)
		HALT(st, IPC_PERR_LIMIT, "more than %u namespace declarations in scope at <%.100s>", MAX_NS_IN_SCOPE,
		     localname);
	size_t off;
	if (!cur_offset(st, &off))
		HALT(st, IPC_PERR_MALFORMED, "internal: lost the input position at <%.100s>", localname);
	/* libxml2 calls us with the start tag consumed up to its closing '>'.
	 * '<' cannot occur inside a start tag (not even in attribute values), so
	 * the nearest '<' before the position is the tag's first byte. */
	if (off >= st->len)
		off = st->len - 1; /* a truncated tag: libxml2 stops at the end */
	while (off > 0 && st->buf[off] != '<')
		off--;
	if (st->buf[off] != '<')
		HALT(st, IPC_PERR_MALFORMED, "internal: no start tag for <%.100s>", localname);

	xmlNodePtr parent = c->node;
	xmlSAX2StartElementNs(ctx, localname, prefix, URI, nb_namespaces, namespaces, nb_attributes,
			      nb_defaulted, attributes);
	if (!c->node || c->node == parent)
		HALT(st, IPC_PERR_LIMIT, "out of memory building <%.100s>", localname);
	c->node->_private = (void *)(uintptr_t)off;
	c->node->psvi = NULL;
}

static void sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *URI)
{
	struct pstate *st = state_of(ctx);
	xmlParserCtxtPtr c = st->ctxt;
	if (st->err_code)
		return;
	st->text_run = 0;
	size_t off;
	if (!cur_offset(st, &off))
		HALT(st, IPC_PERR_MALFORMED, "internal: lost the input position at </%.100s>", localname);
	if (c->node)
		c->node->psvi = (void *)(uintptr_t)off;
	if (st->depth)
		st->depth--;
	xmlSAX2EndElementNs(ctx, localname, prefix, URI);
}

static bool text_ok(struct pstate *st, size_t len)
{
	st->text_run += len;
	if (st->text_run > st->lim.max_text) {
		stop(st, IPC_PERR_LIMIT, "text node longer than max_text=%u bytes", st->lim.max_text);
		return false;
	}
	return true;
}

static void sax_characters(void *ctx, const xmlChar *ch, int len)
{
	struct pstate *st = state_of(ctx);
	if (!st->err_code && len >= 0 && text_ok(st, (size_t)len))
		xmlSAX2Characters(ctx, ch, len);
}

static void sax_cdata(void *ctx, const xmlChar *value, int len)
{
	struct pstate *st = state_of(ctx);
	if (!st->err_code && len >= 0 && text_ok(st, (size_t)len))
		xmlSAX2CDataBlock(ctx, value, len);
}

static bool misc_node_ok(struct pstate *st, const xmlChar *value, const char *what)
{
	if (st->err_code)
		return false;
	st->text_run = 0;
	if (++st->nodes > st->lim.max_nodes) {
		stop(st, IPC_PERR_LIMIT, "more than max_nodes=%u nodes (elements, comments, processing instructions)",
		     st->lim.max_nodes);
		return false;
	}
	size_t n = value ? strlen((const char *)value) : 0;
	if (n > st->lim.max_text) {
		stop(st, IPC_PERR_LIMIT, "%s is %zu bytes, over max_text=%u", what, n, st->lim.max_text);
		return false;
	}
	return true;
}

static void sax_comment(void *ctx, const xmlChar *value)
{
	if (misc_node_ok(state_of(ctx), value, "comment"))
		xmlSAX2Comment(ctx, value);
}

static void sax_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	if (misc_node_ok(state_of(ctx), data, "processing instruction"))
		xmlSAX2ProcessingInstruction(ctx, target, data);
}

/* libxml2 calls this right after reading "<!DOCTYPE name ids", before it
 * looks at the internal subset: nothing from the DTD has been processed. */
static void sax_internal_subset(void *ctx, const xmlChar *name, const xmlChar *ExternalID, const xmlChar *SystemID)
{
	(void)ExternalID;
	(void)SystemID;
	stop(state_of(ctx), IPC_PERR_FORBIDDEN, "DOCTYPE not allowed (<!DOCTYPE %.100s>)", name ? (const char *)name : "");
}

static void sax_external_subset(void *ctx, const xmlChar *name, const xmlChar *ExternalID, const xmlChar *SystemID)
{
	sax_internal_subset(ctx, name, ExternalID, SystemID);
}

/* Called for every entity reference but the five predefined ones. */
static xmlEntityPtr sax_get_entity(void *ctx, const xmlChar *name)
{
	stop(state_of(ctx), IPC_PERR_FORBIDDEN, "entity reference &%.100s; not allowed", name ? (const char *)name : "");
	return NULL;
}

static xmlEntityPtr sax_get_pentity(void *ctx, const xmlChar *name)
{
	stop(state_of(ctx), IPC_PERR_FORBIDDEN, "parameter entity reference %%%.100s; not allowed",
	     name ? (const char *)name : "");
	return NULL;
}

/* Keep libxml2's first error (with its position) for the report; never
 * print anything. */
static void sax_serror(void *ctx, xmlErrorPtr e)
{
	struct pstate *st = state_of(ctx);
	/* libxml2 2.9 keeps parsing after a fatal error (with our hooks
	 * disabled), resynchronising inside tags in ways prescan_attrs cannot
	 * follow: its quadratic attribute checks would then run unbounded.  The
	 * document is already refused, so end the parse here.  Not
	 * xmlStopParser: it frees the input under the caller's feet. */
	if (e && e->level == XML_ERR_FATAL && st->ctxt) {
		st->ctxt->instate = XML_PARSER_EOF;
		st->ctxt->disableSAX = 1;
	}
	if (!e || e->level < XML_ERR_ERROR || st->xml_err[0])
		return;
	snprintf(st->xml_err, sizeof(st->xml_err), "line %d column %d: %s", e->line, e->int2,
		 e->message ? e->message : "error");
	for (char *p = st->xml_err; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	size_t n = strlen(st->xml_err);
	while (n && st->xml_err[n - 1] == ' ')
		st->xml_err[--n] = 0;
}

static void quiet_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* ---- input preparation ---- */

/* libxml2 checks attribute uniqueness (and namespace declarations) with
 * loops quadratic in the attributes of one element, before any SAX hook
 * sees the element.  So count them first, in one linear scan: '=' outside
 * quoted values occurs exactly once per attribute in a start tag. */
static int prescan_attrs(struct pstate *st)
{
	const uint8_t *p = st->buf, *end = st->buf + st->len;
	while ((p = memchr(p, '<', (size_t)(end - p)))) {
		size_t left = (size_t)(end - p);
		if (left >= 4 && !memcmp(p, "<!--", 4)) {
			p = memmem(p + 4, left - 4, "-->", 3);
		} else if (left >= 9 && !memcmp(p, "<![CDATA[", 9)) {
			p = memmem(p + 9, left - 9, "]]>", 3);
		} else if (left >= 2 && p[1] == '?') {
			p = memmem(p + 2, left - 2, "?>", 2);
		} else if (left >= 2 && (p[1] == '!' || p[1] == '/')) {
			/* A DOCTYPE is refused by the parser before it matters;
			 * an end tag has no attributes. */
			if (p[1] == '!')
				return 0;
			p++;
			continue;
		} else {
			const uint8_t *name = p + 1, *q = name;
			while (q < end && *q != '>' && *q != '/' && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
				q++;
			uint32_t n = 0;
			for (; q < end && *q != '>'; q++) {
				if (*q == '"' || *q == '\'') {
					const uint8_t *close = memchr(q + 1, *q, (size_t)(end - q - 1));
					if (!close)
						return 0; /* libxml2 reports it */
					q = close;
				} else if (*q == '=' && ++n > st->lim.max_attrs) {
					size_t nlen = 0;
					while (name + nlen < end && nlen < 100 && name[nlen] != '>' && name[nlen] != '/' &&
					       name[nlen] > ' ')
						nlen++;
					return fail(st, IPC_PERR_LIMIT,
						    "element <%.*s> has more than max_attrs=%u attributes (namespace declarations included)",
						    (int)nlen, (const char *)name, st->lim.max_attrs);
				} else if (*q == '<') {
					break; /* not well-formed; libxml2 reports it */
				}
			}
			p = q;
		}
		if (!p || p >= end)
			return 0;
	}
	return 0;
}

static bool ascii_ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* The encoding named by an XML declaration at the start of p, if any. */
static bool declared_encoding(const uint8_t *p, size_t len, char *name, size_t cap)
{
	if (!p || len < 6 || memcmp(p, "<?xml", 5) != 0 || !(p[5] == ' ' || p[5] == '\t' || p[5] == '\r' || p[5] == '\n'))
		return false;
	const uint8_t *end = memmem(p, len, "?>", 2);
	if (!end)
		return false;
	const uint8_t *e = memmem(p, (size_t)(end - p), "encoding", 8);
	if (!e)
		return false;
	e += 8;
	while (e < end && (*e == ' ' || *e == '\t' || *e == '\r' || *e == '\n' || *e == '='))
		e++;
	if (e >= end || (*e != '"' && *e != '\''))
		return false;
	uint8_t q = *e++;
	const uint8_t *v = e;
	while (e < end && *e != q)
		e++;
	size_t n = (size_t)(e - v);
	if (e >= end || n == 0 || n >= cap)
		return false;
	memcpy(name, v, n);
	name[n] = 0;
	return true;
}

static size_t strip_utf8_boms(const uint8_t **p, size_t len, int max)
{
	for (int i = 0; i < max && len >= 3 && !memcmp(*p, "\xEF\xBB\xBF", 3); i++) {
		*p += 3;
		len -= 3;
	}
	return len;
}

/* Convert the whole reply to UTF-8 with libxml2's own decoders. */
static int to_utf8(struct pstate *st, const uint8_t *in, size_t len, xmlCharEncodingHandlerPtr h, const char *name,
		   uint8_t **out, size_t *outlen)
{
	int rc = -1;
	xmlBufferPtr src = xmlBufferCreateSize(len + 1), dst = xmlBufferCreateSize(len * 2 + 16);
	if (!src || !dst || len > INT32_MAX / 4 || xmlBufferAdd(src, in, (int)len) != 0) {
		fail(st, IPC_PERR_LIMIT, "out of memory converting %s to UTF-8", name);
		goto out;
	}
	/* xmlCharEncInFunc converts what it can per call; loop until done. */
	while (xmlBufferLength(src) > 0) {
		int before = xmlBufferLength(src);
		int n = xmlCharEncInFunc(h, dst, src);
		if (n < 0 || xmlBufferLength(src) == before) {
			fail(st, IPC_PERR_MALFORMED, "reply is not valid %s", name);
			goto out;
		}
	}
	*outlen = (size_t)xmlBufferLength(dst);
	*out = malloc(*outlen + 1);
	if (!*out) {
		fail(st, IPC_PERR_LIMIT, "out of memory converting %s to UTF-8", name);
		goto out;
	}
	memcpy(*out, xmlBufferContent(dst), *outlen);
	(*out)[*outlen] = 0;
	rc = 0;
out:
	xmlBufferFree(src);
	xmlBufferFree(dst);
	xmlCharEncCloseFunc(h);
	return rc;
}

/* Give libxml2 UTF-8 only (then byte offsets are offsets into our bytes).
 * *owned is set when a converted copy was made. */
static int prepare_input(struct pstate *st, const uint8_t *reply, size_t len, uint8_t **owned)
{
	*owned = NULL;
	/* One UTF-8 BOM is standard; a second one is a known AD FS/ACS quirk. */
	len = strip_utf8_boms(&reply, len, 2);
	if (len >= 3 && !memcmp(reply, "\xEF\xBB\xBF", 3))
		return fail(st, IPC_PERR_MALFORMED, "more than two byte-order marks");
	xmlCharEncoding enc = XML_CHAR_ENCODING_NONE;
	const char *name = NULL;
	if (len >= 2 && reply[0] == 0xFF && reply[1] == 0xFE) {
		enc = XML_CHAR_ENCODING_UTF16LE, name = "UTF-16LE";
	} else if (len >= 2 && reply[0] == 0xFE && reply[1] == 0xFF) {
		enc = XML_CHAR_ENCODING_UTF16BE, name = "UTF-16BE";
	} else if (len >= 4 && reply[0] == '<' && reply[1] == 0 && reply[2] != 0 && reply[3] == 0) {
		enc = XML_CHAR_ENCODING_UTF16LE, name = "UTF-16LE";
	} else if (len >= 4 && reply[0] == 0 && reply[1] == '<' && reply[2] == 0 && reply[3] != 0) {
		enc = XML_CHAR_ENCODING_UTF16BE, name = "UTF-16BE";
	}
	xmlCharEncodingHandlerPtr h = NULL;
	char declared[64];
	if (enc != XML_CHAR_ENCODING_NONE) {
		h = xmlGetCharEncodingHandler(enc);
	} else if (declared_encoding(reply, len, declared, sizeof(declared))) {
		/* Only decoders built into libxml2: anything else would go to
		 * iconv, which loads modules from the file system the sandbox
		 * does not have.  ("UTF-16" without a UTF-16 byte pattern is
		 * mislabelled UTF-8.) */
		static const char *const as_utf8[] = { "utf-8", "utf8", "us-ascii", "ascii", "utf-16" };
		static const char *const latin1[] = { "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1",
						      "iso-latin-1" };
		size_t dn = strlen(declared);
		bool plain = false;
		for (size_t i = 0; i < sizeof(as_utf8) / sizeof(*as_utf8); i++)
			plain = plain || ascii_ieq(declared, dn, as_utf8[i]);
		for (size_t i = 0; !plain && !h && i < sizeof(latin1) / sizeof(*latin1); i++)
			if (ascii_ieq(declared, dn, latin1[i]))
				h = xmlGetCharEncodingHandler(XML_CHAR_ENCODING_8859_1);
		if (!plain && !h)
			return fail(st, IPC_PERR_MALFORMED,
				    "unsupported encoding \"%.60s\" (UTF-8, UTF-16 and ISO-8859-1 are accepted)", declared);
		if (h)
			name = "ISO-8859-1";
	}
	if (name) {
		if (!h)
			return fail(st, IPC_PERR_MALFORMED, "no decoder for %s", name);
		size_t n;
		if (to_utf8(st, reply, len, h, name, owned, &n) != 0)
			return -1;
		reply = *owned;
		/* The decoded byte-order mark (U+FEFF) is now a UTF-8 BOM. */
		len = strip_utf8_boms(&reply, n, 1);
	}
	/* What libxml2 would still sniff from the first bytes (UCS-4, EBCDIC)
	 * needs iconv too: refuse it here. */
	xmlCharEncoding sniffed = len >= 4 ? xmlDetectCharEncoding(reply, 4) : XML_CHAR_ENCODING_NONE;
	if (sniffed != XML_CHAR_ENCODING_NONE && sniffed != XML_CHAR_ENCODING_UTF8)
		return fail(st, IPC_PERR_MALFORMED, "unsupported encoding (%s)", xmlGetCharEncodingName(sniffed));
	st->buf = reply;
	st->len = len;
	return 0;
}

/* ---- tree helpers ---- */

static const char *ns_of(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

static bool is_el(const xmlNode *n, const char *ns, const char *local)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local) && !strcmp(ns_of(n), ns);
}

static xmlNode *next_el(xmlNode *n)
{
	while (n && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

#define FOR_EACH_EL(c, parent) for (xmlNode *c = next_el((parent)->children); c; c = next_el(c->next))

static bool is_xml_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool all_space(const xmlChar *s)
{
	for (; s && *s; s++)
		if (!is_xml_space(*s))
			return false;
	return true;
}

static int trust_version_of(const char *ns)
{
	if (!strcmp(ns, NS_TRUST2005))
		return 1;
	if (!strcmp(ns, NS_TRUST13))
		return 2;
	return 0;
}

static const char *trust_name(int v)
{
	return v == 1 ? "Feb 2005" : "1.3";
}

static bool is_wsa(const char *ns)
{
	return !strcmp(ns, NS_WSA2004) || !strcmp(ns, NS_WSA10);
}

/* The concatenated text/CDATA children of el (comments and PIs skipped),
 * trimmed when asked.  An element child makes it a STRUCTURE error. */
static char *text_of(struct pstate *st, const xmlNode *el, bool trim, size_t *outlen)
{
	size_t total = 0;
	for (const xmlNode *c = el->children; c; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			total += c->content ? strlen((const char *)c->content) : 0;
		else if (c->type == XML_ELEMENT_NODE) {
			fail(st, IPC_PERR_STRUCTURE, "%.100s contains element <%.100s>, expected text", el->name, c->name);
			return NULL;
		}
	}
	char *s = malloc(total + 1), *p = s;
	if (!s) {
		fail(st, IPC_PERR_LIMIT, "out of memory reading %.100s", el->name);
		return NULL;
	}
	for (const xmlNode *c = el->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
			size_t n = strlen((const char *)c->content);
			memcpy(p, c->content, n);
			p += n;
		}
	*p = 0;
	size_t n = total;
	if (trim) {
		size_t b = 0;
		while (b < n && is_xml_space((uint8_t)s[b]))
			b++;
		while (n > b && is_xml_space((uint8_t)s[n - 1]))
			n--;
		memmove(s, s + b, n - b);
		n -= b;
		s[n] = 0;
	}
	if (outlen)
		*outlen = n;
	return s;
}

/* A trimmed, non-empty short string (URI, id, number), bounded by the wire
 * format's short-string cap. */
static int short_text(struct pstate *st, const xmlNode *el, char **out)
{
	size_t n;
	char *s = text_of(st, el, true, &n);
	if (!s)
		return -1;
	if (n == 0) {
		free(s);
		return fail(st, IPC_PERR_VALUE, "%.100s is empty", el->name);
	}
	if (n > IPC_MAX_SHORT) {
		free(s);
		return fail(st, IPC_PERR_LIMIT, "%.100s is %zu bytes, over %u", el->name, n, IPC_MAX_SHORT);
	}
	*out = s;
	return 0;
}

static int dup_attr_str(struct pstate *st, const xmlChar *v, const char *what, char **out)
{
	size_t n = strlen((const char *)v);
	if (n > IPC_MAX_SHORT)
		return fail(st, IPC_PERR_LIMIT, "%s is %zu bytes, over %u", what, n, IPC_MAX_SHORT);
	if (!(*out = strdup((const char *)v)))
		return fail(st, IPC_PERR_LIMIT, "out of memory");
	return 0;
}

/* The one element child of el (comments, PIs and whitespace around it are
 * fine).  Two elements is the shape of a signature-wrapping attempt. */
static xmlNode *only_child(struct pstate *st, xmlNode *el)
{
	xmlNode *found = NULL;
	unsigned n = 0;
	for (xmlNode *c = el->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE) {
			if (!found)
				found = c;
			n++;
		} else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && !all_space(c->content)) {
			fail(st, IPC_PERR_STRUCTURE, "%.100s contains text besides its element", el->name);
			return NULL;
		}
	}
	if (n == 0)
		fail(st, IPC_PERR_STRUCTURE, "%.100s has no element child", el->name);
	else if (n > 1)
		fail(st, IPC_PERR_STRUCTURE, "%.100s has %u child elements, expected exactly one", el->name, n);
	return n == 1 ? found : NULL;
}

/* ---- byte-exact extraction ---- */

/* Without entity substitution libxml2 stores an escaped '&' in a namespace
 * URI as the five characters "&#38;" (a raw '&' cannot occur in XML, so
 * that sequence always means one '&'); both functions read it back as '&'. */
static size_t amp_len(const xmlChar *s)
{
	return !strncmp((const char *)s, "&#38;", 5) ? 5 : 1;
}

static size_t escaped_len(const xmlChar *s)
{
	size_t n = 0;
	for (; *s; s++) {
		switch (*s) {
		case '&': n += 5; s += amp_len(s) - 1; break;
		case '<': n += 4; break;
		case '"': n += 6; break;
		case '\t': case '\n': case '\r': n += 5; break;
		default: n++;
		}
	}
	return n;
}

static uint8_t *put_escaped(uint8_t *p, const xmlChar *s)
{
	for (; *s; s++) {
		const char *r = NULL;
		switch (*s) {
		case '&': r = "&amp;"; s += amp_len(s) - 1; break;
		case '<': r = "&lt;"; break;
		case '"': r = "&quot;"; break;
		case '\t': r = "&#9;"; break;
		case '\n': r = "&#10;"; break;
		case '\r': r = "&#13;"; break;
		default: *p++ = *s; continue;
		}
		size_t n = strlen(r);
		memcpy(p, r, n);
		p += n;
	}
	return p;
}

static bool same_prefix(const xmlChar *a, const xmlChar *b)
{
	return (!a && !b) || (a && b && !strcmp((const char *)a, (const char *)b));
}

struct nsvec {
	const xmlNs **v;
	size_t n, cap;
	const xmlNs *stack[32];
};

static bool nsvec_push(struct nsvec *s, const xmlNs *ns)
{
	if (s->n == s->cap) {
		const xmlNs **bigger = malloc(2 * s->cap * sizeof(*bigger));
		if (!bigger)
			return false;
		memcpy(bigger, s->v, s->n * sizeof(*bigger));
		if (s->v != s->stack)
			free(s->v);
		s->v = bigger;
		s->cap *= 2;
	}
	s->v[s->n++] = ns;
	return true;
}

/* The exact input bytes of el, with every namespace declaration in scope
 * from its ancestors and not redeclared on el inserted into its start tag.
 * ALL in-scope declarations, not only those the subtree's names use: that is
 * what inclusive c14n renders for the element as a document subset, exclusive
 * c14n ignores the unused ones, and QNames inside attribute values or text
 * (xsi:type="saml2:...", fault codes) need them too. */
static int extract_xml(struct pstate *st, const xmlNode *el, struct wt_blob *out)
{
	size_t start = (uintptr_t)el->_private, end = (uintptr_t)el->psvi;
	size_t qlen = strlen((const char *)el->name);
	if (el->ns && el->ns->prefix)
		qlen += strlen((const char *)el->ns->prefix) + 1;
	if (end <= start || end > st->len || st->buf[start] != '<' || end - start < qlen + 2)
		return fail(st, IPC_PERR_MALFORMED, "internal: lost the byte range of <%.100s>", el->name);
	size_t head = start + 1 + qlen;

	/* Walk up: a prefix is taken from the nearest declaration only. */
	struct nsvec seen;
	seen.v = seen.stack;
	seen.n = 0;
	seen.cap = sizeof(seen.stack) / sizeof(*seen.stack);
	size_t extra = 0;
	int rc = -1;
	for (const xmlNs *ns = el->nsDef; ns; ns = ns->next)
		if (!nsvec_push(&seen, ns))
			goto oom;
	size_t own = seen.n;
	for (const xmlNode *a = el->parent; a && a->type == XML_ELEMENT_NODE; a = a->parent) {
		for (const xmlNs *ns = a->nsDef; ns; ns = ns->next) {
			bool shadowed = false;
			for (size_t i = 0; i < seen.n && !shadowed; i++)
				shadowed = same_prefix(seen.v[i]->prefix, ns->prefix);
			if (shadowed)
				continue;
			if (!nsvec_push(&seen, ns))
				goto oom;
			/* xmlns="" (no default namespace) needs no copy. */
			if (ns->href && ns->href[0])
				extra += 9 + (ns->prefix ? strlen((const char *)ns->prefix) + 1 : 0) + escaped_len(ns->href);
		}
	}
	size_t total = (end - start) + extra;
	uint8_t *buf = malloc(total + 1), *p = buf;
	if (!buf)
		goto oom;
	memcpy(p, st->buf + start, head - start);
	p += head - start;
	for (size_t i = own; i < seen.n; i++) {
		const xmlNs *ns = seen.v[i];
		if (!ns->href || !ns->href[0])
			continue;
		memcpy(p, " xmlns", 6);
		p += 6;
		if (ns->prefix) {
			*p++ = ':';
			size_t n = strlen((const char *)ns->prefix);
			memcpy(p, ns->prefix, n);
			p += n;
		}
		*p++ = '=';
		*p++ = '"';
		p = put_escaped(p, ns->href);
		*p++ = '"';
	}
	memcpy(p, st->buf + head, end - head);
	p += end - head;
	*p = 0;
	/* The wire carries at most IPC_MAX_REPLY per field; a converted
	 * (ISO-8859-1, UTF-16) reply can grow past it. */
	if ((size_t)(p - buf) > IPC_MAX_REPLY) {
		fail(st, IPC_PERR_LIMIT, "<%.100s> is %zu bytes, over the %u-byte maximum", el->name, (size_t)(p - buf),
		     IPC_MAX_REPLY);
		free(buf);
		goto out;
	}
	out->data = buf;
	out->len = (size_t)(p - buf);
	rc = 0;
	goto out;
oom:
	fail(st, IPC_PERR_LIMIT, "out of memory copying <%.100s>", el->name);
out:
	if (seen.v != seen.stack)
		free(seen.v);
	return rc;
}

/* ---- values ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t len, size_t *i, unsigned n, unsigned *v)
{
	*v = 0;
	for (unsigned k = 0; k < n; k++, (*i)++) {
		if (*i >= len || s[*i] < '0' || s[*i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[*i] - '0');
	}
	return true;
}

static bool lit(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return false;
	(*i)++;
	return true;
}

int wt_parse_datetime(const char *s, size_t len, uint64_t *ticks)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t i = 0;
	unsigned y, mo, d, h, mi, sec;
	if (!s || !ticks)
		return -1;
	/* Years past 9999 (5+ digits) and BC years ('-') are out of range. */
	if (!digits(s, len, &i, 4, &y) || !lit(s, len, &i, '-') || !digits(s, len, &i, 2, &mo) ||
	    !lit(s, len, &i, '-') || !digits(s, len, &i, 2, &d) || !lit(s, len, &i, 'T') ||
	    !digits(s, len, &i, 2, &h) || !lit(s, len, &i, ':') || !digits(s, len, &i, 2, &mi) ||
	    !lit(s, len, &i, ':') || !digits(s, len, &i, 2, &sec))
		return -1;
	uint64_t frac = 0;
	bool frac_nonzero = false;
	if (i < len && s[i] == '.') {
		i++;
		unsigned nd = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (nd < 7)
				frac = frac * 10 + (uint64_t)(s[i] - '0');
			if (s[i] != '0')
				frac_nonzero = true;
			nd++;
			i++;
		}
		if (nd == 0)
			return -1;
		for (; nd < 7; nd++)
			frac *= 10;
	}
	int64_t offset = 0;
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i++] == '+' ? 1 : -1;
		unsigned oh, om;
		if (!digits(s, len, &i, 2, &oh) || !lit(s, len, &i, ':') || !digits(s, len, &i, 2, &om))
			return -1;
		if (oh > 14 || om > 59 || (oh == 14 && om != 0))
			return -1;
		offset = sign * (int64_t)(oh * 3600 + om * 60);
	}
	if (i != len)
		return -1;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
		return -1;
	/* xsd allows 24:00:00 (exactly) as the end of the day. */
	if (mi > 59 || sec > 59 || h > 24 || (h == 24 && (mi || sec || frac_nonzero)))
		return -1;
	int64_t days = days_from_civil(y, mo, d) - days_from_civil(1, 1, 1);
	int64_t secs = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + (int64_t)sec - offset;
	if (secs < 0)
		return -1;
	uint64_t t = (uint64_t)secs * 10000000ull + frac;
	if (t > MAX_TICKS)
		return -1;
	*ticks = t;
	return 0;
}

static int base64_value(struct pstate *st, const xmlNode *el, size_t max, struct wt_blob *out)
{
	size_t n;
	char *s = text_of(st, el, true, &n);
	if (!s)
		return -1;
	int rc = -1;
	if (n == 0) {
		fail(st, IPC_PERR_VALUE, "%.100s is empty", el->name);
		goto out;
	}
	size_t cap = n / 4 * 3 + 3, got = 0;
	if (cap > max + 3)
		cap = max + 3;
	uint8_t *bin = malloc(cap);
	const char *endp = NULL;
	if (!bin) {
		fail(st, IPC_PERR_LIMIT, "out of memory decoding %.100s", el->name);
		goto out;
	}
	if (sodium_base642bin(bin, cap, s, n, " \t\r\n", &got, &endp, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    endp != s + n) {
		sodium_memzero(bin, cap);
		free(bin);
		/* The decoder also fails when the output would not fit. */
		if (n / 4 * 3 > max + 3)
			fail(st, IPC_PERR_LIMIT, "%.100s decodes to more than %zu bytes", el->name, max);
		else
			fail(st, IPC_PERR_VALUE, "%.100s is not valid base64", el->name);
		goto out;
	}
	if (got > max) {
		sodium_memzero(bin, cap);
		free(bin);
		fail(st, IPC_PERR_LIMIT, "%.100s decodes to %zu bytes, over %zu", el->name, got, max);
		goto out;
	}
	out->data = bin;
	out->len = got;
	rc = 0;
out:
	sodium_memzero(s, n);
	free(s);
	return rc;
}

static int datetime_value(struct pstate *st, const xmlNode *el, uint64_t *ticks)
{
	size_t n;
	char *s = text_of(st, el, true, &n);
	if (!s)
		return -1;
	int rc = 0;
	if (wt_parse_datetime(s, n, ticks) != 0)
		rc = fail(st, IPC_PERR_VALUE, "%.100s \"%.64s\" is not a valid xsd:dateTime", el->name, s);
	free(s);
	return rc;
}

static int uint_value(struct pstate *st, const xmlNode *el, uint32_t *v)
{
	size_t n;
	char *s = text_of(st, el, true, &n);
	if (!s)
		return -1;
	uint64_t x = 0;
	bool ok = n > 0 && n <= 10;
	for (size_t i = 0; ok && i < n; i++) {
		ok = s[i] >= '0' && s[i] <= '9';
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	ok = ok && x <= UINT32_MAX;
	int rc = 0;
	if (ok)
		*v = (uint32_t)x;
	else
		rc = fail(st, IPC_PERR_VALUE, "%.100s \"%.32s\" is not an unsigned 32-bit number", el->name, s);
	free(s);
	return rc;
}

/* A QName in element content, as "{namespace}local" ("local" when it has
 * no namespace).  An unbound prefix keeps the text as it was. */
static int qname_value(struct pstate *st, xmlNode *el, char **out)
{
	char *s;
	if (short_text(st, el, &s) != 0)
		return -1;
	char *colon = strchr(s, ':');
	xmlNsPtr ns;
	const char *local = s;
	if (colon) {
		*colon = 0;
		ns = xmlSearchNs(el->doc, el, (const xmlChar *)s);
		local = colon + 1;
		if (!ns) {
			*colon = ':';
			*out = s;
			return 0;
		}
	} else {
		ns = xmlSearchNs(el->doc, el, NULL);
	}
	if (!ns || !ns->href || !ns->href[0]) {
		*out = strdup(local);
	} else {
		size_t n = strlen((const char *)ns->href) + strlen(local) + 3;
		*out = malloc(n);
		if (*out)
			snprintf(*out, n, "{%s}%s", ns->href, local);
	}
	free(s);
	if (!*out)
		return fail(st, IPC_PERR_LIMIT, "out of memory");
	if (strlen(*out) > IPC_MAX_SHORT) {
		free(*out);
		*out = NULL;
		return fail(st, IPC_PERR_LIMIT, "fault code is over %u bytes", IPC_MAX_SHORT);
	}
	return 0;
}

/* ---- SOAP faults ---- */

static bool lang_is_english(const xmlNode *el)
{
	xmlChar *lang = xmlGetNsProp(el, (const xmlChar *)"lang", XML_XML_NAMESPACE);
	bool en = lang && (lang[0] == 'e' || lang[0] == 'E') && (lang[1] == 'n' || lang[1] == 'N') &&
		  (lang[2] == 0 || lang[2] == '-' || lang[2] == '_');
	xmlFree(lang);
	return en;
}

static int reason_value(struct pstate *st, const xmlNode *el, char **out)
{
	size_t n;
	char *s = text_of(st, el, true, &n);
	if (!s)
		return -1;
	if (n >= MAX_REASON) {
		/* Human-readable only: cut at a UTF-8 character boundary. */
		n = MAX_REASON - 1;
		while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80)
			n--;
		s[n] = 0;
	}
	*out = s;
	return 0;
}

#define SLOT(var, cond, what)                                                                           \
	if (cond) {                                                                                         \
		if (var)                                                                                        \
			return fail(st, IPC_PERR_STRUCTURE, "duplicate %s in %s", what, where);                 \
		var = c;                                                                                        \
		continue;                                                                                       \
	}

static int parse_fault12(struct pstate *st, xmlNode *fault, struct wt_result *out)
{
	const char *where = "Fault";
	xmlNode *code = NULL, *reason = NULL, *detail = NULL;
	FOR_EACH_EL(c, fault)
	{
		SLOT(code, is_el(c, NS_SOAP12, "Code"), "Code");
		SLOT(reason, is_el(c, NS_SOAP12, "Reason"), "Reason");
		SLOT(detail, is_el(c, NS_SOAP12, "Detail"), "Detail");
	}
	/* Code/Value, then Subcode/Value nested, outermost first. */
	for (xmlNode *level = code; level;) {
		xmlNode *value = NULL, *sub = NULL;
		where = level == code ? "Code" : "Subcode";
		FOR_EACH_EL(c, level)
		{
			SLOT(value, is_el(c, NS_SOAP12, "Value"), "Value");
			SLOT(sub, is_el(c, NS_SOAP12, "Subcode"), "Subcode");
		}
		if (value) {
			char *q;
			if (qname_value(st, value, &q) != 0)
				return -1;
			if (level == code)
				out->fault_code = q;
			else if (out->n_subcodes < WT_MAX_SUBCODES)
				out->fault_subcodes[out->n_subcodes++] = q;
			else
				free(q); /* deeper subcodes than the wire carries */
		}
		level = sub;
	}
	if (reason) {
		xmlNode *pick = NULL;
		FOR_EACH_EL(c, reason)
		{
			if (!is_el(c, NS_SOAP12, "Text"))
				continue;
			if (!pick)
				pick = c;
			if (lang_is_english(c)) {
				pick = c;
				break;
			}
		}
		if (pick && reason_value(st, pick, &out->fault_reason) != 0)
			return -1;
	}
	if (detail && extract_xml(st, detail, &out->fault_detail) != 0)
		return -1;
	return 0;
}

static bool is_fault11_child(const xmlNode *c, const char *local)
{
	/* Unqualified per SOAP 1.1; some stacks qualify them anyway. */
	return is_el(c, "", local) || is_el(c, NS_SOAP11, local);
}

static int parse_fault11(struct pstate *st, xmlNode *fault, struct wt_result *out)
{
	const char *where = "Fault";
	xmlNode *code = NULL, *string = NULL, *detail = NULL;
	FOR_EACH_EL(c, fault)
	{
		SLOT(code, is_fault11_child(c, "faultcode"), "faultcode");
		SLOT(string, is_fault11_child(c, "faultstring"), "faultstring");
		SLOT(detail, is_fault11_child(c, "detail"), "detail");
	}
	if (code && qname_value(st, code, &out->fault_code) != 0)
		return -1;
	if (string && reason_value(st, string, &out->fault_reason) != 0)
		return -1;
	if (detail && extract_xml(st, detail, &out->fault_detail) != 0)
		return -1;
	return 0;
}

/* ---- WS-Trust ---- */

static const char *const RSTR_FIELDS[] = {
	"TokenType", "RequestedSecurityToken", "KeyType", "KeySize", "Lifetime", "RequestedAttachedReference",
	"RequestedUnattachedReference", "RequestedProofToken", "Entropy", "RequestSecurityTokenResponse",
	"RequestSecurityTokenResponseCollection",
};

static bool is_rstr_like(const xmlNode *n)
{
	if (n->type != XML_ELEMENT_NODE || !trust_version_of(ns_of(n)))
		return false;
	return !strcmp((const char *)n->name, "RequestSecurityTokenResponse") ||
	       !strcmp((const char *)n->name, "RequestSecurityTokenResponseCollection") ||
	       !strcmp((const char *)n->name, "RequestedSecurityToken");
}

/* Iterative walk of a subtree (depth is bounded, but no recursion anyway). */
static const xmlNode *find_rstr_like(const xmlNode *top)
{
	const xmlNode *n = top->children;
	while (n && n != top) {
		if (is_rstr_like(n))
			return n;
		if (n->type == XML_ELEMENT_NODE && n->children) {
			n = n->children;
			continue;
		}
		while (n != top && !n->next)
			n = n->parent;
		if (n != top)
			n = n->next;
	}
	return NULL;
}

static int parse_applies_to(struct pstate *st, xmlNode *at, struct wt_result *out)
{
	const char *where = "AppliesTo";
	xmlNode *epr = NULL;
	FOR_EACH_EL(c, at)
	{
		SLOT(epr, is_wsa(ns_of(c)) && !strcmp((const char *)c->name, "EndpointReference"), "EndpointReference");
	}
	if (!epr)
		return 0; /* e.g. a PolicyReference: no address to report */
	where = "EndpointReference";
	xmlNode *addr = NULL;
	FOR_EACH_EL(c, epr)
	{
		SLOT(addr, is_wsa(ns_of(c)) && !strcmp((const char *)c->name, "Address"), "Address");
	}
	if (!addr)
		return fail(st, IPC_PERR_STRUCTURE, "AppliesTo EndpointReference has no Address");
	return short_text(st, addr, &out->applies_to);
}

static int parse_lifetime(struct pstate *st, xmlNode *lt, struct wt_result *out)
{
	const char *where = "Lifetime";
	xmlNode *created = NULL, *expires = NULL;
	FOR_EACH_EL(c, lt)
	{
		SLOT(created, is_el(c, NS_WSU, "Created"), "Created");
		SLOT(expires, is_el(c, NS_WSU, "Expires"), "Expires");
	}
	if (created && datetime_value(st, created, &out->created) != 0)
		return -1;
	if (expires && datetime_value(st, expires, &out->expires) != 0)
		return -1;
	if (created && expires && out->created > out->expires)
		return fail(st, IPC_PERR_VALUE, "Lifetime Created is after Expires");
	return 0;
}

static int parse_sct(struct pstate *st, xmlNode *sct, struct wt_result *out)
{
	const char *where = "SecurityContextToken";
	const char *ns = ns_of(sct);
	xmlNode *id = NULL, *inst = NULL;
	FOR_EACH_EL(c, sct)
	{
		SLOT(id, is_el(c, ns, "Identifier"), "Identifier");
		SLOT(inst, is_el(c, ns, "Instance"), "Instance");
	}
	if (!id)
		return fail(st, IPC_PERR_STRUCTURE, "SecurityContextToken has no Identifier");
	if (short_text(st, id, &out->sct_id) != 0)
		return -1;
	if (inst && short_text(st, inst, &out->sct_instance) != 0)
		return -1;
	return 0;
}

static int parse_proof(struct pstate *st, xmlNode *rpt, const char *tns, struct wt_result *out)
{
	xmlNode *c = only_child(st, rpt);
	if (!c)
		return -1;
	if (is_el(c, tns, "BinarySecret")) {
		out->proof_kind = IPC_PROOF_BINARY_SECRET;
		return base64_value(st, c, IPC_MAX_SHORT, &out->proof_data);
	}
	if (is_el(c, tns, "ComputedKey")) {
		out->proof_kind = IPC_PROOF_COMPUTED_KEY;
		return short_text(st, c, &out->ck_algorithm);
	}
	if (is_el(c, NS_XENC, "EncryptedKey")) {
		out->proof_kind = IPC_PROOF_ENCRYPTED_KEY;
		return extract_xml(st, c, &out->proof_data);
	}
	return fail(st, IPC_PERR_STRUCTURE, "unsupported RequestedProofToken content {%.200s}%.100s", ns_of(c), c->name);
}

/* The issuer's wst:Entropy: exactly one wst:BinarySecret (the bytes) or one
 * xenc:EncryptedKey (its XML, for the broker to decrypt), nothing else. */
static int parse_issuer_entropy(struct pstate *st, xmlNode *ent, const char *tns, struct wt_result *out)
{
	xmlNode *bs = NULL, *ek = NULL;
	unsigned n = 0;
	for (xmlNode *c = ent->children; c; c = c->next) {
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && !all_space(c->content))
			return fail(st, IPC_PERR_STRUCTURE, "Entropy contains text besides its element");
		if (c->type != XML_ELEMENT_NODE)
			continue;
		n++;
		if (is_el(c, tns, "BinarySecret"))
			bs = bs ? bs : c;
		else if (is_el(c, NS_XENC, "EncryptedKey"))
			ek = ek ? ek : c;
		else
			return fail(st, IPC_PERR_STRUCTURE,
				    "unsupported Entropy content {%.200s}%.100s (expected a BinarySecret or an xenc:EncryptedKey)",
				    ns_of(c), c->name);
	}
	if (bs && ek)
		return fail(st, IPC_PERR_STRUCTURE,
			    "Entropy holds both a BinarySecret and an xenc:EncryptedKey; expected exactly one of them");
	if (n == 0)
		return fail(st, IPC_PERR_STRUCTURE, "Entropy holds neither a BinarySecret nor an xenc:EncryptedKey");
	if (n > 1)
		return fail(st, IPC_PERR_STRUCTURE, "Entropy holds %u %s elements; expected exactly one", n,
			    bs ? "BinarySecret" : "xenc:EncryptedKey");
	if (bs)
		return base64_value(st, bs, MAX_ENTROPY, &out->entropy);
	if (extract_xml(st, ek, &out->entropy_enc) != 0)
		return -1;
	if (out->entropy_enc.len > MAX_ENTROPY_XML)
		return fail(st, IPC_PERR_LIMIT, "the Entropy's xenc:EncryptedKey is %zu bytes, over %u", out->entropy_enc.len,
			    MAX_ENTROPY_XML);
	return 0;
}

static int parse_rstr(struct pstate *st, xmlNode *rstr, int tv, struct wt_result *out)
{
	const char *tns = tv == 1 ? NS_TRUST2005 : NS_TRUST13;
	const char *where = "RequestSecurityTokenResponse";
	xmlNode *rst = NULL, *tt = NULL, *kt = NULL, *ks = NULL, *lt = NULL, *at = NULL, *att = NULL, *unatt = NULL,
		*proof = NULL, *ent = NULL;
	FOR_EACH_EL(c, rstr)
	{
		const char *cns = ns_of(c);
		if (!strcmp(cns, tns)) {
			SLOT(rst, !strcmp((const char *)c->name, "RequestedSecurityToken"), "RequestedSecurityToken");
			SLOT(tt, !strcmp((const char *)c->name, "TokenType"), "TokenType");
			SLOT(kt, !strcmp((const char *)c->name, "KeyType"), "KeyType");
			SLOT(ks, !strcmp((const char *)c->name, "KeySize"), "KeySize");
			SLOT(lt, !strcmp((const char *)c->name, "Lifetime"), "Lifetime");
			SLOT(att, !strcmp((const char *)c->name, "RequestedAttachedReference"), "RequestedAttachedReference");
			SLOT(unatt, !strcmp((const char *)c->name, "RequestedUnattachedReference"),
			     "RequestedUnattachedReference");
			SLOT(proof, !strcmp((const char *)c->name, "RequestedProofToken"), "RequestedProofToken");
			SLOT(ent, !strcmp((const char *)c->name, "Entropy"), "Entropy");
			if (!strcmp((const char *)c->name, "RequestSecurityTokenResponse") ||
			    !strcmp((const char *)c->name, "RequestSecurityTokenResponseCollection"))
				return fail(st, IPC_PERR_STRUCTURE, "%s nested in RequestSecurityTokenResponse", c->name);
		} else if (!strcmp(cns, NS_WSP2004) || !strcmp(cns, NS_WSP15)) {
			SLOT(at, !strcmp((const char *)c->name, "AppliesTo"), "AppliesTo");
		} else if (trust_version_of(cns)) {
			/* A known field in the other WS-Trust version: conflicting. */
			for (size_t i = 0; i < sizeof(RSTR_FIELDS) / sizeof(*RSTR_FIELDS); i++)
				if (!strcmp((const char *)c->name, RSTR_FIELDS[i]))
					return fail(st, IPC_PERR_STRUCTURE,
						    "%s in the WS-Trust %s namespace inside a WS-Trust %s RequestSecurityTokenResponse",
						    c->name, trust_name(trust_version_of(cns)), trust_name(tv));
		}
	}
	if (!rst)
		return fail(st, IPC_PERR_STRUCTURE, "no RequestedSecurityToken in RequestSecurityTokenResponse");
	xmlNode *tok = only_child(st, rst);
	if (!tok)
		return -1;
	if (extract_xml(st, tok, &out->token_xml) != 0)
		return -1;
	if ((is_el(tok, NS_SC2005, "SecurityContextToken") || is_el(tok, NS_SC13, "SecurityContextToken")) &&
	    parse_sct(st, tok, out) != 0)
		return -1;
	if (tt && short_text(st, tt, &out->token_type) != 0)
		return -1;
	if (kt && short_text(st, kt, &out->key_type) != 0)
		return -1;
	if (ks && uint_value(st, ks, &out->key_size) != 0)
		return -1;
	if (lt && parse_lifetime(st, lt, out) != 0)
		return -1;
	if (at && parse_applies_to(st, at, out) != 0)
		return -1;
	xmlNode *ref;
	if (att && (!(ref = only_child(st, att)) || extract_xml(st, ref, &out->attached) != 0))
		return -1;
	if (unatt && (!(ref = only_child(st, unatt)) || extract_xml(st, ref, &out->unattached) != 0))
		return -1;
	if (proof && parse_proof(st, proof, tns, out) != 0)
		return -1;
	if (ent && parse_issuer_entropy(st, ent, tns, out) != 0)
		return -1;
	xmlChar *ctx = xmlGetNoNsProp(rstr, (const xmlChar *)"Context");
	if (ctx) {
		int rc = dup_attr_str(st, ctx, "Context", &out->context);
		xmlFree(ctx);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static bool has_child(xmlNode *el, const char *ns, const char *local)
{
	FOR_EACH_EL(c, el)
	if (is_el(c, ns, local))
		return true;
	return false;
}

/* An RSTRC: choose the RSTR that answers this request. */
static int pick_rstr(struct pstate *st, const struct wt_parse_req *req, xmlNode *coll, int tv, xmlNode **pick)
{
	const char *tns = tv == 1 ? NS_TRUST2005 : NS_TRUST13;
	unsigned total = 0, with_token = 0, ctx_match = 0, with_ctx = 0;
	xmlNode *tok_pick = NULL, *ctx_pick = NULL, *first = NULL;
	FOR_EACH_EL(c, coll)
	{
		if (!is_el(c, tns, "RequestSecurityTokenResponse"))
			return fail(st, IPC_PERR_STRUCTURE, "unexpected {%.200s}%.100s in RequestSecurityTokenResponseCollection",
				    ns_of(c), c->name);
		total++;
		if (!first)
			first = c;
		if (has_child(c, tns, "RequestedSecurityToken")) {
			with_token++;
			tok_pick = c;
		}
		if (req->context) {
			xmlChar *v = xmlGetNoNsProp(c, (const xmlChar *)"Context");
			if (v) {
				with_ctx++;
				if (!strcmp((const char *)v, req->context)) {
					ctx_match++;
					ctx_pick = c;
				}
				xmlFree(v);
			}
		}
	}
	if (total == 0)
		return fail(st, IPC_PERR_STRUCTURE, "RequestSecurityTokenResponseCollection has no RequestSecurityTokenResponse");
	if (req->context && ctx_match == 1) {
		*pick = ctx_pick;
		return 0;
	}
	if (req->context && ctx_match > 1)
		return fail(st, IPC_PERR_STRUCTURE, "ambiguous: %u RequestSecurityTokenResponse elements with Context \"%.200s\"",
			    ctx_match, req->context);
	if (req->context && with_ctx > 0)
		return fail(st, IPC_PERR_MISMATCH, "no RequestSecurityTokenResponse has the request's Context \"%.200s\"",
			    req->context);
	if (with_token > 1)
		return fail(st, IPC_PERR_STRUCTURE, "ambiguous: %u RequestSecurityTokenResponse elements", with_token);
	if (with_token == 1) {
		*pick = tok_pick;
		return 0;
	}
	if (total == 1) {
		*pick = first; /* parse_rstr gives the precise error */
		return 0;
	}
	return fail(st, IPC_PERR_STRUCTURE, "no RequestedSecurityToken in any of %u RequestSecurityTokenResponse elements",
		    total);
}

static int parse_header(struct pstate *st, const struct wt_parse_req *req, xmlNode *header, struct wt_result *out)
{
	const char *where = "Header";
	xmlNode *rel = NULL;
	const xmlNode *bad = find_rstr_like(header);
	if (bad)
		return fail(st, IPC_PERR_STRUCTURE, "%.100s outside the Body (in the SOAP Header)", bad->name);
	FOR_EACH_EL(c, header)
	{
		if (!is_wsa(ns_of(c)) || strcmp((const char *)c->name, "RelatesTo"))
			continue;
		/* Only the reply relationship (the default) answers our MessageID. */
		xmlChar *type = xmlGetNoNsProp(c, (const xmlChar *)"RelationshipType");
		bool reply = !type || !strcmp((const char *)type, NS_WSA10 "/reply") ||
			     !strcmp((const char *)type, "wsa:Reply") || !strcmp((const char *)type, NS_WSA2004 "/Reply");
		xmlFree(type);
		if (!reply)
			continue;
		SLOT(rel, true, "RelatesTo");
	}
	if (!rel)
		return 0;
	if (short_text(st, rel, &out->relates_to) != 0)
		return -1;
	if (req->relates_to && strcmp(req->relates_to, out->relates_to))
		return fail(st, IPC_PERR_MISMATCH, "RelatesTo \"%.200s\" does not match the request's MessageID \"%.200s\"",
			    out->relates_to, req->relates_to);
	return 0;
}

static int parse_trust(struct pstate *st, const struct wt_parse_req *req, xmlNode *payload, int tv,
		       struct wt_result *out)
{
	out->trust_version = (uint32_t)tv;
	if (req->trust_version && req->trust_version != (uint32_t)tv)
		return fail(st, IPC_PERR_MISMATCH, "reply is WS-Trust %s, the request was WS-Trust %s", trust_name(tv),
			    trust_name((int)req->trust_version));
	xmlNode *rstr = payload;
	if (!strcmp((const char *)payload->name, "RequestSecurityTokenResponseCollection") &&
	    pick_rstr(st, req, payload, tv, &rstr) != 0)
		return -1;
	if (parse_rstr(st, rstr, tv, out) != 0)
		return -1;
	if (req->context && out->context && strcmp(req->context, out->context))
		return fail(st, IPC_PERR_MISMATCH, "Context \"%.200s\" does not match the request's \"%.200s\"", out->context,
			    req->context);
	return 0;
}

static bool is_trust_payload(const xmlNode *n, int *tv)
{
	*tv = trust_version_of(ns_of(n));
	return *tv && (!strcmp((const char *)n->name, "RequestSecurityTokenResponse") ||
		       !strcmp((const char *)n->name, "RequestSecurityTokenResponseCollection"));
}

static int parse_document(struct pstate *st, const struct wt_parse_req *req, xmlDocPtr doc, struct wt_result *out)
{
	xmlNode *root = xmlDocGetRootElement(doc);
	int tv;
	if (!root)
		return fail(st, IPC_PERR_MALFORMED, "no root element");
	if (is_trust_payload(root, &tv)) {
		out->soap_version = 0;
		out->kind = IPC_RESULT_TOKEN;
		/* No envelope is not the SOAP version the request used (parse.h);
		 * it would also skip the RelatesTo check of the header. */
		if (req->soap_version)
			return fail(st, IPC_PERR_MISMATCH, "reply is a bare %.100s without a SOAP envelope, the request was SOAP %s",
				    root->name, req->soap_version == 11 ? "1.1" : "1.2");
		return parse_trust(st, req, root, tv, out);
	}
	const char *sns = ns_of(root);
	uint32_t sv = !strcmp(sns, NS_SOAP11) ? 11 : !strcmp(sns, NS_SOAP12) ? 12 : 0;
	if (!sv || strcmp((const char *)root->name, "Envelope"))
		return fail(st, IPC_PERR_MALFORMED,
			    "root element {%.200s}%.100s is not a SOAP Envelope or a RequestSecurityTokenResponse(Collection)",
			    sns, root->name);
	out->soap_version = sv;
	const char *where = "Envelope";
	xmlNode *header = NULL, *body = NULL;
	FOR_EACH_EL(c, root)
	{
		if (is_el(c, sns, "Header")) {
			if (body)
				return fail(st, IPC_PERR_STRUCTURE, "Header after Body in Envelope");
		}
		SLOT(header, is_el(c, sns, "Header"), "Header");
		SLOT(body, is_el(c, sns, "Body"), "Body");
		return fail(st, IPC_PERR_STRUCTURE, "unexpected {%.200s}%.100s in Envelope", ns_of(c), c->name);
	}
	if (!body)
		return fail(st, IPC_PERR_STRUCTURE, "Envelope has no Body");
	xmlNode *payload = NULL;
	unsigned n = 0;
	FOR_EACH_EL(c, body)
	{
		if (!payload)
			payload = c;
		n++;
	}
	if (n == 0)
		return fail(st, n == 0 && st->http_status != 200 && st->http_status != 0 ? IPC_PERR_MALFORMED
											  : IPC_PERR_STRUCTURE,
			    "SOAP Body is empty");
	if (n > 1)
		return fail(st, IPC_PERR_STRUCTURE, "SOAP Body has %u child elements, expected one", n);
	if (is_el(payload, sns, "Fault")) {
		/* A fault is reported whatever the header says. */
		out->kind = IPC_RESULT_FAULT;
		if (header && parse_header(st, req, header, out) != 0 && st->err_code != IPC_PERR_MISMATCH)
			return -1;
		st->err_code = 0; /* a RelatesTo mismatch does not hide the fault */
		st->err[0] = 0;
		return sv == 11 ? parse_fault11(st, payload, out) : parse_fault12(st, payload, out);
	}
	if (!is_trust_payload(payload, &tv))
		return fail(st, IPC_PERR_MALFORMED,
			    "SOAP Body holds {%.200s}%.100s, not a RequestSecurityTokenResponse(Collection) or a Fault",
			    ns_of(payload), payload->name);
	out->kind = IPC_RESULT_TOKEN;
	if (req->soap_version && req->soap_version != sv)
		return fail(st, IPC_PERR_MISMATCH, "reply is SOAP %s, the request was SOAP %s", sv == 11 ? "1.1" : "1.2",
			    req->soap_version == 11 ? "1.1" : "1.2");
	if (header && parse_header(st, req, header, out) != 0)
		return -1;
	return parse_trust(st, req, payload, tv, out);
}

/* ---- entry point ---- */

static void setup_sax(xmlSAXHandler *sax)
{
	sax->startElementNs = sax_start;
	sax->endElementNs = sax_end;
	sax->characters = sax_characters;
	sax->ignorableWhitespace = sax_characters;
	sax->cdataBlock = sax_cdata;
	sax->comment = sax_comment;
	sax->processingInstruction = sax_pi;
	sax->internalSubset = sax_internal_subset;
	sax->externalSubset = sax_external_subset;
	sax->getEntity = sax_get_entity;
	sax->getParameterEntity = sax_get_pentity;
	sax->serror = sax_serror;
	sax->error = NULL;
	sax->warning = NULL;
	sax->fatalError = NULL;
}

static void finish_error(struct pstate *st, struct wt_result *out)
{
	char msg[sizeof(st->err) + 64];
	uint32_t code = st->err_code ? st->err_code : IPC_PERR_MALFORMED;
	const char *text = st->err[0] ? st->err : "unspecified parse error";
	if (code == IPC_PERR_MALFORMED && st->http_status && st->http_status != 200)
		snprintf(msg, sizeof(msg), "%s (HTTP status %u)", text, st->http_status);
	else
		snprintf(msg, sizeof(msg), "%s", text);
	wt_result_free(out);
	out->secure = false;
	out->kind = IPC_RESULT_ERROR;
	out->error_code = code;
	out->error = strdup(msg);
}

/* One parser context per thread is reused while parses succeed: it keeps
 * libxml2's name dictionary warm (about 6 of 37 us for a 7 KB reply).  It is
 * dropped after any error, so nothing of a rejected reply is kept, and when
 * its dictionary passes DICT_KEEP names.  (xmlCtxtReadMemory resets it.) */
#define DICT_KEEP 4096
static _Thread_local xmlParserCtxtPtr cached_ctxt;

static uint32_t or_default(uint32_t v, uint32_t d)
{
	return v ? v : d;
}

int wt_parse_reply(const struct wt_parse_req *req, struct wt_result *out)
{
	struct pstate st;
	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	uint8_t *owned = NULL;
	xmlDocPtr doc = NULL;
	if (!req) {
		fail(&st, IPC_PERR_MALFORMED, "no request");
		goto done;
	}
	st.http_status = req->http_status;
	if (!req->reply || req->reply_len == 0) {
		fail(&st, IPC_PERR_MALFORMED, "empty reply");
		goto done;
	}
	/* A zero limit means "unset": the default, never "nothing allowed". */
	struct wt_limits d = WT_DEFAULT_LIMITS;
	st.lim.max_depth = or_default(req->limits.max_depth, d.max_depth);
	st.lim.max_text = or_default(req->limits.max_text, d.max_text);
	st.lim.max_attrs = or_default(req->limits.max_attrs, d.max_attrs);
	st.lim.max_nodes = or_default(req->limits.max_nodes, d.max_nodes);
	if (req->reply_len > IPC_MAX_REPLY) {
		fail(&st, IPC_PERR_LIMIT, "reply is %zu bytes, over the %u-byte maximum", req->reply_len, IPC_MAX_REPLY);
		goto done;
	}
	if (prepare_input(&st, req->reply, req->reply_len, &owned) != 0)
		goto done;
	size_t lead = 0;
	while (lead < st.len && is_xml_space(st.buf[lead]))
		lead++;
	if (lead == st.len) {
		fail(&st, IPC_PERR_MALFORMED, "empty reply");
		goto done;
	}
	if (st.len > INT32_MAX) {
		fail(&st, IPC_PERR_LIMIT, "reply too large");
		goto done;
	}
	if (prescan_attrs(&st) != 0)
		goto done;

	xmlInitParser();
	xmlSetGenericErrorFunc(NULL, quiet_generic);
	st.ctxt = cached_ctxt ? cached_ctxt : xmlNewParserCtxt();
	cached_ctxt = NULL;
	if (!st.ctxt) {
		fail(&st, IPC_PERR_LIMIT, "out of memory creating the XML parser");
		goto done;
	}
	st.ctxt->_private = &st;
	setup_sax(st.ctxt->sax);
	/* No NOENT, DTDLOAD, XINCLUDE or HUGE; NONET in case anything would
	 * try; IGNORE_ENC because the bytes are already UTF-8 (see
	 * prepare_input); blanks kept because the token's bytes matter. */
	int opts = XML_PARSE_NONET | XML_PARSE_IGNORE_ENC | XML_PARSE_COMPACT;
	doc = xmlCtxtReadMemory(st.ctxt, (const char *)st.buf, (int)st.len, NULL, NULL, opts);
	if (st.err_code)
		goto done;
	if (!doc || !st.ctxt->wellFormed || !st.ctxt->nsWellFormed) {
		if (st.http_status && st.http_status != 200 && !(st.buf[lead] == '<'))
			fail(&st, IPC_PERR_MALFORMED, "reply is not XML");
		else
			fail(&st, IPC_PERR_MALFORMED, "not well-formed XML: %s",
			     st.xml_err[0] ? st.xml_err : "parser failed");
		goto done;
	}
	parse_document(&st, req, doc, out);

done:
	if (doc)
		xmlFreeDoc(doc);
	if (st.ctxt && !st.err_code && xmlDictSize(st.ctxt->dict) <= DICT_KEEP)
		cached_ctxt = st.ctxt;
	else if (st.ctxt)
		xmlFreeParserCtxt(st.ctxt);
	free(owned);
	if (st.err_code) {
		finish_error(&st, out);
		return -1;
	}
	return 0;
}
