/* WS_ERROR: a list of strings, most specific first, kept in UTF-16 (for
 * WsGetErrorString) and UTF-8 (for the wstrust_* accessor and the CLI). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A hostile broker could send many long strings: keep a bound. */
#define MAX_ERROR_STRINGS 64u

struct err_string {
	WS_STRING ws;
	char *utf8;
};

struct _WS_ERROR {
	struct err_string *s;
	unsigned n;
	HRESULT original;
	struct err_string original_text;  /* Windows: the original code's text is the last string */
	struct err_string *retired;       /* replaced original texts: valid until reset, as strings are */
	unsigned nretired;
	LANGID langid;
};

#define DEFAULT_LANGID ((LANGID)0x0409) /* en-US: the strings are English */

static void free_original_text(WS_ERROR *e)
{
	free(e->original_text.ws.chars);
	free(e->original_text.utf8);
	e->original_text = (struct err_string){ { 0, NULL }, NULL };
	for (unsigned i = 0; i < e->nretired; i++) {
		free(e->retired[i].ws.chars);
		free(e->retired[i].utf8);
	}
	free(e->retired);
	e->retired = NULL;
	e->nretired = 0;
}

/* A caller may still hold the text's WS_STRING: keep it until reset. */
static void retire_original_text(WS_ERROR *e)
{
	if (!e->original_text.utf8)
		return;
	struct err_string *r = e->nretired < MAX_ERROR_STRINGS
	                           ? realloc(e->retired, (e->nretired + 1) * sizeof(*r)) : NULL;
	if (r) {
		e->retired = r;
		e->retired[e->nretired++] = e->original_text;
	} else {
		free(e->original_text.ws.chars);
		free(e->original_text.utf8);
	}
	e->original_text = (struct err_string){ { 0, NULL }, NULL };
}

/* The original code and, as on Windows, its text as one more string after
 * the others (the errno's text: wstrust maps errno values). */
static void set_original(WS_ERROR *e, HRESULT original)
{
	if (e->original_text.utf8 && original == e->original)
		return;
	retire_original_text(e);
	e->original = original;
	if (original == NOERROR)
		return;
	char buf[160], tmp[128];
	if (original > 0 && original < 4096)
		snprintf(buf, sizeof(buf), "%s (errno %d)", strerror_r((int)original, tmp, sizeof(tmp)), (int)original);
	else
		snprintf(buf, sizeof(buf), "original error 0x%08X", (unsigned)original);
	WCHAR *w;
	size_t wn;
	char *u = strdup(buf);
	if (!u || utf8_to_utf16(buf, strlen(buf), &w, &wn) < 0) {
		free(u);
		return;
	}
	e->original_text.utf8 = u;
	e->original_text.ws.chars = w;
	e->original_text.ws.length = (ULONG)wn;
}

/* The strings a caller sees: the added ones, then the original's text. */
static const struct err_string *string_at(WS_ERROR *e, ULONG index)
{
	if (index < e->n)
		return &e->s[index];
	if (index == e->n && e->original_text.utf8)
		return &e->original_text;
	return NULL;
}

static void free_strings(WS_ERROR *e)
{
	for (unsigned i = 0; i < e->n; i++) {
		free(e->s[i].ws.chars);
		free(e->s[i].utf8);
	}
	free(e->s);
	e->s = NULL;
	e->n = 0;
}

WS_EXPORT HRESULT WINAPI WsCreateError(const WS_ERROR_PROPERTY *properties, ULONG propertyCount, WS_ERROR **error)
{
	if (!error || (propertyCount && !properties))
		return E_INVALIDARG;
	WS_ERROR *e = calloc(1, sizeof(*e));
	if (!e)
		return E_OUTOFMEMORY;
	e->langid = DEFAULT_LANGID;
	for (ULONG i = 0; i < propertyCount; i++) {
		HRESULT hr = WsSetErrorProperty(e, properties[i].id, properties[i].value, properties[i].valueSize);
		if (FAILED(hr)) {
			free(e);
			return hr;
		}
	}
	*error = e;
	return S_OK;
}

