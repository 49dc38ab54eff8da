#include "broker_request.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_SC2005 "http://schemas.xmlsoap.org/ws/2005/02/sc"
#define NS_SC13 "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"
#define FRAGMENT_ROOT "wstrust-fragment"

/* A URI or name from a client: non-empty, no control characters, no
 * spaces (a URI never has raw spaces). */
static bool uri_ok(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int get_str(const struct ipc_msg *m, uint16_t tag, const char *name, char **out, char *err, size_t errlen)
{
	if (!ipc_has(m, tag))
		return 0;
	*out = ipc_dup_str(m, tag);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!uri_ok(*out)) {
		snprintf(err, errlen, "%s: empty, or contains spaces or control characters", name);
		return -1;
	}
	return 0;
}

/* ---- strict XML ---- */

static void silent(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

static bool has_declaration(const uint8_t *p, size_t len)
{
	return memmem(p, len, "<!DOCTYPE", 9) || memmem(p, len, "<!ENTITY", 8);
}

/* Depth, node count, and no entity references anywhere. */
static int walk_ok(xmlNode *root, unsigned max_depth, unsigned shown, char *err, size_t errlen)
{
	unsigned depth = 1, nodes = 0;
	xmlNode *n = root;
	while (n) {
		if (++nodes > REQUEST_MAX_XML_NODES) {
			snprintf(err, errlen, "more than %u XML nodes", REQUEST_MAX_XML_NODES);
			return -1;
		}
		if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE || n->type == XML_DTD_NODE ||
		    n->type == XML_XINCLUDE_START) {
			snprintf(err, errlen, "entity references and DTDs are not allowed");
			return -1;
		}
		if (n->type == XML_ELEMENT_NODE && n->children) {
			if (++depth > max_depth) {
				snprintf(err, errlen, "XML nested deeper than %u elements", shown);
				return -1;
			}
			n = n->children;
			continue;
		}
		while (n && !n->next && n != root) {
			n = n->parent;
			depth--;
		}
		if (!n || n == root)
			break;
		n = n->next;
	}
	return 0;
}

xmlDocPtr xml_strict_parse(const uint8_t *p, size_t len, bool fragment, unsigned max_depth, char *err,
                           size_t errlen)
{
	if (len > REQUEST_MAX_XML) {
		snprintf(err, errlen, "%zu bytes of XML, more than %u", len, REQUEST_MAX_XML);
		return NULL;
	}
	if (has_declaration(p, len)) {
		snprintf(err, errlen, "DOCTYPE and ENTITY declarations are not allowed");
		return NULL;
	}
	static const char open[] = "<" FRAGMENT_ROOT ">", close[] = "</" FRAGMENT_ROOT ">";
	uint8_t *buf = NULL;
	const char *src = (const char *)p;
	size_t n = len;
	if (fragment) {
		n = sizeof open - 1 + len + sizeof close - 1;
		if (!(buf = malloc(n))) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		memcpy(buf, open, sizeof open - 1);
		if (len)
			memcpy(buf + sizeof open - 1, p, len);
		memcpy(buf + sizeof open - 1 + len, close, sizeof close - 1);
		src = (const char *)buf;
	}
	xmlDocPtr doc = NULL;
	xmlParserCtxtPtr ctxt = n <= (size_t)INT32_MAX ? xmlNewParserCtxt() : NULL;
	if (!ctxt) {
		snprintf(err, errlen, "out of memory");
		free(buf);
		return NULL;
	}
	ctxt->sax->serror = silent;   /* errors become our message, not stderr noise */
	doc = xmlCtxtReadMemory(ctxt, src, (int)n, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	bool wf = doc && ctxt->wellFormed && ctxt->nsWellFormed;
	const xmlError *e = xmlCtxtGetLastError(ctxt);
	if (!wf)
		snprintf(err, errlen, "not well-formed XML%s%.200s", e && e->message ? ": " : "",
		         e && e->message ? e->message : "");
	xmlFreeParserCtxt(ctxt);
	free(buf);
	if (!wf)
		goto bad;
	/* trim libxml2's trailing newline from the message */
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root || doc->intSubset || doc->extSubset) {
		snprintf(err, errlen, "%s", root ? "DTDs are not allowed" : "no element");
		goto bad;
	}
	if (walk_ok(root, max_depth + (fragment ? 1 : 0), max_depth, err, errlen) != 0)
		goto bad;
	for (xmlNode *c = doc->children; c; c = c->next)
		if (c != root && c->type != XML_COMMENT_NODE) {
			snprintf(err, errlen, "processing instructions are not allowed");
			goto bad;
		}
	return doc;
bad:
	for (char *q = err; *q; q++)
		if (*q == '\n')
			*q = ' ';
	if (doc)
		xmlFreeDoc(doc);
	return NULL;
}

