"""wstrustd as a program: CLI contract, config refusal, and the protocol's
refusal paths (policy, unknown profile/endpoint, unreachable STS, malformed
frames) over its real socket.  No STS needed: the e2e suite covers tokens."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("WSTRUST_BUILD_ROOT", "build")
WSTRUSTD = os.path.join(BUILD, "broker", "wstrustd")

REQ_TOKEN, ANS_TOKEN, ANS_ERROR = 0x0100, 0x0101, 0x0103
T_PROFILE, T_ENDPOINT, T_TIMEOUT_MS = 1, 2, 16
T_HRESULT, T_ERROR_STRING, T_CHANNEL_FAULTED = 48, 49, 50
E_INVALIDARG, E_ACCESSDENIED = 0x80070057, 0x80070005
WS_E_ENDPOINT_NOT_FOUND, WS_E_ENDPOINT_UNREACHABLE = 0x803D000D, 0x803D0010
PASSWORD = "p@ss<w0rd>&-not-in-logs"


def frame(mtype, fields):
    body = b"".join(struct.pack(">HI", tag, len(v)) + v for tag, v in fields)
    return struct.pack(">IHH", 4 + len(body), mtype, 0) + body


def read_frame(sock):
    hdr = b""
    while len(hdr) < 4:
        chunk = sock.recv(4 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    (n,) = struct.unpack(">I", hdr)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError("short frame")
        data += chunk
    mtype, _flags = struct.unpack(">HH", data[:4])
    fields, off = [], 4
    while off < len(data):
        tag, ln = struct.unpack(">HI", data[off:off + 6])
        fields.append((tag, data[off + 6:off + 6 + ln]))
        off += 6 + ln
    return mtype, fields


def error_of(answer):
    mtype, fields = answer
    assert mtype == ANS_ERROR, "expected ANS_ERROR, got 0x%04x" % mtype
    hr = [struct.unpack(">I", v)[0] for t, v in fields if t == T_HRESULT][0]
    faulted = [struct.unpack(">I", v)[0] for t, v in fields if t == T_CHANNEL_FAULTED][0]
    strings = [v.decode() for t, v in fields if t == T_ERROR_STRING]
    return hr, faulted, strings


class Broker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="wstrustd-test-")
        d = cls.dir
        cls.sock = os.path.join(d, "s.sock")
        with open(os.path.join(d, "ca.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
        cls.pw = os.path.join(d, "pw")
        with open(cls.pw, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(cls.pw, 0o600)
        profile = ("auth = username\nusername = alice\npassword_file = %s\nca_file = %s/ca.pem\n"
                   "trust_version = 1.3\nkey_type = bearer\n" % (cls.pw, d))
        cls.conf = os.path.join(d, "wstrustd.conf")
        with open(cls.conf, "w") as f:
            f.write("[broker]\nsocket = %s\nworker_pool = 0\n\n" % cls.sock)
            # nothing listens on port 1: unreachable
            f.write("[profile open]\nendpoint = https://127.0.0.1:1/sts\n" + profile)
            f.write("[profile locked]\nendpoint = https://127.0.0.1:1/locked\nallow_users = 4242\n" + profile)
        cls.log = open(os.path.join(d, "log"), "w+")
        cls.proc = subprocess.Popen([WSTRUSTD, "--config", cls.conf, "--foreground"],
                                    stderr=cls.log, stdout=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(cls.sock):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("broker did not create its socket")

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def ask(self, fields, mtype=REQ_TOKEN):
        """One request on a new connection; returns (socket, answer).  The
        socket is closed when the test ends."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(20)
        s.connect(self.sock)
        s.sendall(frame(mtype, fields))
        ans = read_frame(s)
        return s, ans

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(10)
        s.connect(self.sock)
        return s

    def test_unknown_profile(self):
        s, ans = self.ask([(T_PROFILE, b"nosuch")])
        hr, faulted, strings = error_of(ans)
        self.assertEqual(hr, E_INVALIDARG)
        self.assertEqual(faulted, 0)
        self.assertIn("unknown profile 'nosuch'", strings[0])
        # the connection stays usable after a refused request
        s.sendall(frame(REQ_TOKEN, [(T_PROFILE, b"nosuch2")]))
        self.assertEqual(error_of(read_frame(s))[0], E_INVALIDARG)
        s.close()

    def test_policy_denies_by_name_and_hides_endpoint(self):
        if os.geteuid() == 4242:
            self.fail("test must not run as uid 4242")
        _, ans = self.ask([(T_PROFILE, b"locked")])
        hr, faulted, strings = error_of(ans)
        self.assertEqual((hr, faulted), (E_ACCESSDENIED, 0))
        self.assertIn("may not use profile 'locked'", strings[0])
        self.assertIn("audit: uid=%d " % os.geteuid(), self.logtext())
        self.assertRegex(self.logtext(), r"audit: uid=\d+ pid=\d+ profile=locked decision=deny reason=")
        # by endpoint: indistinguishable from an endpoint nobody serves
        _, ans = self.ask([(T_ENDPOINT, b"https://127.0.0.1:1/locked")])
        hr1, f1, s1 = error_of(ans)
        _, ans = self.ask([(T_ENDPOINT, b"https://127.0.0.1:1/nothing-here")])
        hr2, f2, s2 = error_of(ans)
        self.assertEqual((hr1, f1), (WS_E_ENDPOINT_NOT_FOUND, 0))
        self.assertEqual((hr2, f2), (WS_E_ENDPOINT_NOT_FOUND, 0))
        self.assertEqual(s1[0].replace("/locked", "/X"), s2[0].replace("/nothing-here", "/X"))

    def test_unreachable_sts_faults_channel(self):
        _, ans = self.ask([(T_PROFILE, b"open"), (T_TIMEOUT_MS, struct.pack(">I", 5000))])
        hr, faulted, strings = error_of(ans)
        self.assertEqual((hr, faulted), (WS_E_ENDPOINT_UNREACHABLE, 1), strings)
        self.assertIn("unreachable", strings[0])
        self.assertRegex(self.logtext(), r"audit: uid=\d+ pid=\d+ profile=open decision=allow")

    def test_malformed_frame_closes(self):
        s = self.connect()
        # an unknown tag 999 in a token request
        s.sendall(frame(REQ_TOKEN, [(999, b"x")]))
        hr, faulted, strings = error_of(read_frame(s))
        self.assertEqual((hr, faulted), (E_INVALIDARG, 1))
        self.assertIn("malformed request", strings[0])
        self.assertIsNone(read_frame(s), "connection not closed after a malformed frame")

    def test_oversized_frame_refused(self):
        s = self.connect()
        s.sendall(struct.pack(">IHH", 0x7fffffff, REQ_TOKEN, 0))
        hr, faulted, strings = error_of(read_frame(s))
        self.assertEqual((hr, faulted), (E_INVALIDARG, 1))
        self.assertIn("too large", strings[0])

    def test_zz_password_never_logged_and_clean_stop(self):
        # run last (zz): stops the broker
        self.ask([(T_PROFILE, b"open"), (T_TIMEOUT_MS, struct.pack(">I", 2000))])
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(self.sock), "socket left behind")
        text = self.logtext()
        self.assertIn("shutting down", text)
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("p@ss", text)


