#!/usr/bin/env bash
# Install the pinned pure-Python libraries into bin/lib (never edited by hand).
# --no-deps: the pins are the whole closure; --no-compile: no .pyc in the app.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
stamp="$root/build/vendor.stamp"
want=$(sha256sum "$root/requirements/vendor.txt" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -rf "$root/bin/lib"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
  --target "$root/bin/lib" -r "$root/requirements/vendor.txt"
# pip --target leaves metadata and console scripts we do not ship.
rm -rf "$root/bin/lib/bin"
find "$root/bin/lib" -name '__pycache__' -prune -exec rm -rf {} +
mkdir -p "$root/build"
echo "$want" > "$stamp"
