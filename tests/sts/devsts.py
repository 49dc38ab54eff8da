#!/usr/bin/python3
"""wstrust development STS: a strict, independent WS-Trust issuer for tests.

Run ONLY with /usr/bin/python3 (needs Debian's python3-lxml, python3-xmlsec,
python3-cryptography):

  /usr/bin/python3 tests/sts/devsts.py --workdir DIR [--port 0]
      [--users alice:secret,bob:pw2] [--lifetime SECONDS]
      [--canned PATH=FILE ...] [--name NAME] [--exit-on-stdin-eof]
      [--client-auth none|optional|required]
      [--rp-cert PATH] [--trust-issuer-cert PATH ...] [--audience URI ...]
      [--backdate SECONDS] [--capture-dir DIR]

Start-up writes, fresh, into DIR: ca.pem/ca.key (test CA), server.pem/
server.key (TLS, SAN IP:127.0.0.1 + DNS:localhost, signed by the CA),
signing.pem/signing.key (self-signed RSA-2048 token-signing cert),
client-ca.pem/client-ca.key, client.pem/client.key (clientAuth cert signed by
client-ca), rp.pem/rp.key (self-signed relying-party encryption cert).  Then it
listens with HTTPS (TLS >= 1.2) on 127.0.0.1 and prints ONE JSON line on stdout:
  {"port", "base_url", "ca_file", "signing_cert", "signing_key", "client_cert",
   "client_key", "client_ca", "issuer", "pid", "client_ca_key", "rp_cert", "rp_key"}
Logs go to stderr.  SIGTERM/SIGINT (and stdin EOF with --exit-on-stdin-eof)
stop it with exit status 0.

Flags for federation (identity STS -> resource STS, two instances, own workdirs):
  --rp-cert PATH            holder-of-key proof keys inside issued assertions are
                            encrypted (RSA-OAEP) to this certificate; default: this
                            workdir's rp.pem.  Give the identity STS the resource
                            STS's rp.pem.
  --trust-issuer-cert PATH  (repeatable) assertions signed by this certificate are
                            accepted by the issuedtokenmixed* endpoints.  Give the
                            resource STS the identity STS's signing.pem.
  --audience URI            (repeatable) extra Audience accepted in presented
                            assertions; the endpoint URL and --name/issuer always are.
  Both certificate flags are read when used (not at start-up), so the two
  instances can be started in either order.

STS endpoints (table ENDPOINTS below: one row per endpoint; a new binding or
version is a new row plus, if needed, a new verifier function):

  path                                     WS-Trust  SOAP  WS-Addr  auth binding
  /adfs/services/trust/13/usernamemixed    1.3       1.2   1.0      usernamemixed
  /adfs/services/trust/2005/usernamemixed  Feb 2005  1.2   1.0      usernamemixed
  /soap11/trust/13/usernamemixed           1.3       1.1   1.0      usernamemixed
  /soap11/trust/2005/usernamemixed         Feb 2005  1.1   1.0      usernamemixed
  and, for V in 13 (WS-Trust 1.3) and 2005 (Feb 2005), all SOAP 1.2, WS-Addr 1.0:
  /adfs/services/trust/V/usernamemixed-encryptedkey         usernamemixed, proof
        secrets returned as xenc:EncryptedKey (RSA-OAEP-MGF1P, SHA-1) to client.pem
  /adfs/services/trust/V/usernamemixed-encryptedkey-rsa15   same with RSA 1.5
  /adfs/services/trust/V/certificatemixed                   X.509 message signature
  /adfs/services/trust/V/issuedtokenmixedsymmetricbasic256  issued token (bearer or
                                                            symmetric holder-of-key)
  /adfs/services/trust/V/issuedtokenmixedasymmetricbasic256 issued token (bearer or
                                                            PublicKey holder-of-key)
  /adfs/services/trust/V/usernamebasic                      HTTP Basic
  /adfs/services/trust/V/certificatetransport               TLS client certificate

  Bindings (how the requestor authenticates):
  usernamemixed = wsse:Security with exactly one wsu:Timestamp (Created and
    Expires, UTC 'Z') and one wsse:UsernameToken (PasswordText, or
    PasswordDigest with Nonce + wsu:Created, nonce replay rejected), over TLS.
  certificatemixed = wsse:Security with wsu:Timestamp, wsse:BinarySecurityToken
    (X509v3, Base64Binary, wsu:Id) and ds:Signature: exc-c14n, RSA-SHA256 (or
    RSA-SHA1), SHA-256/SHA-1 digests, References by wsu:Id covering wsu:Timestamp
    AND the wsa:To header (soap:Body may be covered too, nothing else), each with
    one exc-c14n transform; KeyInfo = wsse:SecurityTokenReference/wsse:Reference
    URI="#<BST wsu:Id>".  Verified with python-xmlsec using only the BST's key;
    the certificate must be issued by client-ca.pem and in date.  Principal =
    the certificate's CN (client.pem: "wstrust-test-client").
  issuedtokenmixed* = wsse:Security with wsu:Timestamp and ONE SAML 2.0 or 1.1
    assertion (its bytes as issued) whose enveloped signature verifies with a
    --trust-issuer-cert (its ds:X509Certificate must be one), unexpired
    (NotOnOrAfter), Audience = this endpoint's URL, the issuer name or an
    --audience.  Bearer: presented as is, no ds:Signature.  Holder-of-key: a
    ds:Signature over wsu:Timestamp and wsa:To (same shape rules as above) whose
    KeyInfo is wsse:SecurityTokenReference/wsse:KeyIdentifier (ValueType SAMLID
    for 2.0, SAMLAssertionID for 1.1) = the assertion ID, made with
    - symmetric endpoint: HMAC-SHA256 keyed with the proof key, which this STS
      recovers by decrypting the SubjectConfirmation's xenc:EncryptedKey with
      its rp.key;
    - asymmetric endpoint: RSA-SHA256/SHA1 with the key of the certificate in
      the SubjectConfirmation's ds:KeyInfo/ds:X509Data.
    Principal = the assertion's subject name.
  usernamebasic = HTTP "Authorization: Basic" against --users; no
    UsernameToken; wsse:Security optional, only a wsu:Timestamp.  Missing or
    wrong credentials: HTTP 401 with WWW-Authenticate: Basic realm=... .
  certificatetransport = the TLS client certificate (needs --client-auth
    optional|required; the ssl module verifies it against client-ca.pem: an
    untrusted one fails the handshake); wsse:Security optional, only a
    wsu:Timestamp.  Principal = the certificate's CN.

  Operations (wsa:Action -> reply wsa:Action); WS-SecureConversation is paired
  with the endpoint's trust version (1.3 with SC 1.3
  http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512, Feb 2005 with
  SC Feb 2005 http://schemas.xmlsoap.org/ws/2005/02/sc); T = the trust namespace:
    T/RST/Issue        RequestType T/Issue -> T/RSTRC/IssueFinal (1.3), T/RSTR/Issue
                       (2005).  SAML 2.0 (default) or 1.1, signed enveloped with
                       RSA-SHA256 / SHA-256 / exc-c14n.
    T/RST/SCT          RequestType T/Issue -> T/RSTR/SCT: a wsc:SecurityContextToken
                       (wsu:Id, wsc:Identifier urn:uuid:...), attached reference
                       wsse:Reference URI="#wsu:Id", unattached URI=Identifier
                       (ValueType <SC ns>/sct).  TokenType absent or <SC ns>/sct;
                       the key is symmetric (KeyType absent or SymmetricKey).
    T/RST/SCT/Renew    RequestType T/Renew + wst:RenewTarget (wsse:SecurityToken-
                       Reference/wsse:Reference URI=Identifier, or the SCT itself,
                       whose wsc:Instance, if given, must be the current one)
                       -> T/RSTR/SCT/Renew: same Identifier, new wsc:Instance, new
                       Lifetime, new key.  The SCT must have been issued here (in
                       memory), to the same principal, and be unexpired, else
                       fault subcode UnableToRenew.
  WS-Trust 1.3 replies are always an RSTRC holding one RSTR (MS-LWSSP 2.2.2);
  Feb 2005 replies a bare RSTR.

  Key types (wst:KeyType, also via wst:SecondaryParameters):
    bearer: 1.3 Bearer URI and its two erratum spellings; under Feb 2005
      .../2005/05/identity/NoProofKey.  SubjectConfirmation bearer.
    T/SymmetricKey: wst:KeySize optional (128..512, multiple of 8; default 256).
      No requestor entropy -> SERVER_ONLY: RequestedProofToken/wst:BinarySecret
        Type=T/SymmetricKey, a random key.
      wst:Entropy/wst:BinarySecret Type=T/Nonce (16..64 bytes), no
        ComputedKeyAlgorithm -> CLIENT_ONLY: the entropy is the key; no
        RequestedProofToken, no issuer Entropy (KeySize, if given, must match).
      Entropy + wst:ComputedKeyAlgorithm T/CK/PSHA1 -> COMBINED: reply
        RequestedProofToken/wst:ComputedKey T/CK/PSHA1 + wst:Entropy/
        wst:BinarySecret Type=T/Nonce (KeySize/8 random bytes); key =
        P_SHA1(secret = requestor entropy, seed = issuer entropy), first
        KeySize/8 bytes (WS-Trust: key = P_SHA1(EntREQ, EntRES)).
      The reply carries wst:KeySize.  SAML: holder-of-key (SAML 2.0
      urn:oasis:names:tc:SAML:2.0:cm:holder-of-key with SubjectConfirmationData
      xsi:type KeyInfoConfirmationDataType; SAML 1.1 ...:1.0:cm:holder-of-key),
      ds:KeyInfo = xenc:EncryptedKey of the key (RSA-OAEP-MGF1P) to --rp-cert,
      named by wsse:KeyIdentifier ThumbprintSHA1.
      On the -encryptedkey endpoints the BinarySecret (SERVER_ONLY) or the
      issuer entropy (COMBINED) is an xenc:EncryptedKey to client.pem instead.
    T/PublicKey: needs wst:UseKey with ds:KeyInfo/ds:X509Data/ds:X509Certificate
      or a wsse:BinarySecurityToken (X509v3); holder-of-key assertion whose
      KeyInfo carries that certificate; no proof token, no KeySize.
  Other accepted RST parameters: wsp:AppliesTo, Context attribute, wst:Claims
  (any Dialect, any content), wst:OnBehalfOf and wst14:ActAs
  (http://docs.oasis-open.org/ws-sx/ws-trust/200802) holding one token,
  wst:SecondaryParameters (1.3 only: TokenType, KeyType, KeySize, Claims,
  ComputedKeyAlgorithm used when absent at top level; KeyWrapAlgorithm,
  EncryptWith, SignWith, CanonicalizationAlgorithm, EncryptionAlgorithm accepted
  and ignored).  Assertions echo them as Attributes: urn:wstrust:devsts:claims:
  dialect, urn:wstrust:devsts:claims (one value per claim: its Uri attribute or
  its exc-c14n XML), urn:wstrust:devsts:onbehalfof, urn:wstrust:devsts:actas
  (the Username / NameID / EPR Address inside, else the element name).  SAML 1.1
  uses AttributeNamespace urn:wstrust:devsts and the rest as AttributeName.
  Anything else, or a parameter that does not fit the others (KeySize/Entropy
  with a non-symmetric key, ComputedKeyAlgorithm without Entropy, UseKey
  without PublicKey, RenewTarget without Renew, an SCT TokenType with the Issue
  action...), faults naming the problem.
  Any violation: a SOAP fault of the endpoint's SOAP version, HTTP 500.
  Credential failures use subcode FailedAuthentication; reasons start with
  "ID3242: ..." (username), "signature verification failed", "certificate not
  trusted", "Timestamp not signed", "wsa:To not signed", "TLS client
  certificate required", "untrusted issuer", "issued token signature invalid",
  "issued token expired", "issued token not yet valid", "issued token audience
  mismatch", "proof-of-possession signature invalid".

Other paths:
  POST <PATH> given with --canned PATH=FILE: FILE's bytes, 200, unchecked.
  /test/slow?seconds=N   sleep N s (<= 600), then 200 with an irrelevant envelope
  /test/close            read the request, close the connection, no answer
  /test/status?code=N    answer HTTP status N (200..599) with an empty body
  /test/big?bytes=N      200, N bytes of junk XML-ish text, chunked encoding
  GET /stats             {"requests": {path: n}, "issued": n, "faults": n,
                          "connections": n}   (/stats itself is not counted)
  GET /testkeys?id=ID    the symmetric proof key this STS made for the token
                         ID = an assertion ID / AssertionID, an SCT Identifier
                         (its latest key) or an SCT Instance (that renewal's key):
                         200 {"id", "key": base64, "key_size": bits, "entropy":
                         "server"|"client"|"combined"}; 404 {"error"} when none
                         (bearer and PublicKey tokens have none); 400 without one
                         id.  Not counted in /stats.  Test use only.

Hooks: rst_children (new RST elements), key_types (new key kinds), TOKEN_TYPES
(new tokens), Endpoint.auth / Endpoint.pre_auth (new bindings), make_proof and
proof_elements (proof tokens).
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
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS_WST08 = "http://docs.oasis-open.org/ws-sx/ws-trust/200802"      # WS-Trust 1.4: ActAs
NS_WSC05 = "http://schemas.xmlsoap.org/ws/2005/02/sc"
NS_WSC13 = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"

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

X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
THUMBPRINT_SHA1 = ("http://docs.oasis-open.org/wss/"
                   "oasis-wss-soap-message-security-1.1#ThumbprintSHA1")
HOK2 = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
HOK1 = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
BEARER2 = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
BEARER1 = "urn:oasis:names:tc:SAML:1.0:cm:bearer"

# Algorithms (XML Signature / Encryption URIs)
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_15 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"

MAX_BODY = 1 << 20           # request body cap (1 MiB)
CLOCK_SKEW = 300             # seconds a timestamp may be in the future
NONCE_WINDOW = 300           # PasswordDigest Created must be within this
KEY_SIZE_DEFAULT = 256       # bits, symmetric proof keys when wst:KeySize is absent
KEY_SIZE_MIN, KEY_SIZE_MAX = 128, 512
HANDSHAKE_TIMEOUT = 10
IO_TIMEOUT = 30

# --------------------------------------------------------------------------
# Version tables
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SecConvVersion:
    """WS-SecureConversation; each is paired with the trust version it builds on."""
    name: str
    ns: str                    # wsc: namespace

    @property
    def sct_type(self):
        return self.ns + "/sct"


# Actions of both SC versions live in their WS-Trust namespace (WCF's
# SecureConversation dictionaries; the CoreWCF corpus capture: RST/SCT, RSTR/SCT).
SC2005 = SecConvVersion("February 2005", NS_WSC05)
SC13 = SecConvVersion("1.3", NS_WSC13)


@dataclasses.dataclass(frozen=True)
class TrustVersion:
    name: str
    ns: str
    issue_action: str          # request wsa:Action for Issue
    reply_action: str          # reply wsa:Action for Issue
    collection: bool           # reply wraps the RSTR in an RSTRC
    bearer_keytypes: tuple     # request KeyType URIs meaning "bearer"
    bearer_reply: str          # reply KeyType when the request had none
    sc: SecConvVersion = None  # the SecureConversation version paired with it
    secondary_parameters: bool = False   # wst:SecondaryParameters exists (1.3)

    @property
    def issue(self):
        return self.ns + "/Issue"

    @property
    def renew(self):
        return self.ns + "/Renew"

    @property
    def symmetric(self):
        return self.ns + "/SymmetricKey"

    @property
    def public(self):
        return self.ns + "/PublicKey"

    @property
    def nonce(self):
        return self.ns + "/Nonce"

    @property
    def psha1(self):
        return self.ns + "/CK/PSHA1"

    @property
    def sct_action(self):
        return self.ns + "/RST/SCT"

    @property
    def sct_reply_action(self):
        return self.ns + "/RSTR/SCT"

    @property
    def renew_action(self):
        return self.ns + "/RST/SCT/Renew"

    @property
    def renew_reply_action(self):
        return self.ns + "/RSTR/SCT/Renew"

    def operations(self):
        """wsa:Action -> (operation, RequestType it needs, reply wsa:Action)."""
        return {self.issue_action: ("issue", self.issue, self.reply_action),
                self.sct_action: ("sct", self.issue, self.sct_reply_action),
                self.renew_action: ("renew", self.renew, self.renew_reply_action)}


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
    bearer_reply=NS_WST13 + "/Bearer",
    sc=SC13, secondary_parameters=True)

TRUST2005 = TrustVersion(
    name="2005", ns=NS_WST05,
    issue_action=NS_WST05 + "/RST/Issue",
    reply_action=NS_WST05 + "/RSTR/Issue",
    collection=False,
    bearer_keytypes=("http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",),
    bearer_reply="http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey",
    sc=SC2005)


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
    auth: object               # fn(sts, ctx, security_element or None) -> principal name
    security_required: bool = True   # wsse:Security header must be present
    pre_auth: object = None    # fn(sts, ctx) before the envelope is read (HTTP/TLS auth)
    proof_encryption: str = None     # None, or RSA_OAEP / RSA_15: secrets returned to the
                                     # requestor go as xenc:EncryptedKey to client.pem


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


class HttpUnauthorized(Exception):
    """HTTP 401 with WWW-Authenticate (Basic endpoints)."""


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
                NS_SAML2: "saml", NS_SAML1: "saml1", NS_DS: "ds", NS_XENC: "xenc",
                NS_WSC05: "wsc", NS_WSC13: "wsc", NS_WST08: "wst14", NS_WSSE11: "wsse11"}
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


def no_attributes(el, allowed=()):
    for a in el.attrib:
        if a not in allowed:
            raise Fault("unexpected attribute %s on %s" % (show(a), show(el.tag)))


def b64value(el, what):
    """Base64 text content; whitespace inside is allowed (wrapped values)."""
    text = re.sub(r"[ \t\r\n]", "", value(el))
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        raise Fault("%s is not valid base64" % what)
    if not data:
        raise Fault("%s is empty" % what)
    return data


def b64(data):
    return base64.b64encode(data).decode()


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
    peer_cert: bytes = None    # DER of the verified TLS client certificate, if any
    root: object = None        # the request envelope
    headers: dict = None       # header tag -> element (addressing + wsse:Security)
    operation: str = None      # "issue" (RST/Issue), "sct" (RST/SCT), "renew" (RST/SCT/Renew)
    request_type: str = None   # the wst:RequestType the operation needs
    reply_action: str = None
    authn: str = "password"    # how the requestor authenticated (SAML AuthnContext)


@dataclasses.dataclass
class Rst:
    request_type: str = None
    token_type: str = None     # as requested (None: default)
    token_kind: str = "saml2"
    key_type: str = None       # as requested (None: default bearer)
    key_kind: str = "bearer"
    applies_to: str = None
    context: str = None
    key_size: int = None       # bits, as requested
    entropy: bytes = None      # requestor entropy (wst:Entropy/wst:BinarySecret)
    computed_key_alg: str = None
    use_key_cert: object = None        # x509.Certificate from wst:UseKey
    claims: tuple = None       # (Dialect, [values]) from wst:Claims
    on_behalf_of: str = None   # who, for the echo attribute
    act_as: str = None
    renew_target: tuple = None         # (Identifier, Instance or None)
    secondary: object = None   # Rst parsed from wst:SecondaryParameters (1.3)


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

    ctx.headers = found
    act = found.get(qn(a, "Action"))
    if act is None:
        raise missing_header(header, a, "Action")
    ctx.action = value(act)
    ops = ctx.ep.trust.operations()
    if ctx.action not in ops:
        raise Fault("wsa:Action '%s' is not the WS-Trust %s Issue action '%s' (nor WS-"
                    "SecureConversation %s's '%s' or '%s')"
                    % (ctx.action[:200], ctx.ep.trust.name, ctx.ep.trust.issue_action,
                       ctx.ep.trust.sc.name, ctx.ep.trust.sct_action,
                       ctx.ep.trust.renew_action))
    ctx.operation, ctx.request_type, ctx.reply_action = ops[ctx.action]

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
    if sec is None and ctx.ep.security_required:
        raise missing_header(header, NS_WSSE, "Security")
    return sec


# --------------------------------------------------------------------------
# Crypto helpers: P_SHA1, RSA key transport (xenc:EncryptedKey), certificate
# chains, WS-Security message signatures (python-xmlsec)
# --------------------------------------------------------------------------

XMLSEC_LOCK = threading.Lock()     # one xmlsec operation at a time, across threads


def p_sha1(secret, seed, nbytes):
    """P_SHA1 of TLS 1.0 (RFC 2246 section 5):
    A(0) = seed, A(i) = HMAC_SHA1(secret, A(i-1)),
    out = HMAC_SHA1(secret, A(1) + seed) + HMAC_SHA1(secret, A(2) + seed) + ...
    WS-Trust CK/PSHA1: key = P_SHA1(EntREQ, EntRES), i.e. the requestor's
    entropy is the secret and the issuer's the seed, truncated to KeySize/8."""
    out, a = b"", seed
    while len(out) < nbytes:
        a = hmac.new(secret, a, hashlib.sha1).digest()
        out += hmac.new(secret, a + seed, hashlib.sha1).digest()
    return out[:nbytes]


