"""./package.sh builds dist/teredo_spike-<version>.tgz with only the app's files and modes, and
Splunk AppInspect (precert, and precert with the cloud tag) reports no failure, error or future
failure. package.sh runs once per test session, in a copy of the working tree: the test puts untracked
probe files into the app's folders, and the other tests (run beside it by pytest-xdist) read those folders."""

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile

import pytest

from tests.splunk_conf import APP_ROOT, parse

VERSION = parse(APP_ROOT / "default" / "app.conf")["launcher"]["version"]
# The app's own top-level folders and files; everything else in the repository stays out.
SHIPPED_TOP = {"app.manifest", "LICENSE", "NOTICE-ATTACK.md", "README.md", "THIRD-PARTY-NOTICES.md",
               "appserver", "bin", "default", "lookups", "metadata", "README", "static"}
MUST_SHIP = ["app.manifest", "LICENSE", "NOTICE-ATTACK.md", "THIRD-PARTY-NOTICES.md", "default/app.conf",
             "default/commands.conf", "default/macros.conf", "default/savedsearches.conf",
             "default/searchbnf.conf", "default/transforms.conf", "metadata/default.meta",
             "bin/teredospike.py", "bin/lib/splunklib/searchcommands/__init__.py",
             "lookups/teredo_spike_allowlist.csv", "static/appIcon.png", "static/appIcon_2x.png",
             "default/data/ui/views/teredo_spike_overview.xml", "bin/teredo_attack_context.py",
             "default/alert_actions.conf", "lookups/teredo_attack_techniques.csv",
             "bin/lib/requests/__init__.py", "bin/lib/jsonschema/__init__.py"]


# Files that git does not track, put in the app's folders while package.sh runs: none may ship.
UNTRACKED_PROBES = ["bin/untracked_probe.py", "bin/teredo_spike/untracked_probe.py",
                    "default/untracked_probe.conf", "lookups/untracked_probe.csv"]


