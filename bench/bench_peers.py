"""wstrust against its peers, side by side on the same dev STS (HTTPS on
loopback, usernamemixed, WS-Trust 1.3, SAML 2.0 bearer):

  wstrust   bench_client (libwstrust, daemon mode) -> wstrustd -> sandboxed
            worker; CPU = client + broker + workers (live and reaped)
  MSAL      msal.wstrust_request.send_request (MSAL Python's WS-Trust client,
            Debian python3-msal) over one requests.Session; CPU = its process
  gSOAP     bench/gsoap/bench_gsoap.c: gSOAP's WS-Trust plugin (wstapi.c, with
            the wsse and wsa plugins) on one soap context, HTTP keep-alive;
            CPU = its process, peak RSS = its VmHWM (only with --gsoap)

The STS is the same Python process for both and is not counted.  Reported:
wall and CPU per token (after a warm-up), and peak RSS of the client side.

  python3 bench_peers.py BENCH_CLIENT [N] [--gsoap BENCH_GSOAP]
      (run by `ninja -C build bench-peers`)
"""
import argparse, json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import Broker, DevSTS, ENDPOINT_13, profile_13, write_secret  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid, children=True):
    """utime+stime (+ reaped children's) of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t / TICK


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def broker_cpu(broker):
    total = proc_cpu(broker.pid())
    for w in broker.worker_pids():
        try:
            total += proc_cpu(w, children=False)
        except OSError:
            pass
    return total


MSAL_RUNNER = r'''
import json, resource, sys, time, requests
from msal import wstrust_request
url, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = requests.Session()
s.trust_env = False   # else REQUESTS_CA_BUNDLE would override the dev STS's CA
s.verify = ca
def one():
    r = wstrust_request.send_request("alice", "secret", "urn:example:rp", url, None, s)
    assert r.get("token") and r.get("type"), r
for _ in range(5):
    one()
w0, c0 = time.monotonic(), time.process_time()
for _ in range(n):
    one()
print(json.dumps({"n": n, "wall_s": time.monotonic() - w0, "cpu_s": time.process_time() - c0,
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def run_json(what, argv):
    r = subprocess.run(argv, capture_output=True)
    if r.returncode:
        raise SystemExit("%s failed: %s" % (what, r.stderr.decode()[-2000:]))
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("client")
    ap.add_argument("n", nargs="?", type=int, default=300)
    ap.add_argument("--gsoap", metavar="BENCH_GSOAP", help="also run gSOAP's WS-Trust plugin")
    args = ap.parse_args()
    client, n = args.client, args.n
    tmp = tempfile.mkdtemp(prefix="wstrust-bench-")
    os.chmod(tmp, 0o755)
    sts = DevSTS(tmp)
    secret = os.path.join(tmp, "pw")
    write_secret(secret, "secret")
    broker = Broker(tmp, {"bench": profile_13(sts, secret)})
    url = sts.url(ENDPOINT_13)
    env = dict(os.environ, WSTRUST_SOCKET=broker.socket)
    try:
        subprocess.run([client, url, "5"], env=env, check=True, capture_output=True)   # warm-up
        b0 = broker_cpu(broker)
        r = subprocess.run([client, url, str(n)], env=env, capture_output=True)
        if r.returncode:
            raise SystemExit("bench_client failed: " + r.stderr.decode())
        ws = json.loads(r.stdout)
        ws_broker = broker_cpu(broker) - b0
        ws_rss = ws["max_rss_kb"] + hwm_kb(broker.pid()) + sum(hwm_kb(w) for w in broker.worker_pids())
        m = subprocess.run(["/usr/bin/python3", "-c", MSAL_RUNNER, url, sts.ca_file, str(n)], capture_output=True)
        if m.returncode:
            raise SystemExit("MSAL run failed: " + m.stderr.decode()[-2000:])
        ms = json.loads(m.stdout)
        gs = None
        if args.gsoap:
            run_json("bench_gsoap warm-up", [args.gsoap, url, sts.ca_file, "5"])
            gs = run_json("bench_gsoap", [args.gsoap, url, sts.ca_file, str(n)])
    finally:
        broker.stop()
        sts.stop()
    rows = [
        ("wstrust (client+broker+worker)", ws["wall_s"], ws["cpu_s"] + ws_broker, ws_rss),
        ("  of which the client library", None, ws["cpu_s"], ws["max_rss_kb"]),
        ("MSAL Python wstrust_request", ms["wall_s"], ms["cpu_s"], ms["max_rss_kb"]),
    ]
    if gs:
        rows.append(("gSOAP wstapi (C)", gs["wall_s"], gs["cpu_s"], gs["max_rss_kb"]))
    print("%d tokens each, same dev STS (its own CPU not counted)" % n)
    print("%-32s %12s %14s %12s" % ("client", "wall/token", "CPU/token", "peak RSS"))
    for name, wall, cpu, rss in rows:
        print("%-32s %12s %11.0f us %9d KiB" % (name, "%.2f ms" % (wall / n * 1e3) if wall else "", cpu / n * 1e6, rss))


if __name__ == "__main__":
    main()
