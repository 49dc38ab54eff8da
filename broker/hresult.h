/* hresult: the Windows SDK HRESULT values the broker answers with come from
 * the public header, so broker and library cannot disagree.  They are
 * HRESULT (int32_t): cast to uint32_t for T_HRESULT.  docs/ERRORS.md has the
 * table. */
#ifndef WSTRUST_BROKER_HRESULT_H
#define WSTRUST_BROKER_HRESULT_H

#include <wstrust/webservices.h>

#endif