def _tracked_files():
    return subprocess.run(["git", "ls-files", "-z"], cwd=APP_ROOT, stdout=subprocess.PIPE, check=True
                          ).stdout.decode().split("\0")[:-1]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A copy of the working tree for package.sh: git tracks the same files (with their working
    contents and modes), bin/lib is the vendored copy, .venv the same venv (setup.sh's stamps say it
    is current, so nothing is installed again)."""
    root = tmp_path_factory.mktemp("package") / "teredo_spike"
    tracked = [f for f in _tracked_files() if (APP_ROOT / f).exists()]
    for name in tracked:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(APP_ROOT / name), str(root / name))
    shutil.copytree(str(APP_ROOT / "bin" / "lib"), str(root / "bin" / "lib"))
    os.symlink(str(APP_ROOT / ".venv"), str(root / ".venv"))
    (root / "build").mkdir()
    for stamp in ("dev.stamp", "vendor.stamp"):
        shutil.copy2(str(APP_ROOT / "build" / stamp), str(root / "build" / stamp))
    subprocess.run(["git", "init", "--quiet"], cwd=root, check=True)
    subprocess.run(["git", "add", "--"] + tracked, cwd=root, check=True)
    return root


@pytest.fixture(scope="session")
def package_run(workspace):
    for probe in UNTRACKED_PROBES:
        (workspace / probe).write_text("# untracked: must not ship\n")
    return subprocess.run(["./package.sh"], cwd=workspace, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=900)


@pytest.fixture(scope="session")
def members(workspace, package_run):
    package = workspace / "dist" / ("teredo_spike-%s.tgz" % VERSION)
    assert package.is_file(), "package.sh made no %s:\n%s" % (package, package_run.stdout[-3000:])
    with tarfile.open(str(package), "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_package_sh_succeeds(package_run):
    assert package_run.returncode == 0, package_run.stdout[-5000:]


@pytest.mark.parametrize("mode", ["precert", "cloud"])
def test_appinspect_reports_no_failure_error_or_future_failure(workspace, package_run, mode):
    summary = json.loads((workspace / "dist" / ("appinspect-%s.json" % mode)).read_text())["summary"]
    assert summary["success"] > 50, summary  # the checks really ran (a packaging failure skips them)
    bad = {k: summary[k] for k in ("failure", "error", "future_failure")}
    problems = [(c["name"], c["result"], [m["message"][:200] for m in c["messages"]][:2])
                for c in _checks(workspace, mode) if c["result"] in ("failure", "error", "future_failure")]
    assert bad == {"failure": 0, "error": 0, "future_failure": 0}, problems


def _checks(workspace, mode):
    report = json.loads((workspace / "dist" / ("appinspect-%s.json" % mode)).read_text())
    return [c for r in report["reports"] for g in r["groups"] for c in g["checks"]]


def test_cloud_report_is_the_cloud_selection(workspace, package_run):
    # --included-tags cloud keeps only the checks tagged cloud; the plain precert run has others too.
    assert all("cloud" in c["tags"] for c in _checks(workspace, "cloud"))
    assert any("cloud" not in c["tags"] for c in _checks(workspace, "precert"))


def test_everything_sits_under_teredo_spike(members):
    for name in members:
        assert name == "teredo_spike" or name.startswith("teredo_spike/"), name
        assert not name.startswith("./") and ".." not in name.split("/"), name


def test_only_the_apps_own_files_ship(members):
    tops = {name.split("/")[1] for name in members if name.count("/") >= 1}
    assert tops <= SHIPPED_TOP, "not app files: %s" % (tops - SHIPPED_TOP)
    for name in members:
        parts = name.split("/")
        assert not any(p.startswith(".") for p in parts), "dotfile: %s" % name
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".pyo")), name
        assert "local" not in parts[1:] and not name.endswith("local.meta"), name


def test_the_dashboard_test_harness_does_not_ship(members):
    # tests/dashboard (Splunk's renderer from npm, the browser driver) and its build folder are for
    # the browser test only (tests/test_dashboard_browser.py).
    harness = [n for n in members if "node_modules" in n.split("/") or "dashboard-harness" in n
               or n.endswith(("package.json", "package-lock.json", ".mjs", ".jsx"))]
    assert harness == []


def test_required_files_ship(members):
    missing = [f for f in MUST_SHIP if "teredo_spike/" + f not in members]
    assert not missing, missing


def test_every_tracked_app_file_ships(members):
    tracked = _tracked_files()
    expected = {"teredo_spike/" + f for f in tracked
                if f.split("/")[0] in SHIPPED_TOP and not any(p.startswith(".") for p in f.split("/"))}
    assert expected - set(members) == set()


def test_modes_execute_bits_only_on_bin_entry_scripts(members):
    for name, member in members.items():
        mode = stat.S_IMODE(member.mode)
        if member.isdir():
            assert mode == 0o755, (name, oct(mode))
            continue
        assert member.isfile(), "only files and folders ship: %s" % name
        path = name.split("/")
        if len(path) == 3 and path[1] == "bin" and name.endswith(".py"):
            assert mode == 0o755, (name, oct(mode))
        else:
            assert mode == 0o644, (name, oct(mode))
        assert member.uid == 0 and member.gid == 0, name


def test_an_untracked_file_never_ships(members):
    shipped = [p for p in UNTRACKED_PROBES if "teredo_spike/" + p in members]
    assert shipped == []


def test_vendored_libraries_ship_their_code_and_licences_only(members):
    lib = [n[len("teredo_spike/bin/lib/"):] for n, m in members.items()
           if n.startswith("teredo_spike/bin/lib/") and m.isfile()]
    assert "certifi/cacert.pem" in lib and "jsonschema/schemas/draft2020-12.json" in lib
    metadata = [n for n in lib if ".dist-info/" in n]
    licences = [n for n in metadata if re.search(r"\.dist-info/(licenses/.+|(LICEN[CS]E|COPYING|NOTICE)[^/]*)$",
                                                 n, re.I)]
    assert metadata == licences, "dist-info files that are not licences: %s" % sorted(set(metadata) - set(licences))
    assert len({n.split("/")[0] for n in licences}) >= 10  # every library with a licence file keeps it
    test_suites = sorted({n.rsplit("/", 1)[0] for n in lib
                          if {"tests", "test", "benchmarks"} & set(n.split("/")[1:-1])})
    assert test_suites == []
    assert not [n for n in lib if n.startswith("bin/")]  # console scripts
