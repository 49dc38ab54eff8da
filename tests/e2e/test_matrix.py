"""Issue 5's matrix, end to end: trust version x SOAP version x token type
(SAML 1.1, SAML 2.0, SCT) x key type x entropy mode, through the wstrust CLI,
libwstrust, wstrustd and its sandboxed worker, against the dev STS, which
checks every RST strictly.  For each success the test checks the token type,
the key type (JSON and the token's own subject confirmation), the lifetime,
the references, and that the proof key the CLI prints is the one the STS
computed (GET /testkeys?id=).  Then each invalid combination, with the
HRESULT and the error string the caller gets.

One dev STS and one broker serve everything (a profile per (trust, soap)
group), so the whole matrix runs in well under a minute."""
import base64, json, os, re, shutil, ssl, sys, tempfile, unittest, urllib.error, urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import Broker, DevSTS, cli, write_secret
from lxml import etree

SAML2 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
SAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
NS_SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SC = {"2005": "http://schemas.xmlsoap.org/ws/2005/02/sc",
      "1.3": "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"}
E_INVALIDARG = "0x80070057"
WS_E_QUOTA_EXCEEDED = "0x803D0008"
WS_E_SECURITY_VERIFICATION_FAILURE = "0x803D000A"
WS_E_ENDPOINT_FAULT_RECEIVED = "0x803D0013"

# (trust, soap) -> STS endpoint path
GROUPS = {
    ("1.3", "1.2"): "/adfs/services/trust/13/usernamemixed",
    ("2005", "1.2"): "/adfs/services/trust/2005/usernamemixed",
    ("1.3", "1.1"): "/soap11/trust/13/usernamemixed",
    ("2005", "1.1"): "/soap11/trust/2005/usernamemixed",
}
LIFETIME = 600


def name_of(trust, soap):
    return "t%s-s%s" % (trust.replace(".", ""), soap.replace(".", ""))


