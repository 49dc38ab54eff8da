/* WS_HEAP, WS_XML_BUFFER, and the reader/writer functions a caller needs to
 * move XML bytes in and out.  No XML is parsed here (the library links no
 * XML library): buffers are the bytes they were made from. */
#include "internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

struct block {
	struct block *next;
	size_t size;
	alignas(max_align_t) unsigned char data[];
};

struct _WS_HEAP {
	size_t max;        /* quota on requested bytes */
	size_t requested;  /* sum of WsAlloc sizes since the last reset */
	size_t actual;     /* what the blocks really take */
	struct block *blocks;
};

void *heap_alloc(WS_HEAP *heap, size_t size, WS_ERROR *error, HRESULT *hr)
{
	if (size > heap->max || heap->requested > heap->max - size) {
		*hr = err_set(error, WS_E_QUOTA_EXCEEDED,
		              "heap quota exceeded: %zu bytes requested, %zu of %zu in use",
		              size, heap->requested, heap->max);
		return NULL;
	}
	/* maxSize may be SIZE_MAX: the block header must not wrap the size. */
	struct block *b = size > SIZE_MAX - sizeof(*b) ? NULL : malloc(sizeof(*b) + (size ? size : 1));
	if (!b) {
		*hr = err_set(error, E_OUTOFMEMORY, "out of memory allocating %zu bytes on a heap", size);
		return NULL;
	}
	b->size = size;
	b->next = heap->blocks;
	heap->blocks = b;
	heap->requested += size;
	heap->actual += sizeof(*b) + size;
	*hr = S_OK;
	return b->data;
}

