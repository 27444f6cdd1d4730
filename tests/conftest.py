"""Shared fixtures: the repository on sys.path, Splunk's Python versions, the shared real data."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests import the tools (tools.runner) and the app's package (teredo_spike, from bin/).
for path in (ROOT, os.path.join(ROOT, "bin")):
    if path not in sys.path:
        sys.path.insert(0, path)

# The Pythons Splunk bundles (9.3-10.x: 3.9; 10.x: 3.13), as pyenv installs them here.
SPLUNK_PYTHONS = ("3.9.18", "3.13.0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def splunk_python(version: str) -> str:
    """Path of a pyenv-installed interpreter; fails in CI and skips elsewhere when absent."""
    prefix = None
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True)
        if found.returncode == 0:
            prefix = found.stdout.strip()
    python = os.path.join(prefix, "bin", "python3") if prefix else ""
    if not python or not os.path.exists(python):
        message = "Python %s (Splunk's bundled version) is not installed via pyenv" % version
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(params=SPLUNK_PYTHONS, scope="session")
def python(request) -> str:
    return splunk_python(request.param)


@pytest.fixture(scope="session")
def shared_data() -> str:
    """../shared/data (or $TEREDO_SHARED_DATA): real captures and splunkd recordings, read in place."""
    path = os.environ.get("TEREDO_SHARED_DATA") or os.path.join(ROOT, "..", "shared", "data")
    if not os.path.isdir(path):
        message = "shared reference data not found at %s (set TEREDO_SHARED_DATA)" % path
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return os.path.abspath(path)
