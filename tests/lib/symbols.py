#!/usr/bin/python3
"""libwstrust exports only Ws* and wstrust_* names, and needs no XML, crypto
or sodium library (the client side links the IPC codec and nothing heavier)."""
import subprocess
import sys
import unittest

LIB = sys.argv.pop(1) if len(sys.argv) > 1 else None

FORBIDDEN = ("libxml2", "libcrypto", "libssl", "libsodium", "libcurl", "libxmlsec", "libseccomp", "libinih")
REQUIRED = ("WsCreateChannel", "WsOpenChannel", "WsCloseChannel", "WsAbortChannel", "WsResetChannel",
            "WsFreeChannel", "WsGetChannelProperty", "WsRequestSecurityToken", "WsGetSecurityTokenProperty",
            "WsFreeSecurityToken", "WsCreateXmlSecurityToken", "WsCreateError", "WsGetErrorProperty",
            "WsGetErrorString", "WsResetError", "WsFreeError", "WsCreateHeap", "WsAlloc", "WsFreeHeap",
            "WsWriteXmlBufferToBytes", "wstrust_open_channel_profile", "wstrust_set_channel_socket")


class Symbols(unittest.TestCase):
    def test_exports(self):
        out = subprocess.run(["nm", "-D", "--defined-only", LIB], check=True, capture_output=True, text=True).stdout
        names = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            kind, name = parts[1], parts[2].split("@")[0]
            if kind == "A":  # the version node itself (WSTRUST_1)
                continue
            names.append(name)
        bad = [n for n in names if not (n.startswith("Ws") or n.startswith("wstrust_"))]
        self.assertEqual(bad, [], "exported names outside Ws*/wstrust_*")
        missing = [n for n in REQUIRED if n not in names]
        self.assertEqual(missing, [], "API functions not exported")
        self.assertFalse(any(n.startswith("ipc_") for n in names), "the IPC codec leaks out")

    def test_needed(self):
        out = subprocess.run(["readelf", "-d", LIB], check=True, capture_output=True, text=True).stdout
        needed = [l.split("[")[1].split("]")[0] for l in out.splitlines() if "(NEEDED)" in l]
        self.assertTrue(needed, "readelf shows no NEEDED entries at all")
        for n in needed:
            for f in FORBIDDEN:
                self.assertFalse(n.startswith(f), f"libwstrust needs {n}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
