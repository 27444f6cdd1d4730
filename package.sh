#!/usr/bin/env bash
# Build the installable app and vet it with Splunk AppInspect.
#   dist/teredo_spike-<version>.tgz     the package: teredo_spike/ at its top, only the app's files
#   dist/appinspect-precert.json        AppInspect --mode precert report
#   dist/appinspect-cloud.json          the same with --included-tags cloud
# Fails (exit 1) when AppInspect reports any failure, error or future failure.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

# The venv (AppInspect) and the vendored libraries (--no-deps --no-compile, from requirements/vendor.txt).
./tools/setup.sh >&2
python=.venv/bin/python

app=teredo_spike
version=$("$python" - <<'PY'
import configparser
conf = configparser.ConfigParser(interpolation=None, strict=False)
conf.read("default/app.conf")
print(conf["launcher"]["version"])
PY
)
package="dist/$app-$version.tgz"

# What ships: the app's own folders and files, as git tracks them (an untracked or ignored file never
# ships), plus bin/lib, which is untracked by design: tools/vendor.sh (above) made it from the pins
# and pruned it to the libraries' code and licences. Everything else in the repository (tests, tools,
# bench, docs, samples, requirements, this script) stays out.
ship_dirs=(appserver bin default lookups metadata README static)
ship_files=(app.manifest LICENSE NOTICE-ATTACK.md README.md THIRD-PARTY-NOTICES.md)
list=build/package.files
mkdir -p build
git ls-files -z --cached -- "${ship_dirs[@]}" "${ship_files[@]}" > "$list"
deleted=$(git ls-files --deleted -- "${ship_dirs[@]}" "${ship_files[@]}")
if [ -n "$deleted" ]; then
  echo "package.sh: tracked files missing from the working tree (commit or restore them):" >&2
  echo "$deleted" >&2
  exit 1
fi
if git ls-files --error-unmatch bin/lib >/dev/null 2>&1; then
  echo "package.sh: bin/lib must not be tracked (tools/vendor.sh makes it)" >&2
  exit 1
fi
find bin/lib -type f -print0 >> "$list"

stage=build/package
rm -rf "$stage" && mkdir -p "$stage/$app" dist
tar -c --exclude='.*' --exclude='__pycache__' --exclude='*.pyc' --exclude='*.pyo' \
    --exclude='local' --exclude='local.meta' --exclude='*~' --exclude='*.swp' --null -T "$list" \
  | tar -x -C "$stage/$app"

# Modes: directories 755, files 644; execute bits only on the entry scripts directly under bin/.
find "$stage/$app" -type d -exec chmod 755 {} +
find "$stage/$app" -type f -exec chmod 644 {} +
find "$stage/$app/bin" -maxdepth 1 -type f \( -name '*.py' -o -name '*.sh' \) -exec chmod 755 {} +

# Reproducible tar: sorted names, numeric root ownership, the last commit's time, gzip without a name.
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
rm -f "$package"
tar -c --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$stage" "$app" \
  | gzip -n -9 > "$package"
echo "built $package ($(wc -c < "$package") bytes, $(tar -tzf "$package" | wc -l) entries)" >&2

# AppInspect, offline. With --ci the exit code is 0 (clean), 103 (warnings only), 101 (failures),
# 104 (future failures), 3 (packaging failure: every other check skipped); the JSON summary decides.
status=0
for mode in precert cloud; do
  report="dist/appinspect-$mode.json"
  args=(inspect "$package" --mode precert --skip-trusted-libraries-update --ci
        --data-format json --output-file "$report")
  if [ "$mode" = cloud ]; then args+=(--included-tags cloud); fi
  rc=0
  .venv/bin/splunk-appinspect "${args[@]}" > "dist/appinspect-$mode.log" 2>&1 || rc=$?
  "$python" - "$report" "$mode" "$rc" <<'PY' || status=1
import json, sys
report, mode, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with open(report) as f:
        summary = json.load(f)["summary"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"appinspect {mode}: no readable report {report} (exit {rc}): {e}")
counts = {k: summary.get(k, 0) for k in ("failure", "error", "future_failure", "warning", "manual_check", "not_applicable", "skipped", "success")}
print(f"appinspect {mode}: exit {rc}; " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
bad = counts["failure"] + counts["error"] + counts["future_failure"]
if bad or rc not in (0, 103):
    sys.exit(f"appinspect {mode}: FAILED (see {report} and dist/appinspect-{mode}.log)")
PY
done
exit $status
