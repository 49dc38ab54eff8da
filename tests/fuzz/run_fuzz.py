#!/usr/bin/python3
"""Run one libFuzzer target for a fixed time from the committed seeds.

New inputs go to a scratch corpus that is thrown away; a finding (crash, leak,
timeout, OOM) makes the fuzzer exit non-zero and so fails the test, and the
reproducer is kept under the build directory for the developer."""
import os, shutil, subprocess, sys, tempfile

target, seeds = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
seconds = os.environ.get("FUZZ_SECONDS", "60")
artifacts = os.path.join(os.environ.get("MESON_BUILD_ROOT", os.getcwd()), "fuzz-artifacts")
os.makedirs(artifacts, exist_ok=True)
work = tempfile.mkdtemp(prefix="wstrust-fuzz-")
try:
    cmd = [target, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}/{os.path.basename(target)}-",
           *extra, work, seeds]
    print(" ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    print(f"{os.path.basename(target)}: exit {rc}")
    sys.exit(0 if rc == 0 else 1)
finally:
    shutil.rmtree(work, ignore_errors=True)
