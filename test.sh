#!/usr/bin/env bash
# Run every test: sets up what the tests need (a venv with requirements/dev.txt,
# the vendored libraries in bin/lib, system tools), then pytest.
# Extra arguments go to pytest, e.g. ./test.sh -k protocol -x
set -euo pipefail
cd "$(dirname "$0")"
./tools/setup.sh
exec .venv/bin/python -m pytest "$@"
