#!/usr/bin/python3
"""Self-test of tests/sts/devsts.py.

  /usr/bin/python3 tests/sts/test_devsts.py          (exit status != 0 on failure)
  /usr/bin/python3 -m unittest tests/sts/test_devsts.py -v

Starts devsts.py on port 0 in a temporary directory, talks to it over HTTPS
with hand-built RSTs, checks the answers, and always stops what it started.
"""

import base64
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor

from lxml import etree

HERE = os.path.dirname(os.path.abspath(__file__))
DEVSTS = os.path.join(HERE, "devsts.py")
PY = "/usr/bin/python3"

S12 = "http://www.w3.org/2003/05/soap-envelope"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
T13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
T05 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
PW_TEXT = ("http://docs.oasis-open.org/wss/2004/01/"
           "oasis-200401-wss-username-token-profile-1.0#PasswordText")
PW_DIGEST = PW_TEXT.replace("#PasswordText", "#PasswordDigest")
NOPROOF = "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"
ID3242 = "ID3242: The security token could not be authenticated or authorized."

P13 = "/adfs/services/trust/13/usernamemixed"
P05 = "/adfs/services/trust/2005/usernamemixed"
P13_11 = "/soap11/trust/13/usernamemixed"
P05_11 = "/soap11/trust/2005/usernamemixed"
AUDIENCE = "urn:federation:wstrust-test"


