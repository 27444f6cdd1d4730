#!/usr/bin/env bash
# The main job: | teredospike over the bundled sample (8 days of a 250-host enterprise's outbound
# UDP flows, as `tstats` returns them), run exactly as splunkd runs it (chunked protocol, map phase
# then reduce phase), printing the spike episodes it found. Extra arguments go to the runner, e.g.
#   ./demo.sh --partitions 3            # as a search across 3 indexers
#   ./demo.sh -- output=all threshold=8 # options of the command
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
PYTHON="$python" ./tools/vendor.sh
exec "$python" tools/runner.py samples/enterprise_week.csv.gz "$@"
