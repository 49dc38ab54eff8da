#include "wssec.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#include "broker_request.h"
#include "rst.h"

#define NS_SAML2 "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_SAML1 "urn:oasis:names:tc:SAML:1.0:assertion"
#define BST_ID "_3"
#define UT_ID "_2"
#define MAX_TOKEN_BYTES (1u << 20)

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- xmlsec1 global state ---- */

/* xmlsec reports through one global callback: keep the last message per
 * thread, so an error can say why (never key material: xmlsec does not
 * print keys). */
static __thread char xmlsec_last[256];

static void xmlsec_err_cb(const char *file, int line, const char *func, const char *obj, const char *subj,
                          int reason, const char *msg)
{
	(void)file;
	(void)line;
	(void)obj;
	snprintf(xmlsec_last, sizeof xmlsec_last, "%s: %s%s%s (reason %d)", func ? func : "xmlsec",
	         subj ? subj : "", subj && msg ? ": " : "", msg ? msg : "", reason);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void do_init(void)
{
	xmlInitParser();
	if (xmlSecInit() < 0 || xmlSecCheckVersion() != 1)
		return;
	xmlSecErrorsSetCallback(xmlsec_err_cb);
	if (xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0)
		return;
	init_rc = 0;
}

int wssec_global_init(void)
{
	pthread_once(&init_once, do_init);
	return init_rc;
}

/* ---- DOM helpers ---- */

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && !strcmp((const char *)n->ns->href, ns) &&
	       !strcmp((const char *)n->name, name);
}

static xmlNode *child(xmlNode *parent, const char *ns, const char *name)
{
	for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
		if (is_el(c, ns, name))
			return c;
	return NULL;
}

struct env {
	xmlDoc *doc;
	xmlNode *header, *security, *timestamp, *to;
	xmlNs *wsse, *wsu;
	const char *ts_id, *to_id;
};

/* Register every wsu:Id as an XML ID (so "#_0" resolves) and refuse
 * duplicates, which could steer a reference to a look-alike element. */