/* A fragment's top-level items must be elements (whitespace between them). */
static int check_fragment(xmlDocPtr doc, unsigned *nelems, char *err, size_t errlen)
{
	*nelems = 0;
	for (xmlNode *c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE) {
			(*nelems)++;
			continue;
		}
		if (c->type == XML_TEXT_NODE && xmlIsBlankNode(c))
			continue;
		snprintf(err, errlen, "top-level %s: only elements are allowed",
		         c->type == XML_TEXT_NODE ? "text" : c->type == XML_COMMENT_NODE ? "comment"
		         : c->type == XML_PI_NODE ? "processing instruction" : "node");
		return -1;
	}
	return 0;
}

/* Key material is the broker's to choose (ISSUED_TOKEN_KEY_ENTROPY,
 * ISSUED_TOKEN_KEY_TYPE): a caller's own wst:Entropy or wst:UseKey could
 * bind the token to a key the caller knows while the broker withholds the
 * proof key it believes in.  Refused anywhere in the parameters. */
static const xmlNode *key_material(const xmlNode *n)
{
	static const char *const names[] = { "Entropy", "UseKey", "ComputedKeyAlgorithm" };
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		const char *ns = n->ns ? (const char *)n->ns->href : "";
		if (!strcmp(ns, "http://schemas.xmlsoap.org/ws/2005/02/trust") ||
		    !strcmp(ns, "http://docs.oasis-open.org/ws-sx/ws-trust/200512"))
			for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
				if (!strcmp((const char *)n->name, names[i]))
					return n;
		const xmlNode *below = key_material(n->children);
		if (below)
			return below;
	}
	return NULL;
}

static int get_xml(const struct ipc_msg *m, uint16_t tag, const char *name, uint8_t **out, size_t *out_len,
                   char *err, size_t errlen)
{
	const uint8_t *p;
	size_t len;
	if (!ipc_get_bytes(m, tag, &p, &len))
		return 0;
	char why[256];
	unsigned nel = 0;
	xmlDocPtr doc = xml_strict_parse(p, len, true, REQUEST_MAX_XML_DEPTH, why, sizeof why);
	int rc = doc ? check_fragment(doc, &nel, why, sizeof why) : -1;
	if (rc == 0 && nel == 0) {
		snprintf(why, sizeof why, "no element");
		rc = -1;
	}
	const xmlNode *km = rc == 0 ? key_material(xmlDocGetRootElement(doc)->children) : NULL;
	if (km) {
		snprintf(why, sizeof why, "wst:%s is not allowed (the broker chooses the key material: use "
		         "ISSUED_TOKEN_KEY_ENTROPY and ISSUED_TOKEN_KEY_TYPE)", (const char *)km->name);
		rc = -1;
	}
	if (doc)
		xmlFreeDoc(doc);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", name, why);
		return -1;
	}
	if (!(*out = malloc(len ? len : 1))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(*out, p, len);
	*out_len = len;
	return 0;
}

static char *trimmed_text(xmlNode *n)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	if (!t)
		return NULL;
	char *s = (char *)t, *e = s + strlen(s);
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	char *out = strndup(s, (size_t)(e - s));
	xmlFree(t);
	return out;
}

int sct_identify(const uint8_t *xml, size_t len, char **id_out, char **instance_out, uint32_t *sc_version,
                 char *err, size_t errlen)
{
	*id_out = *instance_out = NULL;
	*sc_version = 0;
	char why[256];
	xmlDocPtr doc = xml_strict_parse(xml, len, true, REQUEST_MAX_XML_DEPTH, why, sizeof why);
	unsigned nel = 0;
	if (!doc || check_fragment(doc, &nel, why, sizeof why) != 0 || nel != 1) {
		if (doc && nel != 1)
			snprintf(why, sizeof why, "%u elements, expected one token", nel);
		snprintf(err, errlen, "EXISTING_TOKEN: %s", why);
		if (doc)
			xmlFreeDoc(doc);
		return -1;
	}
	xmlNode *tok = xmlDocGetRootElement(doc)->children;
	while (tok->type != XML_ELEMENT_NODE)
		tok = tok->next;
	const char *ns = tok->ns ? (const char *)tok->ns->href : "";
	int rc = -1;
	if (strcmp((const char *)tok->name, "SecurityContextToken") != 0 ||
	    (strcmp(ns, NS_SC2005) != 0 && strcmp(ns, NS_SC13) != 0)) {
		snprintf(err, errlen, "EXISTING_TOKEN: RENEW_CONTEXT renews a security context token "
		                      "(wsc:SecurityContextToken), not {%.100s}%.60s", ns, (const char *)tok->name);
		goto out;
	}
	*sc_version = strcmp(ns, NS_SC2005) == 0 ? 1 : 2;
	xmlNode *id = NULL, *inst = NULL;
	for (xmlNode *c = tok->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && c->ns && !strcmp((const char *)c->ns->href, ns)) {
			if (!strcmp((const char *)c->name, "Identifier"))
				id = c;
			else if (!strcmp((const char *)c->name, "Instance"))
				inst = c;
		}
	*id_out = trimmed_text(id);
	*instance_out = inst ? trimmed_text(inst) : NULL;
	if (!*id_out || !uri_ok(*id_out) || (*instance_out && !uri_ok(*instance_out))) {
		snprintf(err, errlen, "EXISTING_TOKEN: the security context token has no usable wsc:Identifier "
		                      "(or a wsc:Instance with spaces)");
		goto out;
	}
	if (strlen(*id_out) > 1024) {
		snprintf(err, errlen, "EXISTING_TOKEN: wsc:Identifier longer than 1024 bytes");
		goto out;
	}
	rc = 0;
out:
	xmlFreeDoc(doc);
	if (rc) {
		free(*id_out);
		free(*instance_out);
		*id_out = *instance_out = NULL;
	}
	return rc;
}

