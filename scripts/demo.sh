#!/bin/sh
# Fresh Debian 12 to a real token: install, build, run `wstrust demo`
# (dev STS + wstrustd + sandboxed worker on loopback, all stopped afterwards).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec ./build/tools/wstrust demo "$@"