def ts(s):
    return datetime.strptime(re.sub(r"\.\d+", "", s).replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")


class Matrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-matrix-")
        os.chmod(cls.tmp, 0o755)
        cls.sts = DevSTS(cls.tmp, "--lifetime", str(LIFETIME))
        cls.secret = os.path.join(cls.tmp, "alice.secret")
        write_secret(cls.secret, "secret")
        info = cls.sts.info
        cls.client_cert_pem = open(info["client_cert"], "rb").read()

        def profile(path, trust, soap, **over):
            p = {"endpoint": cls.sts.url(path), "trust_version": trust, "soap_version": soap,
                 "ca_file": cls.sts.ca_file, "auth": "username", "username": "alice",
                 "password_file": cls.secret, "applies_to": "urn:example:rp", "key_type": "bearer",
                 "token_type": SAML2, "release_proof_key": "yes",
                 "client_cert": info["client_cert"], "client_key": info["client_key"]}
            p.update(over)
            return p

        profiles = {name_of(t, s): profile(path, t, s) for (t, s), path in GROUPS.items()}
        profiles["withheld"] = profile(GROUPS[("1.3", "1.2")] + "?withheld", "1.3", "1.2", release_proof_key="no")
        for v, t in (("13", "1.3"), ("2005", "2005")):
            profiles["ek" + v] = profile("/adfs/services/trust/%s/usernamemixed-encryptedkey" % v, t, "1.2")
            profiles["rsa15-" + v] = profile("/adfs/services/trust/%s/usernamemixed-encryptedkey-rsa15" % v,
                                             t, "1.2")
            profiles["rsa15ok-" + v] = profile(
                "/adfs/services/trust/%s/usernamemixed-encryptedkey-rsa15" % v, t, "1.2",
                allow_rsa15="yes", endpoint=cls.sts.url(
                    "/adfs/services/trust/%s/usernamemixed-encryptedkey-rsa15?ok" % v))
        cls.broker = Broker(cls.tmp, profiles)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----

    def token(self, profile, *args):
        r = cli("token", "--socket", self.broker.socket, "--profile", profile, "--format", "json", *args)
        self.assertEqual(r.returncode, 0, "%s %s: %s\nbroker log tail:\n%s" % (
            profile, " ".join(args), r.stderr.decode(), self.broker.read_log()[-3000:]))
        return json.loads(r.stdout)

    def refused(self, profile, args, hresult, *messages):
        r = cli("token", "--socket", self.broker.socket, "--profile", profile, "--format", "json", *args)
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, "%s %s succeeded: %s" % (profile, args, r.stdout[:300]))
        self.assertEqual(r.stdout, b"", "output on failure")
        self.assertIn("(HRESULT %s)" % hresult, err.replace("0x803d", "0x803D"))
        for m in messages:
            self.assertIn(m, err)
        return err

    def sts_key(self, token_id):
        ctx = ssl.create_default_context(cafile=self.sts.ca_file)
        url = self.sts.base + "/testkeys?id=" + urllib.request.quote(token_id, safe="")
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def check_common(self, j, token_type, key_type):
        self.assertEqual(j["token_type"], token_type)
        self.assertEqual(j["key_type"], key_type)
        start, end = ts(j["valid_from"]), ts(j["valid_till"])
        self.assertEqual((end - start).total_seconds(), LIFETIME)
        self.assertLess(abs((datetime.now(timezone.utc) - start).total_seconds()), 60)
        self.assertIn("attached_reference", j)
        self.assertIn("unattached_reference", j)
        return etree.fromstring(j["token"].encode())

    def check_proof(self, j, token_id, bits, entropy):
        """The released key is the one the STS computed for this token."""
        want = self.sts_key(token_id)
        self.assertIsNotNone(want, "the STS has no proof key for %s" % token_id)
        self.assertEqual(want["entropy"], entropy)
        self.assertEqual(want["key_size"], bits)
        self.assertIs(j.get("proof_key_withheld"), False)
        self.assertIn("proof_key", j, "symmetric key not released")
        self.assertEqual(base64.b64decode(j["proof_key"]), base64.b64decode(want["key"]))
        self.assertEqual(len(base64.b64decode(j["proof_key"])) * 8, bits)

    def check_no_proof(self, j, token_id):
        self.assertNotIn("proof_key", j)
        self.assertIs(j.get("proof_key_withheld"), False)
        self.assertIsNone(self.sts_key(token_id))

    def check_saml(self, j, token_type, key_type, bits=None, entropy=None):
        root = self.check_common(j, token_type, key_type)
        v2 = token_type == SAML2
        ns = NS_SAML2 if v2 else NS_SAML1
        self.assertEqual(root.tag, "{%s}Assertion" % ns)
        aid = root.get("ID" if v2 else "AssertionID")
        # references name the assertion
        for ref in ("attached_reference", "unattached_reference"):
            str_ = etree.fromstring(j[ref].encode())
            self.assertEqual(str_.findtext("{%s}KeyIdentifier" % NS_WSSE), aid)
        if v2:
            method = root.find("{%s}Subject/{%s}SubjectConfirmation" % (ns, ns)).get("Method")
        else:
            method = root.findtext(".//{%s}SubjectConfirmation/{%s}ConfirmationMethod" % (ns, ns))
        kind = "2.0" if v2 else "1.0"
        if key_type == "bearer":
            self.assertEqual(method, "urn:oasis:names:tc:SAML:%s:cm:bearer" % kind)
            self.check_no_proof(j, aid)
        else:
            self.assertEqual(method, "urn:oasis:names:tc:SAML:%s:cm:holder-of-key" % kind)
            if key_type == "asymmetric":
                # the subject's key, not the issuer's signature KeyInfo
                sc = root.find(".//{%s}SubjectConfirmation" % ns)
                cert = sc.findtext(".//{%s}X509Certificate" % NS_DS)
                pem = b"".join(l for l in self.client_cert_pem.splitlines() if not l.startswith(b"-----"))
                self.assertEqual(base64.b64decode(cert), base64.b64decode(pem))
                self.check_no_proof(j, aid)
            else:
                self.check_proof(j, aid, bits, entropy)
        return root

    def check_sct(self, j, sc, bits, entropy, instance=False):
        root = self.check_common(j, SC[sc] + "/sct", "symmetric")
        self.assertEqual(root.tag, "{%s}SecurityContextToken" % SC[sc])
        ident = root.findtext("{%s}Identifier" % SC[sc])
        self.assertTrue(ident.startswith("urn:uuid:"))
        att = etree.fromstring(j["attached_reference"].encode()).find("{%s}Reference" % NS_WSSE)
        unatt = etree.fromstring(j["unattached_reference"].encode()).find("{%s}Reference" % NS_WSSE)
        self.assertEqual(att.get("URI"), "#" + root.get("{%s}Id" % NS_WSU))
        self.assertEqual(unatt.get("URI"), ident)
        inst = root.findtext("{%s}Instance" % SC[sc])
        self.assertEqual(inst is not None, instance)
        # the key of this issue/renewal: an SCT renewal files it under its Instance
        self.check_proof(j, inst or ident, bits, entropy)
        return root, ident, inst

    # ---- the matrix ----

    def test_saml_matrix(self):
        n = 0
        for (trust, soap) in GROUPS:
            prof = name_of(trust, soap)
            for tt in (SAML11, SAML2):
                base = ("--token-type", tt)
                with self.subTest(trust=trust, soap=soap, token=tt, key="bearer"):
                    self.check_saml(self.token(prof, *base, "--key-type", "bearer"), tt, "bearer")
                with self.subTest(trust=trust, soap=soap, token=tt, key="asymmetric"):
                    self.check_saml(self.token(prof, *base, "--key-type", "asymmetric"), tt, "asymmetric")
                for entropy, size in (("server", None), ("client", "128"), ("combined", "192"),
                                      ("server", "512"), ("combined", None), ("client", None)):
                    args = base + ("--key-type", "symmetric", "--entropy", entropy)
                    args += ("--key-size", size) if size else ()
                    with self.subTest(trust=trust, soap=soap, token=tt, key="symmetric", entropy=entropy,
                                      size=size):
                        self.check_saml(self.token(prof, *args), tt, "symmetric", int(size or 256), entropy)
                        n += 1
                # the default entropy mode is SERVER_ONLY
                with self.subTest(trust=trust, soap=soap, token=tt, key="symmetric", entropy="default"):
                    self.check_saml(self.token(prof, *base, "--key-type", "symmetric"), tt, "symmetric",
                                    256, "server")
        self.assertEqual(n, 4 * 2 * 6)

    def test_sct_issue_and_renew(self):
        for (trust, soap) in GROUPS:
            prof = name_of(trust, soap)
            for entropy, size in (("server", None), ("client", "256"), ("combined", "128")):
                args = ["--action", "new-context", "--sc-version", trust, "--entropy", entropy]
                args += ["--key-size", size] if size else []
                bits = int(size or 256)
                with self.subTest(trust=trust, soap=soap, entropy=entropy, op="issue"):
                    j = self.token(prof, *args)
                    root, ident, _ = self.check_sct(j, trust, bits, entropy)
                    first_key = j["proof_key"]
                with self.subTest(trust=trust, soap=soap, entropy=entropy, op="renew"):
                    path = self.write("sct-%s.xml" % prof, j["token"])
                    r = self.token(prof, "--action", "renew-context", "--existing-token", path,
                                   "--entropy", entropy, *(["--key-size", size] if size else []))
                    root2, ident2, inst = self.check_sct(r, trust, bits, entropy, instance=True)
                    self.assertEqual(ident2, ident, "renewal changed the Identifier")
                    self.assertNotEqual(r["proof_key"], first_key, "renewal kept the old key")
                    # renew the renewed token (the STR names the Identifier)
                    path2 = self.write("sct2-%s.xml" % prof, r["token"])
                    r2 = self.token(prof, "--action", "renew-context", "--existing-token", path2,
                                    "--entropy", entropy, *(["--key-size", size] if size else []))
                    _, ident3, inst3 = self.check_sct(r2, trust, bits, entropy, instance=True)
                    self.assertEqual(ident3, ident)
                    self.assertNotEqual(inst3, inst)
        # explicit symmetric key type with an SCT
        j = self.token(name_of("1.3", "1.2"), "--action", "new-context", "--sc-version", "1.3",
                       "--key-type", "symmetric")
        self.check_sct(j, "1.3", 256, "server")

    def test_bearer_key_type_versions(self):
        prof = name_of("1.3", "1.2")
        for v in ("original-specification", "original-schema", "errata-01"):
            with self.subTest(bearer_version=v):
                self.check_saml(self.token(prof, "--key-type", "bearer", "--bearer-version", v),
                                SAML2, "bearer")
        # ignored under February 2005 (NoProofKey)
        self.check_saml(self.token(name_of("2005", "1.2"), "--key-type", "bearer", "--bearer-version",
                                   "original-schema"), SAML2, "bearer")

    def test_local_and_service_parameters(self):
        for trust in ("1.3", "2005"):
            t = "http://docs.oasis-open.org/ws-sx/ws-trust/200512" if trust == "1.3" else \
                "http://schemas.xmlsoap.org/ws/2005/02/trust"
            claims = ('<wst:Claims xmlns:wst="%s" Dialect="urn:test:dialect">'
                      '<c:ClaimType xmlns:c="urn:test" Uri="urn:test:claim:upn"/></wst:Claims>' % t)
            obo = ('<wst:OnBehalfOf xmlns:wst="%s"><wsse:UsernameToken xmlns:wsse="%s">'
                   '<wsse:Username>bob</wsse:Username></wsse:UsernameToken></wst:OnBehalfOf>' % (t, NS_WSSE))
            # 1.3: service parameters inside SecondaryParameters (Claims is allowed there);
            # 2005: after the local ones at the top level.
            local, service = (obo, claims) if trust == "1.3" else (claims, obo)
            with self.subTest(trust=trust):
                j = self.token(name_of(trust, "1.2"), "--key-type", "bearer",
                               "--local-params", self.write("local-%s.xml" % trust, "\n" + local + "\n"),
                               "--service-params", self.write("service-%s.xml" % trust, service))
                root = self.check_saml(j, SAML2, "bearer")
                attrs = {a.get("Name"): [v.text for v in a] for a in root.iter("{%s}Attribute" % NS_SAML2)}
                self.assertEqual(attrs["urn:wstrust:devsts:claims:dialect"], ["urn:test:dialect"])
                self.assertEqual(attrs["urn:wstrust:devsts:claims"], ["urn:test:claim:upn"])
                self.assertEqual(attrs["urn:wstrust:devsts:onbehalfof"], ["bob"])

    def test_encrypted_key_proof_tokens(self):
        for v, trust in (("13", "1.3"), ("2005", "2005")):
            with self.subTest(trust=trust, padding="oaep"):
                self.check_saml(self.token("ek" + v, "--key-type", "symmetric", "--key-size", "256"),
                                SAML2, "symmetric", 256, "server")
            with self.subTest(trust=trust, padding="rsa15-allowed"):
                self.check_saml(self.token("rsa15ok-" + v, "--key-type", "symmetric"), SAML2, "symmetric",
                                256, "server")
            with self.subTest(trust=trust, padding="rsa15-refused"):
                self.refused("rsa15-" + v, ["--key-type", "symmetric"], WS_E_SECURITY_VERIFICATION_FAILURE,
                             "RSA 1.5 (rsa-1_5), which is refused", "allow_rsa15 = yes")
            # COMBINED: these endpoints send the issuer wst:Entropy as an
            # xenc:EncryptedKey; the broker decrypts it, then P_SHA1.
            for size in ("256", "128"):
                args = ("--key-type", "symmetric", "--entropy", "combined", "--key-size", size)
                with self.subTest(trust=trust, padding="oaep", entropy="combined", size=size):
                    self.check_saml(self.token("ek" + v, *args), SAML2, "symmetric", int(size), "combined")
                with self.subTest(trust=trust, padding="rsa15-allowed", entropy="combined", size=size):
                    self.check_saml(self.token("rsa15ok-" + v, *args), SAML2, "symmetric", int(size), "combined")
            with self.subTest(trust=trust, padding="oaep", entropy="combined", token="SCT"):
                self.check_sct(self.token("ek" + v, "--action", "new-context", "--sc-version", trust,
                                          "--entropy", "combined"), trust, 256, "combined")
            with self.subTest(trust=trust, padding="rsa15-refused", entropy="combined"):
                self.refused("rsa15-" + v, ["--key-type", "symmetric", "--entropy", "combined"],
                             WS_E_SECURITY_VERIFICATION_FAILURE,
                             "the STS encrypted the issuer Entropy with RSA 1.5 (rsa-1_5), which is refused",
                             "allow_rsa15 = yes")

    def test_proof_key_withheld_in_daemon_mode_by_default(self):
        j = self.token("withheld", "--key-type", "symmetric", "--entropy", "combined")
        self.assertNotIn("proof_key", j)
        self.assertIs(j["proof_key_withheld"], True)
        root = etree.fromstring(j["token"].encode())
        self.assertIsNotNone(self.sts_key(root.get("ID")), "the STS made no key: nothing was withheld")
        # bearer: nothing to withhold
        j = self.token("withheld", "--key-type", "bearer")
        self.assertIs(j["proof_key_withheld"], False)

    # ---- invalid combinations: HRESULT and error string ----

    def test_invalid_combinations(self):
        sct_path = self.write("not-an-sct.xml", '<saml:Assertion xmlns:saml="%s" ID="x"/>' % NS_SAML2)
        bad_xml = self.write("bad.xml", "<a><b></a>")
        sct13 = self.write("sct13.xml", '<c:SecurityContextToken xmlns:c="%s"><c:Identifier>urn:uuid:'
                           '00000000-0000-4000-8000-000000000001</c:Identifier></c:SecurityContextToken>' % SC["1.3"])
        doctype = self.write("doctype.xml", '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
        p = name_of("1.3", "1.2")
        # The library refuses some of these itself (with its own wording);
        # either way the caller gets E_INVALIDARG and a string naming the
        # property.  Those only the broker can judge (they depend on the
        # profile, or on what the XML holds) carry the broker's wording.
        cases = [
            (["--key-type", "bearer", "--key-size", "256"], ["ISSUED_TOKEN_KEY_SIZE", "bearer"]),
            (["--key-type", "bearer", "--entropy", "client"], ["ISSUED_TOKEN_KEY_ENTROPY", "bearer"]),
            (["--key-type", "asymmetric", "--entropy", "combined"], ["ISSUED_TOKEN_KEY_ENTROPY", "asymmetric"]),
            (["--key-type", "asymmetric", "--key-size", "256"], ["ISSUED_TOKEN_KEY_SIZE", "asymmetric"]),
            (["--key-type", "symmetric", "--key-size", "100"], ["ISSUED_TOKEN_KEY_SIZE"]),
            (["--key-type", "symmetric", "--key-size", "1024"], ["ISSUED_TOKEN_KEY_SIZE 1024 bits"]),
            (["--existing-token", sct_path], ["EXISTING_TOKEN", "RENEW_CONTEXT"]),
            (["--action", "new-context", "--existing-token", sct_path], ["EXISTING_TOKEN", "RENEW_CONTEXT"]),
            (["--action", "renew-context"], ["EXISTING_TOKEN"]),
            # broker only: the profile's key type is bearer, so a key size contradicts it
            (["--key-size", "256"], ["ISSUED_TOKEN_KEY_SIZE needs a symmetric key type, but profile"]),
            (["--action", "renew-context", "--existing-token", sct_path],
             ["EXISTING_TOKEN: RENEW_CONTEXT renews a security context token"]),
            (["--action", "new-context", "--key-type", "bearer"], ["REQUEST_ACTION NEW_CONTEXT"]),
            (["--action", "new-context", "--token-type", SAML2], ["contradicts REQUEST_ACTION NEW_CONTEXT"]),
            (["--local-params", bad_xml], ["LOCAL_REQUEST_PARAMETERS"]),
            (["--service-params", doctype], ["SERVICE_REQUEST_PARAMETERS"]),
            (["--trust-version", "2005"], ["trust version February 2005 was requested, but profile"]),
            (["--action", "renew-context", "--existing-token", sct13, "--sc-version", "2005"],
             ["EXISTING_TOKEN is a WS-SecureConversation 1.3 token, but SECURE_CONVERSATION_VERSION is "
              "February 2005"]),
        ]
        for args, msgs in cases:
            with self.subTest(args=args):
                self.refused(p, args, E_INVALIDARG, *msgs)

    def test_sts_refusals(self):
        p = name_of("1.3", "1.2")
        # SecureConversation February 2005 against a WS-Trust 1.3 endpoint (the STS pairs 1.3/1.3)
        self.refused(p, ["--action", "new-context", "--sc-version", "2005"], WS_E_ENDPOINT_FAULT_RECEIVED,
                     "The STS returned a fault")
        # renewing an SCT this STS never issued
        forged = self.write("forged-sct.xml", '<c:SecurityContextToken xmlns:c="%s"><c:Identifier>'
                            'urn:uuid:00000000-0000-4000-8000-000000000000</c:Identifier>'
                            '</c:SecurityContextToken>' % SC["1.3"])
        self.refused(p, ["--action", "renew-context", "--existing-token", forged], WS_E_ENDPOINT_FAULT_RECEIVED,
                     "no security context token with Identifier")
        # a reply over the caller's quota
        self.refused(p, ["--max-reply", "512"], WS_E_QUOTA_EXCEEDED)


if __name__ == "__main__":
    unittest.main(verbosity=2)
