#!/usr/bin/env bash
# Install the pinned pure-Python libraries into bin/lib (never edited by hand).
# --no-deps: the pins are the whole closure; --no-compile: no .pyc in the app.
# --platform any --implementation py --python-version 3.9: only pure-Python wheels (or sdists) that
# declare support for Splunk's oldest Python; charset-normalizer, for one, also ships compiled wheels.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
stamp="$root/build/vendor.stamp"
want=$(sha256sum "$root/requirements/vendor.txt" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -rf "$root/bin/lib"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile \
  --platform any --implementation py --python-version 3.9 \
  --target "$root/bin/lib" -r "$root/requirements/vendor.txt" \
  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
# pip --target leaves metadata and console scripts we do not ship; jsonschema ships its own test
# suite and benchmarks (subprocess use that AppInspect flags), which the app never runs.
rm -rf "$root/bin/lib/bin" "$root/bin/lib/jsonschema/tests" "$root/bin/lib/jsonschema/benchmarks"
find "$root/bin/lib" -name '__pycache__' -prune -exec rm -rf {} +
compiled=$(find "$root/bin/lib" -type f \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' -o -name '*.dll' \))
if [ -n "$compiled" ]; then
  echo "vendor.sh: compiled modules must not ship in the app:" >&2
  echo "$compiled" >&2
  exit 1
fi
mkdir -p "$root/build"
echo "$want" > "$stamp"
