#include "rst.h"

#include <libxml/xmlwriter.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER_LEN RST_MARKER_LEN
#define secret_slot rst_slot

void rst_new_uuid(char out[64])
{
	uint8_t b[16];
	char hex[33];
	randombytes_buf(b, sizeof b);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);   /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	sodium_bin2hex(hex, sizeof hex, b, sizeof b);
	snprintf(out, 64, "urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void rst_format_time(char out[32], time_t t, long ms)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	char date[24];
	if (strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		date[0] = '\0';
	snprintf(out, 32, "%.19s.%03uZ", date, (unsigned)(ms % 1000));
}

int rst_escape_into(struct secbuf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '&': secbuf_puts(b, "&amp;"); break;
		case '<': secbuf_puts(b, "&lt;"); break;
		case '>': secbuf_puts(b, "&gt;"); break;
		case '"': secbuf_puts(b, "&quot;"); break;
		case '\'': secbuf_puts(b, "&apos;"); break;
		default:
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return -1;
			secbuf_append(b, &s[i], 1);
		}
	}
	return 0;
}

static void new_marker(struct secret_slot *s)
{
	uint8_t r[MARKER_LEN / 2];
	randombytes_buf(r, sizeof r);
	sodium_bin2hex(s->marker, sizeof s->marker, r, sizeof r);
}

/* The writer calls below return <0 on failure; we OR-accumulate a flag and
 * check once, instead of a ladder of ifs. */
struct w {
	xmlTextWriterPtr x;
	bool bad;
};

static void start(struct w *w, const char *prefix, const char *name, const char *ns)
{
	if (xmlTextWriterStartElementNS(w->x, BAD_CAST prefix, BAD_CAST name, BAD_CAST ns) < 0)
		w->bad = true;
}

static void end(struct w *w)
{
	if (xmlTextWriterEndElement(w->x) < 0)
		w->bad = true;
}

static void attr(struct w *w, const char *prefix, const char *name, const char *value)
{
	if (xmlTextWriterWriteAttributeNS(w->x, BAD_CAST prefix, BAD_CAST name, NULL, BAD_CAST value) < 0)
		w->bad = true;
}

static void plain_attr(struct w *w, const char *name, const char *value)
{
	if (xmlTextWriterWriteAttribute(w->x, BAD_CAST name, BAD_CAST value) < 0)
		w->bad = true;
}

static void text(struct w *w, const char *s)
{
	if (xmlTextWriterWriteString(w->x, BAD_CAST s) < 0)
		w->bad = true;
}

static void leaf(struct w *w, const char *prefix, const char *name, const char *value)
{
	start(w, prefix, name, NULL);
	text(w, value);
	end(w);
}

static void raw(struct w *w, const uint8_t *p, size_t len)
{
	if (len && (len > INT32_MAX || xmlTextWriterWriteRawLen(w->x, (const xmlChar *)p, (int)len) < 0))
		w->bad = true;
}

/* UseKey with the client certificate (issue 5's asymmetric extension). */
static void use_key(struct w *w, const uint8_t *der, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(n);
	if (!b64) {
		w->bad = true;
		return;
	}
	sodium_bin2base64(b64, n, der, len, sodium_base64_VARIANT_ORIGINAL);
	start(w, "wst", "UseKey", NULL);
	start(w, "ds", "KeyInfo", NS_DS);
	start(w, "ds", "X509Data", NULL);
	leaf(w, "ds", "X509Certificate", b64);
	end(w);
	end(w);
	end(w);
	free(b64);
}

static const char *bearer_uri(const struct rst_request *r)
{
	if (r->trust_version != 2)
		return KEYTYPE_NOPROOFKEY_2005;
	switch (r->bearer_version) {
	case 1: return KEYTYPE_BEARER_13_SPEC;
	case 2: return KEYTYPE_BEARER_13_SCHEMA;
	default: return KEYTYPE_BEARER_13;
	}
}

static bool has_bad_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return true;
	return false;
}

/* Assemble xml (with each slot's marker occurring exactly once) into out,
 * with the markers replaced by the escaped secrets. */