def thumbprint(cert):
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()


def rsa_padding(alg):
    if alg == RSA_OAEP:     # rsa-oaep-mgf1p: MGF1 with SHA-1, digest SHA-1
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if alg == RSA_15:
        return padding.PKCS1v15()
    raise ValueError("unsupported key transport %s" % alg)


def encrypted_key(parent, cert, secret, alg):
    """Append an xenc:EncryptedKey of secret for cert's RSA key.  Its KeyInfo
    names the certificate by SHA-1 thumbprint (wsse:KeyIdentifier
    ThumbprintSHA1), as AD FS and WCF do."""
    ek = etree.SubElement(parent, qn(NS_XENC, "EncryptedKey"), nsmap={"e": NS_XENC})
    em = sub(ek, NS_XENC, "EncryptionMethod", Algorithm=alg)
    if alg == RSA_OAEP:
        dm = etree.SubElement(em, qn(NS_DS, "DigestMethod"), nsmap={"ds": NS_DS})
        dm.set("Algorithm", DIGEST_SHA1)
    ki = etree.SubElement(ek, qn(NS_DS, "KeyInfo"), nsmap={"ds": NS_DS})
    st = etree.SubElement(ki, qn(NS_WSSE, "SecurityTokenReference"), nsmap={"o": NS_WSSE})
    sub(st, NS_WSSE, "KeyIdentifier", b64(thumbprint(cert)), ValueType=THUMBPRINT_SHA1,
        EncodingType=B64_ENCODING)
    cd = sub(ek, NS_XENC, "CipherData")
    sub(cd, NS_XENC, "CipherValue", b64(cert.public_key().encrypt(secret, rsa_padding(alg))))
    return ek


