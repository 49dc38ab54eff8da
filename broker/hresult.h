/* hresult: the Windows SDK HRESULT values the broker answers with come from
 * the public header, so broker and library cannot disagree.  They are
 * HRESULT (int32_t): cast to uint32_t for T_HRESULT.  docs/ERRORS.md has the
 * table. */
#ifndef WSTRUST_BROKER_HRESULT_H
#define WSTRUST_BROKER_HRESULT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <wstrust/webservices.h>

/* Refuse with an HRESULT for the client and a message: *hr = code, err
 * formatted, returns -1. */
__attribute__((format(printf, 5, 6)))
static inline int hr_refuse(uint32_t *hr, uint32_t code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	*hr = code;
	return -1;
}

#endif