static int register_ids(xmlDoc *doc, xmlNode *n, char *err, size_t errlen)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (xmlAttr *a = n->properties; a; a = a->next) {
			if (!a->ns || strcmp((const char *)a->ns->href, NS_WSU) || strcmp((const char *)a->name, "Id"))
				continue;
			xmlChar *v = xmlNodeListGetString(doc, a->children, 1);
			bool ok = v && !xmlGetID(doc, v) && xmlAddID(NULL, doc, v, a);
			if (!ok)
				set_err(err, errlen, "internal: duplicate or invalid wsu:Id '%.64s' in the request",
				        v ? (const char *)v : "");
			xmlFree(v);
			if (!ok)
				return -1;
		}
		if (register_ids(doc, n->children, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int env_open(const struct secbuf *in, struct env *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	if (!in->data || in->len == 0 || in->len > INT32_MAX) {
		set_err(err, errlen, "internal: empty request envelope");
		return -1;
	}
	/* Our own envelope (rst_build's output): no DTD, no network. */
	e->doc = xmlReadMemory((const char *)in->data, (int)in->len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
	                       XML_PARSE_NOWARNING);
	xmlNode *root = e->doc ? xmlDocGetRootElement(e->doc) : NULL;
	if (!root || !root->ns) {
		set_err(err, errlen, "internal: the request envelope does not parse");
		return -1;
	}
	e->header = child(root, (const char *)root->ns->href, "Header");
	e->security = child(e->header, NS_WSSE, "Security");
	e->timestamp = child(e->security, NS_WSU, "Timestamp");
	e->to = child(e->header, NS_WSA10, "To");
	if (!e->security || !e->timestamp || !e->to) {
		set_err(err, errlen, "internal: the request has no %s", !e->security ? "wsse:Security header"
		        : !e->timestamp ? "wsu:Timestamp" : "wsa:To header");
		return -1;
	}
	e->wsse = xmlSearchNsByHref(e->doc, e->security, BAD_CAST NS_WSSE);
	e->wsu = xmlSearchNsByHref(e->doc, e->security, BAD_CAST NS_WSU);
	if (!e->wsu)
		e->wsu = xmlNewNs(root, BAD_CAST NS_WSU, BAD_CAST "wsu");
	/* rst_build puts Id "_0" on the Timestamp and "_1" on To; add them
	 * if an older writer did not. */
	if (!xmlHasNsProp(e->timestamp, BAD_CAST "Id", BAD_CAST NS_WSU))
		xmlNewNsProp(e->timestamp, e->wsu, BAD_CAST "Id", BAD_CAST "_0");
	if (!xmlHasNsProp(e->to, BAD_CAST "Id", BAD_CAST NS_WSU))
		xmlNewNsProp(e->to, e->wsu, BAD_CAST "Id", BAD_CAST "_1");
	xmlAttr *a = xmlHasNsProp(e->timestamp, BAD_CAST "Id", BAD_CAST NS_WSU);
	xmlAttr *b = xmlHasNsProp(e->to, BAD_CAST "Id", BAD_CAST NS_WSU);
	if (!e->wsse || !a || !b || !a->children || !b->children) {
		set_err(err, errlen, "internal: out of memory (request envelope)");
		return -1;
	}
	e->ts_id = (const char *)a->children->content;
	e->to_id = (const char *)b->children->content;
	return register_ids(e->doc, root, err, errlen);
}

static void env_close(struct env *e)
{
	if (e->doc)
		xmlFreeDoc(e->doc);
	e->doc = NULL;
}

static int save_write(void *ctx, const char *buf, int len)
{
	struct secbuf *b = ctx;
	secbuf_append(b, buf, (size_t)len);
	return b->failed ? -1 : len;
}

static int save_close(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Serialize into secure memory, no XML declaration (as rst_build writes). */
static int env_save(struct env *e, struct secbuf *out, char *err, size_t errlen)
{
	secbuf_init(out, 4096, 0);
	xmlSaveCtxt *sc = xmlSaveToIO(save_write, save_close, out, NULL, XML_SAVE_NO_DECL);
	if (!sc || xmlSaveDoc(sc, e->doc) < 0) {
		if (sc)
			xmlSaveClose(sc);
		secbuf_free(out);
		set_err(err, errlen, "out of memory writing the signed request");
		return -1;
	}
	xmlSaveClose(sc);
	if (out->failed) {
		secbuf_free(out);
		set_err(err, errlen, "out of secure memory writing the signed request");
		return -1;
	}
	/* A trailing newline after the root element is harmless but not ours. */
	while (out->len && out->data[out->len - 1] == '\n')
		out->data[--out->len] = 0;
	return 0;
}

/* ---- signatures ---- */

static xmlSecKeyPtr rsa_key(struct evp_pkey_st *pk, char *err, size_t errlen)
{
	if (!pk || EVP_PKEY_up_ref(pk) != 1) {
		set_err(err, errlen, "no private key to sign with");
		return NULL;
	}
	xmlSecKeyDataPtr d = xmlSecOpenSSLEvpKeyAdopt(pk);
	if (!d) {
		EVP_PKEY_free(pk);
		set_err(err, errlen, "cannot use the private key for XML Signature: %s", xmlsec_last);
		return NULL;
	}
	xmlSecKeyPtr k = xmlSecKeyCreate();
	if (!k || xmlSecKeySetValue(k, d) < 0) {
		xmlSecKeyDataDestroy(d);
		if (k)
			xmlSecKeyDestroy(k);
		set_err(err, errlen, "out of memory (signature key)");
		return NULL;
	}
	return k;
}

/* Append to wsse:Security a ds:Signature over Timestamp and To: exc-c14n,
 * one exc-c14n Transform per Reference; key_ref becomes KeyInfo's only
 * child.  Takes ownership of key and key_ref. */
static int sign_parts(struct env *e, xmlSecTransformId method, xmlSecTransformId digest, xmlSecKeyPtr key,
                      xmlNode *key_ref, char *err, size_t errlen)
{
	xmlNode *sig = xmlSecTmplSignatureCreateNsPref(e->doc, xmlSecTransformExclC14NId, method, NULL, BAD_CAST "ds");
	if (!sig) {
		xmlSecKeyDestroy(key);
		xmlFreeNode(key_ref);
		set_err(err, errlen, "out of memory (signature template)");
		return -1;
	}
	xmlAddChild(e->security, sig);
	char uri[2][80];
	snprintf(uri[0], sizeof uri[0], "#%s", e->ts_id);
	snprintf(uri[1], sizeof uri[1], "#%s", e->to_id);
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		xmlNode *ref = xmlSecTmplSignatureAddReference(sig, digest, NULL, BAD_CAST uri[i], NULL);
		ok = ref && xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId);
	}
	xmlNode *ki = ok ? xmlSecTmplSignatureEnsureKeyInfo(sig, NULL) : NULL;
	if (!ki || !xmlAddChild(ki, key_ref)) {
		xmlSecKeyDestroy(key);
		xmlFreeNode(key_ref);
		set_err(err, errlen, "out of memory (signature template)");
		return -1;
	}
	xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
	if (!ctx) {
		xmlSecKeyDestroy(key);
		set_err(err, errlen, "out of memory (signature context)");
		return -1;
	}
	ctx->signKey = key;   /* destroyed with ctx */
	xmlsec_last[0] = 0;
	int rc = xmlSecDSigCtxSign(ctx, sig);
	bool signed_ok = rc == 0 && ctx->status == xmlSecDSigStatusSucceeded;
	xmlSecDSigCtxDestroy(ctx);
	if (!signed_ok) {
		set_err(err, errlen, "XML Signature failed: %s", xmlsec_last[0] ? xmlsec_last : "unknown xmlsec error");
		return -1;
	}
	return 0;
}

/* <wsse:SecurityTokenReference> with one child element named child_name. */
static xmlNode *new_str(struct env *e, const char *child_name, xmlNode **child_out)
{
	xmlNode *str = xmlNewNode(e->wsse, BAD_CAST "SecurityTokenReference");
	xmlNode *c = str ? xmlNewChild(str, e->wsse, BAD_CAST child_name, NULL) : NULL;
	if (!c) {
		xmlFreeNode(str);
		return NULL;
	}
	*child_out = c;
	return str;
}

/* ---- bindings ---- */

static int add_password_digest(const struct profile *p, struct env *e, char *err, size_t errlen)
{
	/* A PasswordText token written by an older rst_build would send the
	 * password in clear next to the digest: drop it (wiping its text). */
	for (xmlNode *ut; (ut = child(e->security, NS_WSSE, "UsernameToken")) != NULL;) {
		xmlNode *pw = child(ut, NS_WSSE, "Password");
		for (xmlNode *t = pw ? pw->children : NULL; t; t = t->next)
			if (t->content && !xmlDictOwns(e->doc->dict, t->content))
				sodium_memzero(t->content, strlen((const char *)t->content));
		xmlUnlinkNode(ut);
		xmlFreeNode(ut);
	}
	if (!p->username || !p->password.data) {
		set_err(err, errlen, "profile %s: password_digest needs username and password_file", p->name);
		return -1;
	}
	unsigned char nonce[16], digest[20];
	randombytes_buf(nonce, sizeof nonce);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char created[32];
	rst_format_time(created, now.tv_sec, now.tv_nsec / 1000000);
	/* PasswordDigest = Base64(SHA-1(nonce + created + password)), WSS
	 * UsernameToken Profile 1.0 section 3.1; the password is fed straight
	 * from secure memory. */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned dlen = 0;
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(md, nonce, sizeof nonce) == 1 &&
	          EVP_DigestUpdate(md, created, strlen(created)) == 1 &&
	          EVP_DigestUpdate(md, p->password.data, p->password.len) == 1 &&
	          EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == sizeof digest;
	EVP_MD_CTX_free(md);
	if (!ok) {
		set_err(err, errlen, "SHA-1 unavailable for PasswordDigest");
		return -1;
	}
	char nonce_b64[32], digest_b64[32];
	sodium_bin2base64(nonce_b64, sizeof nonce_b64, nonce, sizeof nonce, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(digest_b64, sizeof digest_b64, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(digest, sizeof digest);

	xmlNode *ut = xmlNewNode(e->wsse, BAD_CAST "UsernameToken");
	if (!ut) {
		set_err(err, errlen, "out of memory (UsernameToken)");
		return -1;
	}
	xmlNewNsProp(ut, e->wsu, BAD_CAST "Id", BAD_CAST UT_ID);
	xmlNode *un = xmlNewTextChild(ut, e->wsse, BAD_CAST "Username", BAD_CAST p->username);
	xmlNode *pw = xmlNewTextChild(ut, e->wsse, BAD_CAST "Password", BAD_CAST digest_b64);
	xmlNode *nn = xmlNewTextChild(ut, e->wsse, BAD_CAST "Nonce", BAD_CAST nonce_b64);
	xmlNode *cr = xmlNewTextChild(ut, e->wsu, BAD_CAST "Created", BAD_CAST created);
	if (!un || !pw || !nn || !cr || !xmlNewProp(pw, BAD_CAST "Type", BAD_CAST WSSE_PASSWORD_DIGEST) ||
	    !xmlNewProp(nn, BAD_CAST "EncodingType", BAD_CAST WSSE_BASE64)) {
		xmlFreeNode(ut);
		set_err(err, errlen, "out of memory (UsernameToken)");
		return -1;
	}
	xmlAddChild(e->security, ut);
	return 0;
}

static int add_certificate_signature(const struct profile *p, struct env *e, char *err, size_t errlen)
{
	if (!p->client_cert || !p->client_key) {
		set_err(err, errlen, "profile %s: auth = certificate needs client_cert and client_key", p->name);
		return -1;
	}
	unsigned char *der = NULL;
	int dlen = i2d_X509(p->client_cert, &der);
	if (dlen <= 0) {
		set_err(err, errlen, "profile %s: cannot encode client_cert", p->name);
		return -1;
	}
	size_t blen = sodium_base64_encoded_len((size_t)dlen, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(blen);
	if (b64)
		sodium_bin2base64(b64, blen, der, (size_t)dlen, sodium_base64_VARIANT_ORIGINAL);
	OPENSSL_free(der);
	xmlNode *bst = b64 ? xmlNewTextChild(e->security, e->wsse, BAD_CAST "BinarySecurityToken", BAD_CAST b64) : NULL;
	free(b64);
	if (!bst || !xmlNewNsProp(bst, e->wsu, BAD_CAST "Id", BAD_CAST BST_ID) ||
	    !xmlNewProp(bst, BAD_CAST "ValueType", BAD_CAST WSSE_X509V3) ||
	    !xmlNewProp(bst, BAD_CAST "EncodingType", BAD_CAST WSSE_BASE64)) {
		set_err(err, errlen, "out of memory (BinarySecurityToken)");
		return -1;
	}
	xmlNode *ref;
	xmlNode *str = new_str(e, "Reference", &ref);
	if (!str || !xmlNewProp(ref, BAD_CAST "URI", BAD_CAST "#" BST_ID) ||
	    !xmlNewProp(ref, BAD_CAST "ValueType", BAD_CAST WSSE_X509V3)) {
		xmlFreeNode(str);
		set_err(err, errlen, "out of memory (SecurityTokenReference)");
		return -1;
	}
	xmlSecKeyPtr key = rsa_key(p->client_key, err, errlen);
	if (!key) {
		xmlFreeNode(str);
		return -1;
	}
	bool sha1 = p->signature_alg == SIG_RSA_SHA1;
	return sign_parts(e, sha1 ? xmlSecTransformRsaSha1Id : xmlSecTransformRsaSha256Id,
	                  sha1 ? xmlSecTransformSha1Id : xmlSecTransformSha256Id, key, str, err, errlen);
}

/* The SAML assertion's ID and the KeyIdentifier ValueType naming it. */
static int saml_key_identifier(const struct wssec_token *t, char *id, size_t idlen, const char **value_type,
                               char *err, size_t errlen)
{
	xmlDoc *doc = xmlReadMemory((const char *)t->xml, (int)t->xml_len, NULL, NULL,
	                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	xmlChar *v = NULL;
	if (is_el(root, NS_SAML2, "Assertion")) {
		v = xmlGetProp(root, BAD_CAST "ID");
		*value_type = WSSE_SAML2_KEYID;
	} else if (is_el(root, NS_SAML1, "Assertion")) {
		v = xmlGetProp(root, BAD_CAST "AssertionID");
		*value_type = WSSE_SAML11_KEYID;
	}
	int rc = -1;
	if (!root)
		set_err(err, errlen, "the issued token is not well-formed XML");
	else if (!*value_type)
		set_err(err, errlen, "a holder-of-key issued token must be a SAML 1.1 or 2.0 assertion to be referenced "
		        "(got <%.100s>)", (const char *)root->name);
	else if (!v || !*v || strlen((const char *)v) >= idlen)
		set_err(err, errlen, "the issued SAML assertion has no usable %s attribute",
		        !strcmp(*value_type, WSSE_SAML2_KEYID) ? "ID" : "AssertionID");
	else {
		snprintf(id, idlen, "%s", (const char *)v);
		rc = 0;
	}
	xmlFree(v);
	if (doc)
		xmlFreeDoc(doc);
	return rc;
}

static uint64_t now_ticks(void)
{
	/* WS_DATETIME: 100 ns ticks since 0001-01-01 */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + 62135596800ull) * 10000000ull + (uint64_t)ts.tv_nsec / 100;
}

static int add_issued_token(const struct profile *p, const struct wssec_token *t, struct env *e, char *marker,
                            size_t markerlen, char *err, size_t errlen)
{
	if (!t || !t->xml || t->xml_len == 0 || t->xml_len > MAX_TOKEN_BYTES) {
		set_err(err, errlen, "profile %s: no issued token to present", p->name);
		return -1;
	}
	/* The bytes are spliced in raw, after signing, and came from a worker
	 * (or the caller): they must be exactly one well-formed element, or
	 * they could close the Security header and rewrite the request. */
	char why[256];
	xmlDoc *one = xml_strict_parse(t->xml, t->xml_len, true, 64, why, sizeof why);
	unsigned nel = 0;
	for (xmlNode *c = one ? xmlDocGetRootElement(one)->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			nel++;
		else if (!(c->type == XML_TEXT_NODE && xmlIsBlankNode(c)))
			nel = 2;   /* top-level text, comment or PI */
	if (one)
		xmlFreeDoc(one);
	if (!one || nel != 1) {
		set_err(err, errlen, "the issued token to present is not one well-formed XML element%s%s",
		        one ? "" : ": ", one ? "" : why);
		return -1;
	}
	if (t->valid_till && t->valid_till <= now_ticks()) {
		time_t till = (time_t)(t->valid_till / 10000000ull - 62135596800ull);
		char when[32];
		rst_format_time(when, till, 0);
		set_err(err, errlen, "the issued token from %s%s expired at %s: not presenting it",
		        p->issuer ? "profile " : "the caller", p->issuer ? p->issuer->name : "", when);
		return -1;
	}
	/* The token goes in byte-exact (its own signature covers its bytes'
	 * canonical form; re-serializing could change namespaces): a comment
	 * marks its place and is replaced after serialization. */
	unsigned char rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	char hex[25];
	sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
	char text[48];
	snprintf(text, sizeof text, "wstrust-token-%s", hex);
	snprintf(marker, markerlen, "<!--%s-->", text);
	xmlNode *c = xmlNewDocComment(e->doc, BAD_CAST text);
	if (!c || !xmlAddNextSibling(e->timestamp, c)) {
		xmlFreeNode(c);
		set_err(err, errlen, "out of memory (issued token)");
		return -1;
	}
	if (t->key_type == 1)
		return 0;   /* bearer: presented as is */

	char id[256];
	const char *vt = NULL;
	if (saml_key_identifier(t, id, sizeof id, &vt, err, errlen) != 0)
		return -1;
	xmlNode *kid;
	xmlNode *str = new_str(e, "KeyIdentifier", &kid);
	if (!str || !xmlNewProp(kid, BAD_CAST "ValueType", BAD_CAST vt)) {
		xmlFreeNode(str);
		set_err(err, errlen, "out of memory (SecurityTokenReference)");
		return -1;
	}
	xmlNodeAddContent(kid, BAD_CAST id);
	xmlSecKeyPtr key;
	xmlSecTransformId method, digest = xmlSecTransformSha256Id;
	if (t->key_type == 2) {
		if (!t->proof_key || !t->proof_key->data || t->proof_key->len == 0) {
			xmlFreeNode(str);
			set_err(err, errlen, "the holder-of-key token from %s%s came without its proof key",
			        p->issuer ? "profile " : "the caller", p->issuer ? p->issuer->name : "");
			return -1;
		}
		/* xmlsec copies the key into its own buffer and wipes it on destroy. */
		key = xmlSecKeyReadMemory(xmlSecKeyDataHmacId, (const xmlSecByte *)t->proof_key->data,
		                          (xmlSecSize)t->proof_key->len);
		if (!key)
			set_err(err, errlen, "cannot use the proof key for HMAC-SHA256: %s", xmlsec_last);
		method = xmlSecTransformHmacSha256Id;
	} else if (t->key_type == 3) {
		struct evp_pkey_st *pk = t->proof_rsa ? t->proof_rsa : p->client_key;
		key = rsa_key(pk, err, errlen);
		bool sha1 = p->signature_alg == SIG_RSA_SHA1;
		method = sha1 ? xmlSecTransformRsaSha1Id : xmlSecTransformRsaSha256Id;
		if (sha1)
			digest = xmlSecTransformSha1Id;
	} else {
		xmlFreeNode(str);
		set_err(err, errlen, "the issued token has an unknown key type %u", (unsigned)t->key_type);
		return -1;
	}
	if (!key) {
		xmlFreeNode(str);
		return -1;
	}
	return sign_parts(e, method, digest, key, str, err, errlen);
}

/* Replace the marker in env by the token's bytes. */
static int splice_token(struct secbuf *env, const char *marker, const struct wssec_token *t, char *err,
                        size_t errlen)
{
	size_t ml = strlen(marker);
	uint8_t *at = memmem(env->data, env->len, marker, ml);
	if (!at) {
		set_err(err, errlen, "internal: lost the issued token's place in the request");
		return -1;
	}
	struct secbuf out;
	secbuf_init(&out, env->len + t->xml_len, 0);
	size_t pre = (size_t)(at - env->data);
	secbuf_append(&out, env->data, pre);
	secbuf_append(&out, t->xml, t->xml_len);
	secbuf_append(&out, at + ml, env->len - pre - ml);
	if (out.failed) {
		secbuf_free(&out);
		set_err(err, errlen, "out of secure memory (request)");
		return -1;
	}
	secbuf_free(env);
	*env = out;
	return 0;
}

int wssec_apply(const struct profile *p, const struct wssec_token *issued, struct secbuf *envelope, char *err,
                size_t errlen)
{
	bool digest = p->auth == AUTH_USERNAME && p->password_digest;
	if (p->auth == AUTH_NONE || p->auth == AUTH_BASIC || (p->auth == AUTH_USERNAME && !digest))
		return 0;   /* the Timestamp (and PasswordText token) rst_build wrote is all */
	if (wssec_global_init() != 0) {
		set_err(err, errlen, "xmlsec1 could not be initialized (XML Signature unavailable)");
		return -1;
	}
	struct env e;
	char marker[64] = "";
	int rc = env_open(envelope, &e, err, errlen);
	if (rc == 0) {
		switch (p->auth) {
		case AUTH_USERNAME: rc = add_password_digest(p, &e, err, errlen); break;
		case AUTH_CERTIFICATE: rc = add_certificate_signature(p, &e, err, errlen); break;
		case AUTH_ISSUED_TOKEN: rc = add_issued_token(p, issued, &e, marker, sizeof marker, err, errlen); break;
		default:
			set_err(err, errlen, "profile %s: unknown auth binding", p->name);
			rc = -1;
		}
	}
	struct secbuf out = { 0 };
	if (rc == 0)
		rc = env_save(&e, &out, err, errlen);
	env_close(&e);
	if (rc == 0 && marker[0])
		rc = splice_token(&out, marker, issued, err, errlen);
	if (rc != 0) {
		secbuf_free(&out);
		return -1;
	}
	secbuf_free(envelope);
	*envelope = out;
	return 0;
}
