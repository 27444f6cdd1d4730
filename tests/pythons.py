"""Splunk's own Python versions, as pyenv installs them on the build machines."""

import os
import shutil
import subprocess

import pytest

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
    if prefix is None:  # pyenv not on PATH (a non-login shell): its default root
        prefix = os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")),
                              "versions", version)
    python = os.path.join(prefix, "bin", "python3")
    if not python or not os.path.exists(python):
        message = "Python %s (Splunk's bundled version) is not installed via pyenv" % version
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return python
