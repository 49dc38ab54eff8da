#!/usr/bin/python3
"""The wstrust CLI (and the Windows-style example) against a fake broker: a
Python thread speaking the IPC frame format (ipc/ipc.h) on a Unix socket.

usage: test_cli.py WSTRUST_EXE REQUEST_TOKEN_EXE"""
import base64
import calendar
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

WSTRUST = sys.argv.pop(1)
EXAMPLE = sys.argv.pop(1)

# ipc/ipc.h wire numbers
REQ_TOKEN, ANS_TOKEN, ANS_ERROR = 0x0100, 0x0101, 0x0103
T_PROFILE, T_ENDPOINT, T_APPLIES_TO, T_TRUST_VERSION, T_TOKEN_TYPE, T_KEY_TYPE = 1, 2, 3, 4, 5, 6
T_KEY_SIZE, T_ENTROPY_MODE, T_REQUEST_ACTION, T_SC_VERSION, T_BEARER_VERSION = 7, 8, 9, 10, 11
T_LOCAL_PARAMS, T_SERVICE_PARAMS, T_EXISTING_TOKEN, T_MAX_REPLY = 12, 13, 14, 15
T_EMBEDDED = 17
T_PROOF_KEY, T_PROOF_WITHHELD = 39, 40
T_TOKEN_XML, T_TOKEN_TYPE_URI, T_KEY_TYPE_OUT, T_VALID_FROM, T_VALID_TILL = 32, 33, 34, 35, 36
T_ATTACHED_REF, T_UNATTACHED_REF = 37, 38
T_HRESULT, T_ERROR_STRING, T_CHANNEL_FAULTED = 48, 49, 50

SAML2 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
TOKEN = ('<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x">'
         '<saml:Issuer>https://sts.example/ caf\u00e9 "q" \\ </saml:Issuer></saml:Assertion>')
ATTACHED = '<o:SecurityTokenReference xmlns:o="urn:o"><o:KeyIdentifier>_x</o:KeyIdentifier></o:SecurityTokenReference>'


def ticks(rfc3339):
    unix = calendar.timegm(__import__("time").strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))
    return (unix + 62135596800) * 10_000_000


def frame(mtype, fields):
    body = b"".join(struct.pack(">HI", tag, len(v)) + v for tag, v in fields)
    return struct.pack(">IHH", 4 + len(body), mtype, 0) + body


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def parse(buf):
    mtype = struct.unpack(">H", buf[4:6])[0]
    fields, off = {}, 8
    while off < len(buf):
        tag, n = struct.unpack(">HI", buf[off:off + 6])
        fields.setdefault(tag, []).append(buf[off + 6:off + 6 + n])
        off += 6 + n
    return mtype, fields


