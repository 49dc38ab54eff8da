#!/usr/bin/python3
"""`wstrust demo`: the dev STS and a private wstrustd started, a token
requested through libwstrust and printed, everything stopped and removed,
also when the CLI is interrupted.

usage: test_demo.py WSTRUST_EXE"""
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from xml.etree import ElementTree

WSTRUST = sys.argv.pop(1)
SAML2_NS = "urn:oasis:names:tc:SAML:2.0:assertion"


def processes_mentioning(text):
    """PIDs whose command line contains text (our children are found by
    their private temporary directory)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Demo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wstrust-demotest-")
        self.env = dict(os.environ, TMPDIR=self.tmp.name)
        self.env.pop("WSTRUST_SOCKET", None)

    def tearDown(self):
        self.tmp.cleanup()

    def wait_gone(self, text, seconds=5):
        deadline = time.monotonic() + seconds
        while processes_mentioning(text) and time.monotonic() < deadline:
            time.sleep(0.05)
        return processes_mentioning(text)

    def test_demo_prints_a_token_and_cleans_up(self):
        r = subprocess.run([WSTRUST, "demo"], capture_output=True, timeout=120, env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        out = json.loads(r.stdout)
        for key in ("token", "token_type", "key_type", "valid_from", "valid_till"):
            self.assertIn(key, out)
        self.assertEqual(out["key_type"], "bearer")
        self.assertEqual(out["token_type"], "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0")
        root = ElementTree.fromstring(out["token"])
        self.assertEqual(root.tag, "{%s}Assertion" % SAML2_NS)
        ns = {"saml": SAML2_NS}
        self.assertEqual(root.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=ns),
                         "urn:example:rp")
        self.assertRegex(out["valid_from"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(os.listdir(self.tmp.name), [], "the demo left its temporary directory behind")
        self.assertEqual(self.wait_gone(self.tmp.name), [], "the demo left children running")

    def test_keep_and_pretty(self):
        r = subprocess.run([WSTRUST, "demo", "--keep", "--format", "pretty"], capture_output=True, timeout=120,
                           env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertTrue(r.stdout.startswith(b"<saml:Assertion"), r.stdout[:80])
        err = r.stderr.decode()
        self.assertIn("bearer token", err)
        kept = [l.split("kept ", 1)[1] for l in err.splitlines() if "kept " in l]
        self.assertEqual(len(kept), 1, err)
        d = kept[0]
        self.assertTrue(d.startswith(self.tmp.name))
        conf = open(os.path.join(d, "wstrustd.conf")).read()
        self.assertIn("[profile demo]", conf)
        self.assertIn("trust_version = 1.3", conf)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "secret")).st_mode), 0o600)
        self.assertEqual(self.wait_gone(d), [], "children still running after the demo")

    def test_interrupt_stops_children(self):
        p = subprocess.Popen([WSTRUST, "demo", "--keep"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        # Interrupt once the STS is up (its workdir exists).
        deadline = time.monotonic() + 60
        started = False
        while time.monotonic() < deadline and p.poll() is None:
            dirs = [e for e in os.listdir(self.tmp.name) if e.startswith("wstrust-demo-")]
            if dirs and processes_mentioning(os.path.join(self.tmp.name, dirs[0])):
                started = True
                break
            time.sleep(0.02)
        self.assertTrue(started, "the demo did not start its children")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 128 + signal.SIGINT, err.decode())
        self.assertEqual(out, b"")
        self.assertIn("interrupted", err.decode())
        self.assertEqual(self.wait_gone(self.tmp.name), [], "children survived the interrupted demo")


if __name__ == "__main__":
    unittest.main(verbosity=2)