static bool is_sct_type(const char *t)
{
	return !strcmp(t, NS_SC2005 "/sct") || !strcmp(t, NS_SC13 "/sct");
}

static const char *action_name(uint32_t a)
{
	return a == 1 ? "ISSUE" : a == 2 ? "NEW_CONTEXT" : "RENEW_CONTEXT";
}

static int u32_in(const struct ipc_msg *m, uint16_t tag, uint32_t lo, uint32_t hi, uint32_t *out, const char *what,
                  char *err, size_t errlen)
{
	uint32_t v;
	if (!ipc_get_u32(m, tag, &v))
		return 0;
	if (v < lo || v > hi) {
		snprintf(err, errlen, "%s %u is not a valid value (%u to %u)", what, v, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int token_request_decode(const struct ipc_msg *m, struct token_request *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->request_action = 1;
	if (m->type != IPC_REQ_TOKEN) {
		snprintf(err, errlen, "unexpected message type (expected a token request)");
		return -1;
	}
	bool by_name = ipc_has(m, T_PROFILE), by_ep = ipc_has(m, T_ENDPOINT);
	if (by_name == by_ep) {
		snprintf(err, errlen, "%s", by_name ? "give either a profile name or an endpoint address, not both"
		                                    : "no profile name and no endpoint address in the request");
		return -1;
	}
	if (get_str(m, T_PROFILE, "profile name", &r->profile, err, errlen) ||
	    get_str(m, T_ENDPOINT, "endpoint address", &r->endpoint, err, errlen) ||
	    get_str(m, T_APPLIES_TO, "APPLIES_TO", &r->applies_to, err, errlen) ||
	    get_str(m, T_TOKEN_TYPE, "ISSUED_TOKEN_TYPE", &r->token_type, err, errlen))
		return -1;

	uint32_t v;
	if (ipc_get_u32(m, T_TRUST_VERSION, &v)) {
		if (v != 1 && v != 2) {
			snprintf(err, errlen, "TRUST_VERSION %u is not a WS_TRUST_VERSION (1 = February 2005, 2 = 1.3)", v);
			return -1;
		}
		r->trust_version = v;
	}
	if (ipc_get_u32(m, T_REQUEST_ACTION, &v)) {
		if (v < 1 || v > 3) {
			snprintf(err, errlen, "REQUEST_ACTION %u is not a WS_REQUEST_SECURITY_TOKEN_ACTION (1, 2 or 3)", v);
			return -1;
		}
		r->request_action = v;
	}
	if (ipc_get_u32(m, T_KEY_TYPE, &v)) {
		if (v < 1 || v > 3) {
			snprintf(err, errlen, "ISSUED_TOKEN_KEY_TYPE %u is not a WS_SECURITY_KEY_TYPE (1, 2 or 3)", v);
			return -1;
		}
		r->key_type = v;
	}
	if (ipc_get_u32(m, T_KEY_SIZE, &v)) {
		if (v < 128 || v > 512 || v % 8) {
			snprintf(err, errlen, "ISSUED_TOKEN_KEY_SIZE %u bits: must be 128 to 512, a multiple of 8", v);
			return -1;
		}
		r->key_size = v;
	}
	if (u32_in(m, T_ENTROPY_MODE, 1, 3, &r->entropy_mode,
	           "ISSUED_TOKEN_KEY_ENTROPY (WS_SECURITY_KEY_ENTROPY_MODE)", err, errlen) ||
	    u32_in(m, T_SC_VERSION, 1, 2, &r->sc_version,
	           "SECURE_CONVERSATION_VERSION (WS_SECURE_CONVERSATION_VERSION)", err, errlen) ||
	    u32_in(m, T_BEARER_VERSION, 1, 3, &r->bearer_version,
	           "BEARER_KEY_TYPE_VERSION (WS_SECURITY_BEARER_KEY_TYPE_VERSION)", err, errlen))
		return -1;

	/* Key size and entropy describe a symmetric key. */
	if (r->key_type == 1 || r->key_type == 3) {
		const char *kt = r->key_type == 1 ? "bearer (WS_SECURITY_KEY_TYPE_NONE)" : "asymmetric";
		if (r->key_size) {
			snprintf(err, errlen, "ISSUED_TOKEN_KEY_SIZE needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is %s)",
			         kt);
			return -1;
		}
		if (r->entropy_mode) {
			snprintf(err, errlen,
			         "ISSUED_TOKEN_KEY_ENTROPY needs a symmetric key type (ISSUED_TOKEN_KEY_TYPE is %s)", kt);
			return -1;
		}
	}

	/* SecureConversation: an SCT has a symmetric key and the SCT type. */
	if (r->request_action != 1) {
		if (r->key_type == 1 || r->key_type == 3) {
			snprintf(err, errlen, "ISSUED_TOKEN_KEY_TYPE %s contradicts REQUEST_ACTION %s: a security context "
			         "token has a symmetric key", r->key_type == 1 ? "bearer" : "asymmetric",
			         action_name(r->request_action));
			return -1;
		}
		if (r->token_type && !is_sct_type(r->token_type)) {
			snprintf(err, errlen, "ISSUED_TOKEN_TYPE %.200s contradicts REQUEST_ACTION %s, which requests a "
			         "security context token", r->token_type, action_name(r->request_action));
			return -1;
		}
	}

	if (get_xml(m, T_LOCAL_PARAMS, "LOCAL_REQUEST_PARAMETERS", &r->local_params, &r->local_len, err, errlen) ||
	    get_xml(m, T_SERVICE_PARAMS, "SERVICE_REQUEST_PARAMETERS", &r->service_params, &r->service_len, err,
	            errlen))
		return -1;

	bool has_existing = ipc_has(m, T_EXISTING_TOKEN);
	if (has_existing && r->request_action != 3) {
		snprintf(err, errlen, "EXISTING_TOKEN is only allowed with REQUEST_ACTION RENEW_CONTEXT (this request: %s)",
		         action_name(r->request_action));
		return -1;
	}
	if (!has_existing && r->request_action == 3) {
		snprintf(err, errlen, "REQUEST_ACTION RENEW_CONTEXT needs EXISTING_TOKEN (the security context token "
		                      "to renew)");
		return -1;
	}
	if (has_existing) {
		const uint8_t *p;
		size_t len;
		ipc_get_bytes(m, T_EXISTING_TOKEN, &p, &len);
		if (!(r->existing_token = malloc(len ? len : 1))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(r->existing_token, p, len);
		r->existing_len = len;
		if (sct_identify(r->existing_token, r->existing_len, &r->existing_sct_id, &r->existing_sct_instance,
		                 &r->existing_sc_version, err, errlen) != 0)
			return -1;
		if (r->sc_version && r->sc_version != r->existing_sc_version) {
			snprintf(err, errlen, "EXISTING_TOKEN is a WS-SecureConversation %s token, but "
			         "SECURE_CONVERSATION_VERSION is %s", r->existing_sc_version == 1 ? "February 2005" : "1.3",
			         r->sc_version == 1 ? "February 2005" : "1.3");
			return -1;
		}
	}

	if (ipc_get_u32(m, T_MAX_REPLY, &v)) {
		if (v == 0) {
			snprintf(err, errlen, "MESSAGE_PROPERTIES: a reply size quota of 0 bytes");
			return -1;
		}
		r->max_reply = v > IPC_MAX_REPLY ? IPC_MAX_REPLY : v;
	}
	if (ipc_get_u32(m, T_TIMEOUT_MS, &v))
		r->timeout_ms = v ? v : 1;
	if (ipc_get_u32(m, T_EMBEDDED, &v))
		r->embedded = v != 0;
	return 0;
}

void token_request_free(struct token_request *r)
{
	free(r->profile);
	free(r->endpoint);
	free(r->applies_to);
	free(r->token_type);
	free(r->local_params);
	free(r->service_params);
	free(r->existing_token);
	free(r->existing_sct_id);
	free(r->existing_sct_instance);
	memset(r, 0, sizeof *r);
}