class FakeBroker:
    def __init__(self, path):
        self.path = path
        self.answer = None
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def read_exact(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def serve(self, conn):
        with conn:
            conn.settimeout(10)
            while True:
                hdr = self.read_exact(conn, 4)
                if hdr is None:
                    return
                rest = self.read_exact(conn, struct.unpack(">I", hdr)[0])
                if rest is None:
                    return
                self.requests.append(parse(hdr + rest))
                conn.sendall(self.answer)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def token_answer(xml=TOKEN, token_type=SAML2, key_type=1, valid_from=ticks("2026-11-25T10:00:00Z"),
                 valid_till=ticks("2026-11-25T11:00:00Z"), attached=ATTACHED, unattached=None, proof=None,
                 withheld=None):
    f = [(T_TOKEN_XML, xml.encode()), (T_KEY_TYPE_OUT, u32(key_type)),
         (T_VALID_FROM, u64(valid_from)), (T_VALID_TILL, u64(valid_till))]
    if token_type:
        f.append((T_TOKEN_TYPE_URI, token_type.encode()))
    if attached:
        f.append((T_ATTACHED_REF, attached.encode()))
    if unattached:
        f.append((T_UNATTACHED_REF, unattached.encode()))
    if proof is not None:
        f.append((T_PROOF_KEY, proof))
    if withheld is not None:
        f.append((T_PROOF_WITHHELD, u32(withheld)))
    return frame(ANS_TOKEN, f)


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sock = os.path.join(cls.tmp.name, "broker.sock")
        cls.broker = FakeBroker(cls.sock)

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()
        cls.tmp.cleanup()

    def setUp(self):
        self.broker.requests.clear()
        self.broker.answer = token_answer()

    def run_cli(self, *args, env=None):
        return subprocess.run([WSTRUST, *args], capture_output=True, timeout=60, env=env)

    def token(self, *extra):
        return self.run_cli("token", "--socket", self.sock, "--profile", "demo", *extra)

    def last_request(self):
        self.assertEqual(len(self.broker.requests), 1)
        mtype, fields = self.broker.requests[0]
        self.assertEqual(mtype, REQ_TOKEN)
        return fields

    def test_json(self):
        r = self.token("--format", "json", "--applies-to", "urn:example:rp")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["token"], TOKEN)
        self.assertEqual(out["token_type"], SAML2)
        self.assertEqual(out["key_type"], "bearer")
        self.assertEqual(out["valid_from"], "2026-11-25T10:00:00Z")
        self.assertEqual(out["valid_till"], "2026-11-25T11:00:00Z")
        self.assertEqual(out["attached_reference"], ATTACHED)
        self.assertNotIn("unattached_reference", out)
        self.assertNotIn("proof_key", out)
        self.assertIs(out["proof_key_withheld"], False)
        f = self.last_request()
        self.assertEqual(f[T_PROFILE], [b"demo"])
        self.assertEqual(f[T_APPLIES_TO], [b"urn:example:rp"])
        self.assertNotIn(T_ENDPOINT, f)
        self.assertNotIn(T_TRUST_VERSION, f, "a profile request must leave the trust version to the profile")

    def test_xml_is_the_token_bytes(self):
        r = self.token("--format", "xml")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, TOKEN.encode() + b"\n")

    def test_json_escaping_and_missing_times(self):
        nasty = '<a x="1">\\ \t\n\x01 "quoted" \u00e9\u4e2d</a>'
        self.broker.answer = token_answer(xml=nasty, token_type=None, valid_from=0, valid_till=0, attached=None)
        r = self.token("--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["token"], nasty)
        self.assertIsNone(out["token_type"])
        self.assertIsNone(out["valid_from"])
        self.assertIsNone(out["valid_till"])
        self.assertNotIn("attached_reference", out)

    def test_key_types(self):
        for value, name in ((2, "symmetric"), (3, "asymmetric")):
            self.broker.answer = token_answer(key_type=value)
            r = self.token("--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["key_type"], name)

    def test_error_strings_in_order_and_nothing_on_stdout(self):
        self.broker.answer = frame(ANS_ERROR, [
            (T_HRESULT, u32(0x803D0013)),
            (T_ERROR_STRING, b"The STS returned a fault: ID3242: bad password"),
            (T_ERROR_STRING, b"fault code: {soap}Sender / {trust}FailedAuthentication"),
            (T_CHANNEL_FAULTED, u32(0))])
        r = self.token("--format", "json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        lines = r.stderr.decode().splitlines()
        self.assertEqual(lines[0], "wstrust: The STS returned a fault: ID3242: bad password")
        self.assertEqual(lines[1], "wstrust: fault code: {soap}Sender / {trust}FailedAuthentication")
        self.assertIn("0x803D0013", r.stderr.decode())

    def test_garbage_answer(self):
        self.broker.answer = b"\x00\x00\x00\x04\x7f\x7f\x00\x00"
        r = self.token()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertIn("0x803D0000", r.stderr.decode())

    def test_no_broker(self):
        missing = os.path.join(self.tmp.name, "nothing.sock")
        r = self.run_cli("token", "--socket", missing, "--profile", "demo")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertIn(missing, r.stderr.decode())
        self.assertTrue(all(l.startswith("wstrust: ") for l in r.stderr.decode().splitlines()))

    def test_socket_from_environment(self):
        env = dict(os.environ, WSTRUST_SOCKET=self.sock)
        r = self.run_cli("token", "--profile", "demo", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, TOKEN.encode() + b"\n")

    def test_endpoint_and_trust_version(self):
        url = "https://127.0.0.1:4443/adfs/services/trust/13/usernamemixed"
        r = self.run_cli("token", "--socket", self.sock, "--endpoint", url, "--token-type", SAML2,
                         "--key-type", "bearer")
        self.assertEqual(r.returncode, 0, r.stderr)
        f = self.last_request()
        self.assertEqual(f[T_ENDPOINT], [url.encode()])
        self.assertEqual(f[T_TRUST_VERSION], [u32(1)], "WsRequestSecurityToken's default is February 2005")
        self.assertEqual(f[T_TOKEN_TYPE], [SAML2.encode()])
        self.assertEqual(f[T_KEY_TYPE], [u32(1)])
        self.broker.requests.clear()
        r = self.run_cli("token", "--socket", self.sock, "--endpoint", url, "--trust-version", "1.3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_request()[T_TRUST_VERSION], [u32(2)])

    def test_usage(self):
        for args in (["token", "--socket", self.sock], ["token", "--profile", "a", "--endpoint", "https://x/"],
                     ["token", "--profile", "a", "--format", "yaml"], ["token", "--profile", "a", "--trust-version", "9"],
                     ["frobnicate"], []):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)
        self.assertEqual(self.broker.requests, [])
        for args in (["--help"], ["token", "--help"], ["demo", "--help"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn(b"usage: wstrust", r.stdout)

    def write(self, name, data):
        path = os.path.join(self.tmp.name, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_every_request_flag_reaches_the_broker(self):
        local = self.write("local.xml", b'<?xml version="1.0"?>\n<wst:Claims xmlns:wst="urn:t">c</wst:Claims>\n')
        service = self.write("service.xml", b'<a:X xmlns:a="urn:a"/><a:Y xmlns:a="urn:a"/>')
        sct = b'<c:SecurityContextToken xmlns:c="urn:sc"><c:Identifier>urn:uuid:1</c:Identifier></c:SecurityContextToken>'
        existing = self.write("sct.xml", b"\xef\xbb\xbf  " + sct + b"\n")
        self.broker.answer = token_answer(key_type=2, proof=b"k" * 32)
        r = self.token("--key-type", "symmetric", "--key-size", "256", "--entropy", "combined",
                       "--action", "renew-context", "--existing-token", existing, "--sc-version", "1.3",
                       "--local-params", local, "--service-params", service, "--max-reply", "123456")
        self.assertEqual(r.returncode, 0, r.stderr)
        f = self.last_request()
        self.assertEqual(f[T_KEY_TYPE], [u32(2)])
        self.assertEqual(f[T_KEY_SIZE], [u32(256)])
        self.assertEqual(f[T_ENTROPY_MODE], [u32(3)])
        self.assertEqual(f[T_REQUEST_ACTION], [u32(3)])
        self.assertEqual(f[T_SC_VERSION], [u32(2)])
        self.assertEqual(f[T_EXISTING_TOKEN], [sct], "the token's XML, without BOM or white space")
        self.assertEqual(f[T_LOCAL_PARAMS], [b'<wst:Claims xmlns:wst="urn:t">c</wst:Claims>'])
        self.assertEqual(f[T_SERVICE_PARAMS], [b'<a:X xmlns:a="urn:a"/><a:Y xmlns:a="urn:a"/>'])
        self.assertEqual(f[T_MAX_REPLY], [u32(123456)])
        self.assertNotIn(T_BEARER_VERSION, f)

    def test_enum_flag_values(self):
        cases = [(("--entropy", "client"), T_ENTROPY_MODE, 1), (("--entropy", "server"), T_ENTROPY_MODE, 2),
                 (("--action", "issue"), T_REQUEST_ACTION, 1), (("--action", "new-context"), T_REQUEST_ACTION, 2),
                 (("--sc-version", "2005"), T_SC_VERSION, 1),
                 (("--bearer-version", "original-specification"), T_BEARER_VERSION, 1),
                 (("--bearer-version", "original-schema"), T_BEARER_VERSION, 2),
                 (("--bearer-version", "errata-01"), T_BEARER_VERSION, 3)]
        for args, tag, value in cases:
            self.broker.requests.clear()
            r = self.token(*args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
            self.assertEqual(self.last_request()[tag], [u32(value)], args)

    def test_proof_key_released(self):
        key = bytes(range(1, 33))
        self.broker.answer = token_answer(key_type=2, proof=key, unattached=ATTACHED.replace("_x", "_u"))
        r = self.token("--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["key_type"], "symmetric")
        self.assertEqual(base64.b64decode(out["proof_key"], validate=True), key)
        self.assertIs(out["proof_key_withheld"], False)
        self.assertEqual(out["unattached_reference"], ATTACHED.replace("_x", "_u"))
        self.assertEqual(out["attached_reference"], ATTACHED)

    def test_proof_key_lengths_encode(self):
        for n in (1, 2, 3, 16, 17, 64):
            key = bytes((i * 37 + n) & 0xff for i in range(n))
            self.broker.answer = token_answer(key_type=2, proof=key)
            r = self.token("--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["proof_key"], base64.b64encode(key).decode(), n)

    def test_proof_key_withheld(self):
        self.broker.answer = token_answer(key_type=2, withheld=1)
        r = self.token("--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertNotIn("proof_key", out)
        self.assertIs(out["proof_key_withheld"], True)

    def test_invalid_combinations_fail_before_sending(self):
        existing = self.write("tok.xml", b"<t/>")
        cases = [(("--key-type", "bearer", "--key-size", "256"), "ISSUED_TOKEN_KEY_SIZE"),
                 (("--key-type", "bearer", "--entropy", "combined"), "ISSUED_TOKEN_KEY_ENTROPY"),
                 (("--existing-token", existing), "EXISTING_TOKEN"),
                 (("--action", "renew-context"), "REQUEST_ACTION")]
        for args, prop in cases:
            r = self.token(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertEqual(r.stdout, b"", args)
            err = r.stderr.decode()
            self.assertIn("WS_REQUEST_SECURITY_TOKEN_PROPERTY_" + prop, err, args)
            self.assertIn("wstrust: request failed (HRESULT 0x80070057)", err.splitlines(), args)
        self.assertEqual(self.broker.requests, [])

    def test_unreadable_xml_files(self):
        missing = os.path.join(self.tmp.name, "missing.xml")
        notxml = self.write("text.xml", b"just text")
        for flag in ("--local-params", "--service-params", "--existing-token"):
            for path in (missing, notxml):
                r = self.token(flag, path, "--action", "renew-context")
                self.assertEqual(r.returncode, 1, (flag, path))
                self.assertEqual(r.stdout, b"")
                self.assertIn(flag, r.stderr.decode())
                self.assertIn(path, r.stderr.decode())
        self.assertEqual(self.broker.requests, [])

    def test_new_flag_usage_errors(self):
        for args in (["--key-size", "0"], ["--key-size", "x"], ["--key-size", "-8"], ["--entropy", "both"],
                     ["--action", "cancel"], ["--sc-version", "1.4"], ["--bearer-version", "errata"],
                     ["--max-reply", "0"], ["--max-reply", "99999999999"]):
            r = self.token(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)
            self.assertIn(args[0], r.stderr.decode())
        self.assertEqual(self.broker.requests, [])
        r = self.run_cli("token", "--help")
        for flag in ("--key-size", "--entropy", "--action", "--existing-token", "--sc-version", "--bearer-version",
                     "--local-params", "--service-params", "--max-reply", "proof_key_withheld"):
            self.assertIn(flag.encode(), r.stdout)

    def test_getopt_errors_are_prefixed(self):
        for args in (["--frobnicate"], ["--timeout"]):
            r = self.token(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)
            self.assertTrue(r.stderr.decode().startswith("wstrust: "), r.stderr.decode().splitlines()[0])
        self.assertEqual(self.broker.requests, [])

    def test_sts_text_cannot_reach_the_terminal_raw(self):
        self.broker.answer = frame(ANS_ERROR, [
            (T_HRESULT, u32(0x803D0013)),
            (T_ERROR_STRING, "The STS returned a fault: \x1b[2J\x1b]0;pwned\x07\nwstrust: forged \u009b31m".encode()),
            (T_CHANNEL_FAULTED, u32(0))])
        r = self.token()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        err = r.stderr.decode()
        for bad in ("\x1b", "\x07", "\u009b"):
            self.assertNotIn(bad, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("wstrust: The STS returned a fault: ?[2J"), lines[0])
        self.assertIn("0x803D0013", lines[1])

    def test_windows_style_example(self):
        url = "https://127.0.0.1:4443/adfs/services/trust/13/usernamemixed"
        # The example passes alice's credentials, as Windows code does:
        # WSTRUST_MODE=daemon sends them nowhere (the broker holds its own).
        env = dict(os.environ, WSTRUST_SOCKET=self.sock, WSTRUST_MODE="daemon")
        r = subprocess.run([EXAMPLE, url], capture_output=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, TOKEN.encode() + b"\n")
        f = self.last_request()
        self.assertEqual(f[T_ENDPOINT], [url.encode()])
        self.assertEqual(f[T_APPLIES_TO], [b"urn:example:rp"])
        self.assertEqual(f[T_TRUST_VERSION], [u32(2)])
        self.assertEqual(f[T_KEY_TYPE], [u32(1)])
        self.assertEqual(f[T_TOKEN_TYPE], [SAML2.encode()])
        self.assertNotIn(T_EMBEDDED, f)

    def test_default_mode_is_daemon(self):
        """Unchanged Windows code fills in credentials; by default they are not
        used and the request goes to the system broker's socket.  Embedded mode
        (a private broker) is chosen explicitly: WSTRUST_MODE=embedded, or
        =auto when the description carries a credential."""
        url = "https://127.0.0.1:4443/adfs/services/trust/13/usernamemixed"
        env = dict(os.environ, WSTRUST_SOCKET=self.sock, WSTRUST_BROKER_PATH="/nonexistent/wstrustd")
        env.pop("WSTRUST_MODE", None)
        r = subprocess.run([EXAMPLE, url], capture_output=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, TOKEN.encode() + b"\n")
        self.assertEqual(len(self.broker.requests), 1)
        self.assertNotIn(T_EMBEDDED, self.last_request())
        for mode in ("embedded", "auto"):
            env["WSTRUST_MODE"] = mode
            r = subprocess.run([EXAMPLE, url], capture_output=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 1, mode)
            self.assertIn(b"0x803d0010", r.stderr)
            self.assertIn(b"/nonexistent/wstrustd", r.stderr)
            self.assertEqual(len(self.broker.requests), 1, mode)

if __name__ == "__main__":
    unittest.main(verbosity=2)
