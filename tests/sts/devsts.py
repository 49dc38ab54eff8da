#!/usr/bin/python3
"""wstrust development STS: a strict, independent WS-Trust issuer for tests.

Run ONLY with /usr/bin/python3 (needs Debian's python3-lxml, python3-xmlsec,
python3-cryptography):

  /usr/bin/python3 tests/sts/devsts.py --workdir DIR [--port 0]
      [--users alice:secret,bob:pw2] [--lifetime SECONDS]
      [--canned PATH=FILE ...] [--name NAME] [--exit-on-stdin-eof]
      [--client-auth none|optional|required]

Start-up writes, fresh, into DIR: ca.pem/ca.key (test CA), server.pem/
server.key (TLS, SAN IP:127.0.0.1 + DNS:localhost, signed by the CA),
signing.pem/signing.key (self-signed RSA-2048 token-signing cert),
client-ca.pem/client-ca.key, client.pem/client.key (clientAuth cert signed by
client-ca).  Then it listens with HTTPS (TLS >= 1.2) on 127.0.0.1 and prints
ONE JSON line on stdout:
  {"port", "base_url", "ca_file", "signing_cert", "signing_key", "client_cert",
   "client_key", "client_ca", "issuer", "pid"}
Logs go to stderr.  SIGTERM/SIGINT (and stdin EOF with --exit-on-stdin-eof)
stop it with exit status 0.

STS endpoints (table ENDPOINTS below: one row per endpoint; a new binding or
version is a new row plus, if needed, a new verifier function):

  path                                     WS-Trust  SOAP  WS-Addr  auth binding
  /adfs/services/trust/13/usernamemixed    1.3       1.2   1.0      usernamemixed
  /adfs/services/trust/2005/usernamemixed  Feb 2005  1.2   1.0      usernamemixed
  /soap11/trust/13/usernamemixed           1.3       1.1   1.0      usernamemixed
  /soap11/trust/2005/usernamemixed         Feb 2005  1.1   1.0      usernamemixed

  usernamemixed = wsse:Security with exactly one wsu:Timestamp (Created and
  Expires, UTC 'Z') and one wsse:UsernameToken (PasswordText, or
  PasswordDigest with Nonce + wsu:Created, nonce replay rejected), over TLS.
  Issue only, bearer only (1.3 Bearer URI and its two erratum spellings; under
  Feb 2005 .../2005/05/identity/NoProofKey), SAML 2.0 (default) or SAML 1.1,
  signed enveloped with RSA-SHA256 / SHA-256 / exc-c14n.  1.3 answers an
  RSTRC (Action RSTRC/IssueFinal), Feb 2005 a bare RSTR (Action RSTR/Issue).
  Any violation: a SOAP fault of the endpoint's SOAP version, HTTP 500.

Other paths:
  POST <PATH> given with --canned PATH=FILE: FILE's bytes, 200, unchecked.
  /test/slow?seconds=N   sleep N s (<= 600), then 200 with an irrelevant envelope
  /test/close            read the request, close the connection, no answer
  /test/status?code=N    answer HTTP status N (200..599) with an empty body
  /test/big?bytes=N      200, N bytes of junk XML-ish text, chunked encoding
  GET /stats             {"requests": {path: n}, "issued": n, "faults": n,
                          "connections": n}   (/stats itself is not counted)

Planned (not implemented; each goes behind a NEW endpoint row): holder-of-key
symmetric (BinarySecret / ComputedKey P_SHA1 + Entropy / EncryptedKey),
PublicKey, SecureConversation SCT issue/renew, certificatemixed (X.509 message
signature), issued-token binding, HTTP Basic, TLS client certificates.
Hooks: RST_CHILDREN (new RST elements), KEY_TYPES (new key kinds), TOKEN_TYPES
(new tokens), Endpoint.auth (new bindings), build_rstr(proof=...) (proof tokens).
"""

import argparse
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("devsts")

# --------------------------------------------------------------------------
# Namespaces and URIs
# --------------------------------------------------------------------------
NS_S12 = "http://www.w3.org/2003/05/soap-envelope"
NS_S11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSA10 = "http://www.w3.org/2005/08/addressing"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
NS_WST13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
NS_WST05 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
NS_SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XML = "http://www.w3.org/XML/1998/namespace"

UT_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PW_TEXT = UT_PROFILE + "#PasswordText"
PW_DIGEST = UT_PROFILE + "#PasswordDigest"
B64_ENCODING = ("http://docs.oasis-open.org/wss/2004/01/"
                "oasis-200401-wss-soap-message-security-1.0#Base64Binary")

SAML2_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
SAML11_PROFILE = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
SAML2_KEYID = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
# SAML token profile 1.1 keeps the 1.0 URI for SAML 1.1 assertion IDs.
SAML11_KEYID = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"

MAX_BODY = 1 << 20           # request body cap (1 MiB)
CLOCK_SKEW = 300             # seconds a timestamp may be in the future
NONCE_WINDOW = 300           # PasswordDigest Created must be within this
HANDSHAKE_TIMEOUT = 10
IO_TIMEOUT = 30

# --------------------------------------------------------------------------
# Version tables
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrustVersion:
    name: str
    ns: str
    issue_action: str          # request wsa:Action for Issue
    reply_action: str          # reply wsa:Action for Issue
    collection: bool           # reply wraps the RSTR in an RSTRC
    bearer_keytypes: tuple     # request KeyType URIs meaning "bearer"
    bearer_reply: str          # reply KeyType when the request had none

    @property
    def issue(self):
        return self.ns + "/Issue"


TRUST13 = TrustVersion(
    name="1.3", ns=NS_WST13,
    issue_action=NS_WST13 + "/RST/Issue",
    reply_action=NS_WST13 + "/RSTRC/IssueFinal",
    collection=True,
    # WS-Trust 1.3 as published, its schema, and errata 01 spell Bearer three
    # ways (see MS-LWSSP 2.2.2 / WWSAPI WS_SECURITY_BEARER_KEY_TYPE_VERSION).
    bearer_keytypes=(NS_WST13 + "/Bearer",
                     "http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer",
                     "http://docs.oasis-open.org/wssx/wstrust/200512/Bearer"),
    bearer_reply=NS_WST13 + "/Bearer")

TRUST2005 = TrustVersion(
    name="2005", ns=NS_WST05,
    issue_action=NS_WST05 + "/RST/Issue",
    reply_action=NS_WST05 + "/RSTR/Issue",
    collection=False,
    bearer_keytypes=("http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",),
    bearer_reply="http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey")


