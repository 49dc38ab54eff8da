/* WS_SECURITY_TOKEN: an issued (or caller-made) XML token and what the
 * broker said about it.  The proof key, when the broker releases one, lives
 * in locked memory that is wiped when the token is freed. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct _WS_SECURITY_TOKEN {
	WS_XML_BUFFER xml;
	WS_XML_BUFFER attached, unattached;
	bool has_attached, has_unattached;
	char *token_type;
	WS_SECURITY_KEY_TYPE key_type;
	uint64_t valid_from, valid_till;
	uint8_t *proof;
	size_t proof_len;
	bool proof_withheld;
};

static int dup_bytes(WS_XML_BUFFER *b, const uint8_t *p, size_t n)
{
	b->bytes = malloc(n ? n : 1);
	if (!b->bytes)
		return -1;
	if (n)
		memcpy(b->bytes, p, n);
	b->len = n;
	return 0;
}

static void free_proof(WS_SECURITY_TOKEN *t)
{
	if (!t->proof)
		return;
	explicit_bzero(t->proof, t->proof_len);
	munlock(t->proof, t->proof_len);
	free(t->proof);
	t->proof = NULL;
	t->proof_len = 0;
}

WS_EXPORT void WINAPI WsFreeSecurityToken(WS_SECURITY_TOKEN *token)
{
	if (!token)
		return;
	free(token->xml.bytes);
	free(token->attached.bytes);
	free(token->unattached.bytes);
	free(token->token_type);
	free_proof(token);
	free(token);
}

WS_SECURITY_TOKEN *token_new(const struct token_fields *f)
{
	WS_SECURITY_TOKEN *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->key_type = (WS_SECURITY_KEY_TYPE)f->key_type;
	t->valid_from = f->valid_from;
	t->valid_till = f->valid_till;
	t->proof_withheld = f->proof_withheld;
	if (dup_bytes(&t->xml, f->xml, f->xml_len) < 0)
		goto fail;
	if (f->attached) {
		if (dup_bytes(&t->attached, f->attached, f->attached_len) < 0)
			goto fail;
		t->has_attached = true;
	}
	if (f->unattached) {
		if (dup_bytes(&t->unattached, f->unattached, f->unattached_len) < 0)
			goto fail;
		t->has_unattached = true;
	}
	if (f->token_type && !(t->token_type = strdup(f->token_type)))
		goto fail;
	if (f->proof && f->proof_len) {
		t->proof = malloc(f->proof_len);
		if (!t->proof)
			goto fail;
		/* Best effort: keep the key out of swap. */
		(void)mlock(t->proof, f->proof_len);
		memcpy(t->proof, f->proof, f->proof_len);
		t->proof_len = f->proof_len;
	}
	return t;
fail:
	WsFreeSecurityToken(t);
	return NULL;
}

void token_xml(const WS_SECURITY_TOKEN *t, const uint8_t **xml, size_t *len)
{
	*xml = t->xml.bytes;
	*len = t->xml.len;
}

void token_proof(const WS_SECURITY_TOKEN *t, const uint8_t **key, size_t *len)
{
	*key = t->proof;
	*len = t->proof ? t->proof_len : 0;
}

uint64_t token_valid_till(const WS_SECURITY_TOKEN *t)
{
	return t->valid_till;
}

static const char *prop_name(WS_SECURITY_TOKEN_PROPERTY_ID id)
{
	switch (id) {
	case WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE: return "WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE";
	case WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME: return "WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME";
	case WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME: return "WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME";
	case WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML: return "WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML";
	case WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML: return "WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML";
	case WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML: return "WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML";
	case WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY: return "WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY";
	}
	return NULL;
}

WS_EXPORT HRESULT WINAPI WsGetSecurityTokenProperty(WS_SECURITY_TOKEN *securityToken, WS_SECURITY_TOKEN_PROPERTY_ID id,
                                                    void *value, ULONG valueSize, WS_HEAP *heap, WS_ERROR *error)
{
	if (!securityToken || !value)
		return err_set(error, E_INVALIDARG, "WsGetSecurityTokenProperty: securityToken and value are required");
	const char *name = prop_name(id);
	if (!name)
		return err_set(error, E_INVALIDARG, "WsGetSecurityTokenProperty: unknown property id %d", (int)id);
	/* Windows' rule: the heap is required for SYMMETRIC_KEY and must be NULL
	 * for every other property. */
	if (id == WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY && !heap)
		return err_set(error, E_INVALIDARG, "%s needs a heap to copy the key onto", name);
	if (id != WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY && heap)
		return err_set(error, E_INVALIDARG, "%s takes no heap (pass NULL)", name);

	WS_SECURITY_TOKEN *t = securityToken;
	switch (id) {
	case WS_SECURITY_TOKEN_PROPERTY_KEY_TYPE:
		if (valueSize != sizeof(WS_SECURITY_KEY_TYPE))
			break;
		*(WS_SECURITY_KEY_TYPE *)value = t->key_type;
		return S_OK;
	case WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME:
	case WS_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME:
		if (valueSize != sizeof(WS_DATETIME))
			break;
		((WS_DATETIME *)value)->ticks = id == WS_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME ? t->valid_from : t->valid_till;
		((WS_DATETIME *)value)->format = WS_DATETIME_FORMAT_UTC;
		return S_OK;
	case WS_SECURITY_TOKEN_PROPERTY_SERIALIZED_XML:
		if (valueSize != sizeof(WS_XML_BUFFER *))
			break;
		*(WS_XML_BUFFER **)value = &t->xml;
		return S_OK;
	case WS_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE_XML:
		if (valueSize != sizeof(WS_XML_BUFFER *))
			break;
		if (!t->has_attached)
			return err_set(error, E_INVALIDARG, "%s: the STS sent no attached reference for this token", name);
		*(WS_XML_BUFFER **)value = &t->attached;
		return S_OK;
	case WS_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE_XML:
		if (valueSize != sizeof(WS_XML_BUFFER *))
			break;
		if (!t->has_unattached)
			return err_set(error, E_INVALIDARG, "%s: the STS sent no unattached reference for this token", name);
		*(WS_XML_BUFFER **)value = &t->unattached;
		return S_OK;
	case WS_SECURITY_TOKEN_PROPERTY_SYMMETRIC_KEY: {
		if (valueSize != sizeof(WS_BYTES))
			break;
		if (t->proof_withheld)
			return err_set(error, E_ACCESSDENIED,
			               "%s: the broker keeps this token's proof key (daemon mode; the profile does not set release_proof_key = yes)",
			               name);
		if (!t->proof)
			return err_set(error, E_INVALIDARG, "%s: this token has no symmetric proof key", name);
		HRESULT hr;
		BYTE *copy = heap_alloc(heap, t->proof_len, error, &hr);
		if (!copy)
			return hr;
		memcpy(copy, t->proof, t->proof_len);
		((WS_BYTES *)value)->bytes = copy;
		((WS_BYTES *)value)->length = (ULONG)t->proof_len;
		return S_OK;
	}
	}
	return err_set(error, E_INVALIDARG, "%s: valueSize %u is wrong for this property", name, valueSize);
}