def ts(delta_s=0):
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def start_sts(workdir, *extra):
    """Start devsts.py; returns (Popen, info dict).  Kills it on failure."""
    errlog = open(os.path.join(workdir, "devsts.log"), "wb")
    # --exit-on-stdin-eof: even if this test process dies, the STS follows.
    p = subprocess.Popen([PY, DEVSTS, "--workdir", os.path.join(workdir, "sts"), "--port", "0",
                          "--exit-on-stdin-eof", *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog)
    errlog.close()
    try:
        r, _, _ = select.select([p.stdout], [], [], 60)
        if not r:
            raise RuntimeError("devsts.py did not print its JSON line in 60 s")
        line = p.stdout.readline()
        info = json.loads(line)
        return p, info
    except BaseException:
        stop_sts(p)
        raise


def stop_sts(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for f in (p.stdin, p.stdout):
        if f:
            f.close()


class RST:
    """Builds a hand-made RST envelope; each knob breaks one thing."""

    def __init__(self, url, trust="13", soap="1.2", user="alice", password="secret",
                 created=-5, expires=295, timestamp=True, to=None, message_id=None,
                 action=None, applies_to=AUDIENCE, token_type=None, key_type="default",
                 request_type=None, extra_rst="", extra_header="", doctype="",
                 password_type="text", nonce=None, ut_created=None, reply_to=True):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def xml(self):
        t = T13 if self.trust == "13" else T05
        s = S12 if self.soap == "1.2" else S11
        action = self.action or t + "/RST/Issue"
        to = self.to if self.to is not None else self.url
        mid = self.message_id or "urn:uuid:%s" % uuid.uuid4()
        if self.password_type == "digest":
            nonce = self.nonce or os.urandom(16)
            created = self.ut_created or ts()
            digest = base64.b64encode(hashlib.sha1(nonce + created.encode()
                                                   + self.password.encode()).digest()).decode()
            ut = ('<wsse:Username>%s</wsse:Username>'
                  '<wsse:Password Type="%s">%s</wsse:Password>'
                  '<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-'
                  'wss-soap-message-security-1.0#Base64Binary">%s</wsse:Nonce>'
                  '<wsu:Created>%s</wsu:Created>'
                  % (self.user, PW_DIGEST, digest, base64.b64encode(nonce).decode(), created))
        else:
            ut = ('<wsse:Username>%s</wsse:Username><wsse:Password Type="%s">%s</wsse:Password>'
                  % (self.user, PW_TEXT, self.password))
        tsx = ('<wsu:Timestamp wsu:Id="_0"><wsu:Created>%s</wsu:Created>'
               '<wsu:Expires>%s</wsu:Expires></wsu:Timestamp>'
               % (ts(self.created), ts(self.expires))) if self.timestamp else ""
        body = ""
        if self.applies_to:
            body += ('<wsp:AppliesTo xmlns:wsp="%s"><wsa:EndpointReference><wsa:Address>%s'
                     '</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>'
                     % (WSP, self.applies_to))
        if self.token_type:
            body += "<wst:TokenType>%s</wst:TokenType>" % self.token_type
        kt = self.key_type
        if kt == "default":
            kt = t + "/Bearer" if self.trust == "13" else NOPROOF
        if kt:
            body += "<wst:KeyType>%s</wst:KeyType>" % kt
        body += "<wst:RequestType>%s</wst:RequestType>" % (self.request_type or t + "/Issue")
        body += self.extra_rst
        reply_to = ('<wsa:ReplyTo><wsa:Address>%s/anonymous</wsa:Address></wsa:ReplyTo>' % WSA
                    if self.reply_to else "")
        return (self.doctype +
                '<s:Envelope xmlns:s="%s" xmlns:wsa="%s" xmlns:wsu="%s">'
                '<s:Header>'
                '<wsa:Action s:mustUnderstand="1">%s</wsa:Action>'
                '<wsa:MessageID>%s</wsa:MessageID>%s'
                '<wsa:To s:mustUnderstand="1">%s</wsa:To>%s'
                '<wsse:Security s:mustUnderstand="1" xmlns:wsse="%s">%s'
                '<wsse:UsernameToken wsu:Id="uuid-1">%s</wsse:UsernameToken></wsse:Security>'
                '</s:Header><s:Body>'
                '<wst:RequestSecurityToken xmlns:wst="%s">%s</wst:RequestSecurityToken>'
                '</s:Body></s:Envelope>'
                % (s, WSA, WSU, action, mid, reply_to, to, self.extra_header, WSSE, tsx, ut,
                   t, body)).encode()


class DevStsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="devsts-test-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.canned_file = os.path.join(cls.tmp, "canned.xml")
        cls.canned_bytes = b"\xef\xbb\xbf<not-soap attr='1'>\r\n\x00 hostile &bogus; </not-soap"
        with open(cls.canned_file, "wb") as f:
            f.write(cls.canned_bytes)
        cls.proc, cls.info = start_sts(cls.tmp, "--users", "alice:secret,bob:pw2",
                                       "--lifetime", "600",
                                       "--canned", "/canned/reply=" + cls.canned_file)
        cls.addClassCleanup(stop_sts, cls.proc)
        cls.base = cls.info["base_url"]
        cls.ssl = ssl.create_default_context(cafile=cls.info["ca_file"])

    # -- helpers --
    def url(self, path):
        return self.base + path

    def post(self, path, body, ctype=None, soapaction=None, soap="1.2", host=None):
        if ctype is None:
            ctype = ("application/soap+xml; charset=utf-8" if soap == "1.2"
                     else "text/xml; charset=utf-8")
        headers = {"Content-Type": ctype}
        if soapaction is not None:
            headers["SOAPAction"] = soapaction
        req = urllib.request.Request(self.url(path), data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def rst(self, path, soap="1.2", **kw):
        trust = "2005" if "/2005/" in path else "13"
        r = RST(self.url(path), trust=trust, soap=soap, **kw)
        sa = None
        if soap == "1.1":
            sa = '"%s"' % (r.action or (T13 if trust == "13" else T05) + "/RST/Issue")
        return self.post(path, r.xml(), soapaction=sa, soap=soap)

    def stats(self):
        with urllib.request.urlopen(self.url("/stats"), context=self.ssl, timeout=10) as r:
            return json.loads(r.read())

    def assertFault(self, resp, reason_part, subcode="InvalidRequest", trust=T13, soap="1.2",
                    code="Sender"):
        status, headers, body = resp
        self.assertEqual(status, 500, body[:2000])
        doc = etree.fromstring(body)
        if soap == "1.2":
            self.assertTrue(headers["Content-Type"].startswith("application/soap+xml"))
            ns = {"s": S12}
            val = doc.find("s:Body/s:Fault/s:Code/s:Value", ns)
            self.assertEqual(val.text, "s:" + code)
            if subcode:
                sv = doc.find("s:Body/s:Fault/s:Code/s:Subcode/s:Value", ns)
                prefix, local = sv.text.split(":")
                self.assertEqual(sv.nsmap[prefix], trust)
                self.assertEqual(local, subcode)
            text = doc.find("s:Body/s:Fault/s:Reason/s:Text", ns)
            self.assertEqual(text.get("{http://www.w3.org/XML/1998/namespace}lang"), "en-US")
            reason = text.text
        else:
            self.assertTrue(headers["Content-Type"].startswith("text/xml"))
            fc = doc.find("{%s}Body/{%s}Fault/faultcode" % (S11, S11))
            prefix, local = fc.text.split(":")
            self.assertEqual(fc.nsmap[prefix], trust)
            self.assertEqual(local, subcode)
            reason = doc.find("{%s}Body/{%s}Fault/faultstring" % (S11, S11)).text
        self.assertIn(reason_part, reason)
        return reason

    def xmlsec_verify(self, assertion_bytes, saml1=False):
        f = os.path.join(self.tmp, "assertion-%s.xml" % uuid.uuid4().hex)
        with open(f, "wb") as fh:
            fh.write(assertion_bytes)
        id_attr = ("--id-attr:AssertionID", SAML1 + ":Assertion") if saml1 else \
                  ("--id-attr:ID", SAML2 + ":Assertion")
        r = subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", self.info["signing_cert"],
                            *id_attr, f], capture_output=True)
        return r.returncode, r.stderr.decode(errors="replace")

    def check_rstr(self, resp, trust=T13, soap=S12, token="saml2", key_type=None,
                   applies_to=AUDIENCE, user="alice", relates_to=None):
        status, headers, body = resp
        self.assertEqual(status, 200, body[:3000])
        ct = headers["Content-Type"]
        self.assertEqual(ct, "application/soap+xml; charset=utf-8" if soap == S12
                         else "text/xml; charset=utf-8")
        doc = etree.fromstring(body)
        ns = {"s": soap, "a": WSA, "t": trust, "o": WSSE, "k": WSSE11, "u": WSU, "p": WSP,
              "saml": SAML2 if token == "saml2" else SAML1}
        self.assertEqual(doc.tag, "{%s}Envelope" % soap)
        action = doc.findtext("s:Header/a:Action", namespaces=ns)
        self.assertEqual(action, T13 + "/RSTRC/IssueFinal" if trust == T13
                         else T05 + "/RSTR/Issue")
        rel = doc.findtext("s:Header/a:RelatesTo", namespaces=ns)
        self.assertTrue(rel.startswith("urn:uuid:"))
        if relates_to:
            self.assertEqual(rel, relates_to)
        self.assertIsNotNone(doc.find("s:Header/o:Security/u:Timestamp/u:Created", ns))
        if trust == T13:
            rstr = doc.find("s:Body/t:RequestSecurityTokenResponseCollection/"
                            "t:RequestSecurityTokenResponse", ns)
        else:
            self.assertIsNone(doc.find("s:Body/t:RequestSecurityTokenResponseCollection", ns))
            rstr = doc.find("s:Body/t:RequestSecurityTokenResponse", ns)
        self.assertIsNotNone(rstr)
        created = rstr.findtext("t:Lifetime/u:Created", namespaces=ns)
        expires = rstr.findtext("t:Lifetime/u:Expires", namespaces=ns)
        for v in (created, expires):
            self.assertRegex(v, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        c = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ")
        e = dt.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertEqual((e - c).total_seconds(), 600)
        if applies_to:
            self.assertEqual(rstr.findtext("p:AppliesTo/a:EndpointReference/a:Address",
                                           namespaces=ns), applies_to)
        else:
            self.assertIsNone(rstr.find("p:AppliesTo", ns))
        assertion = rstr.find("t:RequestedSecurityToken/saml:Assertion", ns)
        self.assertIsNotNone(assertion)
        self.assertEqual(len(rstr.find("t:RequestedSecurityToken", ns)), 1)
        aid = assertion.get("ID" if token == "saml2" else "AssertionID")
        self.assertRegex(aid, r"^_[0-9a-f]{32}$")
        profile = ("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
                   if token == "saml2" else
                   "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1")
        vt = ("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
              if token == "saml2" else
              "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID")
        for ref in ("t:RequestedAttachedReference", "t:RequestedUnattachedReference"):
            st = rstr.find(ref + "/o:SecurityTokenReference", ns)
            self.assertEqual(st.get("{%s}TokenType" % WSSE11), profile)
            ki = st.find("o:KeyIdentifier", ns)
            self.assertEqual(ki.get("ValueType"), vt)
            self.assertEqual(ki.text, aid)
        self.assertEqual(rstr.findtext("t:RequestType", namespaces=ns), trust + "/Issue")
        self.assertEqual(rstr.findtext("t:KeyType", namespaces=ns),
                         key_type or (T13 + "/Bearer" if trust == T13 else NOPROOF))
        tt = rstr.findtext("t:TokenType", namespaces=ns)
        self.assertIn(tt, (profile, SAML2 if token == "saml2" else SAML1))
        # Assertion content
        if token == "saml2":
            kids = [k.tag.split("}")[1] for k in assertion]
            self.assertEqual(kids, ["Issuer", "Signature", "Subject", "Conditions",
                                    "AuthnStatement", "AttributeStatement"])
            self.assertEqual(assertion.get("Version"), "2.0")
            self.assertEqual(assertion.findtext("saml:Issuer", namespaces=ns), self.info["issuer"])
            self.assertEqual(assertion.findtext("saml:Subject/saml:NameID", namespaces=ns), user)
            self.assertEqual(assertion.find("saml:Subject/saml:SubjectConfirmation", ns)
                             .get("Method"), "urn:oasis:names:tc:SAML:2.0:cm:bearer")
            cond = assertion.find("saml:Conditions", ns)
            self.assertEqual((cond.get("NotBefore"), cond.get("NotOnOrAfter")), (created, expires))
            aud = cond.findtext("saml:AudienceRestriction/saml:Audience", namespaces=ns)
            self.assertEqual(aud, applies_to)
            self.assertEqual(assertion.findtext(
                "saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef", namespaces=ns),
                "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
            self.assertEqual(assertion.findtext(
                "saml:AttributeStatement/saml:Attribute[@Name='name']/saml:AttributeValue",
                namespaces=ns), user)
        else:
            self.assertEqual((assertion.get("MajorVersion"), assertion.get("MinorVersion")),
                             ("1", "1"))
            self.assertEqual(assertion.get("Issuer"), self.info["issuer"])
            self.assertEqual(assertion[-1].tag, "{http://www.w3.org/2000/09/xmldsig#}Signature")
            cond = assertion.find("saml:Conditions", ns)
            self.assertEqual((cond.get("NotBefore"), cond.get("NotOnOrAfter")), (created, expires))
            self.assertEqual(cond.findtext("saml:AudienceRestrictionCondition/saml:Audience",
                                           namespaces=ns), applies_to)
            st = assertion.find("saml:AuthenticationStatement/saml:Subject", ns)
            self.assertEqual(st.findtext("saml:NameIdentifier", namespaces=ns), user)
            self.assertEqual(st.findtext("saml:SubjectConfirmation/saml:ConfirmationMethod",
                                         namespaces=ns), "urn:oasis:names:tc:SAML:1.0:cm:bearer")
        # Signature: cut the assertion out of the reply bytes verbatim, verify.
        m = re.search(rb"<saml:Assertion\b.*?</saml:Assertion>", body, re.S)
        self.assertIsNotNone(m)
        raw = m.group(0)
        rc, err = self.xmlsec_verify(raw, saml1=(token != "saml2"))
        self.assertEqual(rc, 0, err)
        self.assertIn("OK", err)
        # One byte changed in the subject name: must fail.
        name_tag = b"NameID" if token == "saml2" else b"NameIdentifier"
        i = raw.index(b">", raw.index(b"<saml:" + name_tag)) + 1
        self.assertEqual(raw[i:i + 1], user[0].encode())
        bad = raw[:i] + bytes([raw[i] ^ 0x03]) + raw[i + 1:]
        rc, err = self.xmlsec_verify(bad, saml1=(token != "saml2"))
        self.assertNotEqual(rc, 0, "tampered assertion verified!")
        return doc, raw

    # -- start-up artefacts --
    def test_00_startup_info_and_pki(self):
        for k in ("port", "base_url", "ca_file", "signing_cert", "client_cert", "client_key", "pid"):
            self.assertIn(k, self.info)
        self.assertEqual(self.info["base_url"], "https://127.0.0.1:%d" % self.info["port"])
        self.assertEqual(self.info["pid"], self.proc.pid)
        d = os.path.dirname(self.info["ca_file"])
        for f in ("ca.pem", "signing.pem", "signing.key", "client-ca.pem", "client.pem",
                  "client.key"):
            self.assertTrue(os.path.isfile(os.path.join(d, f)), f)
        # Server cert valid for both 127.0.0.1 and localhost.
        for host in ("127.0.0.1", "localhost"):
            c = http.client.HTTPSConnection(host, self.info["port"], context=self.ssl, timeout=10)
            c.request("GET", "/stats")
            self.assertEqual(c.getresponse().status, 200)
            c.close()
        r = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(d, "client-ca.pem"),
                            "-purpose", "sslclient", self.info["client_cert"]], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # TLS 1.1 is refused.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.load_verify_locations(self.info["ca_file"])
            old.set_ciphers("DEFAULT:@SECLEVEL=0")      # let the client offer TLS 1.1
            old.minimum_version = ssl.TLSVersion.TLSv1_1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises(ssl.SSLError) as cm:
            c = http.client.HTTPSConnection("127.0.0.1", self.info["port"], context=old, timeout=10)
            c.request("GET", "/stats")
            c.getresponse()
        self.assertIn("PROTOCOL_VERSION", str(cm.exception).upper())

    # -- successes --
    def test_13_saml2_default(self):
        mid = "urn:uuid:%s" % uuid.uuid4()
        self.check_rstr(self.rst(P13, message_id=mid), relates_to=mid)

    def test_concurrent_requests(self):
        def one(i):
            user, pw = ("alice", "secret") if i % 2 else ("bob", "pw2")
            return self.rst(P13 if i % 3 else P05, user=user, password=pw)
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(24)))
        self.assertEqual([r[0] for r in results], [200] * 24)

    def test_13_saml2_explicit_and_saml11(self):
        self.check_rstr(self.rst(P13, token_type=SAML2))
        self.check_rstr(self.rst(P13, token_type="http://docs.oasis-open.org/wss/"
                                                 "oasis-wss-saml-token-profile-1.1#SAMLV1.1"),
                        token="saml11")
        self.check_rstr(self.rst(P13, token_type=SAML1, user="bob", password="pw2"),
                        token="saml11", user="bob")

    def test_13_no_applies_to_no_keytype(self):
        doc, raw = self.check_rstr(self.rst(P13, applies_to=None, key_type=None), applies_to=None)
        self.assertNotIn(b"AudienceRestriction", raw)

    def test_13_bearer_erratum_spelling_echoed(self):
        kt = "http://docs.oasis-open.org/ws-sx/wstrust/200512/Bearer"
        self.check_rstr(self.rst(P13, key_type=kt), key_type=kt)

    def test_context_echoed(self):
        body = RST(self.url(P13)).xml().replace(b"<wst:RequestSecurityToken ",
                                                b'<wst:RequestSecurityToken Context="ctx-1" ')
        doc, _ = self.check_rstr(self.post(P13, body))
        rstr = doc.find(".//{%s}RequestSecurityTokenResponse" % T13)
        self.assertEqual(rstr.get("Context"), "ctx-1")

    def test_2005_endpoint(self):
        self.check_rstr(self.rst(P05), trust=T05)
        self.check_rstr(self.rst(P05, token_type=SAML1), trust=T05, token="saml11")

    def test_soap11_endpoints(self):
        self.check_rstr(self.rst(P13_11, soap="1.1"), soap=S11)
        self.check_rstr(self.rst(P05_11, soap="1.1", token_type=SAML1), trust=T05, soap=S11,
                        token="saml11")

    def test_password_digest_and_replay(self):
        nonce = os.urandom(16)
        self.check_rstr(self.rst(P13, password_type="digest", nonce=nonce))
        self.assertFault(self.rst(P13, password_type="digest", nonce=nonce),
                         "already been used", subcode="FailedAuthentication")
        self.assertFault(self.rst(P13, password_type="digest", password="wrong"), ID3242,
                         subcode="FailedAuthentication")

    # -- faults --
    def test_wrong_password(self):
        r = self.assertFault(self.rst(P13, password="wrong"), ID3242,
                             subcode="FailedAuthentication")
        self.assertEqual(r, ID3242)
        self.assertEqual(self.assertFault(self.rst(P13, user="mallory"), ID3242,
                                          subcode="FailedAuthentication"), ID3242)
        self.assertFault(self.rst(P05, password="wrong"), ID3242,
                         subcode="FailedAuthentication", trust=T05)
        self.assertFault(self.rst(P05_11, soap="1.1", password="wrong"), ID3242,
                         subcode="FailedAuthentication", trust=T05, soap="1.1")

    def test_fault_relates_to_message_id(self):
        mid = "urn:uuid:%s" % uuid.uuid4()
        status, _, body = self.rst(P13, password="wrong", message_id=mid)
        doc = etree.fromstring(body)
        self.assertEqual(doc.findtext("{%s}Header/{%s}RelatesTo" % (S12, WSA)), mid)
        self.assertEqual(doc.findtext("{%s}Header/{%s}Action" % (S12, WSA)),
                         WSA + "/soap/fault")

    def test_wrong_to(self):
        self.assertFault(self.rst(P13, to="https://127.0.0.1:1/adfs/services/trust/13/"
                                          "usernamemixed"), "wsa:To does not match the endpoint")
        self.assertFault(self.rst(P13, to=self.url(P05)), "wsa:To does not match the endpoint")

    def test_missing_timestamp(self):
        self.assertFault(self.rst(P13, timestamp=False), "wsu:Timestamp missing")

    def test_expired_timestamp(self):
        self.assertFault(self.rst(P13, created=-900, expires=-600), "wsu:Timestamp has expired")

    def test_future_timestamp(self):
        self.assertFault(self.rst(P13, created=900, expires=1200), "in the future")

    def test_doctype(self):
        self.assertFault(self.rst(P13, doctype='<!DOCTYPE s:Envelope [<!ENTITY x "y">]>'),
                         "DOCTYPE")
        self.assertFault(self.rst(P13, doctype='<!DOCTYPE foo>'), "DOCTYPE")

    def test_unknown_rst_child(self):
        self.assertFault(self.rst(P13, extra_rst="<wst:KeySize>256</wst:KeySize>"),
                         "unsupported RST element wst:KeySize")
        self.assertFault(self.rst(P13, extra_rst='<x:Foo xmlns:x="urn:x"/>'),
                         "unsupported RST element {urn:x}Foo")

    def test_bad_token_and_key_types(self):
        self.assertFault(self.rst(P13, token_type="urn:x:token"), "unsupported TokenType")
        self.assertFault(self.rst(P13, key_type=T13 + "/SymmetricKey"), "unsupported KeyType")
        self.assertFault(self.rst(P05, key_type=T13 + "/Bearer"), "unsupported KeyType", trust=T05)
        self.assertFault(self.rst(P13, request_type=T13 + "/Renew"), "unsupported wst:RequestType")

    def test_bad_addressing(self):
        self.assertFault(self.rst(P13, action=T05 + "/RST/Issue"), "wsa:Action")
        self.assertFault(self.rst(P13, message_id="uuid:123"), "wsa:MessageID")
        # ADAL's historical lower-case wsa:messageID is not wsa:MessageID.
        body = RST(self.url(P13)).xml().replace(b"wsa:MessageID", b"wsa:messageID")
        self.assertFault(self.post(P13, body), "wsa:MessageID header missing (found wsa:messageID")
        self.assertFault(self.rst(P13, reply_to=False), "wsa:ReplyTo header missing")
        self.assertFault(self.rst(P13, extra_header='<x:H xmlns:x="urn:x" s:mustUnderstand="1"/>'),
                         "not understood", subcode=None, code="MustUnderstand")
        # A header without mustUnderstand is ignored.
        self.check_rstr(self.rst(P13, extra_header='<x:H xmlns:x="urn:x"/>'))

    def test_http_level(self):
        body = RST(self.url(P13)).xml()
        self.assertFault(self.post(P13, body, ctype="text/xml; charset=utf-8"), "Content-Type")
        self.assertFault(self.post(P13, body, ctype="application/soap+xml"), "Content-Type")
        self.assertFault(self.post(P13, body, ctype='application/soap+xml; charset=utf-8; '
                                                    'action="urn:x"'),
                         "Content-Type action parameter")
        ok = 'application/soap+xml; charset=UTF-8; action="%s/RST/Issue"' % T13
        self.check_rstr(self.post(P13, RST(self.url(P13)).xml(), ctype=ok))
        body11 = RST(self.url(P13_11), soap="1.1").xml()
        self.assertFault(self.post(P13_11, body11, soap="1.1"), "SOAPAction header missing",
                         soap="1.1")
        self.assertFault(self.post(P13_11, body11, soap="1.1", soapaction='"urn:other"'),
                         "does not match wsa:Action", soap="1.1")
        # SOAP 1.1 envelope to the SOAP 1.2 endpoint.
        self.assertFault(self.post(P13, body11), "SOAP version mismatch", subcode=None,
                         code="VersionMismatch")
        self.assertFault(self.post(P13, b"<s:Envelope"), "not well-formed")
        self.assertFault(self.post(P13, b"x" * ((1 << 20) + 1)), "exceeds 1048576 bytes")

    def test_stats_count(self):
        before = self.stats()
        self.check_rstr(self.rst(P13))
        self.assertFault(self.rst(P13, password="nope"), ID3242, subcode="FailedAuthentication")
        after = self.stats()
        self.assertEqual(after["requests"].get(P13, 0) - before["requests"].get(P13, 0), 2)
        self.assertEqual(after["issued"] - before["issued"], 1)
        self.assertEqual(after["faults"] - before["faults"], 1)

    def test_canned_verbatim(self):
        status, headers, body = self.post("/canned/reply", b"<anything/>")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/soap+xml; charset=utf-8")
        self.assertEqual(body, self.canned_bytes)

    def test_test_paths(self):
        t0 = time.monotonic()
        status, _, body = self.post("/test/slow?seconds=0.5", b"<x/>")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        self.assertIn(b"Envelope", body)
        status, _, body = self.post("/test/status?code=503", b"<x/>")
        self.assertEqual((status, body), (503, b""))
        status, _, body = self.post("/test/big?bytes=300000", b"<x/>")
        self.assertEqual((status, len(body)), (200, 300000))
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError,
                                urllib.error.URLError, ssl.SSLError)):
            self.post("/test/close", b"<x/>")


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="devsts-life-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_sigterm(self):
        p, info = start_sts(self.tmp, "--name", "urn:test:issuer")
        self.addCleanup(stop_sts, p)
        self.assertEqual(info["issuer"], "urn:test:issuer")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)

    def test_client_auth_required(self):
        p, info = start_sts(self.tmp, "--client-auth", "required")
        self.addCleanup(stop_sts, p)
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with self.assertRaises((ssl.SSLError, OSError)):
            c = http.client.HTTPSConnection("127.0.0.1", info["port"], context=ctx, timeout=10)
            c.request("GET", "/stats")
            c.getresponse().read()
        ctx.load_cert_chain(info["client_cert"], info["client_key"])
        c = http.client.HTTPSConnection("127.0.0.1", info["port"], context=ctx, timeout=10)
        c.request("GET", "/stats")
        self.assertEqual(c.getresponse().status, 200)
        c.close()

    def test_stdin_eof(self):
        p, info = start_sts(self.tmp)
        self.addCleanup(stop_sts, p)
        p.stdin.close()
        self.assertEqual(p.wait(10), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