class Cli(unittest.TestCase):
    def run_broker(self, *args):
        return subprocess.run([WSTRUSTD] + list(args), capture_output=True, text=True, timeout=30)

    def test_help_version_usage(self):
        r = self.run_broker("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--config FILE", r.stdout)
        r = self.run_broker("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^wstrustd \d+\.\d+")
        r = self.run_broker()
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config FILE is required", r.stderr)
        r = self.run_broker("--config", "/x", "--bogus")
        self.assertEqual(r.returncode, 2)

    def test_check_config(self):
        d = tempfile.mkdtemp(prefix="wstrustd-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        pw = os.path.join(d, "pw")
        with open(pw, "w") as f:
            f.write("secret\n")
        os.chmod(pw, 0o600)
        conf = os.path.join(d, "c.conf")
        body = ("[profile p]\nendpoint = https://127.0.0.1:9/x\ntrust_version = 1.3\n"
                "ca_file = %s\nauth = username\nusername = u\npassword_file = %s\n" % (conf, pw))
        with open(conf, "w") as f:
            f.write(body)
        r = self.run_broker("--config", conf, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK (1 profile)", r.stdout)
        os.chmod(pw, 0o644)
        r = self.run_broker("--config", conf, "--check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:7: password_file %s is readable by group/others (mode 0644): chmod 600 it"
                      % (conf, pw), r.stderr)
        os.chmod(pw, 0o600)
        with open(conf, "a") as f:
            f.write("colour = blue\n")
        r = self.run_broker("--config", conf, "--check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:8: unknown key 'colour' in [profile p]" % conf, r.stderr)
        # a broker that cannot start says why and exits 1
        r = self.run_broker("--config", conf, "--foreground")
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