WS_EXPORT HRESULT wstrust_get_token_type(WS_SECURITY_TOKEN *token, const char **uri, WS_ERROR *error)
{
	if (!token || !uri)
		return err_set(error, E_INVALIDARG, "wstrust_get_token_type: token and uri are required");
	*uri = token->token_type;
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsCreateXmlSecurityToken(WS_XML_BUFFER *tokenXml, WS_SECURITY_KEY_HANDLE *tokenKey,
                                                  const WS_XML_SECURITY_TOKEN_PROPERTY *properties, ULONG propertyCount,
                                                  WS_SECURITY_TOKEN **token, WS_ERROR *error)
{
	if (!tokenXml || !token)
		return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: tokenXml and token are required");
	if (tokenXml->len == 0)
		return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: tokenXml is empty");
	if (propertyCount && !properties)
		return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: properties is NULL with propertyCount %u",
		               propertyCount);
	struct token_fields f = {
		.xml = tokenXml->bytes, .xml_len = tokenXml->len,
		.key_type = WS_SECURITY_KEY_TYPE_NONE,
	};
	if (tokenKey) {
		if (tokenKey->keyHandleType != WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE_TYPE)
			return err_set(error, WS_E_NOT_SUPPORTED,
			               "WsCreateXmlSecurityToken: only WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE keys are supported");
		const WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE *k = (const WS_RAW_SYMMETRIC_SECURITY_KEY_HANDLE *)tokenKey;
		if (!k->rawKeyBytes.length || !k->rawKeyBytes.bytes || k->rawKeyBytes.length > 1024)
			return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: the raw key must hold 1 to 1024 bytes");
		f.key_type = WS_SECURITY_KEY_TYPE_SYMMETRIC;
		f.proof = k->rawKeyBytes.bytes;
		f.proof_len = k->rawKeyBytes.length;
	}
	bool seen[5] = { false };
	for (ULONG i = 0; i < propertyCount; i++) {
		const WS_XML_SECURITY_TOKEN_PROPERTY *p = &properties[i];
		if (p->id < WS_XML_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE || p->id > WS_XML_SECURITY_TOKEN_PROPERTY_VALID_TILL_TIME)
			return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: unknown property id %d", (int)p->id);
		if (seen[p->id])
			return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: property %d given twice", (int)p->id);
		seen[p->id] = true;
		if (!p->value)
			return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: property %d has no value", (int)p->id);
		if (p->id == WS_XML_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE ||
		    p->id == WS_XML_SECURITY_TOKEN_PROPERTY_UNATTACHED_REFERENCE) {
			if (p->valueSize != sizeof(WS_XML_BUFFER *) || !*(WS_XML_BUFFER *const *)p->value)
				return err_set(error, E_INVALIDARG,
				               "WsCreateXmlSecurityToken: reference property %d must be a non-NULL WS_XML_BUFFER*", (int)p->id);
			const WS_XML_BUFFER *b = *(WS_XML_BUFFER *const *)p->value;
			if (p->id == WS_XML_SECURITY_TOKEN_PROPERTY_ATTACHED_REFERENCE) {
				f.attached = b->bytes;
				f.attached_len = b->len;
			} else {
				f.unattached = b->bytes;
				f.unattached_len = b->len;
			}
		} else {
			if (p->valueSize != sizeof(WS_DATETIME))
				return err_set(error, E_INVALIDARG, "WsCreateXmlSecurityToken: time property %d must be a WS_DATETIME",
				               (int)p->id);
			uint64_t ticks = ((const WS_DATETIME *)p->value)->ticks;
			if (p->id == WS_XML_SECURITY_TOKEN_PROPERTY_VALID_FROM_TIME)
				f.valid_from = ticks;
			else
				f.valid_till = ticks;
		}
	}
	WS_SECURITY_TOKEN *t = token_new(&f);
	if (!t)
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a security token");
	*token = t;
	return S_OK;
}