def decrypt_encrypted_key(ek, key, cert, what):
    """Read an xenc:EncryptedKey made for cert (RSA-OAEP-MGF1P only) strictly."""
    k = singles(ek, {qn(NS_XENC, "EncryptionMethod"), qn(NS_DS, "KeyInfo"),
                     qn(NS_XENC, "CipherData")}, "xenc:EncryptedKey")
    em = k.get(qn(NS_XENC, "EncryptionMethod"))
    if em is None or em.get("Algorithm") != RSA_OAEP:
        raise Fault("%s: xenc:EncryptionMethod must be %s" % (what, RSA_OAEP))
    for dm in elements(em):
        if dm.tag != qn(NS_DS, "DigestMethod") or dm.get("Algorithm") != DIGEST_SHA1:
            raise Fault("%s: RSA-OAEP digest must be SHA-1" % what)
    ki, cd = k.get(qn(NS_DS, "KeyInfo")), k.get(qn(NS_XENC, "CipherData"))
    tp = ki.find("%s/%s" % (qn(NS_WSSE, "SecurityTokenReference"), qn(NS_WSSE, "KeyIdentifier"))) \
        if ki is not None else None
    if tp is None or tp.get("ValueType") != THUMBPRINT_SHA1 or \
            b64value(tp, "ThumbprintSHA1") != thumbprint(cert):
        raise Fault("%s is not encrypted to this STS's rp certificate (ThumbprintSHA1 %s)"
                    % (what, b64(thumbprint(cert))), subcode="FailedAuthentication")
    cv = cd.find(qn(NS_XENC, "CipherValue")) if cd is not None else None
    if cv is None:
        raise Fault("%s: xenc:CipherData/xenc:CipherValue missing" % what)
    try:
        return key.decrypt(b64value(cv, "xenc:CipherValue"), rsa_padding(RSA_OAEP))
    except ValueError:
        raise Fault("%s does not decrypt with this STS's rp key" % what,
                    subcode="FailedAuthentication")


def check_client_chain(sts, cert):
    """The certificate must be issued (signed) by client-ca.pem and be in date."""
    ca = sts.client_ca
    who = cert.subject.rfc4514_string()
    if cert.issuer != ca.subject:
        raise Fault("certificate not trusted: %s is issued by %s, not by the client CA %s"
                    % (who, cert.issuer.rfc4514_string(), ca.subject.rfc4514_string()),
                    subcode="FailedAuthentication")
    try:
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                               cert.signature_hash_algorithm)
    except (InvalidSignature, ValueError, TypeError):
        raise Fault("certificate not trusted: %s does not verify against client-ca.pem" % who,
                    subcode="FailedAuthentication")
    now = utc_now().replace(tzinfo=None)     # cryptography 38 gives naive UTC times
    if not cert.not_valid_before <= now <= cert.not_valid_after:
        raise Fault("certificate not trusted: %s is outside its validity period" % who,
                    subcode="FailedAuthentication")


SIGNATURE_METHODS = {RSA_SHA256: xmlsec.Transform.RSA_SHA256, RSA_SHA1: xmlsec.Transform.RSA_SHA1,
                     HMAC_SHA256: xmlsec.Transform.HMAC_SHA256}
DIGEST_METHODS = {DIGEST_SHA256: xmlsec.Transform.SHA256, DIGEST_SHA1: xmlsec.Transform.SHA1}


def wsu_ids(root):
    """wsu:Id -> element over the whole envelope; duplicates are refused
    (a signature must not be steerable to a look-alike element)."""
    ids = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        v = el.get(qn(NS_WSU, "Id"))
        if v is not None:
            if v in ids:
                raise Fault("duplicate wsu:Id '%s' in the message" % v[:100])
            ids[v] = el
    return ids


def exc_c14n_element(el, what):
    no_attributes(el, ("Algorithm",))
    if el.get("Algorithm") != EXC_C14N:
        raise Fault("%s must be exclusive c14n %s (got '%s')"
                    % (what, EXC_C14N, (el.get("Algorithm") or "")[:200]))
    for c in elements(el):
        if c.tag != qn(NS_EC, "InclusiveNamespaces"):
            raise Fault("unexpected element %s in %s" % (show(c.tag), what))


def signature_key_info(sig):
    ki = sig.find(qn(NS_DS, "KeyInfo"))
    if ki is None:
        raise Fault("ds:Signature has no ds:KeyInfo")
    return ki


def verify_message_signature(ctx, sig, ts, key, methods, failed):
    """A WS-Security message signature in wsse:Security: exc-c14n SignedInfo,
    one of `methods`, References by wsu:Id to wsu:Timestamp and wsa:To (soap:Body
    allowed too), each with only an exc-c14n transform.  The shape is checked
    first, then xmlsec verifies with `key` alone (KeyInfo never supplies it).
    failed: fault reason when the cryptographic check fails."""
    k = singles(sig, {qn(NS_DS, "SignedInfo"), qn(NS_DS, "SignatureValue"),
                      qn(NS_DS, "KeyInfo")}, "ds:Signature")
    si = k.get(qn(NS_DS, "SignedInfo"))
    if si is None or qn(NS_DS, "SignatureValue") not in k:
        raise Fault("ds:Signature needs ds:SignedInfo and ds:SignatureValue")
    kids = elements(si)
    if len(kids) < 3 or kids[0].tag != qn(NS_DS, "CanonicalizationMethod") or \
            kids[1].tag != qn(NS_DS, "SignatureMethod"):
        raise Fault("ds:SignedInfo must hold ds:CanonicalizationMethod, ds:SignatureMethod "
                    "and ds:Reference elements")
    exc_c14n_element(kids[0], "ds:CanonicalizationMethod")
    method = kids[1].get("Algorithm", "")
    if method not in methods:
        raise Fault("unsupported ds:SignatureMethod '%s' (this endpoint accepts %s)"
                    % (method[:200], " or ".join(methods)))
    if len(kids[1]):
        raise Fault("ds:SignatureMethod must be empty (HMACOutputLength is not accepted)")
    a = ctx.ep.wsa.ns
    to = ctx.headers.get(qn(a, "To"))
    body = ctx.root.find(qn(ctx.ep.soap.ns, "Body"))
    ids = wsu_ids(ctx.root)
    signed = {}
    for ref in kids[2:]:
        if ref.tag != qn(NS_DS, "Reference"):
            raise Fault("unexpected element %s in ds:SignedInfo" % show(ref.tag))
        no_attributes(ref, ("URI", "Id", "Type"))
        uri = ref.get("URI", "")
        target = ids.get(uri[1:]) if uri.startswith("#") else None
        if target is None:
            raise Fault("ds:Reference URI '%s' must be '#' and the wsu:Id of a signed element"
                        % uri[:100])
        if not any(target is x for x in (ts, to, body)):
            raise Fault("ds:Reference URI '%s' names %s: only wsu:Timestamp, wsa:To and "
                        "soap:Body may be signed" % (uri[:100], show(target.tag)))
        if uri[1:] in signed:
            raise Fault("duplicate ds:Reference URI '%s'" % uri[:100])
        rk = singles(ref, {qn(NS_DS, "Transforms"), qn(NS_DS, "DigestMethod"),
                           qn(NS_DS, "DigestValue")}, "ds:Reference")
        tr = rk.get(qn(NS_DS, "Transforms"))
        if tr is not None:
            tks = elements(tr)
            if len(tks) != 1 or tks[0].tag != qn(NS_DS, "Transform"):
                raise Fault("ds:Transforms must hold exactly one (exclusive c14n) ds:Transform")
            exc_c14n_element(tks[0], "ds:Transform")
        dm = rk.get(qn(NS_DS, "DigestMethod"))
        if dm is None or dm.get("Algorithm") not in DIGEST_METHODS:
            raise Fault("ds:DigestMethod must be SHA-256 or SHA-1")
        if qn(NS_DS, "DigestValue") not in rk:
            raise Fault("ds:DigestValue missing")
        signed[uri[1:]] = target
    if not any(x is ts for x in signed.values()):
        raise Fault("Timestamp not signed: the signature must cover wsu:Timestamp",
                    subcode="FailedAuthentication")
    if not any(x is to for x in signed.values()):
        raise Fault("wsa:To not signed: the signature must cover the wsa:To header",
                    subcode="FailedAuthentication")
    with XMLSEC_LOCK:
        sc = xmlsec.SignatureContext()
        sc.key = key
        for el in signed.values():
            sc.register_id(el, "Id", NS_WSU)
        sc.enable_reference_transform(xmlsec.Transform.EXCL_C14N)
        for t in DIGEST_METHODS.values():
            sc.enable_reference_transform(t)
        sc.enable_signature_transform(xmlsec.Transform.EXCL_C14N)
        sc.enable_signature_transform(SIGNATURE_METHODS[method])
        try:
            sc.verify(sig)
        except xmlsec.Error as e:
            raise Fault("%s (%s)" % (failed, e), subcode="FailedAuthentication")
    return method


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