@dataclasses.dataclass(frozen=True)
class SoapVersion:
    name: str
    ns: str
    media_type: str
    soapaction_header: bool    # SOAP 1.1: SOAPAction HTTP header carries the action
    mu_true: tuple             # accepted "true" spellings of mustUnderstand


SOAP12 = SoapVersion("1.2", NS_S12, "application/soap+xml", False, ("1", "true"))
SOAP11 = SoapVersion("1.1", NS_S11, "text/xml", True, ("1",))


@dataclasses.dataclass(frozen=True)
class Addressing:
    ns: str
    anonymous: str
    fault_action: str


WSA10 = Addressing(NS_WSA10, NS_WSA10 + "/anonymous", NS_WSA10 + "/soap/fault")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    path: str
    trust: TrustVersion
    soap: SoapVersion
    wsa: Addressing
    binding: str
    auth: object               # fn(sts, ctx, security_element) -> principal name


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------


class Fault(Exception):
    """A SOAP fault to send back.  code: Sender/Receiver/MustUnderstand/
    VersionMismatch; subcode: local name in the endpoint's trust namespace."""

    def __init__(self, reason, subcode="InvalidRequest", code="Sender",
                 not_understood=None, close=False):
        super().__init__(reason)
        self.reason = reason
        self.subcode = subcode
        self.code = code
        self.not_understood = not_understood   # (ns, local) for MustUnderstand
        self.close = close                     # close the connection afterwards


AUTH_FAILED = "ID3242: The security token could not be authenticated or authorized."


def auth_fault(why):
    log.info("authentication failed: %s", why)
    return Fault(AUTH_FAILED, subcode="FailedAuthentication")


# --------------------------------------------------------------------------
# Small XML helpers
# --------------------------------------------------------------------------


def qn(ns, local):
    return "{%s}%s" % (ns, local) if ns else local


def show(tag):
    """Readable name for a Clark-notation tag."""
    if not isinstance(tag, str):
        return "non-element node"
    prefixes = {NS_S12: "soap12", NS_S11: "soap11", NS_WSA10: "wsa", NS_WSSE: "wsse",
                NS_WSU: "wsu", NS_WSP: "wsp", NS_WST13: "wst", NS_WST05: "wst",
                NS_SAML2: "saml", NS_DS: "ds"}
    if tag.startswith("{"):
        ns, local = tag[1:].split("}", 1)
        if ns in prefixes:
            return "%s:%s" % (prefixes[ns], local)
        return "{%s}%s" % (ns, local)
    return tag


def elements(el):
    """Element children; text or tails with non-whitespace are an error."""
    if el.text and el.text.strip():
        raise Fault("unexpected text in %s" % show(el.tag))
    out = []
    for c in el:
        if c.tail and c.tail.strip():
            raise Fault("unexpected text in %s" % show(el.tag))
        if isinstance(c.tag, str):
            out.append(c)
        elif not isinstance(c, etree._Comment):
            raise Fault("unexpected node in %s" % show(el.tag))
    return out


def value(el):
    """Text of a simple-content element (xs:anyURI/xs:string collapse)."""
    if len(el):
        raise Fault("%s must contain text only" % show(el.tag))
    return (el.text or "").strip()


def singles(parent, allowed, what):
    """Map child tag -> element; each allowed at most once; others rejected."""
    found = {}
    for c in elements(parent):
        if c.tag not in allowed:
            raise Fault("unexpected element %s in %s" % (show(c.tag), what))
        if c.tag in found:
            raise Fault("duplicate %s in %s" % (show(c.tag), what))
        found[c.tag] = c
    return found


DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$")


def parse_utc(text, what):
    m = DT_RE.match(text)
    if not m:
        raise Fault("%s '%s' is not a UTC xs:dateTime ending in 'Z'" % (what, text[:64]))
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = m.group(7)
    us = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=dt.timezone.utc)
    except ValueError:
        raise Fault("%s '%s' is not a valid date and time" % (what, text[:64]))


def utc_now():
    return dt.datetime.now(dt.timezone.utc)


def fmt_utc(t):
    """UTC, milliseconds, 'Z'."""
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def truncate_ms(t):
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def parse_xml(body):
    if b"<!DOCTYPE" in body:       # refuse before the parser sees any DTD
        raise Fault("DOCTYPE is not allowed in a SOAP message")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_blank_text=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        raise Fault("request is not well-formed XML: %s" % e)
    doc = root.getroottree()
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise Fault("DOCTYPE is not allowed in a SOAP message")
    enc = (doc.docinfo.encoding or "UTF-8").upper()
    if enc not in ("UTF-8", "UTF8"):
        raise Fault("XML encoding must be UTF-8 (got %s)" % enc)
    for node in list(root.itersiblings(preceding=True)) + list(root.itersiblings()):
        if isinstance(node, etree._ProcessingInstruction):
            raise Fault("processing instructions are not allowed in a SOAP message")
    for _ in root.iter(etree.ProcessingInstruction):
        raise Fault("processing instructions are not allowed in a SOAP message")
    for _ in root.iter(etree.Entity):
        raise Fault("entity references are not allowed in a SOAP message")
    return root


# --------------------------------------------------------------------------
# Request context and parsed RST
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Ctx:
    ep: Endpoint
    url: str                   # the URL the client posted to
    http_headers: object
    message_id: str = None
    action: str = None
    principal: str = None


@dataclasses.dataclass
class Rst:
    request_type: str = None
    token_type: str = None     # as requested (None: default)
    token_kind: str = "saml2"
    key_type: str = None       # as requested (None: default bearer)
    key_kind: str = "bearer"
    applies_to: str = None
    context: str = None


# --------------------------------------------------------------------------
# HTTP-level checks
# --------------------------------------------------------------------------


def parse_content_type(ct):
    parts = [p.strip() for p in ct.split(";")]
    mt = parts[0].lower()
    params = {}
    for p in parts[1:]:
        if not p:
            continue
        k, _, v = p.partition("=")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        params[k.strip().lower()] = v
    return mt, params


def check_http(ctx):
    soap = ctx.ep.soap
    ct = ctx.http_headers.get("Content-Type")
    want = "%s; charset=utf-8" % soap.media_type
    if ct is None:
        raise Fault("Content-Type header missing (SOAP %s needs %s)" % (soap.name, want))
    mt, params = parse_content_type(ct)
    if mt != soap.media_type or params.get("charset", "").lower() != "utf-8":
        raise Fault("Content-Type must be %s for SOAP %s (got '%s')" % (want, soap.name, ct[:200]))


