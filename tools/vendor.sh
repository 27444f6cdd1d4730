#!/usr/bin/env bash
# Install the pinned pure-Python libraries into bin/lib (never edited by hand).
# --no-deps: the pins are the whole closure; --no-compile: no .pyc in the app.
# --platform any --implementation py --python-version 3.9: only pure-Python wheels (or sdists) that
# declare support for Splunk's oldest Python; charset-normalizer, for one, also ships compiled wheels.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
lib="$root/bin/lib"
stamp="$root/build/vendor.stamp"
want=$(sha256sum "$root/requirements/vendor.txt" | cut -d' ' -f1)

# Only the libraries' code and their licences ship. pip --target also leaves console scripts,
# metadata (RECORD, METADATA, WHEEL, INSTALLER, entry points...) and the packages' own test suites
# and benchmarks (jsonschema's run subprocesses, which AppInspect flags); the app never uses them.
# Of each *.dist-info only the licence files stay (LICENSE*, COPYING*, NOTICE*, and a licenses/
# folder): THIRD-PARTY-NOTICES.md points there. Run on every call, so an older bin/lib is pruned too.
prune() {
  rm -rf "$lib/bin"
  find "$lib" -mindepth 2 -type d \( -name tests -o -name benchmarks \) -prune -exec rm -rf {} +
  find "$lib" -path '*.dist-info/*' -type f \
    ! \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' -o -iname 'NOTICE*' -o -path '*.dist-info/licenses/*' \) \
    -delete
  find "$lib" -depth -path '*.dist-info*' -type d -empty -delete
  find "$lib" -name '__pycache__' -prune -exec rm -rf {} +
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$lib" ]; then
  prune
  exit 0
fi
rm -rf "$lib"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile \
  --platform any --implementation py --python-version 3.9 \
  --target "$lib" -r "$root/requirements/vendor.txt" \
  2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
prune
compiled=$(find "$lib" -type f \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' -o -name '*.dll' \))
if [ -n "$compiled" ]; then
  echo "vendor.sh: compiled modules must not ship in the app:" >&2
  echo "$compiled" >&2
  exit 1
fi
mkdir -p "$root/build"
echo "$want" > "$stamp"