static int assemble(const char *xml, size_t xml_len, struct secret_slot *slots, size_t nslots,
                    struct secbuf *out, char *err, size_t errlen)
{
	const char *pos[RST_MAX_SECRETS];
	for (size_t i = 0; i < nslots; i++) {
		pos[i] = memmem(xml, xml_len, slots[i].marker, MARKER_LEN);
		const char *again = pos[i] ? memmem(pos[i] + 1, xml_len - (size_t)(pos[i] + 1 - xml), slots[i].marker,
		                                    MARKER_LEN) : NULL;
		if (!pos[i] || again) {
			snprintf(err, errlen, "internal error: secret placeholder not found exactly once");
			return -1;
		}
	}
	secbuf_init(out, xml_len + 256, 0);
	const char *cur = xml;
	for (;;) {
		/* next marker after cur */
		size_t best = nslots;
		for (size_t i = 0; i < nslots; i++)
			if (pos[i] >= cur && (best == nslots || pos[i] < pos[best]))
				best = i;
		if (best == nslots)
			break;
		secbuf_append(out, cur, (size_t)(pos[best] - cur));
		if (rst_escape_into(out, slots[best].value, slots[best].len) != 0) {
			snprintf(err, errlen, "a secret contains a control character (only tab is allowed)");
			secbuf_free(out);
			return -1;
		}
		cur = pos[best] + MARKER_LEN;
	}
	secbuf_append(out, cur, (size_t)(xml + xml_len - cur));
	if (out->failed) {
		snprintf(err, errlen, "out of secure memory");
		secbuf_free(out);
		return -1;
	}
	return 0;
}

int rst_build(const struct rst_request *r, struct rst_msg *out, char *err, size_t errlen)
{
	if (rst_build_unspliced(r, out, err, errlen) != 0)
		return -1;
	if (rst_splice(out, err, errlen) != 0) {
		rst_msg_free(out);
		return -1;
	}
	return 0;
}

