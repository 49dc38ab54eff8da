"""docs/SANDBOX.md's syscall table says what worker/sandbox.c's table does.

Every row of the rules[] table in sandbox.c (syscall, argument filter,
action) must appear in the documentation's table, and the documentation
must list no syscall the filter does not have.

usage: test_docs.py worker/sandbox.c docs/SANDBOX.md
"""
import re
import sys
import unittest

SANDBOX_C, SANDBOX_MD = sys.argv[1], sys.argv[2]


def code_rows():
    src = open(SANDBOX_C, encoding="utf-8").read()
    table = src[src.index("static const struct rule rules[] = {"):]
    table = table[:table.index("\n};")]
    rows = set()
    sanitized = False
    for line in table.splitlines():
        if line.startswith("#if SANDBOX_SANITIZED"):
            sanitized = True
        elif line.startswith("#if !SANDBOX_SANITIZED"):
            sanitized = False
        elif line.startswith("#endif"):
            sanitized = False
        m = re.match(r'\s*\{ "(\w+)", (\w+), (\w+),', line)
        if m:
            name, arg, refuse = m.groups()
            rows.add((name, arg, "allow" if refuse == "0" else refuse, sanitized))
    return rows


def doc_rows():
    rows = set()
    for line in open(SANDBOX_MD, encoding="utf-8"):
        # | `read` | FD_CHANNEL | allow | reason |   (ASan-only rows say "ASAN ONLY")
        m = re.match(r"\|\s*`(\w+)`\s*\|\s*`?(\w+)`?\s*\|\s*`?([\w()]+)`?\s*\|(.*)\|", line)
        if m:
            name, arg, action, reason = m.groups()
            action = "allow" if action == "allow" else re.sub(r"ERRNO\((\w+)\)", r"\1", action)
            rows.add((name, arg, action, "ASAN ONLY" in reason))
    return rows


class DocsInSync(unittest.TestCase):
    def test_every_rule_documented(self):
        missing = code_rows() - doc_rows()
        self.assertFalse(missing, f"rows of sandbox.c missing from SANDBOX.md: {sorted(missing)}")

    def test_no_stale_rows(self):
        stale = doc_rows() - code_rows()
        self.assertFalse(stale, f"rows in SANDBOX.md that sandbox.c does not have: {sorted(stale)}")

    def test_table_not_empty(self):
        self.assertGreater(len(code_rows()), 15)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