def check_http_action(ctx):
    """After the envelope is read: HTTP-level action must match wsa:Action."""
    soap = ctx.ep.soap
    if soap.soapaction_header:
        sa = ctx.http_headers.get("SOAPAction")
        if sa is None:
            raise Fault("SOAPAction header missing (SOAP 1.1 needs SOAPAction = wsa:Action)")
        sa = sa.strip()
        if len(sa) >= 2 and sa[0] == sa[-1] == '"':
            sa = sa[1:-1]
        if sa != ctx.action:
            raise Fault("SOAPAction header '%s' does not match wsa:Action '%s'"
                        % (sa[:200], ctx.action))
    else:
        _, params = parse_content_type(ctx.http_headers.get("Content-Type", ""))
        if "action" in params and params["action"] != ctx.action:
            raise Fault("Content-Type action parameter '%s' does not match wsa:Action '%s'"
                        % (params["action"][:200], ctx.action))


# --------------------------------------------------------------------------
# Envelope, addressing
# --------------------------------------------------------------------------

UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def check_envelope(ctx, root):
    """Returns (header, rst)."""
    s = ctx.ep.soap.ns
    if root.tag != qn(s, "Envelope"):
        if root.tag in (qn(NS_S11, "Envelope"), qn(NS_S12, "Envelope")):
            raise Fault("SOAP version mismatch: this endpoint speaks SOAP %s (%s), got %s"
                        % (ctx.ep.soap.name, s, show(root.tag)), code="VersionMismatch",
                        subcode=None)
        raise Fault("root element %s is not a SOAP %s Envelope" % (show(root.tag), ctx.ep.soap.name))
    kids = elements(root)
    if not kids or kids[0].tag != qn(s, "Header"):
        raise Fault("soap:Header missing (WS-Addressing and WS-Security headers are required)")
    if len(kids) < 2 or kids[1].tag != qn(s, "Body"):
        raise Fault("soap:Body missing after soap:Header")
    if len(kids) > 2:
        raise Fault("unexpected element %s after soap:Body" % show(kids[2].tag))
    header, body = kids
    bkids = elements(body)
    if len(bkids) != 1:
        raise Fault("soap:Body must contain exactly one element (got %d)" % len(bkids))
    rst = bkids[0]
    want = qn(ctx.ep.trust.ns, "RequestSecurityToken")
    if rst.tag != want:
        raise Fault("soap:Body child must be wst:RequestSecurityToken in %s (got %s)"
                    % (ctx.ep.trust.ns, show(rst.tag)))
    return header, rst


def must_understand(ctx, el):
    v = el.get(qn(ctx.ep.soap.ns, "mustUnderstand"))
    if v is None:
        return False
    v = v.strip()
    if v in ctx.ep.soap.mu_true:
        return True
    if v in ("0", "false") and (v == "0" or ctx.ep.soap is SOAP12):
        return False
    raise Fault("invalid mustUnderstand value '%s' on %s" % (v[:20], show(el.tag)))


def missing_header(header, ns, local):
    """Fault for a missing header, naming a near miss (case, namespace)."""
    name = show(qn(ns, local))
    for h in header:
        if isinstance(h.tag, str) and h.tag.split("}")[-1].lower() == local.lower():
            return Fault("%s header missing (found %s: names and namespaces must match exactly)"
                         % (name, show(h.tag)))
    return Fault("%s header missing" % name)


def check_headers(ctx, header):
    """Addressing checks; returns the wsse:Security element."""
    a = ctx.ep.wsa.ns
    known = {qn(a, "Action"), qn(a, "To"), qn(a, "MessageID"), qn(a, "ReplyTo"),
             qn(NS_WSSE, "Security")}
    found = {}
    for h in elements(header):
        if h.tag in known:
            if h.tag in found:
                raise Fault("duplicate %s header" % show(h.tag))
            found[h.tag] = h
            must_understand(ctx, h)           # validates the value
        elif must_understand(ctx, h):
            ns, local = h.tag[1:].split("}", 1) if h.tag.startswith("{") else ("", h.tag)
            raise Fault("header %s is not understood" % show(h.tag), code="MustUnderstand",
                        subcode=None, not_understood=(ns, local))
        else:
            log.info("ignoring header %s", show(h.tag))

    act = found.get(qn(a, "Action"))
    if act is None:
        raise missing_header(header, a, "Action")
    ctx.action = value(act)
    if ctx.action != ctx.ep.trust.issue_action:
        raise Fault("wsa:Action '%s' is not the WS-Trust %s Issue action '%s'"
                    % (ctx.action[:200], ctx.ep.trust.name, ctx.ep.trust.issue_action))

    mid = found.get(qn(a, "MessageID"))
    if mid is None:
        raise missing_header(header, a, "MessageID")
    ctx.message_id = value(mid)
    if not UUID_URN.match(ctx.message_id):
        raise Fault("wsa:MessageID '%s' is not a urn:uuid: URI" % ctx.message_id[:200])

    to = found.get(qn(a, "To"))
    if to is None:
        raise missing_header(header, a, "To")
    to_v = value(to)
    if to_v != ctx.url:
        raise Fault("wsa:To does not match the endpoint (expected '%s', got '%s')"
                    % (ctx.url, to_v[:200]))

    rt = found.get(qn(a, "ReplyTo"))
    if rt is None:
        raise missing_header(header, a, "ReplyTo")
    rtk = singles(rt, {qn(a, "Address"), qn(a, "ReferenceParameters"), qn(a, "Metadata")},
                  "wsa:ReplyTo")
    addr = rtk.get(qn(a, "Address"))
    if addr is None:
        raise Fault("wsa:ReplyTo/wsa:Address missing")
    if value(addr) != ctx.ep.wsa.anonymous:
        raise Fault("wsa:ReplyTo/wsa:Address must be the anonymous URI %s (got '%s')"
                    % (ctx.ep.wsa.anonymous, value(addr)[:200]))

    sec = found.get(qn(NS_WSSE, "Security"))
    if sec is None:
        raise missing_header(header, NS_WSSE, "Security")
    return sec


# --------------------------------------------------------------------------
# WS-Security verifiers (auth bindings)
# --------------------------------------------------------------------------