def security_timestamp(k):
    """The wsu:Timestamp from singles() of wsse:Security: required and checked."""
    ts = k.get(qn(NS_WSU, "Timestamp"))
    if ts is None:
        raise Fault("wsu:Timestamp missing from wsse:Security")
    check_timestamp(ts)
    return ts


def timestamp_only(sec, binding):
    """Transport-authenticated bindings: wsse:Security is optional and may hold
    only a wsu:Timestamp (checked when present)."""
    if sec is None:
        return
    for c in elements(sec):
        if c.tag != qn(NS_WSU, "Timestamp"):
            raise Fault("unexpected element %s in wsse:Security: the %s binding authenticates "
                        "at the transport, wsse:Security may only hold a wsu:Timestamp"
                        % (show(c.tag), binding))
    k = singles(sec, {qn(NS_WSU, "Timestamp")}, "wsse:Security")
    if k:
        security_timestamp(k)


def cert_cn(cert):
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cns[0].value if cns else cert.subject.rfc4514_string()


# -- HTTP Basic (usernamebasic) --

def pre_auth_basic(sts, ctx):
    """HTTP Basic against the users table, before the envelope is read."""
    h = ctx.http_headers.get("Authorization")
    if h is None:
        raise HttpUnauthorized("Authorization header missing")
    scheme, _, cred = h.strip().partition(" ")
    if scheme.lower() != "basic":
        raise HttpUnauthorized("Authorization scheme '%s' is not Basic" % scheme[:20])
    try:
        raw = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise HttpUnauthorized("Basic credentials are not base64 of UTF-8 user:password")
    user, sep, pw = raw.partition(":")
    known = sts.users.get(user)
    if not sep or known is None or not hmac.compare_digest(pw.encode(), known.encode()):
        raise HttpUnauthorized("bad user or password for %r" % user)
    ctx.principal = user


def auth_usernamebasic(sts, ctx, sec):
    timestamp_only(sec, "HTTP Basic")
    return ctx.principal


# -- TLS client certificate (certificatetransport) --

def auth_certificatetransport(sts, ctx, sec):
    if ctx.peer_cert is None:
        raise Fault("TLS client certificate required: this endpoint authenticates by the TLS "
                    "client certificate (the STS must run with --client-auth optional or "
                    "required, and the client present a certificate signed by client-ca.pem)",
                    subcode="FailedAuthentication")
    timestamp_only(sec, "TLS client certificate")
    ctx.authn = "x509"
    # The ssl module has already verified the chain to client-ca.pem.
    return cert_cn(x509.load_der_x509_certificate(ctx.peer_cert))


# -- X.509 message signature (certificatemixed) --

def str_reference_uri(ki, what):
    """ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference -> URI."""
    k = singles(ki, {qn(NS_WSSE, "SecurityTokenReference")}, what)
    st = k.get(qn(NS_WSSE, "SecurityTokenReference"))
    if st is None:
        raise Fault("%s must hold a wsse:SecurityTokenReference" % what)
    kk = singles(st, {qn(NS_WSSE, "Reference")}, "wsse:SecurityTokenReference")
    ref = kk.get(qn(NS_WSSE, "Reference"))
    if ref is None:
        raise Fault("wsse:SecurityTokenReference in %s must hold a wsse:Reference" % what)
    no_attributes(ref, ("URI", "ValueType"))
    return ref.get("URI", ""), ref.get("ValueType")


def auth_certificatemixed(sts, ctx, sec):
    """wsse:Security = wsu:Timestamp + wsse:BinarySecurityToken (X509v3) +
    ds:Signature (exc-c14n, RSA-SHA256 or RSA-SHA1) over Timestamp and wsa:To,
    its KeyInfo a wsse:Reference to the BST; the certificate chains to client-ca."""
    bst_tag, sig_tag = qn(NS_WSSE, "BinarySecurityToken"), qn(NS_DS, "Signature")
    k = singles(sec, {qn(NS_WSU, "Timestamp"), bst_tag, sig_tag}, "wsse:Security")
    ts = security_timestamp(k)
    bst = k.get(bst_tag)
    if bst is None:
        raise Fault("wsse:BinarySecurityToken (X509v3) missing from wsse:Security")
    cert = read_x509_bst(bst)
    bst_id = bst.get(qn(NS_WSU, "Id"))
    if not bst_id:
        raise Fault("wsse:BinarySecurityToken needs a wsu:Id (the signature's KeyInfo refers to it)")
    sig = k.get(sig_tag)
    if sig is None:
        raise Fault("ds:Signature missing from wsse:Security (certificatemixed signs "
                    "wsu:Timestamp and wsa:To with the certificate's key)")
    check_client_chain(sts, cert)
    key = xmlsec.Key.from_memory(cert.public_bytes(serialization.Encoding.DER),
                                 xmlsec.KeyFormat.CERT_DER)
    ki = signature_key_info(sig)
    uri, vt = str_reference_uri(ki, "ds:Signature/ds:KeyInfo")
    if uri != "#" + bst_id:
        raise Fault("ds:Signature/ds:KeyInfo must refer to the wsse:BinarySecurityToken "
                    "(URI '#%s', got '%s')" % (bst_id, uri[:100]))
    if vt is not None and vt != X509V3:
        raise Fault("wsse:Reference ValueType must be %s (got '%s')" % (X509V3, vt[:200]))
    verify_message_signature(ctx, sig, ts, key, (RSA_SHA256, RSA_SHA1),
                             "signature verification failed")
    ctx.authn = "x509"
    return cert_cn(cert)


def read_x509_bst(bst):
    no_attributes(bst, ("ValueType", "EncodingType", qn(NS_WSU, "Id")))
    if bst.get("ValueType") != X509V3:
        raise Fault("wsse:BinarySecurityToken ValueType must be %s (got '%s')"
                    % (X509V3, (bst.get("ValueType") or "")[:200]))
    if bst.get("EncodingType", B64_ENCODING) != B64_ENCODING:
        raise Fault("wsse:BinarySecurityToken EncodingType must be %s" % B64_ENCODING)
    der = b64value(bst, "wsse:BinarySecurityToken")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise Fault("wsse:BinarySecurityToken does not hold a DER X.509 certificate")


# -- issued tokens (issuedtokenmixed{symmetric,asymmetric}basic256) --

@dataclasses.dataclass
class Presented:
    """A SAML assertion presented in wsse:Security, as far as this STS needs it."""
    el: object
    kind: str                  # saml2 / saml11
    id: str
    id_attr: str
    keyid_valuetype: str
    subject: str
    method: str
    key_info: object           # ds:KeyInfo of the subject confirmation, or None
    not_before: object
    not_on_or_after: object
    audiences: list


def read_saml2(el):
    s = NS_SAML2
    subj = el.find(qn(s, "Subject"))
    scs = subj.findall(qn(s, "SubjectConfirmation")) if subj is not None else []
    if subj is None or subj.find(qn(s, "NameID")) is None or len(scs) != 1:
        raise Fault("issued token: saml:Subject needs a saml:NameID and one saml:SubjectConfirmation")
    scd = scs[0].find(qn(s, "SubjectConfirmationData"))
    ki = scd.find(qn(NS_DS, "KeyInfo")) if scd is not None else None
    cond = el.find(qn(s, "Conditions"))
    auds = [value(a) for a in el.iterfind("%s/%s/%s" % (qn(s, "Conditions"),
                                                         qn(s, "AudienceRestriction"),
                                                         qn(s, "Audience")))]
    return Presented(el, "saml2", el.get("ID", ""), "ID", SAML2_KEYID,
                     value(subj.find(qn(s, "NameID"))), scs[0].get("Method", ""), ki,
                     cond.get("NotBefore") if cond is not None else None,
                     cond.get("NotOnOrAfter") if cond is not None else None, auds)


def read_saml11(el):
    s = NS_SAML1
    subjects = [st.find(qn(s, "Subject")) for st in el
                if isinstance(st.tag, str) and st.find(qn(s, "Subject")) is not None]
    names = {value(sj.find(qn(s, "NameIdentifier"))) for sj in subjects
             if sj.find(qn(s, "NameIdentifier")) is not None}
    if not subjects or len(names) != 1:
        raise Fault("issued token: the SAML 1.1 statements need one saml:Subject/NameIdentifier")
    sc = subjects[0].find(qn(s, "SubjectConfirmation"))
    if sc is None or len(sc.findall(qn(s, "ConfirmationMethod"))) != 1:
        raise Fault("issued token: saml:SubjectConfirmation needs one saml:ConfirmationMethod")
    cond = el.find(qn(s, "Conditions"))
    auds = [value(a) for a in el.iterfind("%s/%s/%s" % (
        qn(s, "Conditions"), qn(s, "AudienceRestrictionCondition"), qn(s, "Audience")))]
    return Presented(el, "saml11", el.get("AssertionID", ""), "AssertionID", SAML11_KEYID,
                     names.pop(), value(sc.find(qn(s, "ConfirmationMethod"))),
                     sc.find(qn(NS_DS, "KeyInfo")),
                     cond.get("NotBefore") if cond is not None else None,
                     cond.get("NotOnOrAfter") if cond is not None else None, auds)


