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
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  mkdir -p build && echo "$want" > build/dev.stamp
fi
PYTHON=.venv/bin/python ./tools/vendor.sh
