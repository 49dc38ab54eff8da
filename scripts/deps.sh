#!/bin/sh
# Install what wstrust needs to build, test and run its demo on Debian 12.
# Idempotent; needs root (or sudo). Used by scripts/demo.sh and .ci/run.
set -eu
PKGS="meson ninja-build pkg-config gcc clang libclang-rt-14-dev
  libxml2-dev libseccomp-dev libsodium-dev libssl-dev libcurl4-openssl-dev
  libxmlsec1-dev libinih-dev xmlsec1 openssl
  python3 python3-lxml python3-xmlsec python3-cryptography python3-msal
  gsoap libgsoap-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
