"""Shared fixtures for end-to-end tests: a real dev STS, a real wstrustd with
its sandboxed workers, and the real `wstrust` CLI, all on loopback and temp
paths, all stopped by the test that started them."""
import json, os, shutil, signal, socket, subprocess, tempfile, time

SRC = os.environ.get("WSTRUST_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("WSTRUST_BUILD_ROOT", os.path.join(SRC, "build"))
PY = "/usr/bin/python3"
WSTRUSTD = os.path.join(BUILD, "broker", "wstrustd")
WORKER = os.path.join(BUILD, "worker", "wstrust-worker")
CLI = os.path.join(BUILD, "tools", "wstrust")
SAML2 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
SAML2_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
ENDPOINT_13 = "/adfs/services/trust/13/usernamemixed"


class DevSTS:
    def __init__(self, tmp, *args):
        self.dir = os.path.join(tmp, "sts-%d" % time.monotonic_ns())
        os.makedirs(self.dir)
        self.proc = subprocess.Popen(
            [PY, os.path.join(SRC, "tests", "sts", "devsts.py"), "--workdir", self.dir,
             "--exit-on-stdin-eof", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "stderr.log"), "wb"))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("dev STS did not start: " + open(os.path.join(self.dir, "stderr.log")).read())
        self.info = json.loads(line)
        self.port = self.info["port"]
        self.base = self.info["base_url"]
        self.ca_file = self.info["ca_file"]
        self.signing_cert = self.info["signing_cert"]

    def url(self, path):
        return self.base + path

    def stats(self):
        import ssl, urllib.request
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(self.base + "/stats", context=ctx, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass


def write_secret(path, value, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, value.encode() + b"\n")
    os.close(fd)
    os.chmod(path, mode)


class Broker:
    """wstrustd --foreground with a config written from (broker keys, {profile: keys})."""

    def __init__(self, tmp, profiles, broker=None, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="broker-", dir=tmp)
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "wstrustd.sock")
        b = {"socket": self.socket, "worker_path": WORKER}
        b.update(broker or {})
        lines = ["[broker]"] + ["%s = %s" % kv for kv in b.items()]
        for name, keys in profiles.items():
            lines.append("")
            lines.append("[profile %s]" % name)
            lines += ["%s = %s" % kv for kv in keys.items()]
        self.config = os.path.join(self.dir, "wstrustd.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.dir, "wstrustd.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([WSTRUSTD, "--config", self.config, "--foreground", *extra_args],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("wstrustd exited %s: %s" % (self.proc.returncode, self.read_log()))
            if os.path.exists(self.socket):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.socket)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("wstrustd did not open its socket: " + self.read_log())

    def read_log(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def pid(self):
        return self.proc.pid

    def worker_pids(self):
        """Live wstrust-worker children of the broker."""
        pids = []
        for tid in os.listdir("/proc/%d/task" % self.proc.pid):
            try:
                with open("/proc/%d/task/%s/children" % (self.proc.pid, tid)) as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
        out = []
        for p in pids:
            try:
                if os.readlink("/proc/%d/exe" % p).endswith("wstrust-worker"):
                    out.append(p)
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def profile_13(sts, secret_file, **over):
    p = {
        "endpoint": sts.url(ENDPOINT_13),
        "trust_version": "1.3",
        "soap_version": "1.2",
        "ca_file": sts.ca_file,
        "auth": "username",
        "username": "alice",
        "password_file": secret_file,
        "applies_to": "urn:example:rp",
        "key_type": "bearer",
        "token_type": SAML2,
    }
    p.update(over)
    return p


def cli(*args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([CLI, *args], capture_output=True, timeout=timeout, env=e)


def read_mem(pid, needle):
    """True when needle occurs in any readable mapping of pid (test runs as root)."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if needle in chunk:
                found = True
                break
    return found