WS_EXPORT HRESULT WINAPI WsCreateHeap(SIZE_T maxSize, SIZE_T trimSize, const WS_HEAP_PROPERTY *properties,
                                      ULONG propertyCount, WS_HEAP **heap, WS_ERROR *error)
{
	(void)trimSize; /* blocks are freed on reset; nothing to trim */
	if (!heap)
		return err_set(error, E_INVALIDARG, "WsCreateHeap: heap is NULL");
	if (propertyCount && !properties)
		return err_set(error, E_INVALIDARG, "WsCreateHeap: properties is NULL with propertyCount %u", propertyCount);
	for (ULONG i = 0; i < propertyCount; i++) {
		if (properties[i].id == WS_HEAP_PROPERTY_MAX_SIZE && properties[i].valueSize == sizeof(SIZE_T) &&
		    properties[i].value) {
			maxSize = *(const SIZE_T *)properties[i].value;
		} else if (properties[i].id == WS_HEAP_PROPERTY_TRIM_SIZE && properties[i].valueSize == sizeof(SIZE_T)) {
			/* accepted */
		} else {
			return err_set(error, E_INVALIDARG, "WsCreateHeap: heap property %d is not settable", (int)properties[i].id);
		}
	}
	WS_HEAP *h = calloc(1, sizeof(*h));
	if (!h)
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a heap");
	h->max = maxSize;
	*heap = h;
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsAlloc(WS_HEAP *heap, SIZE_T size, void **ptr, WS_ERROR *error)
{
	if (!heap || !ptr)
		return err_set(error, E_INVALIDARG, "WsAlloc: heap or ptr is NULL");
	HRESULT hr;
	void *p = heap_alloc(heap, size, error, &hr);
	if (p)
		*ptr = p;
	return hr;
}

WS_EXPORT HRESULT WINAPI WsGetHeapProperty(WS_HEAP *heap, WS_HEAP_PROPERTY_ID id, void *value, ULONG valueSize,
                                           WS_ERROR *error)
{
	if (!heap || !value || valueSize != sizeof(SIZE_T))
		return err_set(error, E_INVALIDARG, "WsGetHeapProperty: bad arguments");
	size_t v;
	switch (id) {
	case WS_HEAP_PROPERTY_MAX_SIZE: v = heap->max; break;
	case WS_HEAP_PROPERTY_TRIM_SIZE: v = 0; break;
	case WS_HEAP_PROPERTY_REQUESTED_SIZE: v = heap->requested; break;
	case WS_HEAP_PROPERTY_ACTUAL_SIZE: v = heap->actual; break;
	default:
		return err_set(error, E_INVALIDARG, "WsGetHeapProperty: unknown property %d", (int)id);
	}
	*(SIZE_T *)value = v;
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsResetHeap(WS_HEAP *heap, WS_ERROR *error)
{
	if (!heap)
		return err_set(error, E_INVALIDARG, "WsResetHeap: heap is NULL");
	for (struct block *b = heap->blocks, *next; b; b = next) {
		next = b->next;
		/* Heaps receive proof keys (SYMMETRIC_KEY): never leave them behind. */
		explicit_bzero(b->data, b->size);
		free(b);
	}
	heap->blocks = NULL;
	heap->requested = heap->actual = 0;
	return S_OK;
}

WS_EXPORT void WINAPI WsFreeHeap(WS_HEAP *heap)
{
	if (!heap)
		return;
	WsResetHeap(heap, NULL);
	free(heap);
}

/* ---- XML buffers ---- */

WS_EXPORT HRESULT WINAPI WsCreateXmlBuffer(WS_HEAP *heap, const WS_XML_BUFFER_PROPERTY *properties,
                                           ULONG propertyCount, WS_XML_BUFFER **buffer, WS_ERROR *error)
{
	(void)properties;
	if (!heap || !buffer)
		return err_set(error, E_INVALIDARG, "WsCreateXmlBuffer: heap or buffer is NULL");
	if (propertyCount)
		return err_set(error, E_INVALIDARG, "WsCreateXmlBuffer: no XML buffer property is defined");
	HRESULT hr;
	WS_XML_BUFFER *b = heap_alloc(heap, sizeof(*b), error, &hr);
	if (!b)
		return hr;
	b->bytes = NULL;
	b->len = 0;
	*buffer = b;
	return S_OK;
}

/* ---- reader ---- */

struct _WS_XML_READER {
	uint8_t *data;
	size_t len;
	bool has_input;
	bool consumed;
};

WS_EXPORT HRESULT WINAPI WsCreateReader(const WS_XML_READER_PROPERTY *properties, ULONG propertyCount,
                                        WS_XML_READER **reader, WS_ERROR *error)
{
	(void)properties;
	(void)propertyCount; /* limits apply to parsing, which happens in the broker */
	if (!reader)
		return err_set(error, E_INVALIDARG, "WsCreateReader: reader is NULL");
	WS_XML_READER *r = calloc(1, sizeof(*r));
	if (!r)
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a reader");
	*reader = r;
	return S_OK;
}

static bool utf8_text_encoding(const void *encoding, bool writer)
{
	if (!encoding)
		return true;
	if (writer) {
		const WS_XML_WRITER_ENCODING *e = encoding;
		if (e->encodingType != WS_XML_WRITER_ENCODING_TYPE_TEXT)
			return false;
		WS_CHARSET cs = ((const WS_XML_WRITER_TEXT_ENCODING *)encoding)->charSet;
		return cs == WS_CHARSET_UTF8;
	}
	const WS_XML_READER_ENCODING *e = encoding;
	if (e->encodingType != WS_XML_READER_ENCODING_TYPE_TEXT)
		return false;
	WS_CHARSET cs = ((const WS_XML_READER_TEXT_ENCODING *)encoding)->charSet;
	return cs == WS_CHARSET_UTF8 || cs == WS_CHARSET_AUTO;
}

WS_EXPORT HRESULT WINAPI WsSetInput(WS_XML_READER *reader, const WS_XML_READER_ENCODING *encoding,
                                    const WS_XML_READER_INPUT *input, const WS_XML_READER_PROPERTY *properties,
                                    ULONG propertyCount, WS_ERROR *error)
{
	(void)properties;
	(void)propertyCount;
	if (!reader || !input)
		return err_set(error, E_INVALIDARG, "WsSetInput: reader or input is NULL");
	if (!utf8_text_encoding(encoding, false))
		return err_set(error, WS_E_NOT_SUPPORTED, "WsSetInput: only the UTF-8 text encoding is supported");
	if (input->inputType != WS_XML_READER_INPUT_TYPE_BUFFER)
		return err_set(error, WS_E_NOT_SUPPORTED, "WsSetInput: only WS_XML_READER_INPUT_TYPE_BUFFER is supported");
	const WS_XML_READER_BUFFER_INPUT *bi = (const WS_XML_READER_BUFFER_INPUT *)input;
	if (bi->encodedDataSize && !bi->encodedData)
		return err_set(error, E_INVALIDARG, "WsSetInput: encodedData is NULL");
	if (bi->encodedDataSize > IPC_MAX_REPLY)
		return err_set(error, WS_E_QUOTA_EXCEEDED, "WsSetInput: input of %u bytes is over the %u byte limit",
		               bi->encodedDataSize, IPC_MAX_REPLY);
	uint8_t *copy = malloc(bi->encodedDataSize ? bi->encodedDataSize : 1);
	if (!copy)
		return err_set(error, E_OUTOFMEMORY, "out of memory copying reader input");
	if (bi->encodedDataSize)
		memcpy(copy, bi->encodedData, bi->encodedDataSize);
	free(reader->data);
	reader->data = copy;
	reader->len = bi->encodedDataSize;
	reader->has_input = true;
	reader->consumed = false;
	return S_OK;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

WS_EXPORT HRESULT WINAPI WsReadXmlBuffer(WS_XML_READER *reader, WS_HEAP *heap, WS_XML_BUFFER **xmlBuffer,
                                         WS_ERROR *error)
{
	if (!reader || !heap || !xmlBuffer)
		return err_set(error, E_INVALIDARG, "WsReadXmlBuffer: reader, heap or xmlBuffer is NULL");
	if (!reader->has_input || reader->consumed)
		return err_set(error, WS_E_INVALID_OPERATION, "WsReadXmlBuffer: the reader has no input left (call WsSetInput)");
	const uint8_t *p = reader->data;
	size_t n = reader->len;
	/* A buffer holds elements, not a document prolog: drop a BOM and an XML
	 * declaration, and the white space around the content. */
	if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
		p += 3;
		n -= 3;
	}
	while (n && is_space(*p)) { p++; n--; }
	if (n >= 5 && memcmp(p, "<?xml", 5) == 0) {
		const uint8_t *end = memmem(p, n, "?>", 2);
		if (!end)
			return err_set(error, WS_E_INVALID_FORMAT, "WsReadXmlBuffer: unterminated XML declaration");
		n -= (size_t)(end + 2 - p);
		p = end + 2;
	}
	while (n && is_space(*p)) { p++; n--; }
	while (n && is_space(p[n - 1]))
		n--;
	if (n == 0 || p[0] != '<')
		return err_set(error, WS_E_INVALID_FORMAT, "WsReadXmlBuffer: the input holds no element");
	HRESULT hr;
	WS_XML_BUFFER *b = heap_alloc(heap, sizeof(*b), error, &hr);
	if (!b)
		return hr;
	uint8_t *bytes = heap_alloc(heap, n, error, &hr);
	if (!bytes)
		return hr;
	memcpy(bytes, p, n);
	b->bytes = bytes;
	b->len = n;
	reader->consumed = true;
	*xmlBuffer = b;
	return S_OK;
}

WS_EXPORT void WINAPI WsFreeReader(WS_XML_READER *reader)
{
	if (!reader)
		return;
	free(reader->data);
	free(reader);
}

/* ---- writer ---- */

struct _WS_XML_WRITER {
	int unused;
};

WS_EXPORT HRESULT WINAPI WsCreateWriter(const WS_XML_WRITER_PROPERTY *properties, ULONG propertyCount,
                                        WS_XML_WRITER **writer, WS_ERROR *error)
{
	(void)properties;
	(void)propertyCount;
	if (!writer)
		return err_set(error, E_INVALIDARG, "WsCreateWriter: writer is NULL");
	WS_XML_WRITER *w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a writer");
	*writer = w;
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsWriteXmlBufferToBytes(WS_XML_WRITER *writer, WS_XML_BUFFER *xmlBuffer,
                                                 const WS_XML_WRITER_ENCODING *encoding,
                                                 const WS_XML_WRITER_PROPERTY *properties, ULONG propertyCount,
                                                 WS_HEAP *heap, void **bytes, ULONG *byteCount, WS_ERROR *error)
{
	(void)properties;
	(void)propertyCount;
	if (!writer || !xmlBuffer || !heap || !bytes || !byteCount)
		return err_set(error, E_INVALIDARG,
		               "WsWriteXmlBufferToBytes: writer, xmlBuffer, heap, bytes and byteCount are required");
	if (!utf8_text_encoding(encoding, true))
		return err_set(error, WS_E_NOT_SUPPORTED,
		               "WsWriteXmlBufferToBytes: only the UTF-8 text encoding is supported");
	if (xmlBuffer->len > UINT32_MAX)
		return err_set(error, WS_E_QUOTA_EXCEEDED, "WsWriteXmlBufferToBytes: buffer too large");
	HRESULT hr;
	void *out = heap_alloc(heap, xmlBuffer->len, error, &hr);
	if (!out)
		return hr;
	if (xmlBuffer->len)
		memcpy(out, xmlBuffer->bytes, xmlBuffer->len);
	*bytes = out;
	*byteCount = (ULONG)xmlBuffer->len;
	return S_OK;
}

WS_EXPORT void WINAPI WsFreeWriter(WS_XML_WRITER *writer)
{
	free(writer);
}