def check_timestamp(ts):
    k = singles(ts, {qn(NS_WSU, "Created"), qn(NS_WSU, "Expires")}, "wsu:Timestamp")
    c = k.get(qn(NS_WSU, "Created"))
    e = k.get(qn(NS_WSU, "Expires"))
    if c is None:
        raise Fault("wsu:Timestamp/wsu:Created missing")
    if e is None:
        raise Fault("wsu:Timestamp/wsu:Expires missing")
    created = parse_utc(value(c), "wsu:Timestamp/wsu:Created")
    expires = parse_utc(value(e), "wsu:Timestamp/wsu:Expires")
    now = utc_now()
    if created > now + dt.timedelta(seconds=CLOCK_SKEW):
        raise Fault("wsu:Timestamp Created %s is more than %d s in the future"
                    % (value(c), CLOCK_SKEW))
    if expires <= created:
        raise Fault("wsu:Timestamp Expires %s is not after Created %s" % (value(e), value(c)))
    if expires <= now:
        raise Fault("wsu:Timestamp has expired (Expires %s, now %s)" % (value(e), fmt_utc(now)))


def verify_username_token(sts, ctx, ut):
    allowed = {qn(NS_WSSE, "Username"), qn(NS_WSSE, "Password"), qn(NS_WSSE, "Nonce"),
               qn(NS_WSU, "Created")}
    k = singles(ut, allowed, "wsse:UsernameToken")
    un = k.get(qn(NS_WSSE, "Username"))
    pw = k.get(qn(NS_WSSE, "Password"))
    if un is None:
        raise Fault("wsse:UsernameToken/wsse:Username missing")
    if pw is None:
        raise Fault("wsse:UsernameToken/wsse:Password missing")
    for attr in pw.attrib:
        if attr != "Type":
            raise Fault("unexpected attribute %s on wsse:Password" % show(attr))
    user = value(un)
    if len(pw):
        raise Fault("wsse:Password must contain text only")
    given = pw.text or ""
    ptype = pw.get("Type", PW_TEXT).strip()   # profile: absent Type = PasswordText
    known = sts.users.get(user)
    if ptype == PW_TEXT:
        if qn(NS_WSSE, "Nonce") in k or qn(NS_WSU, "Created") in k:
            log.info("PasswordText with Nonce/Created: allowed by the profile, ignored")
        if known is None or not hmac.compare_digest(given.encode(), known.encode()):
            raise auth_fault("bad user or password for %r" % user)
        return user
    if ptype == PW_DIGEST:
        nonce_el = k.get(qn(NS_WSSE, "Nonce"))
        cr_el = k.get(qn(NS_WSU, "Created"))
        if nonce_el is None or cr_el is None:
            raise Fault("PasswordDigest needs wsse:Nonce and wsu:Created in wsse:UsernameToken")
        enc = nonce_el.get("EncodingType", B64_ENCODING)
        if enc != B64_ENCODING:
            raise Fault("unsupported wsse:Nonce EncodingType '%s'" % enc[:200])
        try:
            nonce = base64.b64decode(value(nonce_el), validate=True)
        except ValueError:
            raise Fault("wsse:Nonce is not valid base64")
        if len(nonce) < 8:
            raise Fault("wsse:Nonce is shorter than 8 bytes")
        created_txt = value(cr_el)
        created = parse_utc(created_txt, "wsse:UsernameToken/wsu:Created")
        now = utc_now()
        if created > now + dt.timedelta(seconds=CLOCK_SKEW):
            raise Fault("wsse:UsernameToken/wsu:Created is more than %d s in the future" % CLOCK_SKEW)
        if created < now - dt.timedelta(seconds=NONCE_WINDOW + CLOCK_SKEW):
            raise Fault("wsse:UsernameToken/wsu:Created is older than %d s" % (NONCE_WINDOW + CLOCK_SKEW))
        try:
            digest = base64.b64decode(given.strip(), validate=True)
        except ValueError:
            raise Fault("PasswordDigest value is not valid base64")
        if known is None:
            raise auth_fault("unknown user %r" % user)
        want = hashlib.sha1(nonce + created_txt.encode() + known.encode()).digest()
        if not hmac.compare_digest(digest, want):
            raise auth_fault("bad password digest for %r" % user)
        if not sts.remember_nonce(nonce):
            raise Fault("wsse:Nonce has already been used (replayed UsernameToken)",
                        subcode="FailedAuthentication")
        return user
    raise Fault("unsupported wsse:Password Type '%s'" % ptype[:200])


def auth_usernamemixed(sts, ctx, sec):
    """wsse:Security = exactly one wsu:Timestamp + one wsse:UsernameToken."""
    k = singles(sec, {qn(NS_WSU, "Timestamp"), qn(NS_WSSE, "UsernameToken")}, "wsse:Security")
    ts = k.get(qn(NS_WSU, "Timestamp"))
    if ts is None:
        raise Fault("wsu:Timestamp missing from wsse:Security")
    check_timestamp(ts)
    ut = k.get(qn(NS_WSSE, "UsernameToken"))
    if ut is None:
        raise Fault("wsse:UsernameToken missing from wsse:Security")
    return verify_username_token(sts, ctx, ut)


ENDPOINTS = [
    Endpoint("/adfs/services/trust/13/usernamemixed", TRUST13, SOAP12, WSA10,
             "usernamemixed", auth_usernamemixed),
    Endpoint("/adfs/services/trust/2005/usernamemixed", TRUST2005, SOAP12, WSA10,
             "usernamemixed", auth_usernamemixed),
    Endpoint("/soap11/trust/13/usernamemixed", TRUST13, SOAP11, WSA10,
             "usernamemixed", auth_usernamemixed),
    Endpoint("/soap11/trust/2005/usernamemixed", TRUST2005, SOAP11, WSA10,
             "usernamemixed", auth_usernamemixed),
]
ENDPOINT_BY_PATH = {e.path: e for e in ENDPOINTS}

# --------------------------------------------------------------------------
# RST body
# --------------------------------------------------------------------------

TOKEN_TYPES = {
    SAML2_PROFILE: "saml2",
    "urn:oasis:names:tc:SAML:2.0:assertion": "saml2",
    SAML11_PROFILE: "saml11",
    "urn:oasis:names:tc:SAML:1.0:assertion": "saml11",
}
DEFAULT_TOKEN_TYPE = SAML2_PROFILE


def rst_request_type(ctx, rst, el):
    v = value(el)
    if v != ctx.ep.trust.issue:
        raise Fault("unsupported wst:RequestType '%s' (this endpoint only issues: %s)"
                    % (v[:200], ctx.ep.trust.issue))
    rst.request_type = v


def rst_token_type(ctx, rst, el):
    v = value(el)
    if v not in TOKEN_TYPES:
        raise Fault("unsupported TokenType '%s'" % v[:200])
    rst.token_type, rst.token_kind = v, TOKEN_TYPES[v]


def key_types(trust):
    """KeyType URI -> key kind, per trust version (symmetric/public later)."""
    return {u: "bearer" for u in trust.bearer_keytypes}