def verify_issued_token(sts, ctx, p):
    """Issuer trust and signature, then validity window and audience."""
    el = p.el
    if not p.id:
        raise Fault("issued token signature invalid: the assertion has no %s" % p.id_attr,
                    subcode="FailedAuthentication")
    sig = el.find(qn(NS_DS, "Signature"))
    if sig is None:
        raise Fault("issued token signature invalid: the assertion is not signed",
                    subcode="FailedAuthentication")
    refs = sig.findall("%s/%s" % (qn(NS_DS, "SignedInfo"), qn(NS_DS, "Reference")))
    if len(refs) != 1 or refs[0].get("URI") != "#" + p.id:
        raise Fault("issued token signature invalid: its one ds:Reference must be '#%s'" % p.id,
                    subcode="FailedAuthentication")
    tr = [t.get("Algorithm") for t in refs[0].iterfind(
        "%s/%s" % (qn(NS_DS, "Transforms"), qn(NS_DS, "Transform")))]
    if tr != [ENVELOPED, EXC_C14N]:
        raise Fault("issued token signature invalid: transforms must be enveloped-signature, "
                    "exc-c14n (got %s)" % tr, subcode="FailedAuthentication")
    certs = sig.findall("%s/%s/%s" % (qn(NS_DS, "KeyInfo"), qn(NS_DS, "X509Data"),
                                      qn(NS_DS, "X509Certificate")))
    if len(certs) != 1:
        raise Fault("issued token signature invalid: its ds:KeyInfo must carry one "
                    "ds:X509Certificate", subcode="FailedAuthentication")
    der = b64value(certs[0], "the issued token's ds:X509Certificate")
    trusted = sts.trusted_issuers()
    if der not in trusted:
        try:
            who = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            who = "an unparsable certificate"
        raise Fault("untrusted issuer: the issued token is signed by %s, which is not a "
                    "--trust-issuer-cert of this STS" % who, subcode="FailedAuthentication")
    key = xmlsec.Key.from_memory(der, xmlsec.KeyFormat.CERT_DER)
    with XMLSEC_LOCK:
        sc = xmlsec.SignatureContext()
        sc.key = key
        sc.register_id(el, p.id_attr)
        for t in (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N,
                  xmlsec.Transform.SHA256, xmlsec.Transform.SHA1):
            sc.enable_reference_transform(t)
        for t in (xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256,
                  xmlsec.Transform.RSA_SHA1):
            sc.enable_signature_transform(t)
        try:
            sc.verify(sig)
        except xmlsec.Error as e:
            raise Fault("issued token signature invalid: %s" % e, subcode="FailedAuthentication")
    now = utc_now()
    if not p.not_on_or_after:
        raise Fault("issued token expired: it has no NotOnOrAfter", subcode="FailedAuthentication")
    nooa = parse_utc(p.not_on_or_after, "issued token NotOnOrAfter")
    if nooa <= now - dt.timedelta(seconds=CLOCK_SKEW // 10):
        raise Fault("issued token expired: NotOnOrAfter %s, now %s"
                    % (p.not_on_or_after, fmt_utc(now)), subcode="FailedAuthentication")
    if p.not_before and parse_utc(p.not_before, "issued token NotBefore") > \
            now + dt.timedelta(seconds=CLOCK_SKEW):
        raise Fault("issued token not yet valid: NotBefore %s" % p.not_before,
                    subcode="FailedAuthentication")
    accepted = sts.accepted_audiences(ctx)
    if not any(a in accepted for a in p.audiences):
        raise Fault("issued token audience mismatch: %s is not one of this STS's audiences %s"
                    % (p.audiences or "no Audience", sorted(accepted)),
                    subcode="FailedAuthentication")


def str_saml_keyid(ki, p):
    """ds:KeyInfo/wsse:SecurityTokenReference/wsse:KeyIdentifier naming the assertion."""
    k = singles(ki, {qn(NS_WSSE, "SecurityTokenReference")}, "ds:Signature/ds:KeyInfo")
    st = k.get(qn(NS_WSSE, "SecurityTokenReference"))
    if st is None:
        raise Fault("ds:Signature/ds:KeyInfo must hold a wsse:SecurityTokenReference")
    no_attributes(st, (qn(NS_WSSE11, "TokenType"), qn(NS_WSU, "Id")))
    kk = singles(st, {qn(NS_WSSE, "KeyIdentifier")}, "wsse:SecurityTokenReference")
    kid = kk.get(qn(NS_WSSE, "KeyIdentifier"))
    if kid is None:
        raise Fault("the signature's wsse:SecurityTokenReference must hold a wsse:KeyIdentifier")
    if kid.get("ValueType") != p.keyid_valuetype or value(kid) != p.id:
        raise Fault("the signature's wsse:KeyIdentifier must name the presented assertion "
                    "(ValueType %s, value %s)" % (p.keyid_valuetype, p.id))


def auth_issuedtoken(sts, ctx, sec, symmetric):
    """wsse:Security = wsu:Timestamp + one SAML 2.0 or 1.1 assertion from a
    trusted issuer [+ ds:Signature proving possession of its key]."""
    a2, a1, sig_tag = qn(NS_SAML2, "Assertion"), qn(NS_SAML1, "Assertion"), qn(NS_DS, "Signature")
    k = singles(sec, {qn(NS_WSU, "Timestamp"), a2, a1, sig_tag}, "wsse:Security")
    ts = security_timestamp(k)
    if (a2 in k) == (a1 in k):
        raise Fault("wsse:Security must carry exactly one issued SAML assertion (saml:Assertion "
                    "of SAML 2.0 or 1.1)")
    p = read_saml2(k[a2]) if a2 in k else read_saml11(k[a1])
    verify_issued_token(sts, ctx, p)
    sig = k.get(sig_tag)
    ctx.authn = "token"
    if p.method in (BEARER2, BEARER1):
        if sig is not None:
            raise Fault("a bearer issued token is presented as is: no ds:Signature expected")
        return p.subject
    if p.method not in (HOK2, HOK1):
        raise Fault("issued token: unsupported subject confirmation method '%s'" % p.method[:200])
    if p.key_info is None:
        raise Fault("issued token: holder-of-key subject confirmation without ds:KeyInfo")
    if sig is None:
        raise Fault("proof-of-possession signature invalid: a holder-of-key token needs a "
                    "ds:Signature over wsu:Timestamp and wsa:To with its key",
                    subcode="FailedAuthentication")
    ek = p.key_info.find(qn(NS_XENC, "EncryptedKey"))
    cert_el = p.key_info.find("%s/%s" % (qn(NS_DS, "X509Data"), qn(NS_DS, "X509Certificate")))
    if ek is not None:
        if not symmetric:
            raise Fault("a symmetric holder-of-key token goes to the "
                        "issuedtokenmixedsymmetricbasic256 endpoint, not this asymmetric one")
        proof = decrypt_encrypted_key(ek, sts.rp_key, sts.rp_own_cert,
                                      "the issued token's proof key")
        key = xmlsec.Key.from_binary_data(xmlsec.KeyData.HMAC, proof)
        methods = (HMAC_SHA256,)
    elif cert_el is not None:
        if symmetric:
            raise Fault("an asymmetric (PublicKey) holder-of-key token goes to the "
                        "issuedtokenmixedasymmetricbasic256 endpoint, not this symmetric one")
        der = b64value(cert_el, "the issued token's subject ds:X509Certificate")
        key = xmlsec.Key.from_memory(der, xmlsec.KeyFormat.CERT_DER)
        methods = (RSA_SHA256, RSA_SHA1)
    else:
        raise Fault("issued token: the subject's ds:KeyInfo holds neither an xenc:EncryptedKey "
                    "nor an X.509 certificate")
    str_saml_keyid(signature_key_info(sig), p)
    verify_message_signature(ctx, sig, ts, key, methods, "proof-of-possession signature invalid")
    return p.subject


def auth_issuedtoken_symmetric(sts, ctx, sec):
    return auth_issuedtoken(sts, ctx, sec, True)


def auth_issuedtoken_asymmetric(sts, ctx, sec):
    return auth_issuedtoken(sts, ctx, sec, False)


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
for _v, _t in (("13", TRUST13), ("2005", TRUST2005)):
    _p = "/adfs/services/trust/%s/" % _v
    ENDPOINTS += [
        Endpoint(_p + "usernamemixed-encryptedkey", _t, SOAP12, WSA10, "usernamemixed",
                 auth_usernamemixed, proof_encryption=RSA_OAEP),
        Endpoint(_p + "usernamemixed-encryptedkey-rsa15", _t, SOAP12, WSA10, "usernamemixed",
                 auth_usernamemixed, proof_encryption=RSA_15),
        Endpoint(_p + "certificatemixed", _t, SOAP12, WSA10, "certificatemixed",
                 auth_certificatemixed),
        Endpoint(_p + "issuedtokenmixedsymmetricbasic256", _t, SOAP12, WSA10,
                 "issuedtokenmixedsymmetricbasic256", auth_issuedtoken_symmetric),
        Endpoint(_p + "issuedtokenmixedasymmetricbasic256", _t, SOAP12, WSA10,
                 "issuedtokenmixedasymmetricbasic256", auth_issuedtoken_asymmetric),
        Endpoint(_p + "usernamebasic", _t, SOAP12, WSA10, "usernamebasic",
                 auth_usernamebasic, security_required=False, pre_auth=pre_auth_basic),
        Endpoint(_p + "certificatetransport", _t, SOAP12, WSA10, "certificatetransport",
                 auth_certificatetransport, security_required=False),
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
    if v != ctx.request_type:
        raise Fault("unsupported wst:RequestType '%s' with wsa:Action '%s' (expected '%s')"
                    % (v[:200], ctx.action, ctx.request_type))
    rst.request_type = v


def rst_token_type(ctx, rst, el):
    v = value(el)
    sc = ctx.ep.trust.sc
    if v == sc.sct_type:
        rst.token_type, rst.token_kind = v, "sct"
        return
    if v in (SC13.sct_type, SC2005.sct_type):
        raise Fault("unsupported TokenType '%s': this endpoint pairs WS-Trust %s with "
                    "WS-SecureConversation %s, whose SCT type is %s"
                    % (v, ctx.ep.trust.name, sc.name, sc.sct_type))
    if v not in TOKEN_TYPES:
        raise Fault("unsupported TokenType '%s'" % v[:200])
    rst.token_type, rst.token_kind = v, TOKEN_TYPES[v]


def key_types(trust):
    """KeyType URI -> key kind, per trust version."""
    kinds = {u: "bearer" for u in trust.bearer_keytypes}
    kinds[trust.symmetric] = "symmetric"
    kinds[trust.public] = "public"
    return kinds


def rst_key_type(ctx, rst, el):
    v = value(el)
    kinds = key_types(ctx.ep.trust)
    if v not in kinds:
        raise Fault("unsupported KeyType '%s' (this endpoint knows %s)"
                    % (v[:200], ", ".join(kinds)))
    rst.key_type, rst.key_kind = v, kinds[v]


def rst_key_size(ctx, rst, el):
    no_attributes(el)
    v = value(el)
    if not re.match(r"^[0-9]{1,6}$", v):
        raise Fault("wst:KeySize '%s' is not a number of bits" % v[:50])
    bits = int(v)
    if not KEY_SIZE_MIN <= bits <= KEY_SIZE_MAX or bits % 8:
        raise Fault("wst:KeySize %d is out of range (%d..%d bits, a multiple of 8)"
                    % (bits, KEY_SIZE_MIN, KEY_SIZE_MAX))
    rst.key_size = bits


def rst_entropy(ctx, rst, el):
    t = ctx.ep.trust
    no_attributes(el)
    k = singles(el, {qn(t.ns, "BinarySecret")}, "wst:Entropy (only wst:BinarySecret "
                                                "requestor entropy is supported)")
    bs = k.get(qn(t.ns, "BinarySecret"))
    if bs is None:
        raise Fault("wst:Entropy must hold a wst:BinarySecret")
    no_attributes(bs, ("Type", qn(NS_WSU, "Id")))
    if bs.get("Type") != t.nonce:
        raise Fault("wst:Entropy/wst:BinarySecret needs Type='%s' (got '%s')"
                    % (t.nonce, (bs.get("Type") or "")[:200]))
    data = b64value(bs, "wst:Entropy/wst:BinarySecret")
    if not KEY_SIZE_MIN // 8 <= len(data) <= KEY_SIZE_MAX // 8:
        raise Fault("requestor entropy must be %d to %d bytes (got %d)"
                    % (KEY_SIZE_MIN // 8, KEY_SIZE_MAX // 8, len(data)))
    rst.entropy = data


def rst_computed_key_algorithm(ctx, rst, el):
    v = value(el)
    if v != ctx.ep.trust.psha1:
        raise Fault("unsupported wst:ComputedKeyAlgorithm '%s' (only %s)"
                    % (v[:200], ctx.ep.trust.psha1))
    rst.computed_key_alg = v


def rst_use_key(ctx, rst, el):
    no_attributes(el)     # Sig (a proof-of-possession reference) is not supported
    kids = elements(el)
    if len(kids) != 1:
        raise Fault("wst:UseKey must hold one ds:KeyInfo or wsse:BinarySecurityToken")
    c = kids[0]
    if c.tag == qn(NS_WSSE, "BinarySecurityToken"):
        rst.use_key_cert = read_x509_bst(c)
        return
    if c.tag != qn(NS_DS, "KeyInfo"):
        raise Fault("unexpected element %s in wst:UseKey" % show(c.tag))
    xd = singles(c, {qn(NS_DS, "X509Data")}, "wst:UseKey/ds:KeyInfo").get(qn(NS_DS, "X509Data"))
    xc = singles(xd, {qn(NS_DS, "X509Certificate")}, "ds:X509Data").get(
        qn(NS_DS, "X509Certificate")) if xd is not None else None
    if xc is None:
        raise Fault("wst:UseKey/ds:KeyInfo must hold ds:X509Data/ds:X509Certificate")
    try:
        rst.use_key_cert = x509.load_der_x509_certificate(b64value(xc, "wst:UseKey certificate"))
    except ValueError:
        raise Fault("wst:UseKey certificate does not parse as DER X.509")


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


def rst_claims(ctx, rst, el):
    no_attributes(el, ("Dialect",))
    vals = []
    for c in elements(el):
        vals.append(c.get("Uri") or etree.tostring(c, method="c14n", exclusive=True,
                                                   with_comments=False).decode())
    rst.claims = (el.get("Dialect", ""), vals)


def who_in(el, what):
    """One token (or EPR) inside OnBehalfOf/ActAs -> a short description."""
    no_attributes(el)
    kids = elements(el)
    if len(kids) != 1:
        raise Fault("%s must hold exactly one token element" % what)
    c = kids[0]
    for path in ("{%s}Username" % NS_WSSE, "{%s}Subject/{%s}NameID" % (NS_SAML2, NS_SAML2),
                 ".//{%s}NameIdentifier" % NS_SAML1, "{%s}Address" % NS_WSA10):
        found = c.find(path)
        if found is not None and (found.text or "").strip():
            return found.text.strip()
    return show(c.tag)


def rst_on_behalf_of(ctx, rst, el):
    rst.on_behalf_of = who_in(el, "wst:OnBehalfOf")


def rst_act_as(ctx, rst, el):
    rst.act_as = who_in(el, "wst14:ActAs")


def rst_renew_target(ctx, rst, el):
    sc = ctx.ep.trust.sc
    no_attributes(el)
    kids = elements(el)
    if len(kids) != 1:
        raise Fault("wst:RenewTarget must hold one wsse:SecurityTokenReference or "
                    "wsc:SecurityContextToken")
    c = kids[0]
    if c.tag == qn(NS_WSSE, "SecurityTokenReference"):
        ref = singles(c, {qn(NS_WSSE, "Reference")}, "wsse:SecurityTokenReference").get(
            qn(NS_WSSE, "Reference"))
        if ref is None:
            raise Fault("wst:RenewTarget/wsse:SecurityTokenReference must hold a wsse:Reference")
        no_attributes(ref, ("URI", "ValueType"))
        vt = ref.get("ValueType")
        if vt is not None and vt != sc.sct_type:
            raise Fault("wst:RenewTarget wsse:Reference ValueType must be %s (got '%s')"
                        % (sc.sct_type, vt[:200]))
        uri = ref.get("URI", "")
        if uri.startswith("#") or not uri:
            raise Fault("wst:RenewTarget wsse:Reference URI must be the SCT's wsc:Identifier "
                        "(got '%s')" % uri[:100])
        rst.renew_target = (uri, None)
        return
    if c.tag == qn(sc.ns, "SecurityContextToken"):
        no_attributes(c, (qn(NS_WSU, "Id"),))
        k = singles(c, {qn(sc.ns, "Identifier"), qn(sc.ns, "Instance")}, "wsc:SecurityContextToken")
        ident = k.get(qn(sc.ns, "Identifier"))
        if ident is None or not value(ident):
            raise Fault("wsc:SecurityContextToken in wst:RenewTarget has no wsc:Identifier")
        inst = k.get(qn(sc.ns, "Instance"))
        rst.renew_target = (value(ident), value(inst) if inst is not None else None)
        return
    raise Fault("unexpected element %s in wst:RenewTarget (WS-SecureConversation %s: %s)"
                % (show(c.tag), sc.name, sc.ns))


def rst_algorithm_hint(ctx, rst, el):
    """SecondaryParameters' algorithm suite hints (WCF sends them): URIs, ignored."""
    no_attributes(el)
    if not value(el):
        raise Fault("%s must hold an algorithm URI" % show(el.tag))


def rst_secondary_parameters(ctx, rst, el):
    """WS-Trust 1.3 SecondaryParameters: values for the ones absent at top level."""
    no_attributes(el)
    t = ctx.ep.trust.ns
    handlers = {qn(t, "TokenType"): rst_token_type, qn(t, "KeyType"): rst_key_type,
                qn(t, "KeySize"): rst_key_size, qn(t, "Claims"): rst_claims,
                qn(t, "ComputedKeyAlgorithm"): rst_computed_key_algorithm}
    for hint in ("KeyWrapAlgorithm", "EncryptWith", "SignWith", "CanonicalizationAlgorithm",
                 "EncryptionAlgorithm"):
        handlers[qn(t, hint)] = rst_algorithm_hint
    rst.secondary = parse_children(ctx, Rst(), el, handlers, "wst:SecondaryParameters")


def rst_children(trust):
    """(tag) -> handler for wst:RequestSecurityToken's children."""
    t = trust.ns
    h = {
        qn(t, "RequestType"): rst_request_type,
        qn(t, "TokenType"): rst_token_type,
        qn(t, "KeyType"): rst_key_type,
        qn(NS_WSP, "AppliesTo"): rst_applies_to,
        qn(t, "KeySize"): rst_key_size,
        qn(t, "Entropy"): rst_entropy,
        qn(t, "ComputedKeyAlgorithm"): rst_computed_key_algorithm,
        qn(t, "UseKey"): rst_use_key,
        qn(t, "Claims"): rst_claims,
        qn(t, "OnBehalfOf"): rst_on_behalf_of,
        qn(NS_WST08, "ActAs"): rst_act_as,
        qn(t, "RenewTarget"): rst_renew_target,
    }
    if trust.secondary_parameters:
        h[qn(t, "SecondaryParameters")] = rst_secondary_parameters
    return h


def parse_children(ctx, rst, el, handlers, what):
    seen = set()
    for c in elements(el):
        h = handlers.get(c.tag)
        if h is None:
            raise Fault("unsupported RST element %s in %s" % (show(c.tag), what))
        if c.tag in seen:
            raise Fault("duplicate RST element %s" % show(c.tag))
        seen.add(c.tag)
        h(ctx, rst, c)
    return rst


def parse_rst(ctx, el):
    rst = Rst()
    for attr, v in el.attrib.items():
        if attr == "Context":
            rst.context = v
        else:
            raise Fault("unexpected attribute %s on wst:RequestSecurityToken" % show(attr))
    parse_children(ctx, rst, el, rst_children(ctx.ep.trust), "wst:RequestSecurityToken")
    if rst.request_type is None:
        raise Fault("wst:RequestType missing from wst:RequestSecurityToken")
    resolve_rst(ctx, rst)
    return rst


def resolve_rst(ctx, rst):
    """Merge SecondaryParameters, then check the parameters fit together."""
    t = ctx.ep.trust
    sp = rst.secondary
    if sp is not None:
        if rst.token_type is None and sp.token_type is not None:
            rst.token_type, rst.token_kind = sp.token_type, sp.token_kind
        if rst.key_type is None and sp.key_type is not None:
            rst.key_type, rst.key_kind = sp.key_type, sp.key_kind
        for f in ("key_size", "claims", "computed_key_alg"):
            if getattr(rst, f) is None:
                setattr(rst, f, getattr(sp, f))
    if ctx.operation == "issue":
        if rst.token_kind == "sct":
            raise Fault("TokenType %s (a security context token) needs wsa:Action %s"
                        % (rst.token_type, t.sct_action))
    else:
        if rst.token_type is None:
            rst.token_kind = "sct"
        elif rst.token_kind != "sct":
            raise Fault("wsa:Action %s is for security context tokens: TokenType must be %s "
                        "(got %s)" % (ctx.action, t.sc.sct_type, rst.token_type))
        if rst.key_type is None:
            rst.key_kind = "symmetric"
        elif rst.key_kind != "symmetric":
            raise Fault("a security context token has a symmetric key: KeyType must be %s "
                        "(got %s)" % (t.symmetric, rst.key_type))
    if ctx.operation == "renew" and rst.renew_target is None:
        raise Fault("wst:RenewTarget missing (RequestType %s needs it)" % t.renew)
    if ctx.operation != "renew" and rst.renew_target is not None:
        raise Fault("wst:RenewTarget is only allowed with RequestType %s and wsa:Action %s"
                    % (t.renew, t.renew_action))
    if rst.key_kind != "symmetric":
        for name, v in (("wst:KeySize", rst.key_size), ("wst:Entropy", rst.entropy),
                        ("wst:ComputedKeyAlgorithm", rst.computed_key_alg)):
            if v is not None:
                raise Fault("%s is only allowed with KeyType %s (this request's key type is %s)"
                            % (name, t.symmetric, rst.key_type or "bearer (default)"))
    if rst.key_kind == "public" and rst.use_key_cert is None:
        raise Fault("KeyType %s needs wst:UseKey with an X.509 certificate" % t.public)
    if rst.key_kind != "public" and rst.use_key_cert is not None:
        raise Fault("wst:UseKey is only allowed with KeyType %s" % t.public)
    if rst.computed_key_alg is not None and rst.entropy is None:
        raise Fault("wst:ComputedKeyAlgorithm needs requestor wst:Entropy (COMBINED entropy)")
    if rst.entropy is not None and rst.computed_key_alg is None and rst.key_size is not None \
            and rst.key_size != 8 * len(rst.entropy):
        raise Fault("requestor entropy without wst:ComputedKeyAlgorithm is the key itself: its "
                    "%d bits do not match wst:KeySize %d" % (8 * len(rst.entropy), rst.key_size))


# --------------------------------------------------------------------------
# Proof keys
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Proof:
    mode: str                  # server / client / combined (symmetric), public
    key: bytes = None          # the symmetric proof key
    key_size: int = None       # bits
    issuer_entropy: bytes = None
    cert: object = None        # public: the wst:UseKey certificate


def make_proof(rst):
    """SERVER_ONLY: no requestor entropy, the STS makes the key (BinarySecret).
    CLIENT_ONLY: requestor entropy and no ComputedKeyAlgorithm: the entropy is
    the key, nothing is returned.  COMBINED: requestor entropy + CK/PSHA1: the
    STS returns its entropy, key = P_SHA1(requestor entropy, issuer entropy)."""
    if rst.key_kind == "bearer":
        return None
    if rst.key_kind == "public":
        return Proof("public", cert=rst.use_key_cert)
    if rst.entropy is None:
        bits = rst.key_size or KEY_SIZE_DEFAULT
        return Proof("server", secrets.token_bytes(bits // 8), bits)
    if rst.computed_key_alg is None:
        return Proof("client", rst.entropy, 8 * len(rst.entropy))
    bits = rst.key_size or KEY_SIZE_DEFAULT
    issuer = secrets.token_bytes(bits // 8)
    return Proof("combined", p_sha1(rst.entropy, issuer, bits // 8), bits, issuer)


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Token:
    xml: bytes                 # signed assertion, serialized once, never re-serialized
    id: str
    profile_type: str = None   # SAML: wsse11:TokenType of the STR
    keyid_valuetype: str = None        # SAML: KeyIdentifier ValueType
    refs: tuple = None         # SCT: ((attached URI, ValueType), (unattached URI, ValueType))


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


def saml_key_info(sts, parent, proof):
    """The holder-of-key ds:KeyInfo: the symmetric proof key encrypted to the
    relying party's certificate (--rp-cert), or the requestor's certificate."""
    ki = sub(parent, NS_DS, "KeyInfo")
    if proof.mode == "public":
        xd = sub(ki, NS_DS, "X509Data")
        sub(xd, NS_DS, "X509Certificate",
            b64(proof.cert.public_bytes(serialization.Encoding.DER)))
    else:
        encrypted_key(ki, sts.rp_cert(), proof.key, RSA_OAEP)


ECHO_NS = "urn:wstrust:devsts"


def echo_attributes(rst):
    """(name, [values]) the assertion echoes so tests see what arrived."""
    out = []
    if rst.claims is not None:
        out.append((ECHO_NS + ":claims:dialect", [rst.claims[0]]))
        if rst.claims[1]:
            out.append((ECHO_NS + ":claims", rst.claims[1]))
    if rst.on_behalf_of is not None:
        out.append((ECHO_NS + ":onbehalfof", [rst.on_behalf_of]))
    if rst.act_as is not None:
        out.append((ECHO_NS + ":actas", [rst.act_as]))
    return out


AUTHN_CLASSES = {   # ctx.authn -> (SAML 2.0 AuthnContextClassRef, SAML 1.1 AuthenticationMethod)
    "password": ("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                 "urn:oasis:names:tc:SAML:1.0:am:password"),
    "x509": ("urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
             "urn:oasis:names:tc:SAML:1.0:am:X509-PKI"),
    "token": ("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
              "urn:oasis:names:tc:SAML:1.0:am:unspecified"),
}


def saml2_assertion(sts, ctx, rst, created, expires, proof):
    s = NS_SAML2
    user = ctx.principal
    aid = new_id()
    root = etree.Element(qn(s, "Assertion"), nsmap={"saml": s, "ds": NS_DS})
    root.set("ID", aid)
    root.set("IssueInstant", fmt_utc(created))
    root.set("Version", "2.0")
    issuer = sub(root, s, "Issuer", sts.issuer)
    subj = sub(root, s, "Subject")
    sub(subj, s, "NameID", user, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
    if proof is None:
        sub(subj, s, "SubjectConfirmation", Method=BEARER2)
    else:
        sc = sub(subj, s, "SubjectConfirmation", Method=HOK2)
        scd = etree.SubElement(sc, qn(s, "SubjectConfirmationData"), nsmap={"xsi": NS_XSI})
        scd.set(qn(NS_XSI, "type"), "saml:KeyInfoConfirmationDataType")
        saml_key_info(sts, scd, proof)
    cond = sub(root, s, "Conditions", NotBefore=fmt_utc(created), NotOnOrAfter=fmt_utc(expires))
    if rst.applies_to:
        ar = sub(cond, s, "AudienceRestriction")
        sub(ar, s, "Audience", rst.applies_to)
    an = sub(root, s, "AuthnStatement", AuthnInstant=fmt_utc(created))
    ac = sub(an, s, "AuthnContext")
    sub(ac, s, "AuthnContextClassRef", AUTHN_CLASSES[ctx.authn][0])
    ats = sub(root, s, "AttributeStatement")
    for name, vals in [("name", [user])] + echo_attributes(rst):
        at = sub(ats, s, "Attribute", Name=name,
                 NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic" if name == "name"
                 else "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
        for v in vals:
            sub(at, s, "AttributeValue", v)
    sts.signer.sign(root, "ID", issuer.addnext)     # Signature right after Issuer
    return Token(etree.tostring(root, encoding="utf-8"), aid, SAML2_PROFILE, SAML2_KEYID)


def saml11_assertion(sts, ctx, rst, created, expires, proof):
    s = NS_SAML1
    user = ctx.principal
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
        sub(sc, s, "ConfirmationMethod", BEARER1 if proof is None else HOK1)
        if proof is not None:
            saml_key_info(sts, sc, proof)

    au = sub(root, s, "AuthenticationStatement",
             AuthenticationMethod=AUTHN_CLASSES[ctx.authn][1],
             AuthenticationInstant=fmt_utc(created))
    subject(au)
    ats = sub(root, s, "AttributeStatement")
    subject(ats)
    at = sub(ats, s, "Attribute", AttributeName="name",
             AttributeNamespace="http://schemas.xmlsoap.org/claims")
    sub(at, s, "AttributeValue", user)
    for name, vals in echo_attributes(rst):
        at = sub(ats, s, "Attribute", AttributeName=name[len(ECHO_NS) + 1:],
                 AttributeNamespace=ECHO_NS)
        for v in vals:
            sub(at, s, "AttributeValue", v)
    sts.signer.sign(root, "AssertionID", root.append)   # Signature last
    return Token(etree.tostring(root, encoding="utf-8"), aid, SAML11_PROFILE, SAML11_KEYID)


def sct_token(sc, identifier, instance):
    """wsc:SecurityContextToken (unsigned, as WCF/CoreWCF issue it).  Attached
    reference by #wsu:Id, unattached by the Identifier URI."""
    wid = "uuid-%s-1" % uuid.uuid4()
    root = etree.Element(qn(sc.ns, "SecurityContextToken"), nsmap={"c": sc.ns, "u": NS_WSU})
    root.set(qn(NS_WSU, "Id"), wid)
    sub(root, sc.ns, "Identifier", identifier)
    if instance is not None:
        sub(root, sc.ns, "Instance", instance)
    return Token(etree.tostring(root, encoding="utf-8"), identifier,
                 refs=(("#" + wid, sc.sct_type), (identifier, sc.sct_type)))


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


def str_element(parent, ns_tag, token, which):
    """RequestedAttached/UnattachedReference: SAML by KeyIdentifier, SCT by Reference."""
    holder = etree.SubElement(parent, ns_tag)
    if token.refs is not None:
        ref = etree.SubElement(holder, qn(NS_WSSE, "SecurityTokenReference"), nsmap={"o": NS_WSSE})
        uri, vt = token.refs[which]
        sub(ref, NS_WSSE, "Reference", URI=uri, ValueType=vt)
        return
    ref = etree.SubElement(holder, qn(NS_WSSE, "SecurityTokenReference"),
                           nsmap={"o": NS_WSSE, "k": NS_WSSE11})
    ref.set(qn(NS_WSSE11, "TokenType"), token.profile_type)
    sub(ref, NS_WSSE, "KeyIdentifier", token.id, ValueType=token.keyid_valuetype)


def proof_elements(sts, ctx, rstr, proof):
    """RequestedProofToken and issuer Entropy for a symmetric key.  Endpoints
    with proof_encryption return the secrets as xenc:EncryptedKey to client.pem."""
    t, enc = ctx.ep.trust, ctx.ep.proof_encryption
    if proof.mode == "server":
        rpt = sub(rstr, t.ns, "RequestedProofToken")
        if enc:
            encrypted_key(rpt, sts.client_cert, proof.key, enc)
        else:
            sub(rpt, t.ns, "BinarySecret", b64(proof.key), Type=t.symmetric)
    elif proof.mode == "combined":
        rpt = sub(rstr, t.ns, "RequestedProofToken")
        sub(rpt, t.ns, "ComputedKey", t.psha1)
        ent = sub(rstr, t.ns, "Entropy")
        if enc:
            encrypted_key(ent, sts.client_cert, proof.issuer_entropy, enc)
        else:
            sub(ent, t.ns, "BinarySecret", b64(proof.issuer_entropy), Type=t.nonce)
    # client: the requestor's entropy is the key; no proof token, no issuer entropy.


def build_rstr(sts, ctx, rst, token, created, expires, proof=None):
    ep, t = ctx.ep, ctx.ep.trust.ns
    env, body = envelope(ep, ctx.reply_action, ctx.message_id)
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
    str_element(rstr, qn(t, "RequestedAttachedReference"), token, 0)
    str_element(rstr, qn(t, "RequestedUnattachedReference"), token, 1)
    if proof is not None:
        proof_elements(sts, ctx, rstr, proof)
    if rst.token_kind == "sct":
        sub(rstr, t, "TokenType", rst.token_type or ep.trust.sc.sct_type)
    else:
        sub(rstr, t, "TokenType", rst.token_type or DEFAULT_TOKEN_TYPE)
    sub(rstr, t, "RequestType", ctx.request_type)
    if rst.token_kind != "sct" or rst.key_type:
        sub(rstr, t, "KeyType", rst.key_type or ep.trust.bearer_reply)
    if proof is not None and proof.key is not None:
        sub(rstr, t, "KeySize", str(proof.key_size))
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


@dataclasses.dataclass
class SctState:
    identifier: str
    principal: str
    sc: SecConvVersion
    expires: object
    instance: str = None


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
        self.keys = {}             # token id -> Proof (for GET /testkeys)
        self.scts = {}             # SCT Identifier -> SctState (for Renew)
        self.cert_cache = {}       # path -> ((mtime_ns, size), certificate)
        # Set by main(): certificates and keys from the workdir, and flags.
        self.client_ca = self.client_cert = self.rp_key = self.rp_own_cert = None
        self.rp_cert_path = None
        self.trust_issuer_paths = []
        self.audiences = []
        self.backdate = 0          # --backdate: tokens valid from this many seconds ago
        self.capture_dir = None    # --capture-dir: each STS request body saved here

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

    # -- certificates named by flags: read when used, so that two instances
    #    (identity and resource STS) can be started in either order --
    def load_cert(self, path, flag):
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
            with self.lock:
                hit = self.cert_cache.get(path)
            if hit and hit[0] == stamp:
                return hit[1]
            with open(path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
        except (OSError, ValueError) as e:
            raise Fault("%s %s cannot be read as a PEM certificate: %s" % (flag, path, e),
                        code="Receiver", subcode="RequestFailed")
        with self.lock:
            self.cert_cache[path] = (stamp, cert)
        return cert

    def rp_cert(self):
        return self.load_cert(self.rp_cert_path, "--rp-cert")

    def trusted_issuers(self):
        return {self.load_cert(p, "--trust-issuer-cert").public_bytes(serialization.Encoding.DER)
                for p in self.trust_issuer_paths}

    def accepted_audiences(self, ctx):
        return {ctx.url, self.issuer, *self.audiences}

    # -- proof keys and security contexts --
    def remember_key(self, ids, proof):
        with self.lock:
            for i in ids:
                self.keys[i] = proof

    def test_key(self, token_id):
        with self.lock:
            p = self.keys.get(token_id)
        if p is None:
            return None
        return {"id": token_id, "key": b64(p.key), "key_size": p.key_size, "entropy": p.mode}

    def renewable_sct(self, ctx, rst):
        ident, instance = rst.renew_target
        sc = ctx.ep.trust.sc
        with self.lock:
            st = self.scts.get(ident)
        if st is None:
            raise Fault("wst:RenewTarget: no security context token with Identifier '%s' was "
                        "issued here" % ident[:200], subcode="UnableToRenew")
        if st.sc is not sc:
            raise Fault("security context token %s is a WS-SecureConversation %s token; this "
                        "endpoint renews %s ones" % (ident, st.sc.name, sc.name),
                        subcode="UnableToRenew")
        if st.principal != ctx.principal:
            raise Fault("security context token %s was not issued to %s" % (ident, ctx.principal),
                        subcode="UnableToRenew")
        if st.expires <= utc_now():
            raise Fault("security context token %s has expired (Expires %s): it cannot be renewed"
                        % (ident, fmt_utc(st.expires)), subcode="UnableToRenew")
        if instance is not None and instance != st.instance:
            raise Fault("security context token %s: wsc:Instance %s is not the current instance"
                        % (ident, instance[:200]), subcode="UnableToRenew")
        return st

    def issue_sct(self, ctx, rst, expires):
        """New SCT, or (Renew) the same Identifier with a new Instance.
        Returns (token, the ids its proof key is filed under)."""
        sc = ctx.ep.trust.sc
        if ctx.operation == "renew":
            st = self.renewable_sct(ctx, rst)
            ident, instance = st.identifier, "urn:uuid:%s" % uuid.uuid4()
        else:
            ident, instance = "urn:uuid:%s" % uuid.uuid4(), None
        with self.lock:
            if len(self.scts) > 10000:
                now = utc_now()
                self.scts = {k: v for k, v in self.scts.items() if v.expires > now}
            self.scts[ident] = SctState(ident, ctx.principal, sc, expires, instance)
        return sct_token(sc, ident, instance), [ident] + ([instance] if instance else [])

    def process(self, ctx, body):
        """Returns reply bytes; raises Fault (or HttpUnauthorized)."""
        if ctx.ep.pre_auth is not None:
            ctx.ep.pre_auth(self, ctx)
        check_http(ctx)
        root = parse_xml(body)
        ctx.root = root
        header, rst_el = check_envelope(ctx, root)
        sec = check_headers(ctx, header)
        check_http_action(ctx)
        ctx.principal = ctx.ep.auth(self, ctx, sec)
        rst = parse_rst(ctx, rst_el)
        created = truncate_ms(utc_now()) - dt.timedelta(seconds=self.backdate)
        expires = created + dt.timedelta(seconds=self.lifetime)
        proof = make_proof(rst)
        if rst.token_kind == "sct":
            token, key_ids = self.issue_sct(ctx, rst, expires)
        else:
            token = TOKEN_BUILDERS[rst.token_kind](self, ctx, rst, created, expires, proof)
            key_ids = [token.id]
        if proof is not None and proof.key is not None:
            self.remember_key(key_ids, proof)
        out = build_rstr(self, ctx, rst, token, created, expires, proof)
        with self.lock:
            self.issued += 1
        log.info("%s: %s %s (%s) to %s for %s (id %s)", ctx.operation, rst.token_kind,
                 rst.key_kind, proof.mode if proof else "-", ctx.principal, rst.applies_to,
                 token.id)
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
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle holds
    # the body until the client's delayed ACK (~40 ms on every keep-alive reply).
    disable_nagle_algorithm = True
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
        if u.path == "/testkeys":
            return self.test_keys(u)
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

    def test_keys(self, u):
        """GET /testkeys?id=<token id>: the proof key the STS made, for tests."""
        ids = urllib.parse.parse_qs(u.query).get("id")
        if not ids or len(ids) != 1:
            body = {"error": "give exactly one id=<assertion ID, SCT Identifier or Instance>"}
            return self.send(400, json.dumps(body).encode(), "application/json")
        found = self.sts.test_key(ids[0])
        if found is None:
            body = {"error": "no proof key recorded for id %s" % ids[0][:200]}
            return self.send(404, json.dumps(body).encode(), "application/json")
        return self.send(200, json.dumps(found, sort_keys=True).encode(), "application/json")

    def sts_endpoint(self, ep):
        try:
            body = self.read_body()
        except BodyError as e:
            return self.reply_fault(ep, Fault(str(e), close=True))
        if self.sts.capture_dir:
            with self.sts.lock:
                n = sum(self.sts.requests.values())
            write(os.path.join(self.sts.capture_dir, "%06d%s.xml" % (n, ep.path.replace("/", "_"))), body)
        host = self.headers.get("Host", "")
        ctx = Ctx(ep=ep, url="https://%s%s" % (host, self.path), http_headers=self.headers)
        try:
            ctx.peer_cert = self.connection.getpeercert(binary_form=True)
        except (AttributeError, ValueError):
            ctx.peer_cert = None
        try:
            out = self.sts.process(ctx, body)
        except HttpUnauthorized as e:
            log.info("HTTP Basic authentication failed: %s", e)
            return self.send(401, b"HTTP Basic authentication required\n", "text/plain",
                             headers=[("WWW-Authenticate",
                                       'Basic realm="wstrust dev STS", charset="UTF-8"')])
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
        "client-ca.pem", "client-ca.key", "client.pem", "client.key", "rp.pem", "rp.key")}
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
    # The relying party's encryption certificate: holder-of-key proof keys in
    # issued assertions are encrypted to it (the resource STS decrypts them).
    rp_key = new_key()
    rp = make_cert("wstrust dev STS relying party encryption", rp_key, days=365)
    for name, obj in (("ca.pem", ca), ("server.pem", srv), ("signing.pem", sig),
                      ("client-ca.pem", cca), ("client.pem", cl), ("rp.pem", rp)):
        write(p[name], pem_cert(obj))
    for name, obj in (("ca.key", ca_key), ("server.key", srv_key), ("signing.key", sig_key),
                      ("client-ca.key", cca_key), ("client.key", cl_key), ("rp.key", rp_key)):
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
        if path in ENDPOINT_BY_PATH or path.startswith("/test/") or path in ("/stats",
                                                                               "/testkeys"):
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
    ap.add_argument("--rp-cert", metavar="PATH", default=None,
                    help="relying-party certificate holder-of-key proof keys in assertions are "
                         "encrypted to (default: this workdir's rp.pem); read when used")
    ap.add_argument("--trust-issuer-cert", metavar="PATH", action="append", default=[],
                    help="token-signing certificate whose assertions the issuedtokenmixed "
                         "endpoints accept (repeatable); read when used")
    ap.add_argument("--audience", metavar="URI", action="append", default=[],
                    help="extra Audience accepted in presented tokens (repeatable); the "
                         "endpoint URL and the issuer name are always accepted")
    ap.add_argument("--backdate", type=int, default=0, metavar="SECONDS",
                    help="issue tokens whose validity began SECONDS ago (with a shorter "
                         "--lifetime: already expired tokens, for tests)")
    ap.add_argument("--capture-dir", metavar="DIR", default=None,
                    help="save every STS request body as DIR/<n>_<path>.xml (tests)")
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
    with open(pki["client-ca.pem"], "rb") as f:
        sts.client_ca = x509.load_pem_x509_certificate(f.read())
    with open(pki["client.pem"], "rb") as f:
        sts.client_cert = x509.load_pem_x509_certificate(f.read())
    with open(pki["rp.pem"], "rb") as f:
        sts.rp_own_cert = x509.load_pem_x509_certificate(f.read())
    with open(pki["rp.key"], "rb") as f:
        sts.rp_key = serialization.load_pem_private_key(f.read(), None)
    sts.rp_cert_path = os.path.abspath(args.rp_cert) if args.rp_cert else pki["rp.pem"]
    sts.trust_issuer_paths = [os.path.abspath(p) for p in args.trust_issuer_cert]
    sts.audiences = args.audience
    sts.backdate = max(0, args.backdate)
    sts.capture_dir = os.path.abspath(args.capture_dir) if args.capture_dir else None
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
            "client_ca": pki["client-ca.pem"], "issuer": sts.issuer, "pid": os.getpid(),
            "client_ca_key": pki["client-ca.key"], "rp_cert": pki["rp.pem"],
            "rp_key": pki["rp.key"]}
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