int rst_build_unspliced(const struct rst_request *r, struct rst_msg *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (r->trust_version != 1 && r->trust_version != 2) {
		snprintf(err, errlen, "trust version %u unknown", r->trust_version);
		return -1;
	}
	if (r->soap_version != 11 && r->soap_version != 12) {
		snprintf(err, errlen, "SOAP version %u unknown", r->soap_version);
		return -1;
	}
	if (r->request_action < RST_ACTION_ISSUE || r->request_action > RST_ACTION_RENEW_CONTEXT) {
		snprintf(err, errlen, "REQUEST_ACTION %u unknown", r->request_action);
		return -1;
	}
	if (r->key_type > 3) {
		snprintf(err, errlen, "key type %u unknown", r->key_type);
		return -1;
	}
	if (r->key_type == 3 && (!r->use_key_cert || !r->use_key_cert_len)) {
		snprintf(err, errlen, "an asymmetric (PublicKey) token needs the profile's client_cert for UseKey");
		return -1;
	}
	if ((r->entropy_mode == 1 || r->entropy_mode == 3) && (!r->entropy || !r->entropy->len)) {
		snprintf(err, errlen, "internal error: entropy mode %u without requestor entropy", r->entropy_mode);
		return -1;
	}
	if (r->request_action == RST_ACTION_RENEW_CONTEXT && !r->renew_sct_id) {
		snprintf(err, errlen, "RENEW_CONTEXT without the Identifier of the token to renew");
		return -1;
	}
	const char *strs[] = { r->to, r->applies_to, r->token_type, r->context, r->username, r->renew_sct_id };
	static const char *const names[] = { "endpoint", "AppliesTo", "TokenType", "Context", "username",
		                             "wsc:Identifier" };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (strs[i] && has_bad_chars(strs[i])) {
			snprintf(err, errlen, "%s contains a control character", names[i]);
			return -1;
		}
	if (!r->to) {
		snprintf(err, errlen, "no endpoint");
		return -1;
	}
	if (r->username && (!r->password || !r->password->data)) {
		snprintf(err, errlen, "UsernameToken without a password");
		return -1;
	}

	bool v13 = r->trust_version == 2;
	const char *soap_ns = r->soap_version == 12 ? NS_SOAP12 : NS_SOAP11;
	const char *wst_ns = v13 ? NS_WST13 : NS_WST2005;
	/* SecureConversation's RST/SCT actions live in the trust namespace its
	 * version builds on: SC Feb 2005 -> trust Feb 2005, SC 1.3 -> trust 1.3. */
	const char *sc_ns = r->sc_version == 2 ? NS_WSC13 : NS_WSC2005;
	const char *sc_trust_ns = r->sc_version == 2 ? NS_WST13 : NS_WST2005;
	char sct_type[128];
	snprintf(sct_type, sizeof sct_type, "%s/sct", sc_ns);
	switch (r->request_action) {
	case RST_ACTION_NEW_CONTEXT: snprintf(out->action, sizeof out->action, "%s/RST/SCT", sc_trust_ns); break;
	case RST_ACTION_RENEW_CONTEXT:
		snprintf(out->action, sizeof out->action, "%s/RST/SCT/Renew", sc_trust_ns);
		break;
	default: snprintf(out->action, sizeof out->action, "%s/RST/Issue", wst_ns);
	}
	rst_new_uuid(out->message_id);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t now = r->now ? r->now : ts.tv_sec;
	long ms = r->now ? 0 : ts.tv_nsec / 1000000;
	rst_format_time(out->created, now, ms);
	rst_format_time(out->expires, now + (time_t)(r->ttl_s ? r->ttl_s : 300), ms);
	if (r->context && !(out->context = strdup(r->context))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}

	struct secret_slot *slots = out->slots;
	size_t nslots = 0;
	/* base64 of the requestor entropy, in secure memory */
	struct secret entropy_b64 = { 0 };
	if (r->entropy_mode == 1 || r->entropy_mode == 3) {
		size_t n = sodium_base64_encoded_len(r->entropy->len, sodium_base64_VARIANT_ORIGINAL);
		if (!(entropy_b64.data = sodium_malloc(n))) {
			snprintf(err, errlen, "out of secure memory");
			rst_msg_free(out);
			return -1;
		}
		sodium_bin2base64(entropy_b64.data, n, (const unsigned char *)r->entropy->data, r->entropy->len,
		                  sodium_base64_VARIANT_ORIGINAL);
		entropy_b64.len = strlen(entropy_b64.data);
	}

	xmlBufferPtr buf = xmlBufferCreate();
	xmlTextWriterPtr xw = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
	if (!xw) {
		if (buf)
			xmlBufferFree(buf);
		snprintf(err, errlen, "out of memory");
		secret_free(&entropy_b64);
		rst_msg_free(out);
		return -1;
	}
	struct w w = { .x = xw };

	start(&w, "s", "Envelope", soap_ns);
	if (xmlTextWriterWriteAttribute(xw, BAD_CAST "xmlns:wsa", BAD_CAST NS_WSA10) < 0 ||
	    xmlTextWriterWriteAttribute(xw, BAD_CAST "xmlns:wsu", BAD_CAST NS_WSU) < 0)
		w.bad = true;
	start(&w, "s", "Header", NULL);

	start(&w, "wsa", "Action", NULL);
	attr(&w, "s", "mustUnderstand", "1");
	text(&w, out->action);
	end(&w);
	leaf(&w, "wsa", "MessageID", out->message_id);
	start(&w, "wsa", "ReplyTo", NULL);
	leaf(&w, "wsa", "Address", WSA_ANONYMOUS);
	end(&w);
	start(&w, "wsa", "To", NULL);
	attr(&w, "s", "mustUnderstand", "1");
	attr(&w, "wsu", "Id", "_1");   /* wssec signs To by this Id */
	text(&w, r->to);
	end(&w);

	start(&w, "wsse", "Security", NS_WSSE);
	attr(&w, "s", "mustUnderstand", "1");
	start(&w, "wsu", "Timestamp", NULL);
	attr(&w, "wsu", "Id", "_0");
	leaf(&w, "wsu", "Created", out->created);
	leaf(&w, "wsu", "Expires", out->expires);
	end(&w);
	if (r->username) {
		struct secret_slot *s = &slots[nslots++];
		new_marker(s);
		s->value = r->password->data;
		s->len = r->password->len;
		start(&w, "wsse", "UsernameToken", NULL);
		attr(&w, "wsu", "Id", "_2");
		leaf(&w, "wsse", "Username", r->username);
		start(&w, "wsse", "Password", NULL);
		plain_attr(&w, "Type", WSSE_PASSWORD_TEXT);
		text(&w, s->marker);
		end(&w);
		end(&w);   /* UsernameToken */
	}
	end(&w);   /* Security */
	end(&w);   /* Header */

	start(&w, "s", "Body", NULL);
	start(&w, "wst", "RequestSecurityToken", wst_ns);
	if (r->context)
		plain_attr(&w, "Context", r->context);
	if (r->applies_to) {
		start(&w, "wsp", "AppliesTo", NS_WSP);
		start(&w, "wsa", "EndpointReference", NULL);
		leaf(&w, "wsa", "Address", r->applies_to);
		end(&w);
		end(&w);
	}
	char uri[160];
	switch (r->key_type) {
	case 1: leaf(&w, "wst", "KeyType", bearer_uri(r)); break;
	case 2:
		snprintf(uri, sizeof uri, "%s/SymmetricKey", wst_ns);
		leaf(&w, "wst", "KeyType", uri);
		break;
	case 3:
		snprintf(uri, sizeof uri, "%s/PublicKey", wst_ns);
		leaf(&w, "wst", "KeyType", uri);
		break;
	}
	snprintf(uri, sizeof uri, "%s/%s", wst_ns, r->request_action == RST_ACTION_RENEW_CONTEXT ? "Renew" : "Issue");
	leaf(&w, "wst", "RequestType", uri);
	if (r->token_type)
		leaf(&w, "wst", "TokenType", r->token_type);
	else if (r->request_action != RST_ACTION_ISSUE)
		leaf(&w, "wst", "TokenType", sct_type);
	if (r->key_size) {
		char bits[16];
		snprintf(bits, sizeof bits, "%u", r->key_size);
		leaf(&w, "wst", "KeySize", bits);
	}
	if (entropy_b64.data) {
		struct secret_slot *s = &slots[nslots++];
		new_marker(s);
		s->value = entropy_b64.data;
		s->len = entropy_b64.len;
		start(&w, "wst", "Entropy", NULL);
		start(&w, "wst", "BinarySecret", NULL);
		snprintf(uri, sizeof uri, "%s/Nonce", wst_ns);
		plain_attr(&w, "Type", uri);
		text(&w, s->marker);
		end(&w);
		end(&w);
		if (r->entropy_mode == 3) {
			snprintf(uri, sizeof uri, "%s/CK/PSHA1", wst_ns);
			leaf(&w, "wst", "ComputedKeyAlgorithm", uri);
		}
	}
	if (r->key_type == 3)
		use_key(&w, r->use_key_cert, r->use_key_cert_len);
	if (r->request_action == RST_ACTION_RENEW_CONTEXT) {
		start(&w, "wst", "RenewTarget", NULL);
		start(&w, "wsse", "SecurityTokenReference", NS_WSSE);
		start(&w, "wsse", "Reference", NULL);
		plain_attr(&w, "URI", r->renew_sct_id);
		plain_attr(&w, "ValueType", sct_type);
		end(&w);
		end(&w);
		end(&w);
	}
	/* Caller XML (validated by broker_request.c: self-contained elements):
	 * local parameters at the top level; service parameters inside
	 * SecondaryParameters (1.3) or after the local ones (Feb 2005, which has
	 * no SecondaryParameters). */
	raw(&w, r->local_params, r->local_len);
	if (r->service_len && v13) {
		start(&w, "wst", "SecondaryParameters", NULL);
		raw(&w, r->service_params, r->service_len);
		end(&w);
	} else {
		raw(&w, r->service_params, r->service_len);
	}
	end(&w);   /* RequestSecurityToken */
	end(&w);   /* Body */
	end(&w);   /* Envelope */
	if (xmlTextWriterFlush(xw) < 0)
		w.bad = true;
	xmlFreeTextWriter(xw);

	int rc = -1;
	out->nslots = nslots;
	out->entropy_b64 = entropy_b64;   /* the entropy slot points into it */
	if (w.bad) {
		snprintf(err, errlen, "could not write the RST (libxml2 writer failed)");
	} else {
		/* Still with markers: wssec may parse it (rst_splice, later). */
		secbuf_init(&out->body, (size_t)xmlBufferLength(buf) + 1, 0);
		secbuf_append(&out->body, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
		rc = out->body.failed ? -1 : 0;
		if (rc)
			snprintf(err, errlen, "out of secure memory");
	}
	/* The libxml2 buffer holds only markers, never a secret; wipe anyway. */
	sodium_memzero(buf->content, buf->size);
	xmlBufferFree(buf);
	if (rc)
		rst_msg_free(out);
	return rc;
}

int rst_splice(struct rst_msg *m, char *err, size_t errlen)
{
	if (!m->nslots)
		return 0;
	struct secbuf done = { 0 };
	if (assemble((const char *)m->body.data, m->body.len, m->slots, m->nslots, &done, err, errlen) != 0)
		return -1;
	secbuf_free(&m->body);
	m->body = done;
	m->nslots = 0;
	return 0;
}

void rst_msg_free(struct rst_msg *m)
{
	secbuf_free(&m->body);
	secret_free(&m->entropy_b64);
	sodium_memzero(m->slots, sizeof m->slots);
	m->nslots = 0;
	free(m->context);
	m->context = NULL;
}
