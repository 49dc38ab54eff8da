#!/usr/bin/python3
"""Embedded mode end to end: libwstrust starts a private wstrustd for a
channel whose security description carries credentials, against the real
dev STS; and examples/request_token.c, compiled unchanged, in both modes.
Credentials: username, TLS client certificate, and an XML token the caller
holds (the federation chain's second hop: identity dev STS -> resource dev
STS, bearer, symmetric and public-key holder-of-key).

usage: test_embedded.py EMBEDDED_CLIENT REQUEST_TOKEN_EXE EMBEDDED_CONTRACT"""
import base64
import json
import shutil
import os
import re
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402

CLIENT = sys.argv.pop(1)
EXAMPLE = sys.argv.pop(1)
CONTRACT = sys.argv.pop(1)
SAML2_NS = harness.SAML2_NS
PASSWORD = "pw-" + secrets.token_hex(12)   # unique: any occurrence is a leak


def children(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def is_broker(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid) == os.path.realpath(harness.WSTRUSTD)
    except OSError:
        return False


class Fixture(unittest.TestCase):
    """A dev STS whose alice has PASSWORD; helpers to drive embedded_client."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sts = harness.DevSTS(cls.tmp.name, "--users", "alice:%s,bob:secret" % PASSWORD)
        cls.url = cls.sts.url(harness.ENDPOINT_13)
        cls.env = dict(os.environ, WSTRUST_BROKER_PATH=harness.WSTRUSTD, WSTRUST_CA_FILE=cls.sts.ca_file)
        cls.env.pop("WSTRUST_SOCKET", None)
        cls.env["WSTRUST_MODE"] = "embedded"

    @classmethod
    def tearDownClass(cls):
        cls.sts.stop()
        cls.tmp.cleanup()

    def start(self, user="alice", key="symmetric", env=None, extra=(), url=None):
        self.stderr_path = os.path.join(self.tmp.name, "client-%d.err" % time.monotonic_ns())
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([CLIENT, url or self.url, user, key, *extra], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, env=env or self.env)
        self.addCleanup(self.finish)

    def client_stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def send(self, s):
        self.proc.stdin.write(s.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, word):
        line = self.proc.stdout.readline().decode().strip()
        self.assertEqual(line, word, self.client_stderr())

    def result(self):
        line = self.proc.stdout.readline()
        self.assertTrue(line, "client died: " + self.client_stderr())
        r = json.loads(line)
        r["errors"] = [base64.b64decode(e).decode() for e in r["errors"]]
        return r

    def finish(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def request(self, password=PASSWORD, **kw):
        self.start(**kw)
        self.send(password)
        self.expect("have")
        self.send("go")
        return self.result()

    def sts_key(self, token_xml):
        ident = re.search(rb'\sID="([^"]+)"', token_xml).group(1).decode()
        ctx = ssl.create_default_context(cafile=self.sts.ca_file)
        with urllib.request.urlopen(self.sts.base + "/testkeys?id=" + ident, context=ctx, timeout=10) as r:
            return base64.b64decode(json.loads(r.read())["key"])


class Embedded(Fixture):
    """Username credentials, and the example in both modes."""

    def test_symmetric_proof_key_reaches_the_caller(self):
        r = self.request(key="symmetric")
        self.assertEqual(r["hr"], 0, r["errors"])
        self.assertEqual(r["state"], 3, "the channel stays OPEN")
        token = base64.b64decode(r["token"])
        self.assertIn(SAML2_NS.encode(), token)
        self.assertIn(b"alice", token)
        self.assertIsNotNone(r["key"], "embedded mode releases the proof key")
        self.assertEqual(base64.b64decode(r["key"]), self.sts_key(token), "the key the dev STS computed")

    def test_bearer_token(self):
        r = self.request(key="bearer")
        self.assertEqual(r["hr"], 0, r["errors"])
        token = base64.b64decode(r["token"])
        self.assertIn(b"urn:example:rp", token)
        self.assertIsNone(r["key"])

    def test_password_only_over_ipc_and_wiped(self):
        self.start(key="symmetric")
        self.send(PASSWORD)
        self.expect("have")
        needles = (PASSWORD.encode(), PASSWORD.encode("utf-16-le"))
        # The scanner works: the application holds the password now.
        self.assertTrue(harness.read_mem(self.proc.pid, needles[0]), "control: password not found before sending")
        self.send("go")
        r = self.result()
        self.assertEqual(r["hr"], 0, r["errors"])
        brokers = [p for p in children(self.proc.pid) if is_broker(p)]
        self.assertEqual(len(brokers), 1, "one private broker per channel")
        b = brokers[0]
        with open("/proc/%d/cmdline" % b, "rb") as f:
            argv = f.read().split(b"\0")
        self.assertEqual(argv[1:3], [b"--embedded", b"3"])
        for needle in needles:
            self.assertFalse(harness.read_mem(self.proc.pid, needle), "password left in the client's memory")
            for what in ("cmdline", "environ"):
                with open("/proc/%d/%s" % (b, what), "rb") as f:
                    self.assertNotIn(needle, f.read(), "password in the broker's " + what)
            for fd in os.listdir("/proc/%d/fd" % b):
                target = "/proc/%d/fd/%s" % (b, fd)
                try:
                    if os.path.isfile(target):
                        with open(target, "rb") as f:
                            self.assertNotIn(needle, f.read(), "password in a file the broker has open")
                except OSError:
                    pass
        self.send("free")
        self.expect("freed")
        self.assertNotIn(b, children(self.proc.pid), "the private broker is reaped with the channel")
        self.assertFalse(os.path.exists("/proc/%d" % b), "the private broker exited with the channel")
        with open(self.stderr_path, "rb") as f:
            log = f.read()
        for needle in needles:
            self.assertNotIn(needle, log)

    def test_wrong_password_gives_the_sts_fault(self):
        r = self.request(password="not-" + PASSWORD)
        self.assertEqual(r["hr"], 0x803D0013, r["errors"])   # WS_E_ENDPOINT_FAULT_RECEIVED
        self.assertEqual(r["state"], 3, "a fault leaves the channel OPEN")
        self.assertTrue(any("authenticat" in e.lower() for e in r["errors"]), r["errors"])
        self.assertIsNone(r["token"])

    def test_untrusted_sts_certificate(self):
        env = dict(self.env)
        env.pop("WSTRUST_CA_FILE")   # the system bundle does not know the dev CA
        r = self.request(env=env)
        self.assertEqual(r["hr"], 0x803D000A, r["errors"])   # WS_E_SECURITY_VERIFICATION_FAILURE
        self.assertIsNone(r["token"])

    def test_missing_broker_binary(self):
        env = dict(self.env, WSTRUST_BROKER_PATH="/nonexistent/wstrustd")
        r = self.request(env=env)
        self.assertEqual(r["hr"], 0x803D0010, r["errors"])   # WS_E_ENDPOINT_UNREACHABLE
        self.assertIn("/nonexistent/wstrustd", r["errors"][0])
        self.assertEqual(r["state"], 4, "a failed open leaves the channel FAULTED")

    def test_bad_mode_variable(self):
        r = self.request(env=dict(self.env, WSTRUST_MODE="sideways"))
        self.assertEqual(r["hr"], 0x80070057, r["errors"])
        self.assertIn("WSTRUST_MODE", r["errors"][0])

    def test_example_embedded(self):
        """examples/request_token.c as built: its alice/secret credentials go to a private broker."""
        r = subprocess.run([EXAMPLE, self.url], capture_output=True, timeout=60, env=self.env)
        self.assertEqual(r.returncode, 1, "alice's password is not 'secret' on this STS")
        self.assertIn(b"0x803d0013", r.stderr)
        sts = harness.DevSTS(self.tmp.name)   # alice:secret
        try:
            env = dict(self.env, WSTRUST_CA_FILE=sts.ca_file)
            r = subprocess.run([EXAMPLE, sts.url(harness.ENDPOINT_13)], capture_output=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(SAML2_NS.encode(), r.stdout)
            self.assertIn(b"<saml:Audience>urn:example:rp</saml:Audience>", r.stdout)
        finally:
            sts.stop()

    def test_example_embedded_with_stdin_and_stdout_closed(self):
        """An application whose fds 0 and 1 are closed: the socketpair gets
        them, and the private broker must still find its end on fd 3 (not
        the /dev/null opened onto 0 and 1 for it).  The example reaches the
        STS, whose verdict on alice/secret is a fault."""
        def close_std():
            os.close(0)
            os.close(1)
        r = subprocess.run([EXAMPLE, self.url], stderr=subprocess.PIPE, timeout=60, env=self.env,
                           preexec_fn=close_std)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"0x803d0013", r.stderr, r.stderr.decode(errors="replace"))

    def test_example_daemon(self):
        """The same binary with WSTRUST_MODE=daemon: the system broker's profile holds the password."""
        secret = os.path.join(self.tmp.name, "secret-daemon")
        harness.write_secret(secret, PASSWORD)
        broker = harness.Broker(self.tmp.name, {"p": harness.profile_13(self.sts, secret)})
        try:
            env = dict(self.env, WSTRUST_MODE="daemon", WSTRUST_SOCKET=broker.socket,
                       WSTRUST_BROKER_PATH="/nonexistent/wstrustd")
            r = subprocess.run([EXAMPLE, self.url], capture_output=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stderr + broker.read_log().encode())
            self.assertIn(b"<saml:Audience>urn:example:rp</saml:Audience>", r.stdout)
            self.assertIn("audit: uid=%d" % os.getuid(), broker.read_log())
        finally:
            broker.stop()


    def test_channel_contract(self):
        """Private broker lifecycle: see embedded_contract.c."""
        r = subprocess.run([CONTRACT, self.url, self.sts.url("/test/slow?seconds=20"), PASSWORD],
                           capture_output=True, timeout=120, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertIn(b"all embedded contract checks passed", r.stdout)

    def test_daemon_client_cannot_claim_embedded(self):
        """T_EMBEDDED from a client of the system broker is ignored: the
        proof key stays withheld unless the profile releases it."""
        import socket
        import struct

        def frame(mtype, fields):
            body = b"".join(struct.pack(">HI", t, len(v)) + v for t, v in fields)
            return struct.pack(">IHH", 4 + len(body), mtype, 0) + body

        def ask(sock, profile):
            req = frame(0x0100, [(1, profile.encode()), (6, struct.pack(">I", 2)), (17, struct.pack(">I", 1))])
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(30)
                c.connect(sock)
                c.sendall(req)
                data = b""
                while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
                    chunk = c.recv(65536)
                    self.assertTrue(chunk, "the broker closed the connection")
                    data += chunk
            mtype = struct.unpack(">H", data[4:6])[0]
            tags, off = {}, 8
            while off < len(data):
                t, n = struct.unpack(">HI", data[off:off + 6])
                tags[t] = data[off + 6:off + 6 + n]
                off += 6 + n
            self.assertEqual(mtype, 0x0101, tags.get(49))
            return tags

        secret = os.path.join(self.tmp.name, "secret-claim")
        harness.write_secret(secret, PASSWORD)
        broker = harness.Broker(self.tmp.name, {
            "kept": harness.profile_13(self.sts, secret, key_type="symmetric"),
            "released": harness.profile_13(self.sts, secret, key_type="symmetric", release_proof_key="yes",
                                           endpoint=self.url + "?r")})
        try:
            kept = ask(broker.socket, "kept")
            self.assertFalse(39 in kept, "T_PROOF_KEY sent to a client that merely claimed embedded mode")
            self.assertEqual(kept.get(40), struct.pack(">I", 1), "T_PROOF_WITHHELD")
            released = ask(broker.socket, "released")   # control: the frames are read right
            self.assertTrue(39 in released, "control: the releasing profile sends T_PROOF_KEY")
        finally:
            broker.stop()


class EmbeddedCertificate(Fixture):
    """WS_SSL_TRANSPORT_SECURITY_BINDING's localCertCredential as a file."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.csts = harness.DevSTS(cls.tmp.name, "--client-auth", "optional")
        cls.curl = cls.csts.url("/adfs/services/trust/13/certificatetransport")
        cls.cenv = dict(cls.env, WSTRUST_CA_FILE=cls.csts.ca_file)
        info = cls.csts.info
        cls.combined = os.path.join(cls.tmp.name, "client-combined.pem")
        with open(info["client_cert"], "rb") as c, open(info["client_key"], "rb") as k:
            data = c.read() + k.read()
        fd = os.open(cls.combined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.close(fd)
        out = subprocess.run(["openssl", "x509", "-in", info["client_cert"], "-noout", "-fingerprint", "-sha1"],
                             capture_output=True, check=True).stdout.decode()
        cls.thumbprint = out.strip().split("=", 1)[1]

    @classmethod
    def tearDownClass(cls):
        cls.csts.stop()
        super().tearDownClass()

    def cert_request(self, spec):
        # An empty password: the SSL binding's certificate is the only credential.
        return self.request(password="", key="bearer", env=self.cenv, url=self.curl, extra=(spec,))

    def assert_client_token(self, r):
        self.assertEqual(r["hr"], 0, r["errors"])
        self.assertIn(b">wstrust-test-client</saml:NameID>", base64.b64decode(r["token"]),
                      "the STS saw the certificate's subject")

    def test_thumbprint_credential(self):
        self.assert_client_token(self.cert_request("thumbprint:%s:%s" % (self.combined, self.thumbprint)))
        self.assert_client_token(self.cert_request("thumbprint:%s:%s" % (self.combined,
                                                                          self.thumbprint.replace(":", "").lower())))

    def test_subject_name_credential(self):
        self.assert_client_token(self.cert_request("subject:%s:wstrust-test-client" % self.combined))

    def test_file_credential(self):
        info = self.csts.info
        self.assert_client_token(self.cert_request("file:%s:%s" % (info["client_cert"], info["client_key"])))

    def test_wrong_thumbprint_refused_at_open(self):
        r = self.cert_request("thumbprint:%s:%s" % (self.combined, "00" * 20))
        self.assertEqual(r["hr"], 0x80070057, r["errors"])
        self.assertIn("thumbprint", r["errors"][0])
        self.assertEqual(r["state"], 4)

    def test_wrong_subject_refused_at_open(self):
        r = self.cert_request("subject:%s:somebody-else" % self.combined)
        self.assertEqual(r["hr"], 0x80070057, r["errors"])
        self.assertIn("somebody-else", r["errors"][0])

    def test_readable_key_file_refused(self):
        loose = os.path.join(self.tmp.name, "loose.key")
        with open(self.csts.info["client_key"], "rb") as k:
            data = k.read()
        with open(loose, "wb") as f:
            f.write(data)
        os.chmod(loose, 0o644)
        r = self.cert_request("file:%s:%s" % (self.csts.info["client_cert"], loose))
        self.assertEqual(r["hr"], 0x80070057, r["errors"])
        self.assertIn(loose, r["errors"][0])
        self.assertIn("0644", r["errors"][0])

    def test_no_certificate_no_token(self):
        """Control: the endpoint needs the certificate (username alone is not enough)."""
        r = self.request(key="bearer", env=self.cenv, url=self.curl)
        self.assertNotEqual(r["hr"], 0, r["errors"])


T13 = "/adfs/services/trust/13/"
WS_E_SECURITY_TOKEN_EXPIRED = 0x803D0022
WS_E_ENDPOINT_FAULT_RECEIVED = 0x803D0013


def ticks(unix_seconds):
    """WS_DATETIME: 100 ns ticks since 0001-01-01 UTC."""
    return (int(unix_seconds) + 62135596800) * 10000000


class EmbeddedXmlToken(Fixture):
    """WS_XML_TOKEN_MESSAGE_SECURITY_BINDING: a token the application holds
    (obtained in embedded mode from an identity dev STS with a username, its
    symmetric key released) presented from another embedded-mode channel to a
    resource dev STS that trusts the identity STS's signing certificate."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = cls.tmp.name
        rp_cert = os.path.join(t, "resource-rp.pem")   # filled once the resource STS exists
        users = "alice:%s" % PASSWORD
        cls.idp = harness.DevSTS(t, "--users", users, "--rp-cert", rp_cert, "--name", "urn:wstrust:test:idp")
        cls.rp = harness.DevSTS(t, "--users", users, "--trust-issuer-cert", cls.idp.signing_cert,
                                "--name", "urn:wstrust:test:rp")
        shutil.copy(cls.rp.info["rp_cert"], rp_cert)
        cls.sts = cls.idp
        cls.url = cls.idp.url(harness.ENDPOINT_13)
        bundle = os.path.join(t, "cas.pem")
        with open(bundle, "wb") as out:
            for s in (cls.idp, cls.rp):
                with open(s.ca_file, "rb") as f:
                    out.write(f.read())
        cls.env = dict(os.environ, WSTRUST_BROKER_PATH=harness.WSTRUSTD, WSTRUST_CA_FILE=bundle,
                       EMB_APPLIES_TO="urn:wstrust:test:rp")
        for k in ("WSTRUST_SOCKET", "EMB_TOKEN_VALID_TILL"):
            cls.env.pop(k, None)
        cls.env["WSTRUST_MODE"] = "embedded"

    @classmethod
    def tearDownClass(cls):
        for s in (cls.idp, cls.rp):
            s.stop()
        cls.tmp.cleanup()

    def identity_token(self, key="symmetric", extra=()):
        """(token file, token bytes, key bytes or None, valid_till ticks) from the identity STS."""
        r = self.request(key=key, url=self.idp.url(harness.ENDPOINT_13), extra=extra)
        self.assertEqual(r["hr"], 0, r["errors"])
        self.send("free")
        self.expect("freed")
        self.finish()
        token = base64.b64decode(r["token"])
        path = os.path.join(self.tmp.name, "token-%s.xml" % secrets.token_hex(4))
        with open(path, "wb") as f:
            f.write(token)
        return path, token, base64.b64decode(r["key"]) if r["key"] else None, r["valid_till"]

    def present(self, path, key_bytes, endpoint, valid_till=None, key="bearer", extra=()):
        """Start an embedded_client presenting the token; it has the key, not yet sent."""
        env = dict(self.env)
        if valid_till is not None:
            env["EMB_TOKEN_VALID_TILL"] = str(valid_till)
        self.start(user="token:" + path, key=key, env=env, url=self.rp.url(T13 + endpoint), extra=extra)
        self.send(key_bytes.hex() if key_bytes else "")
        self.expect("have")

    def count(self, sts, endpoint):
        """Requests the STS counted for the endpoint (the dev STS counts paths, queries stripped)."""
        return sts.stats()["requests"].get(T13 + endpoint.split("?")[0], 0)

    def assert_resource_token(self, r):
        self.assertEqual(r["hr"], 0, r["errors"])
        token = base64.b64decode(r["token"])
        self.assertIn(b"<saml:Issuer>urn:wstrust:test:rp</saml:Issuer>", token, "issued by the resource STS")
        self.assertIn(b">alice</saml:NameID>", token, "for the identity STS's subject")

    def test_symmetric_token_chain_and_key_wiped(self):
        path, token, key, till = self.identity_token("symmetric")
        self.assertIn(b"holder-of-key", token)
        self.assertIsNotNone(key)
        self.assertEqual(key, self.sts_key(token), "control: the key the identity STS made")
        ep = "issuedtokenmixedsymmetricbasic256"
        before = self.count(self.rp, ep)
        self.present(path, key, ep, valid_till=till)
        # The whole key, and its second half: a freed heap chunk keeps its
        # tail after malloc reuses the head for its free-list pointers.
        needles = (key, key[len(key) // 2:])
        # The scanner works: the application holds the key now.
        for n in needles:
            self.assertTrue(harness.read_mem(self.proc.pid, n), "control: key not found before sending")
        self.send("go")
        r = self.result()
        self.assert_resource_token(r)
        self.assertEqual(self.count(self.rp, ep), before + 1)
        # The application freed its token and wiped its copy after
        # WsCreateChannel; the library's copies went with the setup frame.
        for n in needles:
            self.assertFalse(harness.read_mem(self.proc.pid, n), "proof key bytes left in the client's memory")
        brokers = [p for p in children(self.proc.pid) if is_broker(p)]
        self.assertEqual(len(brokers), 1)
        for what in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (brokers[0], what), "rb") as f:
                self.assertNotIn(key.hex().encode(), f.read())
        # A second request on the same channel presents the same token again.
        self.send("free")
        self.expect("freed")

    def test_bearer_token_chain(self):
        path, token, key, till = self.identity_token("bearer")
        self.assertIsNone(key)
        self.assertIn(b"cm:bearer", token)
        self.present(path, None, "issuedtokenmixedsymmetricbasic256?bearer", valid_till=till)
        self.send("go")
        self.assert_resource_token(self.result())

    def test_public_key_token_chain(self):
        """A PublicKey holder-of-key token (UseKey = the client certificate):
        no raw key; the certificate credential's private key signs."""
        info = self.idp.info
        cert = "file:%s:%s" % (info["client_cert"], info["client_key"])
        path, token, key, till = self.identity_token("asymmetric", extra=(cert,))
        self.assertIsNone(key)
        self.assertIn(b"holder-of-key", token)
        self.assertIn(b"X509Certificate", token)
        ep = "issuedtokenmixedasymmetricbasic256"
        before = self.count(self.rp, ep)
        self.present(path, None, ep, valid_till=till, extra=(cert,))
        self.send("go")
        self.assert_resource_token(self.result())
        self.assertEqual(self.count(self.rp, ep), before + 1)

    def test_tampered_proof_key_rejected_by_the_sts(self):
        path, token, key, till = self.identity_token("symmetric")
        ep = "issuedtokenmixedsymmetricbasic256?tampered"
        before = self.count(self.rp, ep)
        self.present(path, bytes([key[0] ^ 1]) + key[1:], ep, valid_till=till)
        self.send("go")
        r = self.result()
        self.assertEqual(r["hr"], WS_E_ENDPOINT_FAULT_RECEIVED, r["errors"])
        self.assertTrue(any("proof-of-possession signature invalid" in e for e in r["errors"]), r["errors"])
        self.assertIsNone(r["token"])
        self.assertEqual(self.count(self.rp, ep), before + 1, "the STS saw it and said no")

    def test_expired_token_refused_before_sending(self):
        """VALID_TILL_TIME in the past: WsOpenChannel refuses; no broker, nothing sent."""
        path, token, key, till = self.identity_token("symmetric")
        ep = "issuedtokenmixedsymmetricbasic256?expired"
        before = self.count(self.rp, ep)
        self.present(path, key, ep, valid_till=ticks(time.time() - 3600))
        self.send("go")
        r = self.result()
        self.assertEqual(r["hr"], WS_E_SECURITY_TOKEN_EXPIRED, r["errors"])
        self.assertIn("expired", r["errors"][0])
        self.assertEqual(r["state"], 4, "a failed open leaves the channel FAULTED")
        self.assertEqual([p for p in children(self.proc.pid) if is_broker(p)], [], "a broker was started")
        self.assertEqual(self.count(self.rp, ep), before, "the expired token reached the STS")

    def test_expired_assertion_refused_by_the_private_broker(self):
        """No VALID_TILL_TIME given: the private broker reads the assertion's
        own Conditions NotOnOrAfter and refuses the setup; nothing reaches
        the STS.  (The edit breaks the assertion's signature: irrelevant, as
        it must never be sent.)"""
        path, token, key, till = self.identity_token("symmetric")
        old = re.sub(rb'(<saml:Conditions[^>]*NotOnOrAfter=")[^"]+"', rb'\g<1>2001-02-03T04:05:06Z"', token)
        self.assertNotEqual(old, token, "control: the Conditions were found")
        with open(path, "wb") as f:
            f.write(old)
        ep = "issuedtokenmixedsymmetricbasic256?old"
        before = self.count(self.rp, ep)
        self.present(path, key, ep)
        self.send("go")
        r = self.result()
        self.assertEqual(r["hr"], WS_E_SECURITY_TOKEN_EXPIRED, r["errors"])
        self.assertIn("expired at 2001-02-03T04:05:06Z", r["errors"][0])
        self.assertEqual(self.count(self.rp, ep), before, "the expired token reached the STS")

    def test_holder_of_key_token_without_its_key_refused_at_open(self):
        path, token, key, till = self.identity_token("symmetric")
        self.present(path, None, "issuedtokenmixedsymmetricbasic256?nokey", valid_till=till)
        self.send("go")
        r = self.result()
        self.assertEqual(r["hr"], 0x80070057, r["errors"])
        self.assertIn("without its proof key", r["errors"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
