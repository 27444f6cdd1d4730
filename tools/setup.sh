#!/usr/bin/env bash
# Idempotent setup for tests, demo, benchmarks and packaging.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
base_python=${BASE_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$base_python" -m venv .venv
fi
want=$(cat requirements/dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat build/dev.stamp 2>/dev/null)" != "$want" ]; then
  # (Some build machines list absent local indexes in pip.conf; pip warns once per package.)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  mkdir -p build && echo "$want" > build/dev.stamp
fi
PYTHON=.venv/bin/python ./tools/vendor.sh

# System tools the tests need, installed only when missing. Real traffic (tests/test_real_traffic.py):
# tshark turns captures into flows, Suricata 7 (Debian bookworm-backports) makes eve.json from them.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "$@" >/dev/null
}
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  if ! command -v tshark >/dev/null; then
    # wireshark-common asks whether non-root users may capture; a file reader needs no capturing.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null
    apt_install tshark
  fi
  if ! suricata -V 2>/dev/null | grep -q 'version [7-9]'; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        > /etc/apt/sources.list.d/bookworm-backports.sources
    fi
    apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null
    if [ "$codename" = bookworm ]; then apt_install -t bookworm-backports suricata; else apt_install suricata; fi
  fi
  # Headless Chromium for the dashboard test (tests/test_dashboard_browser.py; playwright-core drives
  # this system browser and never downloads one). node and npm install the renderer's packages.
  if [ ! -x /usr/bin/chromium ]; then
    apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null
    apt_install chromium
  fi
  if ! command -v npm >/dev/null; then
    apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null
    apt_install nodejs npm
  fi
fi
