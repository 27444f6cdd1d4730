"""Shared fixtures: the repository on sys.path, Splunk's Python versions, the alert's spool, the
shared real data."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests import the tools (tools.runner) and the app's package (teredo_spike, from bin/).
for path in (ROOT, os.path.join(ROOT, "bin")):
    if path not in sys.path:
        sys.path.insert(0, path)

from tests.pythons import IN_CI, SPLUNK_PYTHONS, splunk_python  # noqa: E402,F401


@pytest.fixture(params=SPLUNK_PYTHONS, scope="session")
def python(request) -> str:
    return splunk_python(request.param)


@pytest.fixture
def spool(tmp_path) -> str:
    """The alert action's spool directory for one test (created by the action when it spools)."""
    return str(tmp_path / "spool")


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