def rst_key_type(ctx, rst, el):
    v = value(el)
    kinds = key_types(ctx.ep.trust)
    if v not in kinds:
        raise Fault("unsupported KeyType '%s' (this endpoint issues bearer tokens: %s)"
                    % (v[:200], " or ".join(ctx.ep.trust.bearer_keytypes)))
    rst.key_type, rst.key_kind = v, kinds[v]


def rst_applies_to(ctx, rst, el):
    a = ctx.ep.wsa.ns
    k = singles(el, {qn(a, "EndpointReference")}, "wsp:AppliesTo")
    epr = k.get(qn(a, "EndpointReference"))
    if epr is None:
        raise Fault("wsp:AppliesTo must contain a wsa:EndpointReference")
    kk = singles(epr, {qn(a, "Address"), qn(a, "ReferenceParameters"), qn(a, "Metadata")},
                 "wsa:EndpointReference")
    ad = kk.get(qn(a, "Address"))
    if ad is None or not value(ad):
        raise Fault("wsp:AppliesTo/wsa:EndpointReference/wsa:Address missing or empty")
    rst.applies_to = value(ad)


def rst_children(trust):
    """(tag) -> handler.  Add rows here for Entropy, KeySize, UseKey, Claims..."""
    t = trust.ns
    return {
        qn(t, "RequestType"): rst_request_type,
        qn(t, "TokenType"): rst_token_type,
        qn(t, "KeyType"): rst_key_type,
        qn(NS_WSP, "AppliesTo"): rst_applies_to,
    }


def parse_rst(ctx, el):
    rst = Rst()
    for attr, v in el.attrib.items():
        if attr == "Context":
            rst.context = v
        else:
            raise Fault("unexpected attribute %s on wst:RequestSecurityToken" % show(attr))
    handlers = rst_children(ctx.ep.trust)
    seen = set()
    for c in elements(el):
        h = handlers.get(c.tag)
        if h is None:
            raise Fault("unsupported RST element %s in wst:RequestSecurityToken" % show(c.tag))
        if c.tag in seen:
            raise Fault("duplicate RST element %s" % show(c.tag))
        seen.add(c.tag)
        h(ctx, rst, c)
    if rst.request_type is None:
        raise Fault("wst:RequestType missing from wst:RequestSecurityToken")
    return rst


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Token:
    xml: bytes                 # signed assertion, serialized once, never re-serialized
    id: str
    profile_type: str          # wsse11:TokenType of the STR
    keyid_valuetype: str


class Signer:
    def __init__(self, key_file, cert_file):
        self.key_file, self.cert_file = key_file, cert_file
        self.lock = threading.Lock()
        xmlsec.base64_default_line_size(1 << 16)   # no line breaks in base64 values
        self.key = xmlsec.Key.from_file(key_file, xmlsec.KeyFormat.PEM)
        self.key.load_cert_from_file(cert_file, xmlsec.KeyFormat.PEM)

    def sign(self, root, id_attr, insert):
        """Enveloped signature over root (referenced by id_attr);
        insert(sig) places the Signature element."""
        sig = xmlsec.template.create(root, xmlsec.Transform.EXCL_C14N,
                                     xmlsec.Transform.RSA_SHA256, ns="ds")
        insert(sig)
        ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256,
                                            uri="#" + root.get(id_attr))
        xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
        xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
        ki = xmlsec.template.ensure_key_info(sig)
        xd = xmlsec.template.add_x509_data(ki)
        xmlsec.template.x509_data_add_certificate(xd)
        with self.lock:
            ctx = xmlsec.SignatureContext()
            ctx.key = self.key
            ctx.register_id(root, id_attr)
            ctx.sign(sig)


def new_id():
    return "_" + secrets.token_hex(16)


def sub(parent, ns, local, text=None, **attrs):
    el = etree.SubElement(parent, qn(ns, local))
    for k, v in attrs.items():
        el.set(k, v)
    if text is not None:
        el.text = text
    return el


