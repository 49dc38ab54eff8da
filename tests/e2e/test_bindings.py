"""Issue 6 end to end: every STS channel security binding the broker holds,
against dev STSes that verify each credential for real, through wstrustd, its
sandboxed workers and the wstrust CLI.

For each binding: success, and each failure the issue lists with the error
the caller sees; the federation chain (identity STS -> resource STS) with the
cached first token reused; the signed requests (captured at the STS) verify
with `xmlsec1 --verify`; and the password and private-key bytes are found in
neither the broker's log, nor its workers' memory, nor the client's memory."""
import base64, fcntl, hashlib, json, os, secrets, shutil, socket, ssl, subprocess, sys, tempfile, termios
import threading, time, unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import CLI, Broker, DevSTS, SAML2, cli, read_mem, write_secret
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
T13 = "/adfs/services/trust/13/"
F_SETPIPE_SZ = 1031


def run(*cmd):
    return subprocess.run(cmd, capture_output=True)


def spki_pin(cert_path):
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def der_int(n):
    b = n.to_bytes((n.bit_length() + 8) // 8 or 1, "big")
    return b"\x02" + der_len(len(b)) + b


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tampered_rsa_pem(key_path):
    """The same RSA key (same n, e: it still 'belongs' to its certificate)
    with d and the CRT exponents changed: every signature it makes is wrong.
    Written by hand, as the cryptography module refuses inconsistent keys."""
    with open(key_path, "rb") as f:
        k = serialization.load_pem_private_key(f.read(), None)
    n = k.private_numbers()
    pub = n.public_numbers
    ints = [0, pub.n, pub.e, n.d ^ 0x10, n.p, n.q, n.dmp1 ^ 0x10, n.dmq1 ^ 0x10, n.iqmp]
    body = b"".join(der_int(i) for i in ints)
    der = b"\x30" + der_len(len(body)) + body
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN RSA PRIVATE KEY-----\n" + b"\n".join(lines) + b"\n-----END RSA PRIVATE KEY-----\n"


def key_needles(key_path):
    """Byte strings that only a copy of the private key contains: a PEM body
    line, and 32 bytes of the private exponent in both byte orders (OpenSSL
    BIGNUMs are little-endian limbs on x86-64)."""
    with open(key_path, "rb") as f:
        pem = f.read()
    k = serialization.load_pem_private_key(pem, None)
    d = k.private_numbers().d
    nb = (d.bit_length() + 7) // 8
    big, little = d.to_bytes(nb, "big"), d.to_bytes(nb, "little")
    return {"pem line": pem.splitlines()[3], "d (big-endian)": big[40:72], "d (little-endian)": little[40:72]}


class TLSProbe:
    """A TLS server on 127.0.0.1 whose certificate (from our own CA) names
    wrong.example: a client that checks host names must give up after the
    handshake, before sending a byte."""

    def __init__(self, tmp):
        d = os.path.join(tmp, "probe")
        os.makedirs(d)
        self.ca = os.path.join(d, "ca.pem")
        ca_key, key, csr, crt = (os.path.join(d, n) for n in ("ca.key", "srv.key", "srv.csr", "srv.pem"))
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:wrong.example\n")
        for cmd in (
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca,
             "-subj", "/CN=probe CA", "-days", "2"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=wrong.example"],
            ["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext]):
            r = run(*cmd)
            assert r.returncode == 0, r.stderr.decode()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self.stop_flag = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                c.settimeout(5)
                t = self.ctx.wrap_socket(c, server_side=True)
                while True:
                    b = t.recv(65536)
                    if not b:
                        break
                    self.received += b
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def stop(self):
        self.stop_flag = True
        self.thread.join(2)
        self.sock.close()


class Bindings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-bind-")
        os.chmod(cls.tmp, 0o755)
        cls.password = "pw-" + secrets.token_hex(12)
        cls.cap_idp = os.path.join(cls.tmp, "capture-idp")
        cls.cap_rp = os.path.join(cls.tmp, "capture-rp")
        os.makedirs(cls.cap_idp)
        os.makedirs(cls.cap_rp)
        rp_cert_copy = os.path.join(cls.tmp, "resource-rp.pem")   # filled once the resource STS exists
        users = "alice:%s,bob:%s" % (cls.password, cls.password + "b")
        cls.idp = DevSTS(cls.tmp, "--users", users, "--client-auth", "optional", "--capture-dir", cls.cap_idp,
                         "--rp-cert", rp_cert_copy, "--name", "urn:wstrust:test:idp")
        cls.rp = DevSTS(cls.tmp, "--users", users, "--trust-issuer-cert", cls.idp.signing_cert,
                        "--capture-dir", cls.cap_rp, "--name", "urn:wstrust:test:rp")
        shutil.copy(cls.rp.info["rp_cert"], rp_cert_copy)
        # An identity STS whose tokens are already expired when issued; it asks
        # for no TLS client certificate, so message-level certificate failures
        # are its verdict, not the TLS layer's.
        cls.idp_old = DevSTS(cls.tmp, "--users", users, "--backdate", "600", "--lifetime", "60",
                             "--rp-cert", rp_cert_copy)
        cls.probe = TLSProbe(cls.tmp)

        d = os.path.join(cls.tmp, "creds")
        os.makedirs(d)
        os.chmod(d, 0o700)
        cls.pw_file = os.path.join(d, "alice.pw")
        write_secret(cls.pw_file, cls.password)
        cls.bad_pw = os.path.join(d, "bad.pw")
        write_secret(cls.bad_pw, "not-" + cls.password)
        cls.cert = os.path.join(d, "client.pem")
        cls.key = os.path.join(d, "client.key")
        shutil.copy(cls.idp.info["client_cert"], cls.cert)
        shutil.copy(cls.idp.info["client_key"], cls.key)
        os.chmod(cls.key, 0o600)
        # a certificate the STS does not trust (self-signed)
        cls.rogue_cert = os.path.join(d, "rogue.pem")
        cls.rogue_key = os.path.join(d, "rogue.key")
        r = run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.rogue_key,
                "-out", cls.rogue_cert, "-subj", "/CN=rogue", "-days", "2")
        assert r.returncode == 0, r.stderr.decode()
        os.chmod(cls.rogue_key, 0o600)
        cls.tampered_key = os.path.join(d, "tampered.key")
        cls.old_cert = os.path.join(d, "old-client.pem")
        shutil.copy(cls.idp_old.info["client_cert"], cls.old_cert)
        cls.old_tampered_key = os.path.join(d, "old-tampered.key")
        for src, dst in ((cls.key, cls.tampered_key), (cls.idp_old.info["client_key"], cls.old_tampered_key)):
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, tampered_rsa_pem(src))
            os.close(fd)

        idp, rp = cls.idp, cls.rp

        def prof(sts, path, auth, **kw):
            p = {"endpoint": sts.url(path), "trust_version": "1.3", "soap_version": "1.2",
                 "ca_file": sts.ca_file, "auth": auth, "applies_to": "urn:example:rp", "key_type": "bearer",
                 "token_type": SAML2}
            p.update(kw)
            return {k: v for k, v in p.items() if v is not None}

        user = {"username": "alice", "password_file": cls.pw_file}
        tls = {"client_cert": cls.cert, "client_key": cls.key}
        cls.profiles = {
            # username (PasswordText, PasswordDigest)
            "user": prof(idp, T13 + "usernamemixed", "username", **user),
            "user-wrongpw": prof(idp, T13 + "usernamemixed?wrongpw", "username", username="alice",
                                 password_file=cls.bad_pw),
            "digest": prof(idp, T13 + "usernamemixed?digest", "username", password_digest="yes", **user),
            "digest-wrongpw": prof(idp, T13 + "usernamemixed?digestwrong", "username", username="alice",
                                   password_file=cls.bad_pw, password_digest="yes"),
            # HTTP Basic
            "basic": prof(idp, T13 + "usernamebasic", "basic", **user),
            "basic-wrongpw": prof(idp, T13 + "usernamebasic?wrongpw", "basic", username="alice",
                                  password_file=cls.bad_pw),
            # X.509 message signature
            "cert": prof(idp, T13 + "certificatemixed", "certificate", **tls),
            "cert-sha1": prof(idp, T13 + "certificatemixed?sha1", "certificate", signature_algorithm="rsa-sha1",
                              **tls),
            "cert-rogue": prof(cls.idp_old, T13 + "certificatemixed?rogue", "certificate",
                               client_cert=cls.rogue_cert, client_key=cls.rogue_key),
            "cert-tampered": prof(cls.idp_old, T13 + "certificatemixed?tampered", "certificate",
                                  client_cert=cls.old_cert, client_key=cls.old_tampered_key),
            "tls-tampered": prof(idp, T13 + "certificatetransport?tampered", "none", client_cert=cls.cert,
                                 client_key=cls.tampered_key),
            # TLS: client certificate, pin, server verification
            "tls": prof(idp, T13 + "certificatetransport", "none", **tls),
            "tls-nocert": prof(idp, T13 + "certificatetransport?nocert", "none"),
            "tls-rogue": prof(idp, T13 + "certificatetransport?rogue", "none", client_cert=cls.rogue_cert,
                              client_key=cls.rogue_key),
            "pinned": prof(idp, T13 + "usernamemixed?pinned", "username", pin_sha256=spki_pin(
                os.path.join(os.path.dirname(idp.ca_file), "server.pem")), **user),
            "pin-mismatch": prof(idp, "/adfs/services/trust/2005/usernamemixed", "username", trust_version="2005",
                                 pin_sha256="sha256//" + base64.b64encode(secrets.token_bytes(32)).decode(), **user),
            "untrusted": prof(idp, "/soap11/trust/13/usernamemixed", "username", soap_version="1.1",
                              ca_file=cls.probe.ca, **user),
            "wrong-host": {"endpoint": "https://127.0.0.1:%d/adfs/services/trust/13/usernamemixed" % cls.probe.port,
                           "trust_version": "1.3", "ca_file": cls.probe.ca, "auth": "username", **user},
            # federation: identity STS (username) -> resource STS (issued token)
            "idp-sym": prof(idp, T13 + "usernamemixed?sym", "username", key_type="symmetric", applies_to=None,
                            **user),
            "rp-sym": prof(rp, T13 + "issuedtokenmixedsymmetricbasic256", "issued_token", issuer_profile="idp-sym"),
            "idp-bearer": prof(idp, T13 + "usernamemixed?bearer", "username", applies_to=None, **user),
            "rp-bearer": prof(rp, T13 + "issuedtokenmixedsymmetricbasic256?bearer", "issued_token",
                              issuer_profile="idp-bearer"),
            "idp-asym": prof(idp, T13 + "usernamemixed?asym", "username", key_type="asymmetric", applies_to=None,
                             **user, **tls),
            "rp-asym": prof(rp, T13 + "issuedtokenmixedasymmetricbasic256", "issued_token",
                            issuer_profile="idp-asym"),
            "idp-par": prof(idp, T13 + "usernamemixed?par", "username", key_type="symmetric", applies_to=None,
                            **user),
            "rp-par": prof(rp, T13 + "issuedtokenmixedsymmetricbasic256?par", "issued_token",
                           issuer_profile="idp-par"),
            "idp-old": prof(cls.idp_old, T13 + "usernamemixed", "username", key_type="symmetric", applies_to=None,
                            **user),
            "rp-old": prof(rp, T13 + "issuedtokenmixedsymmetricbasic256?old", "issued_token",
                           issuer_profile="idp-old"),
        }
        cls.broker = Broker(cls.tmp, cls.profiles)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        for s in (cls.idp, cls.rp, cls.idp_old):
            s.stop()
        cls.probe.stop()

    # -- helpers --

    def token(self, profile, fmt="json"):
        return cli("token", "--socket", self.broker.socket, "--profile", profile, "--format", fmt)

    def ok(self, profile):
        r = self.token(profile)
        self.assertEqual(r.returncode, 0, "%s: %s\n%s" % (profile, r.stderr.decode(), self.broker.read_log()[-3000:]))
        return json.loads(r.stdout)

    def fails(self, profile, *needles):
        r = self.token(profile)
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, "%s succeeded" % profile)
        self.assertEqual(r.stdout, b"")
        for n in needles:
            self.assertIn(n, err, "%s: %r not in the error:\n%s" % (profile, n, err))
        return err

    def count(self, sts, path):
        return sts.stats()["requests"].get(path, 0)

    def captured(self, capdir, endpoint_suffix):
        tag = endpoint_suffix.replace("/", "_")
        files = sorted(f for f in os.listdir(capdir) if f.endswith(tag + ".xml"))
        self.assertTrue(files, "no request captured for %s" % endpoint_suffix)
        with open(os.path.join(capdir, files[-1]), "rb") as f:
            return f.read()

    def xmlsec_verify(self, body, *key_args):
        path = os.path.join(self.tmp, "req-%s.xml" % secrets.token_hex(4))
        with open(path, "wb") as f:
            f.write(body)
        # the message signature, not the issued assertion's own
        xp = "/*/*[local-name()='Header']/*[local-name()='Security']/*[local-name()='Signature']"
        return run("xmlsec1", "--verify", "--id-attr:Id", NS_WSU + ":Timestamp", "--id-attr:Id",
                   NS_WSA + ":To", "--node-xpath", xp, *key_args, path)

    # -- username --

    def test_username_password_text(self):
        self.assertEqual(self.ok("user")["key_type"], "bearer")

    def test_username_wrong_password_is_the_sts_fault(self):
        self.fails("user-wrongpw", "ID3242", "HRESULT 0x803D0013")   # WS_E_ENDPOINT_FAULT_RECEIVED

    def test_password_digest(self):
        self.ok("digest")
        body = self.captured(self.cap_idp, T13 + "usernamemixed")
        # the newest capture on that path may be another test's: find a digest one
        caps = [open(os.path.join(self.cap_idp, f), "rb").read() for f in os.listdir(self.cap_idp)]
        digests = [c for c in caps if b"#PasswordDigest" in c]
        self.assertTrue(digests, body[:200])
        for c in digests:
            self.assertNotIn(self.password.encode(), c)
            self.assertNotIn(b"#PasswordText", c)
            self.assertIn(b"<wsse:Nonce", c)

    def test_password_digest_wrong_password(self):
        self.fails("digest-wrongpw", "ID3242", "FailedAuthentication")

    # -- HTTP Basic --

    def test_basic(self):
        self.ok("basic")

    def test_basic_wrong_password(self):
        self.fails("basic-wrongpw", "HTTP 401")

    # -- certificate (X.509 message signature) --

    def test_certificate_signature_verifies_with_xmlsec1(self):
        j = self.ok("cert")
        self.assertIn("wstrust-test-client", j["token"])   # the STS's principal = the certificate's CN
        body = self.captured(self.cap_idp, T13 + "certificatemixed")
        self.assertIn(b"xmldsig-more#rsa-sha256", body)
        v = self.xmlsec_verify(body, "--pubkey-cert-pem", self.cert)
        self.assertEqual(v.returncode, 0, v.stderr.decode())
        # the check can fail: another certificate does not verify it
        self.assertNotEqual(self.xmlsec_verify(body, "--pubkey-cert-pem", self.rogue_cert).returncode, 0)

    def test_certificate_rsa_sha1_when_asked(self):
        self.ok("cert-sha1")
        caps = [open(os.path.join(self.cap_idp, f), "rb").read() for f in os.listdir(self.cap_idp)]
        sha1 = [c for c in caps if b"xmldsig#rsa-sha1" in c]
        self.assertTrue(sha1)
        v = self.xmlsec_verify(sha1[-1], "--pubkey-cert-pem", self.cert)
        self.assertEqual(v.returncode, 0, v.stderr.decode())

    def test_certificate_not_trusted_by_the_sts(self):
        self.fails("cert-rogue", "certificate not trusted")

    def test_signature_by_a_tampered_key_is_rejected(self):
        self.fails("cert-tampered", "signature verification failed")

    # -- TLS --

    def test_tls_client_certificate(self):
        j = self.ok("tls")
        self.assertIn("wstrust-test-client", j["token"])

    def test_tls_without_client_certificate_is_refused_by_the_sts(self):
        self.fails("tls-nocert", "TLS client certificate required")

    def test_tls_client_certificate_rejected(self):
        self.fails("tls-rogue", "TLS: the STS", "rejected the client certificate")

    def test_tls_signature_by_a_tampered_key_is_rejected(self):
        self.fails("tls-tampered", "TLS: the STS", "rejected the client certificate")

    def test_pin_match(self):
        self.ok("pinned")

    def test_pin_mismatch_nothing_sent(self):
        path = "/adfs/services/trust/2005/usernamemixed"
        before = self.count(self.idp, path)
        self.fails("pin-mismatch", "pin_sha256", "HRESULT 0x803D000A")   # WS_E_SECURITY_VERIFICATION_FAILURE
        self.assertEqual(self.count(self.idp, path), before, "the request reached the STS despite the pin")

    def test_untrusted_server_certificate_nothing_sent(self):
        path = "/soap11/trust/13/usernamemixed"
        before = self.count(self.idp, path)
        self.fails("untrusted", "TLS", "HRESULT 0x803D000A")
        self.assertEqual(self.count(self.idp, path), before, "the request reached the STS")

    def test_wrong_host_name_nothing_sent(self):
        before = self.probe.connections
        self.fails("wrong-host", "TLS", "host name", "HRESULT 0x803D000A")
        deadline = time.monotonic() + 5
        while self.probe.connections == before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertGreater(self.probe.connections, before, "the probe saw no connection: test is not testing")
        self.assertEqual(self.probe.received, b"", "bytes were sent to a server with the wrong host name")

    # -- federation --

    def test_federation_symmetric_chain_and_cache(self):
        idp_path = T13 + "usernamemixed"
        rp_path = T13 + "issuedtokenmixedsymmetricbasic256"
        n_idp, n_rp = self.count(self.idp, idp_path), self.count(self.rp, rp_path)
        j = self.ok("rp-sym")
        tok = etree.fromstring(j["token"].encode())
        self.assertEqual(tok.findtext("{%s}Issuer" % NS_SAML2), "urn:wstrust:test:rp")
        self.assertEqual(tok.findtext("{%s}Subject/{%s}NameID" % (NS_SAML2, NS_SAML2)), "alice")
        self.assertEqual(self.count(self.idp, idp_path), n_idp + 1)
        self.assertEqual(self.count(self.rp, rp_path), n_rp + 1)
        # the proof-of-possession signature verifies with xmlsec1 and the key the identity STS made
        body = self.captured(self.cap_rp, rp_path)
        req = etree.fromstring(body)
        a = req.find(".//{%s}Assertion" % NS_SAML2)
        self.assertIsNotNone(a)
        import urllib.request
        ctx = ssl.create_default_context(cafile=self.idp.ca_file)
        with urllib.request.urlopen(self.idp.base + "/testkeys?id=" + a.get("ID"), context=ctx) as r:
            key = base64.b64decode(json.loads(r.read())["key"])
        kf = os.path.join(self.tmp, "proof-%s.key" % secrets.token_hex(4))
        with open(kf, "wb") as f:
            f.write(key)
        self.assertIn(b"hmac-sha256", body)
        v = self.xmlsec_verify(body, "--hmackey", kf)
        self.assertEqual(v.returncode, 0, v.stderr.decode())
        with open(kf, "wb") as f:
            f.write(bytes([key[0] ^ 1]) + key[1:])
        self.assertNotEqual(self.xmlsec_verify(body, "--hmackey", kf).returncode, 0)
        # second request: the cached first token, the identity STS is not asked again
        self.ok("rp-sym")
        self.assertEqual(self.count(self.idp, idp_path), n_idp + 1, "the first token was not reused")
        self.assertEqual(self.count(self.rp, rp_path), n_rp + 2)

    def test_federation_concurrent_first_requests_share_one_token(self):
        idp_path = T13 + "usernamemixed"
        n_idp = self.count(self.idp, idp_path)
        results = [None] * 6
        def one(i):
            results[i] = self.token("rp-par")
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r in results:
            self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.count(self.idp, idp_path), n_idp + 1,
                         "concurrent requests each asked the identity STS")

    def test_federation_bearer_chain(self):
        j = self.ok("rp-bearer")
        self.assertEqual(etree.fromstring(j["token"].encode()).findtext("{%s}Issuer" % NS_SAML2),
                         "urn:wstrust:test:rp")

    def test_federation_asymmetric_chain(self):
        j = self.ok("rp-asym")
        self.assertEqual(etree.fromstring(j["token"].encode()).findtext("{%s}Issuer" % NS_SAML2),
                         "urn:wstrust:test:rp")

    def test_expired_issued_token(self):
        self.fails("rp-old", "expired", "idp-old")

    # -- start-up refusals --

    def start_fails(self, profile_keys, *needles):
        with self.assertRaises(RuntimeError) as cm:
            b = Broker(self.tmp, {"p": profile_keys})
            b.stop()
        for n in needles:
            self.assertIn(n, str(cm.exception))

    def test_overpermissive_key_file_refused_at_startup(self):
        k = os.path.join(self.tmp, "creds", "loose.key")
        shutil.copy(self.key, k)
        os.chmod(k, 0o640)
        self.start_fails({"endpoint": self.idp.url(T13 + "certificatemixed"), "trust_version": "1.3",
                          "ca_file": self.idp.ca_file, "auth": "certificate", "client_cert": self.cert,
                          "client_key": k}, "client_key %s is readable by group (mode 0640): chmod 600 it" % k)

    def test_unreadable_key_file_refused_at_startup(self):
        k = os.path.join(self.tmp, "creds", "missing.key")
        self.start_fails({"endpoint": self.idp.url(T13 + "certificatemixed"), "trust_version": "1.3",
                          "ca_file": self.idp.ca_file, "auth": "certificate", "client_cert": self.cert,
                          "client_key": k}, "client_key %s: No such file or directory" % k)
        d = os.path.join(self.tmp, "creds", "adir.key")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o700)
        self.start_fails({"endpoint": self.idp.url(T13 + "certificatemixed"), "trust_version": "1.3",
                          "ca_file": self.idp.ca_file, "auth": "certificate", "client_cert": self.cert,
                          "client_key": d}, "client_key %s is not a regular file" % d)

    # -- secrets --

    def cli_paused(self, profile):
        """Run the CLI with its stdout on a 4 KiB pipe we do not read yet: it
        blocks writing the token, alive, with everything it received."""
        r, w = os.pipe()
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
        p = subprocess.Popen([CLI, "token", "--socket", self.broker.socket, "--profile", profile,
                              "--format", "json"], stdout=w, stderr=subprocess.PIPE)
        os.close(w)
        deadline = time.monotonic() + 30
        buf = bytearray(4)
        while time.monotonic() < deadline and p.poll() is None:
            fcntl.ioctl(r, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) >= 4096:
                break
            time.sleep(0.01)
        alive = p.poll() is None
        return p, r, alive

    def test_secrets_nowhere_but_the_broker(self):
        self.assertEqual(os.geteuid(), 0, "this test reads /proc/PID/mem and must run as root")
        needles = {"password": self.password.encode()}
        needles.update(("client key " + k, v) for k, v in key_needles(self.key).items())
        # requests with each binding
        for prof in ("user", "digest", "basic", "cert", "tls", "rp-sym", "rp-asym"):
            self.ok(prof)
        # positive control: the scan finds them in the broker, which holds them
        for name, n in needles.items():
            if name != "client key d (little-endian)":
                continue   # the PEM text is wiped after parsing; BIGNUMs are little-endian
            self.assertTrue(read_mem(self.broker.pid(), n), "scan does not work: %s not in the broker" % name)
        log = self.broker.read_log().encode()
        for name, n in needles.items():
            self.assertNotIn(n, log, "%s in the broker's log" % name)
        pids = self.broker.worker_pids()
        self.assertTrue(pids, "no live worker to scan")
        for pid in pids:
            for name, n in needles.items():
                self.assertFalse(read_mem(pid, n), "%s found in worker %d" % (name, pid))
        for prof in ("user", "cert", "rp-sym"):
            p, r, alive = self.cli_paused(prof)
            try:
                self.assertTrue(alive, "the CLI exited before it could be scanned (token under 4 KiB?)")
                for name, n in needles.items():
                    self.assertFalse(read_mem(p.pid, n), "%s found in the client's memory (%s)" % (name, prof))
            finally:
                out = b""
                while True:
                    chunk = os.read(r, 65536)
                    if not chunk:
                        break
                    out += chunk
                os.close(r)
                p.wait(30)
            self.assertEqual(p.returncode, 0, p.stderr.read().decode())
            self.assertIn(b'"token"', out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
