"""End to end: dev STS (HTTPS, real RST checks) + wstrustd + sandboxed worker +
the wstrust CLI through libwstrust.  Issue 3's acceptance tests, plus the
broker-survival and no-secrets-in-the-worker checks of issue 4."""
import json, os, re, secrets, signal, subprocess, sys, tempfile, time, unittest
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import (CLI, Broker, DevSTS, SAML2, SAML2_NS, ENDPOINT_13, cli, profile_13, read_mem,
                     write_secret)
from lxml import etree

NS = {"saml": SAML2_NS, "ds": "http://www.w3.org/2000/09/xmldsig#"}


def rfc3339(s):
    return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z") if "." not in s else \
        datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(cls.tmp, 0o755)
        cls.sts = DevSTS(cls.tmp)
        cls.good = os.path.join(cls.tmp, "good.secret")
        cls.bad = os.path.join(cls.tmp, "bad.secret")
        write_secret(cls.good, "secret")
        write_secret(cls.bad, "not-the-password")
        cls.broker = Broker(cls.tmp, {
            "demo": profile_13(cls.sts, cls.good),
            "wrongpw": profile_13(cls.sts, cls.bad, endpoint=cls.sts.url(ENDPOINT_13) + "?wrongpw"),
        })

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()

    def token(self, *extra, profile="demo", fmt="xml"):
        return cli("token", "--socket", self.broker.socket, "--profile", profile, "--format", fmt, *extra)

    def verify_signature(self, xml_bytes):
        path = os.path.join(self.tmp, "token-%s.xml" % secrets.token_hex(4))
        with open(path, "wb") as f:
            f.write(xml_bytes)
        return subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", self.sts.signing_cert,
                               "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", path],
                              capture_output=True)

    def test_token_xml_audience_lifetime_signature(self):
        r = self.token()
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        xml = r.stdout.rstrip(b"\n")
        root = etree.fromstring(xml)
        self.assertEqual(root.tag, "{%s}Assertion" % SAML2_NS)
        self.assertEqual(root.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS),
                         "urn:example:rp")
        self.assertEqual(root.findtext("saml:Subject/saml:NameID", namespaces=NS), "alice")
        v = self.verify_signature(xml)
        self.assertEqual(v.returncode, 0, v.stderr.decode())
        # the check is real: a changed byte breaks it
        tampered = xml.replace(b">alice<", b">alicf<")
        self.assertNotEqual(self.verify_signature(tampered).returncode, 0)

    def test_token_json_lifetime_matches_sts(self):
        r = self.token(fmt="json")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        j = json.loads(r.stdout)
        for k in ("token", "token_type", "key_type", "valid_from", "valid_till"):
            self.assertIn(k, j)
        self.assertEqual(j["key_type"], "bearer")
        self.assertEqual(j["token_type"], SAML2)
        self.assertRegex(j["valid_from"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        cond = etree.fromstring(j["token"].encode()).find("saml:Conditions", namespaces=NS)
        # the STS's Lifetime and the assertion's Conditions are the same instants
        self.assertEqual(rfc3339(j["valid_from"]), rfc3339(cond.get("NotBefore")))
        self.assertEqual(rfc3339(j["valid_till"]), rfc3339(cond.get("NotOnOrAfter")))
        now = datetime.now(timezone.utc)
        self.assertLess(rfc3339(j["valid_from"]), now.replace(microsecond=0).astimezone(timezone.utc) + __import__("datetime").timedelta(seconds=5))
        self.assertGreater(rfc3339(j["valid_till"]), now)

    def test_applies_to_override(self):
        r = self.token("--applies-to", "https://rp.example.org/service")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        root = etree.fromstring(r.stdout)
        self.assertEqual(root.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS),
                         "https://rp.example.org/service")

    def test_wrong_password_fault_reaches_cli_and_broker_keeps_serving(self):
        r = self.token(profile="wrongpw")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        self.assertIn("ID3242", r.stderr.decode())
        ok = self.token()
        self.assertEqual(ok.returncode, 0, ok.stderr.decode())

    def test_unknown_profile_is_a_clear_error(self):
        r = self.token(profile="nosuchprofile")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        self.assertIn("nosuchprofile", r.stderr.decode())

    def test_worker_is_confined_and_is_where_parsing_happens(self):
        self.assertEqual(self.token().returncode, 0)
        pids = self.broker.worker_pids()
        self.assertTrue(pids, "no live worker after a request (pool keeps idle confined workers)")
        for pid in pids:
            status = open("/proc/%d/status" % pid).read()
            self.assertRegex(status, r"\nSeccomp:\s+2\n")
            self.assertRegex(status, r"\nNoNewPrivs:\s+1\n")
            uid = int(re.search(r"\nUid:\s+(\d+)", status).group(1))
            if os.geteuid() == 0:
                self.assertNotEqual(uid, 0)
        # the broker itself carries no parser: the worker's entry point is not in it
        nm = subprocess.run(["nm", "-C", os.path.join(os.environ.get("WSTRUST_BUILD_ROOT", ""), "broker", "wstrustd")],
                            capture_output=True, text=True)
        self.assertNotIn("wt_parse_reply", nm.stdout)


class WorkerFailures(unittest.TestCase):
    """Broker survival and the no-secrets rule, with their own STS and broker."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(cls.tmp, 0o755)
        laughs = os.path.join(cls.tmp, "laughs.xml")
        with open(laughs, "w") as f:
            f.write('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                    + "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1) if i else "&lol;") * 10) for i in range(10))
                    + ']><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol9;</s:Body></s:Envelope>')
        cls.sts = DevSTS(cls.tmp, "--canned", "/canned/laughs=" + laughs)
        cls.good = os.path.join(cls.tmp, "good.secret")
        write_secret(cls.good, "secret")
        cls.canary = "CANARY-" + secrets.token_hex(12)
        cls.canary_file = os.path.join(cls.tmp, "canary.secret")
        write_secret(cls.canary_file, cls.canary)
        cls.broker = Broker(cls.tmp, {
            "demo": profile_13(cls.sts, cls.good),
            "canary": profile_13(cls.sts, cls.canary_file, endpoint=cls.sts.url(ENDPOINT_13) + "?canary"),
            "laughs": profile_13(cls.sts, cls.good, endpoint=cls.sts.url("/canned/laughs")),
        })

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()

    def token(self, profile):
        return cli("token", "--socket", self.broker.socket, "--profile", profile, "--format", "xml")

    def test_hostile_reply_is_a_clear_error_then_service_continues(self):
        r = self.token("laughs")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        self.assertIn("DOCTYPE", r.stderr.decode())
        ok = self.token("demo")
        self.assertEqual(ok.returncode, 0, ok.stderr.decode())

    def test_killed_worker_then_next_request_succeeds(self):
        self.assertEqual(self.token("demo").returncode, 0)
        for pid in self.broker.worker_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        r = self.token("demo")
        self.assertEqual(r.returncode, 0, r.stderr.decode() + self.broker.read_log())
        self.assertIn("SIGKILL", self.broker.read_log())

    def test_canary_password_in_broker_memory_never_in_worker(self):
        self.assertEqual(os.geteuid(), 0, "this test reads /proc/PID/mem and must run as root")
        r = self.token("canary")   # the STS refuses it; the worker parses that fault
        self.assertNotEqual(r.returncode, 0)
        needle = self.canary.encode()
        self.assertTrue(read_mem(self.broker.pid(), needle), "scan does not work: canary not in the broker")
        pids = self.broker.worker_pids()
        self.assertTrue(pids)
        for pid in pids:
            self.assertFalse(read_mem(pid, needle), "canary password found in worker %d" % pid)
        self.assertNotIn(self.canary, self.broker.read_log())


class DyingSTS(unittest.TestCase):
    """An STS that is gone, hangs, hangs up, answers an error status without a
    body, or floods the broker: each a clear error with the SDK's HRESULT, no
    token on stdout, and the broker keeps serving the healthy profile."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(cls.tmp, 0o755)
        cls.sts = DevSTS(cls.tmp)
        gone = DevSTS(cls.tmp)       # started only to learn a port, then stopped
        gone_url = gone.url(ENDPOINT_13)
        gone.stop()
        good = os.path.join(cls.tmp, "good.secret")
        write_secret(good, "secret")
        cls.broker = Broker(cls.tmp, {
            "demo": profile_13(cls.sts, good),
            "gone": profile_13(cls.sts, good, endpoint=gone_url),
            "hangs": profile_13(cls.sts, good, endpoint=cls.sts.url("/test/slow?seconds=30"), timeout_ms=1000),
            "hangsup": profile_13(cls.sts, good, endpoint=cls.sts.url("/test/close")),
            "unavailable": profile_13(cls.sts, good, endpoint=cls.sts.url("/test/status?code=503")),
            "floods": profile_13(cls.sts, good, endpoint=cls.sts.url("/test/big?bytes=20000000")),
        }, broker={"max_reply_bytes": 1048576})

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()

    def fails(self, profile, hresult, text):
        t0 = time.monotonic()
        r = cli("token", "--socket", self.broker.socket, "--profile", profile)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        err = r.stderr.decode()
        self.assertIn("HRESULT 0x%08X" % hresult, err)
        self.assertIn(text, err)
        ok = cli("token", "--socket", self.broker.socket, "--profile", "demo")
        self.assertEqual(ok.returncode, 0, ok.stderr.decode() + self.broker.read_log())
        return time.monotonic() - t0

    def test_sts_gone(self):
        self.fails("gone", 0x803D0010, "STS unreachable")            # WS_E_ENDPOINT_UNREACHABLE

    def test_sts_hangs_until_the_profile_timeout(self):
        took = self.fails("hangs", 0x803D0006, "did not answer in time")   # WS_E_OPERATION_TIMED_OUT
        self.assertLess(took, 15)   # the 1 s profile timeout, not the STS's 30 s

    def test_sts_hangs_up(self):
        self.fails("hangsup", 0x803D000F, "HTTP exchange with the STS failed")   # WS_E_ENDPOINT_FAILURE

    def test_sts_error_status_without_a_body(self):
        self.fails("unavailable", 0x803D000F, "HTTP 503")

    def test_sts_reply_over_the_size_limit(self):
        self.fails("floods", 0x803D0008, "exceeds 1048576 bytes")     # WS_E_QUOTA_EXCEEDED


class HostileLocalUser(unittest.TestCase):
    """Another local user (uid nobody, identified by SO_PEERCRED, not by
    anything it sends) gets nothing the policy does not give it: not the
    token, not the proof key, not which endpoints exist."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(cls.tmp, 0o755)
        cls.sts = DevSTS(cls.tmp)
        good = os.path.join(cls.tmp, "good.secret")
        write_secret(good, "secret")
        cls.broker = Broker(cls.tmp, {
            "rootonly": profile_13(cls.sts, good),
            "shared": profile_13(cls.sts, good, endpoint=cls.sts.url(ENDPOINT_13) + "?shared",
                                 allow_users="root, nobody", key_type="symmetric"),
        })

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()

    def as_nobody(self, *args):
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        return subprocess.run([CLI, "token", "--socket", self.broker.socket, *args], capture_output=True,
                              timeout=60, preexec_fn=drop)

    def test_denied_profile_by_name_and_by_endpoint(self):
        self.assertEqual(os.geteuid(), 0, "this test switches to uid nobody and must run as root")
        r = self.as_nobody("--profile", "rootonly")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        self.assertIn("HRESULT 0x80070005", r.stderr.decode())            # E_ACCESSDENIED
        self.assertIn("may not use profile 'rootonly'", r.stderr.decode())
        self.assertIn("audit: uid=65534 ", self.broker.read_log())
        # by URL, as unchanged Windows code asks: the same answer as for a URL
        # nobody serves, so the endpoint's existence does not leak
        known = self.as_nobody("--endpoint", self.sts.url(ENDPOINT_13))
        unknown = self.as_nobody("--endpoint", self.sts.url("/nothing/here"))
        for r in (known, unknown):
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("HRESULT 0x803D000D", r.stderr.decode())        # WS_E_ENDPOINT_NOT_FOUND
        self.assertEqual(known.stderr.decode().replace(ENDPOINT_13, "X"),
                         unknown.stderr.decode().replace("/nothing/here", "X"))

    def test_allowed_profile_but_the_proof_key_stays_in_the_broker(self):
        r = self.as_nobody("--profile", "shared", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        j = json.loads(r.stdout)
        self.assertEqual(j["key_type"], "symmetric")
        self.assertNotIn("proof_key", j)
        self.assertIs(j["proof_key_withheld"], True)


class Reload(unittest.TestCase):
    """SIGHUP re-reads the config and its credential files: a corrected
    password takes effect without a restart, and a broken config is refused
    while the broker keeps serving with the one it has."""

    def test_sighup_reloads_credentials(self):
        tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(tmp, 0o755)
        sts = DevSTS(tmp)
        pw = os.path.join(tmp, "pw.secret")
        write_secret(pw, "not-the-password")
        broker = Broker(tmp, {"demo": profile_13(sts, pw)})
        try:
            token = lambda: cli("token", "--socket", broker.socket, "--profile", "demo")
            r = token()
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("ID3242", r.stderr.decode())
            write_secret(pw, "secret")
            broker.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in broker.read_log() and time.monotonic() < deadline:
                time.sleep(0.05)
            r = token()
            self.assertEqual(r.returncode, 0, r.stderr.decode() + broker.read_log())
            # a config that no longer loads (world-readable password file) is
            # refused on reload; the loaded one keeps serving
            os.chmod(pw, 0o644)
            broker.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reload failed" not in broker.read_log() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn("reload failed", broker.read_log())
            self.assertIn("mode 0644", broker.read_log())
            r = token()
            self.assertEqual(r.returncode, 0, r.stderr.decode() + broker.read_log())
        finally:
            broker.stop()
            sts.stop()


class WorkerOverBudget(unittest.TestCase):
    """A reply crafted to exceed the worker's limits (here its wall-clock
    budget, set to 20 ms) gets the worker killed and the request a clear
    error; the broker keeps serving and the next request succeeds."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wstrust-e2e-")
        os.chmod(cls.tmp, 0o755)
        big = os.path.join(cls.tmp, "big.xml")
        with open(big, "w") as f:   # 7 MiB: under max_reply_bytes, far over 20 ms of work
            f.write('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><!--'
                    + "x" * (7 << 20) + "--></s:Body></s:Envelope>")
        cls.sts = DevSTS(cls.tmp, "--canned", "/canned/big=" + big)
        good = os.path.join(cls.tmp, "good.secret")
        write_secret(good, "secret")
        cls.broker = Broker(cls.tmp, {
            "demo": profile_13(cls.sts, good),
            "big": profile_13(cls.sts, good, endpoint=cls.sts.url("/canned/big")),
        }, broker={"worker_timeout_ms": 20})

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.sts.stop()

    def test_worker_over_its_budget_is_killed_then_service_continues(self):
        r = cli("token", "--socket", self.broker.socket, "--profile", "big")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        err = r.stderr.decode()
        self.assertRegex(err, r"worker did not (take the reply|answer) within 20 ms \(killed\)")
        self.assertIn("HRESULT 0x803D0006", err)   # WS_E_OPERATION_TIMED_OUT
        self.assertIn("timeout", self.broker.read_log())
        ok = cli("token", "--socket", self.broker.socket, "--profile", "demo")
        self.assertEqual(ok.returncode, 0, ok.stderr.decode() + self.broker.read_log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