def saml2_assertion(sts, user, rst, created, expires):
    s = NS_SAML2
    aid = new_id()
    root = etree.Element(qn(s, "Assertion"), nsmap={"saml": s, "ds": NS_DS})
    root.set("ID", aid)
    root.set("IssueInstant", fmt_utc(created))
    root.set("Version", "2.0")
    issuer = sub(root, s, "Issuer", sts.issuer)
    subj = sub(root, s, "Subject")
    sub(subj, s, "NameID", user, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
    sub(subj, s, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
    cond = sub(root, s, "Conditions", NotBefore=fmt_utc(created), NotOnOrAfter=fmt_utc(expires))
    if rst.applies_to:
        ar = sub(cond, s, "AudienceRestriction")
        sub(ar, s, "Audience", rst.applies_to)
    an = sub(root, s, "AuthnStatement", AuthnInstant=fmt_utc(created))
    ac = sub(an, s, "AuthnContext")
    sub(ac, s, "AuthnContextClassRef",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    ats = sub(root, s, "AttributeStatement")
    at = sub(ats, s, "Attribute", Name="name",
             NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic")
    sub(at, s, "AttributeValue", user)
    sts.signer.sign(root, "ID", issuer.addnext)     # Signature right after Issuer
    return Token(etree.tostring(root, encoding="utf-8"), aid, SAML2_PROFILE, SAML2_KEYID)


def saml11_assertion(sts, user, rst, created, expires):
    s = NS_SAML1
    aid = new_id()
    root = etree.Element(qn(s, "Assertion"), nsmap={"saml": s, "ds": NS_DS})
    root.set("MajorVersion", "1")
    root.set("MinorVersion", "1")
    root.set("AssertionID", aid)
    root.set("Issuer", sts.issuer)
    root.set("IssueInstant", fmt_utc(created))
    cond = sub(root, s, "Conditions", NotBefore=fmt_utc(created), NotOnOrAfter=fmt_utc(expires))
    if rst.applies_to:
        arc = sub(cond, s, "AudienceRestrictionCondition")
        sub(arc, s, "Audience", rst.applies_to)

    def subject(parent):
        sj = sub(parent, s, "Subject")
        sub(sj, s, "NameIdentifier", user,
            Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
        sc = sub(sj, s, "SubjectConfirmation")
        sub(sc, s, "ConfirmationMethod", "urn:oasis:names:tc:SAML:1.0:cm:bearer")

    au = sub(root, s, "AuthenticationStatement",
             AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password",
             AuthenticationInstant=fmt_utc(created))
    subject(au)
    ats = sub(root, s, "AttributeStatement")
    subject(ats)
    at = sub(ats, s, "Attribute", AttributeName="name",
             AttributeNamespace="http://schemas.xmlsoap.org/claims")
    sub(at, s, "AttributeValue", user)
    sts.signer.sign(root, "AssertionID", root.append)   # Signature last
    return Token(etree.tostring(root, encoding="utf-8"), aid, SAML11_PROFILE, SAML11_KEYID)


TOKEN_BUILDERS = {"saml2": saml2_assertion, "saml11": saml11_assertion}

# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------

PLACEHOLDER = b"<!--wstrust-devsts-token-->"


def envelope(ep, action, relates_to):
    s, a = ep.soap.ns, ep.wsa.ns
    env = etree.Element(qn(s, "Envelope"), nsmap={"s": s, "a": a, "u": NS_WSU})
    hdr = sub(env, s, "Header")
    sub(hdr, a, "Action", action, **{qn(s, "mustUnderstand"): "1"})
    if relates_to:
        sub(hdr, a, "RelatesTo", relates_to)
    sec = etree.SubElement(hdr, qn(NS_WSSE, "Security"), nsmap={"o": NS_WSSE})
    sec.set(qn(s, "mustUnderstand"), "1")
    now = truncate_ms(utc_now())
    ts = sub(sec, NS_WSU, "Timestamp", **{qn(NS_WSU, "Id"): "_0"})
    sub(ts, NS_WSU, "Created", fmt_utc(now))
    sub(ts, NS_WSU, "Expires", fmt_utc(now + dt.timedelta(minutes=5)))
    body = sub(env, s, "Body")
    return env, body


def str_element(parent, ns_tag, token):
    holder = etree.SubElement(parent, ns_tag)
    ref = etree.SubElement(holder, qn(NS_WSSE, "SecurityTokenReference"),
                           nsmap={"o": NS_WSSE, "k": NS_WSSE11})
    ref.set(qn(NS_WSSE11, "TokenType"), token.profile_type)
    sub(ref, NS_WSSE, "KeyIdentifier", token.id, ValueType=token.keyid_valuetype)


def build_rstr(ctx, rst, token, created, expires, proof=None):
    """proof: later hook for RequestedProofToken / Entropy (holder-of-key)."""
    ep, t = ctx.ep, ctx.ep.trust.ns
    env, body = envelope(ep, ep.trust.reply_action, ctx.message_id)
    if ep.trust.collection:
        coll = etree.SubElement(body, qn(t, "RequestSecurityTokenResponseCollection"),
                                nsmap={"trust": t})
        rstr = sub(coll, t, "RequestSecurityTokenResponse")
    else:
        rstr = etree.SubElement(body, qn(t, "RequestSecurityTokenResponse"), nsmap={"trust": t})
    if rst.context is not None:
        rstr.set("Context", rst.context)
    lt = sub(rstr, t, "Lifetime")
    sub(lt, NS_WSU, "Created", fmt_utc(created))
    sub(lt, NS_WSU, "Expires", fmt_utc(expires))
    if rst.applies_to:
        ap = etree.SubElement(rstr, qn(NS_WSP, "AppliesTo"), nsmap={"wsp": NS_WSP})
        epr = sub(ap, ep.wsa.ns, "EndpointReference")
        sub(epr, ep.wsa.ns, "Address", rst.applies_to)
    rst_tok = sub(rstr, t, "RequestedSecurityToken")
    rst_tok.append(etree.Comment(PLACEHOLDER[4:-3].decode()))
    str_element(rstr, qn(t, "RequestedAttachedReference"), token)
    str_element(rstr, qn(t, "RequestedUnattachedReference"), token)
    if proof is not None:
        raise NotImplementedError("proof tokens are not implemented yet")
    sub(rstr, t, "TokenType", rst.token_type or DEFAULT_TOKEN_TYPE)
    sub(rstr, t, "RequestType", ep.trust.issue)
    sub(rstr, t, "KeyType", rst.key_type or ep.trust.bearer_reply)
    out = etree.tostring(env, encoding="utf-8")
    if out.count(PLACEHOLDER) != 1:
        raise RuntimeError("token placeholder not unique")
    # Splice the signed bytes in verbatim: the assertion is never re-serialized.
    return out.replace(PLACEHOLDER, token.xml)


def fault_bytes(ep, fault, relates_to=None):
    s = ep.soap.ns
    env, body = envelope(ep, ep.wsa.fault_action, relates_to)
    if fault.code == "VersionMismatch" and ep.soap is SOAP12:
        up = sub(env[0], s, "Upgrade")
        se = etree.SubElement(up, qn(s, "SupportedEnvelope"), nsmap={"e": s})
        se.set("qname", "e:Envelope")
    if fault.not_understood and ep.soap is SOAP12:
        hdr = env[0]
        nu = etree.SubElement(hdr, qn(s, "NotUnderstood"), nsmap={"nu": fault.not_understood[0]})
        nu.set("qname", "nu:" + fault.not_understood[1])
    f = sub(body, s, "Fault")
    if ep.soap is SOAP12:
        code = sub(f, s, "Code")
        sub(code, s, "Value", "s:" + fault.code)
        if fault.subcode:
            sc = sub(code, s, "Subcode")
            v = etree.SubElement(sc, qn(s, "Value"), nsmap={"t": ep.trust.ns})
            v.text = "t:" + fault.subcode
        reason = sub(f, s, "Reason")
        sub(reason, s, "Text", fault.reason, **{qn(NS_XML, "lang"): "en-US"})
    else:
        # SOAP 1.1: WS-Trust puts the subcode QName in faultcode.
        if fault.subcode:
            fc = etree.SubElement(f, "faultcode", nsmap={"t": ep.trust.ns})
            fc.text = "t:" + fault.subcode
        else:
            fc = etree.SubElement(f, "faultcode")
            fc.text = "s:" + {"Sender": "Client", "Receiver": "Server"}.get(fault.code, fault.code)
        fs = etree.SubElement(f, "faultstring")
        fs.text = fault.reason
        fs.set(qn(NS_XML, "lang"), "en-US")
    return etree.tostring(env, encoding="utf-8")


# --------------------------------------------------------------------------
# The STS
# --------------------------------------------------------------------------


class STS:
    def __init__(self, users, lifetime, issuer, signer):
        self.users = users
        self.lifetime = lifetime
        self.issuer = issuer
        self.signer = signer
        self.lock = threading.Lock()
        self.nonces = {}
        self.requests = {}
        self.issued = 0
        self.faults = 0
        self.connections = 0

    def count(self, path):
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def stats(self):
        with self.lock:
            return {"requests": dict(self.requests), "issued": self.issued,
                    "faults": self.faults, "connections": self.connections}

    def remember_nonce(self, nonce):
        now = time.monotonic()
        with self.lock:
            if len(self.nonces) > 1000:
                self.nonces = {n: t for n, t in self.nonces.items() if t > now}
            t = self.nonces.get(nonce)
            if t is not None and t > now:
                return False
            self.nonces[nonce] = now + 2 * (NONCE_WINDOW + CLOCK_SKEW)
            return True

    def process(self, ctx, body):
        """Returns reply bytes; raises Fault."""
        check_http(ctx)
        root = parse_xml(body)
        header, rst_el = check_envelope(ctx, root)
        sec = check_headers(ctx, header)
        check_http_action(ctx)
        ctx.principal = ctx.ep.auth(self, ctx, sec)
        rst = parse_rst(ctx, rst_el)
        created = truncate_ms(utc_now())
        expires = created + dt.timedelta(seconds=self.lifetime)
        token = TOKEN_BUILDERS[rst.token_kind](self, ctx.principal, rst, created, expires)
        out = build_rstr(ctx, rst, token, created, expires)
        with self.lock:
            self.issued += 1
        log.info("issued %s %s to %s for %s (id %s)", rst.token_kind, rst.key_kind,
                 ctx.principal, rst.applies_to, token.id)
        return out


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class BodyError(Exception):
    pass


IRRELEVANT = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
              b'<x:Nothing xmlns:x="urn:wstrust:devsts:test">slow answer</x:Nothing>'
              b'</s:Body></s:Envelope>')


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wstrust-devsts/1"
    sys_version = ""
    timeout = IO_TIMEOUT

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        log.info("%s %s", self.client_address[0], fmt % args)

    @property
    def sts(self):
        return self.server.sts

    # -- I/O helpers --
    def send(self, status, body=b"", ctype=None, headers=(), close=False):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self, cap=MAX_BODY):
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BodyError("unsupported Transfer-Encoding '%s'" % te[:50])
            data = bytearray()
            while True:
                line = self.rfile.readline(100)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError("bad chunk size")
                if n == 0:
                    while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                if len(data) + n > cap:
                    raise BodyError("request body exceeds %d bytes" % cap)
                chunk = self.rfile.read(n)
                if len(chunk) != n:
                    raise BodyError("connection closed inside the request body")
                data += chunk
                self.rfile.readline(10)
        cls = self.headers.get_all("Content-Length") or []
        if not cls:
            if self.command == "POST":
                raise BodyError("Content-Length header missing")
            return b""
        if len(cls) > 1 or not cls[0].strip().isdigit():
            raise BodyError("invalid Content-Length")
        n = int(cls[0])
        if n > cap:
            # Drain a bounded amount so the client sees our answer, then close.
            left = min(n, 4 * cap)
            while left > 0:
                got = self.rfile.read(min(left, 65536))
                if not got:
                    break
                left -= len(got)
            raise BodyError("request body exceeds %d bytes (Content-Length %d)" % (cap, n))
        data = self.rfile.read(n)
        if len(data) != n:
            raise BodyError("connection closed inside the request body")
        return data

    def handle_expect_100(self):
        path = urllib.parse.urlsplit(self.path).path
        ep = ENDPOINT_BY_PATH.get(path)
        cl = self.headers.get("Content-Length", "")
        if ep is not None and cl.strip().isdigit() and int(cl) > MAX_BODY:
            self.sts.count(path)
            self.reply_fault(ep, Fault("request body exceeds %d bytes (Content-Length %s)"
                                       % (MAX_BODY, cl.strip()), close=True))
            return False
        return super().handle_expect_100()

    def reply_fault(self, ep, fault, relates_to=None):
        with self.sts.lock:
            self.sts.faults += 1
        log.info("fault %s/%s: %s", fault.code, fault.subcode, fault.reason)
        ctype = "%s; charset=utf-8" % ep.soap.media_type
        self.send(500, fault_bytes(ep, fault, relates_to), ctype, close=fault.close)

    # -- dispatch --
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/stats":
            body = json.dumps(self.sts.stats(), sort_keys=True).encode()
            return self.send(200, body, "application/json")
        self.sts.count(u.path)
        if u.path.startswith("/test/"):
            return self.test_path(u)
        if u.path in ENDPOINT_BY_PATH or u.path in self.server.canned:
            return self.send(405, b"", headers=[("Allow", "POST")])
        return self.send(404)

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        self.sts.count(u.path)
        ep = ENDPOINT_BY_PATH.get(u.path)
        if ep is not None:
            return self.sts_endpoint(ep)
        if u.path in self.server.canned:
            try:
                self.read_body()
            except BodyError as e:
                return self.send(400, str(e).encode(), "text/plain", close=True)
            with open(self.server.canned[u.path], "rb") as f:
                data = f.read()
            return self.send(200, data, "application/soap+xml; charset=utf-8")
        if u.path.startswith("/test/"):
            try:
                self.read_body()
            except BodyError as e:
                return self.send(400, str(e).encode(), "text/plain", close=True)
            return self.test_path(u)
        try:
            self.read_body()
        except BodyError:
            return self.send(404, close=True)
        return self.send(404)

    def sts_endpoint(self, ep):
        try:
            body = self.read_body()
        except BodyError as e:
            return self.reply_fault(ep, Fault(str(e), close=True))
        host = self.headers.get("Host", "")
        ctx = Ctx(ep=ep, url="https://%s%s" % (host, self.path), http_headers=self.headers)
        try:
            out = self.sts.process(ctx, body)
        except Fault as f:
            return self.reply_fault(ep, f, ctx.message_id)
        except Exception as e:           # a bug in the STS: answer Receiver fault
            log.exception("internal error")
            return self.reply_fault(ep, Fault("internal STS error: %s" % e, code="Receiver",
                                              subcode="RequestFailed"), ctx.message_id)
        self.send(200, out, "%s; charset=utf-8" % ep.soap.media_type)

    def test_path(self, u):
        q = urllib.parse.parse_qs(u.query)

        def num(name, lo, hi, default=None):
            try:
                v = float(q[name][0]) if name in q else default
            except ValueError:
                v = None
            if v is None or not lo <= v <= hi:
                raise ValueError("%s must be between %s and %s" % (name, lo, hi))
            return v

        try:
            if u.path == "/test/slow":
                time.sleep(num("seconds", 0, 600, 5))
                return self.send(200, IRRELEVANT, "application/soap+xml; charset=utf-8")
            if u.path == "/test/close":
                self.close_connection = True
                self.server.abrupt.add(threading.get_ident())
                return None
            if u.path == "/test/status":
                return self.send(int(num("code", 200, 599)), b"")
            if u.path == "/test/big":
                return self.stream_big(int(num("bytes", 0, 1 << 34)))
        except ValueError as e:
            return self.send(400, str(e).encode(), "text/plain")
        return self.send(404)

    def stream_big(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        unit = b"<junk a='1'>" + b"x" * 100 + b"</junk>\n<open>&amp;<open>\n"
        block = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
                 + unit * (65536 // len(unit) + 1))[:65536]
        try:
            while n > 0:
                k = min(n, len(block))
                self.wfile.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                n -= k
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, addr, ssl_ctx, sts, canned):
        self.ssl_ctx = ssl_ctx
        self.sts = sts
        self.canned = canned
        self.abrupt = set()
        super().__init__(addr, Handler)

    def server_bind(self):
        # Skip HTTPServer.server_bind's getfqdn() (reverse DNS).
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        with self.sts.lock:
            self.sts.connections += 1
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.info("%s TLS handshake failed: %s", client_address[0], e)
            return
        try:
            peer = tls.getpeercert()
            if peer:
                log.info("%s client certificate %s", client_address[0], peer.get("subject"))
            self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError) as e:
            log.info("%s connection error: %s", client_address[0], e)
        finally:
            me = threading.get_ident()
            if me in self.abrupt:
                self.abrupt.discard(me)
                try:
                    tls.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                try:
                    tls.settimeout(1)
                    tls.unwrap().close()
                except (OSError, ValueError, ssl.SSLError):
                    pass
            try:
                tls.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------


def write(path, data, private=False):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_cert(subject_cn, key, issuer_cert=None, issuer_key=None, ca=False,
              eku=None, sans=None, days=30):
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wstrust dev STS"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer_name = issuer_cert.subject if issuer_cert else name
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        ku = dict(key_cert_sign=True, crl_sign=True, digital_signature=True,
                  key_encipherment=False)
    else:
        ku = dict(key_cert_sign=False, crl_sign=False, digital_signature=True,
                  key_encipherment=True)
    b = b.add_extension(x509.KeyUsage(content_commitment=False, data_encipherment=False,
                                      key_agreement=False, encipher_only=False,
                                      decipher_only=False, **ku), critical=True)
    if issuer_cert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key()), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def pem_cert(c):
    return c.public_bytes(serialization.Encoding.PEM)


def pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_pki(d):
    p = {n: os.path.join(d, n) for n in (
        "ca.pem", "ca.key", "server.pem", "server.key", "signing.pem", "signing.key",
        "client-ca.pem", "client-ca.key", "client.pem", "client.key")}
    ca_key = new_key()
    ca = make_cert("wstrust dev STS test CA", ca_key, ca=True, days=365)
    srv_key = new_key()
    srv = make_cert("localhost", srv_key, ca, ca_key, eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                    sans=[x509.DNSName("localhost"),
                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    sig_key = new_key()
    sig = make_cert("wstrust dev STS token signing", sig_key, days=365)
    cca_key = new_key()
    cca = make_cert("wstrust dev STS client CA", cca_key, ca=True, days=365)
    cl_key = new_key()
    cl = make_cert("wstrust-test-client", cl_key, cca, cca_key,
                   eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    for name, obj in (("ca.pem", ca), ("server.pem", srv), ("signing.pem", sig),
                      ("client-ca.pem", cca), ("client.pem", cl)):
        write(p[name], pem_cert(obj))
    for name, obj in (("ca.key", ca_key), ("server.key", srv_key), ("signing.key", sig_key),
                      ("client-ca.key", cca_key), ("client.key", cl_key)):
        write(p[name], pem_key(obj), private=True)
    return p


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_users(s):
    users = {}
    for item in s.split(","):
        if not item:
            continue
        u, sep, pw = item.partition(":")
        if not sep or not u:
            raise argparse.ArgumentTypeError("--users wants user:password[,user:password...]")
        users[u] = pw
    return users


def parse_canned(items):
    out = {}
    for item in items:
        path, sep, f = item.partition("=")
        if not sep or not path.startswith("/") or not f:
            raise SystemExit("--canned wants PATH=FILE with PATH starting with '/': %r" % item)
        if path in ENDPOINT_BY_PATH or path.startswith("/test/") or path == "/stats":
            raise SystemExit("--canned path %s collides with a built-in path" % path)
        if not os.path.isfile(f):
            raise SystemExit("--canned file not found: %s" % f)
        out[path] = os.path.abspath(f)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="wstrust development STS")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--users", type=parse_users, default={"alice": "secret"})
    ap.add_argument("--lifetime", type=int, default=3600)
    ap.add_argument("--canned", action="append", nargs="+", default=[], metavar="PATH=FILE")
    ap.add_argument("--name", default=None, help="token issuer name")
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    ap.add_argument("--client-auth", choices=("none", "optional", "required"), default="none",
                    help="request a TLS client certificate signed by client-ca.pem")
    args = ap.parse_args(argv)

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="devsts[%(process)d] %(asctime)s %(message)s")
    if args.lifetime <= 0:
        ap.error("--lifetime must be positive")
    canned = parse_canned([c for group in args.canned for c in group])

    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    t0 = time.monotonic()
    pki = make_pki(workdir)
    log.info("PKI generated in %.2f s", time.monotonic() - t0)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
    if args.client_auth != "none":
        ctx.load_verify_locations(pki["client-ca.pem"])
        ctx.verify_mode = ssl.CERT_OPTIONAL if args.client_auth == "optional" else ssl.CERT_REQUIRED

    signer = Signer(pki["signing.key"], pki["signing.pem"])
    sts = STS(args.users, args.lifetime, None, signer)
    server = Server(("127.0.0.1", args.port), ctx, sts, canned)
    port = server.server_address[1]
    base = "https://127.0.0.1:%d" % port
    sts.issuer = args.name or base + "/adfs/services/trust"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_on_stdin_eof:
        def watch():
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            log.info("stdin closed")
            stop.set()
        threading.Thread(target=watch, daemon=True).start()

    th = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    th.start()
    info = {"port": port, "base_url": base, "ca_file": pki["ca.pem"],
            "signing_cert": pki["signing.pem"], "signing_key": pki["signing.key"],
            "client_cert": pki["client.pem"], "client_key": pki["client.key"],
            "client_ca": pki["client-ca.pem"], "issuer": sts.issuer, "pid": os.getpid()}
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    log.info("listening on %s, users %s, endpoints %s", base, sorted(args.users),
             [e.path for e in ENDPOINTS])
    while not stop.wait(0.1):
        pass
    log.info("stopping")
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