/* Insert strings (UTF-8, most specific first) at index 0. */
static int insert_front(WS_ERROR *e, char *const *strings, unsigned n)
{
	if (n > MAX_ERROR_STRINGS)
		n = MAX_ERROR_STRINGS;
	unsigned keep = e->n;
	if (keep + n > MAX_ERROR_STRINGS)
		keep = MAX_ERROR_STRINGS - n;
	struct err_string *ns = calloc(n + keep ? n + keep : 1, sizeof(*ns));
	if (!ns)
		return -1;
	unsigned done = 0;
	for (; done < n; done++) {
		const char *src = strings[done] ? strings[done] : "";
		size_t wn;
		WCHAR *w;
		char *u = strdup(src);
		if (!u)
			goto fail;
		if (utf8_to_utf16(src, strlen(src), &w, &wn) < 0) {
			/* Not UTF-8 (a broken peer): keep a readable placeholder. */
			free(u);
			static const char repl[] = "(error text was not valid UTF-8)";
			u = strdup(repl);
			if (!u || utf8_to_utf16(repl, sizeof(repl) - 1, &w, &wn) < 0) {
				free(u);
				goto fail;
			}
		}
		ns[done].utf8 = u;
		ns[done].ws.chars = w;
		ns[done].ws.length = (ULONG)wn;
	}
	for (unsigned i = 0; i < e->n; i++) {
		if (i < keep) {
			ns[n + i] = e->s[i];
		} else {
			free(e->s[i].ws.chars);
			free(e->s[i].utf8);
		}
	}
	free(e->s);
	e->s = ns;
	e->n = n + keep;
	return 0;
fail:
	for (unsigned i = 0; i < done; i++) {
		free(ns[i].utf8);
		free(ns[i].ws.chars);
	}
	free(ns);
	return -1;
}

HRESULT err_set_list(WS_ERROR *error, HRESULT hr, char *const *strings, unsigned n)
{
	if (error)
		(void)insert_front(error, strings, n);
	return hr;
}

HRESULT err_set(WS_ERROR *error, HRESULT hr, const char *fmt, ...)
{
	if (!error)
		return hr;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char *one = buf;
	return err_set_list(error, hr, &one, 1);
}

void err_set_original(WS_ERROR *error, HRESULT original)
{
	if (error)
		set_original(error, original);
}

WS_EXPORT HRESULT WINAPI WsAddErrorString(WS_ERROR *error, const WS_STRING *string)
{
	if (!error || !string || (string->length && !string->chars))
		return E_INVALIDARG;
	char *u = utf16_to_utf8(string->chars, string->length);
	if (!u)
		return errno == ENOMEM ? E_OUTOFMEMORY : E_INVALIDARG;
	int r = insert_front(error, &u, 1);
	free(u);
	return r < 0 ? E_OUTOFMEMORY : S_OK;
}

WS_EXPORT HRESULT WINAPI WsGetErrorString(WS_ERROR *error, ULONG index, WS_STRING *string)
{
	const struct err_string *s = error && string ? string_at(error, index) : NULL;
	if (!s)
		return E_INVALIDARG;
	*string = s->ws;
	return S_OK;
}

WS_EXPORT HRESULT wstrust_get_error_string_utf8(WS_ERROR *error, ULONG index, const char **string)
{
	const struct err_string *s = error && string ? string_at(error, index) : NULL;
	if (!s)
		return E_INVALIDARG;
	*string = s->utf8;
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsGetErrorProperty(WS_ERROR *error, WS_ERROR_PROPERTY_ID id, void *buffer, ULONG bufferSize)
{
	if (!error || !buffer)
		return E_INVALIDARG;
	switch (id) {
	case WS_ERROR_PROPERTY_STRING_COUNT:
		if (bufferSize != sizeof(ULONG))
			return E_INVALIDARG;
		*(ULONG *)buffer = error->n + (error->original_text.utf8 ? 1u : 0u);
		return S_OK;
	case WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE:
		if (bufferSize != sizeof(HRESULT))
			return E_INVALIDARG;
		*(HRESULT *)buffer = error->original;
		return S_OK;
	case WS_ERROR_PROPERTY_LANGID:
		if (bufferSize != sizeof(LANGID))
			return E_INVALIDARG;
		*(LANGID *)buffer = error->langid;
		return S_OK;
	}
	return E_INVALIDARG;
}

WS_EXPORT HRESULT WINAPI WsSetErrorProperty(WS_ERROR *error, WS_ERROR_PROPERTY_ID id, const void *value, ULONG valueSize)
{
	if (!error || !value)
		return E_INVALIDARG;
	switch (id) {
	case WS_ERROR_PROPERTY_LANGID:
		/* Settable only while the object holds no strings (Windows' rule). */
		if (valueSize != sizeof(LANGID) || *(const LANGID *)value == 0 || error->n)
			return E_INVALIDARG;
		error->langid = *(const LANGID *)value;
		return S_OK;
	case WS_ERROR_PROPERTY_ORIGINAL_ERROR_CODE:
		if (valueSize != sizeof(HRESULT))
			return E_INVALIDARG;
		set_original(error, *(const HRESULT *)value);
		return S_OK;
	case WS_ERROR_PROPERTY_STRING_COUNT:
		break; /* read only */
	}
	return E_INVALIDARG;
}

WS_EXPORT HRESULT WINAPI WsResetError(WS_ERROR *error)
{
	if (!error)
		return E_INVALIDARG;
	free_strings(error);
	free_original_text(error);
	error->original = NOERROR;
	error->langid = DEFAULT_LANGID;
	return S_OK;
}

WS_EXPORT void WINAPI WsFreeError(WS_ERROR *error)
{
	if (!error)
		return;
	free_strings(error);
	free_original_text(error);
	free(error);
}
