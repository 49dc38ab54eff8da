/* soapcpp2 input for bench_gsoap: gSOAP's own WS-Trust, WS-Security and
 * WS-Addressing bindings from its import directory, plus one operation.
 *
 * wstx.h's __wst__RequestSecurityToken (what wstapi.c calls) expects a bare
 * wst:RequestSecurityTokenResponse back: the WS-Trust 2005/02 shape.  WS-Trust
 * 1.3 (section 4.3) and ADFS answer an Issue with the final response wrapped
 * in wst:RequestSecurityTokenResponseCollection (action RSTRC/IssueFinal), so
 * this is the same request with that response element, declared the way
 * wstx.h declares its operations. */
#import "wsse.h"
#import "wsa5.h"
#import "wst.h"

//gsoap wst service method-header-part:     RequestSecurityToken13 wsa5__MessageID
//gsoap wst service method-header-part:     RequestSecurityToken13 wsa5__ReplyTo
//gsoap wst service method-header-part:     RequestSecurityToken13 wsa5__To
//gsoap wst service method-header-part:     RequestSecurityToken13 wsa5__Action
//gsoap wst service method-action:          RequestSecurityToken13 http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue
//gsoap wst service method-output-action:   RequestSecurityToken13 http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal
int __wst__RequestSecurityToken13(
  struct wst__RequestSecurityTokenType				*wst__RequestSecurityToken,
  struct wst__RequestSecurityTokenResponseCollectionType	*wst__RequestSecurityTokenResponseCollection
);
