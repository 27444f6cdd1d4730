"""The alert action against an attacker and an unlucky operator (issue 14): secrets whatever they
hold, overlapping runs, SIGTERM, a full disk, bad configuration, private webhook destinations and a
results_file outside the dispatch directory. Each run is the real action as splunkd runs it."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from tests.alert_support import (WEBHOOK_SECRET, Recorder, as_json, closed_port_uri,
                                 finish_alert, payload, results_path, run_alert, spike_rows,
                                 splunk_home, spooled, start_alert, write_results)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ids(events):
    return {e["event_id"] for e in events}


def spooled_ids(spool_dir):
    found = set()
    for name in spooled(spool_dir):
        with open(os.path.join(spool_dir, name), encoding="utf-8") as f:
            found.add(json.load(f)["event"]["event_id"])
    return found


# ---------------------------------------------------------------- secrets, whatever they hold

# Each piece is distinctive, so that finding any piece in the output means a fragment leaked.
SECRETS = {
    "CR": "Alpha7kQ\rBravo9mZ",
    "LF": "Alpha7kQ\nBravo9mZ",
    "CRLF": "Alpha7kQ\r\nBravo9mZ",
    "quotes": "Alpha7kQ\"Bravo9mZ'Charl3yX",
    "unicode": "Alpha7kQ\u2603Bravo9mZ\u00e9Charl3yX",
    "escapes": "Alpha7kQ\\nBravo9mZ\tCharl3yX",
}
HEADER_SAFE = {"quotes"}


# Every secret above is made of these pieces.
FRAGMENTS = ("Alpha7kQ", "Bravo9mZ", "Charl3yX")


def assert_no_fragment(output):
    leaked = [f for f in FRAGMENTS if f in output]
    assert leaked == [], "fragments of the secret reached the log: {}\n{}".format(leaked, output)


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_webhook_secret_never_reaches_the_log_in_any_fragment(python, tmp_path, spool, case):
    secret = SECRETS[case]
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok", webhook_secret=secret) as server:
        run = run_alert(python, as_json(payload(
            server.uri, results, webhook_url=server.uri + "/hook", webhook_allow_http="1",
            webhook_allow_private="1", webhook_secret=secret)), spool, secrets=(secret,))
    assert_no_fragment(run.stderr + run.stdout)
    if case in HEADER_SAFE:
        assert run.returncode == 0, run.stderr
        assert server.rejected == 0 and [b["count"] for b in server.webhook_batches] == [2]
    else:  # a header cannot carry it: a setting to fix, found before anything is sent
        assert run.returncode == 2, run.stderr
        assert server.requests == 0
        assert len(run.errors()) == 1 and "configuration.webhook_secret: holds a line break" in run.errors()[0]


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_session_key_never_reaches_the_log_in_any_fragment(python, tmp_path, spool, case):
    secret = SECRETS[case]
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    document = payload("http://placeholder", results)
    with Recorder("ok") as server:
        document["server_uri"] = server.uri
        document["session_key"] = secret
        run = run_alert(python, as_json(document), spool, secrets=(secret,))
    assert_no_fragment(run.stderr + run.stdout)
    if case in HEADER_SAFE:
        assert run.returncode == 3 and any("session key was refused" in e for e in run.errors())
    else:
        assert run.returncode == 2 and server.requests == 0
        assert "session_key: holds a line break" in run.errors()[0], run.stderr


LOGGER_PROBE = r"""
import json, sys
sys.path.insert(0, "bin")
from teredo_spike.alert.log import get_logger, register_secret
secret = sys.argv[1]
register_secret(secret)
log = get_logger()
log.error("raw %s end", secret)
log.error("repr %r end", secret)
log.error("header %r end", {"Authorization": "Bearer " + secret})
log.error("json %s end", json.dumps({"secret": secret}))
try:
    raise ValueError("Invalid header value " + repr("Bearer " + secret))
except ValueError:
    log.exception("with a traceback")
"""


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_logger_masks_a_secret_before_it_replaces_line_breaks(python, case):
    """The masking itself, in every form a message can carry the secret: raw, repr, JSON, traceback."""
    secret = SECRETS[case]
    process = subprocess.run([python, "-B", "-c", LOGGER_PROBE, secret], cwd=REPO, capture_output=True,
                             env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"})
    output = process.stderr.decode("utf-8", "replace")
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert [line.split(" ")[:2] for line in lines[:4]] == [["ERROR", "raw"], ["ERROR", "repr"],
                                                          ["ERROR", "header"], ["ERROR", "json"]], output
    assert len(lines) == 5 and "Traceback" in lines[4]  # one line per message
    assert_no_fragment(output)
    assert output.count("********") >= 5


# ---------------------------------------------------------------- overlapping runs

def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_run_that_cannot_get_the_spool_lock_keeps_its_events(python, tmp_path, spool):
    first = write_results(results_path(tmp_path, "first"), spike_rows(3))
    second = write_results(results_path(tmp_path, "second"), spike_rows(3, first_host=10))
    empty = write_results(results_path(tmp_path, "none"), [])
    # The destination answers the first run only once the second has given up on the lock: the
    # runs overlap however slowly the machine starts the second (a fixed delay did not, under load),
    # and the first waits for its answer up to 30 s, not the default 2 s.
    release = threading.Event()
    with Recorder("ok", gate=release) as slow:
        holder = start_alert(python, spool)
        holder.stdin.write(as_json(payload(slow.uri, first, sid="s1", timeout="30")))
        holder.stdin.close()
        holder.stdin = None
        wait_for(lambda: slow.arrived >= 1)  # the first run holds the lock, delivering
        locked_out = run_alert(python, as_json(payload(slow.uri, second, sid="s2")), spool,
                               TEREDO_ALERT_SPOOL_LOCK_WAIT="0.5")
        release.set()
        first_run = finish_alert(holder, b"", spool)
    assert first_run.returncode == 0, first_run.stderr
    assert locked_out.returncode == 3, locked_out.stderr
    assert any("stayed locked by another run" in e and "3 event(s) go to the spool" in e
               for e in locked_out.errors()), locked_out.stderr
    assert [e["alert"]["sid"] for e in slow.index_events] == ["s1"] * 3
    assert len(spooled(spool)) == 3
    with Recorder("ok") as healthy:
        later = run_alert(python, as_json(payload(healthy.uri, empty, sid="s3")), spool)
    assert later.returncode == 0, later.stderr
    assert [e["src"] for e in healthy.index_events] == ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
    assert spooled(spool) == [] and not [n for n in os.listdir(spool) if n.endswith(".tmp")]


# ---------------------------------------------------------------- SIGTERM mid-delivery

def test_sigterm_mid_delivery_spools_the_rest_and_the_next_run_delivers_it(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(5))
    empty = write_results(results_path(tmp_path, "none"), [])
    with Recorder("ok", delay=1.0) as slow:
        process = start_alert(python, spool)
        process.stdin.write(as_json(payload(slow.uri, results, sid="s1", timeout="30")))
        process.stdin.close()
        process.stdin = None
        wait_for(lambda: slow.requests >= 1)  # one delivered, the second in flight
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        run = finish_alert(process, b"", spool, timeout=20)
        stopped_after = time.monotonic() - started
        time.sleep(1.2)  # the server finishes the request the action abandoned
        delivered = ids(slow.index_events)
    assert run.returncode == 3, run.stderr
    assert any("stopped by SIGTERM" in e for e in run.errors()), run.stderr
    assert stopped_after < 5, "the action did not stop promptly"
    held = spooled_ids(spool)
    assert held, "nothing was spooled"
    assert len(delivered) < 5
    all_ids = delivered | held
    assert len(all_ids) == 5, (delivered, held)
    with Recorder("ok") as healthy:
        later = run_alert(python, as_json(payload(healthy.uri, empty, sid="s2")), spool)
    assert later.returncode == 0, later.stderr
    assert ids(healthy.index_events) == held
    assert delivered | ids(healthy.index_events) == all_ids
    assert spooled(spool) == []


# ---------------------------------------------------------------- full disk

@pytest.fixture
def full_disk_spool(tmp_path):
    """A spool folder on a 64 kB tmpfs, filled to the last byte."""
    mount_point = str(tmp_path / "small_fs")
    os.makedirs(mount_point)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount_point],
                             capture_output=True)
    assert mounted.returncode == 0, "this test mounts a small tmpfs (root): {}".format(mounted.stderr)
    try:
        spool_dir = os.path.join(mount_point, "spool")
        os.makedirs(spool_dir)
        open(os.path.join(spool_dir, ".lock"), "w").close()
        with open(os.path.join(mount_point, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        os.makedirs(splunk_home(mount_point), exist_ok=True)
        yield spool_dir
    finally:
        subprocess.run(["umount", mount_point], check=True)


def test_full_disk_exits_4_counts_the_lost_and_leaves_no_tmp(python, tmp_path, full_disk_spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    # the results sit outside the small disk: SPLUNK_HOME is the test's own
    run = run_alert(python, as_json(payload(closed_port_uri(), results)), full_disk_spool,
                    SPLUNK_HOME=splunk_home(tmp_path))
    assert run.returncode == 4, run.stderr
    assert any("No space left on device; free space on its disk" in e
               and "3 event deliveries could not be kept and are lost" in e for e in run.errors()), run.stderr
    assert os.listdir(full_disk_spool) == [".lock"]  # no .tmp, no half-written file
    assert "Traceback" not in run.stderr


def test_a_spool_folder_that_cannot_be_made_still_lets_events_through(python, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    spool_dir = str(blocker / "spool")
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    with Recorder("ok") as server:
        delivered = run_alert(python, as_json(payload(server.uri, results, sid="s1")), spool_dir,
                              SPLUNK_HOME=splunk_home(tmp_path))
    down = run_alert(python, as_json(payload(closed_port_uri(), results, sid="s2")), spool_dir,
                     SPLUNK_HOME=splunk_home(tmp_path))
    assert delivered.returncode == 0, delivered.stderr
    assert len(server.index_events) == 3
    assert any("cannot be opened: Not a directory: delivering without it" in e
               for e in delivered.errors()), delivered.stderr
    assert down.returncode == 4, down.stderr
    assert any("(Not a directory; make the folder writable): 3 event deliveries could not be kept" in e
               for e in down.errors()), down.stderr


# ---------------------------------------------------------------- configuration found before sending

BAD_CONFIGURATION = {
    "webhook port out of range": ({"webhook_url": "https://hooks.example.com:99999/x"},
                                  "configuration.webhook_url: not a usable URL (Port out of range"),
    "webhook port not a number": ({"webhook_url": "https://hooks.example.com:80a/x"},
                                  "configuration.webhook_url: not a usable URL"),
    "webhook URL with a broken IPv6 host": ({"webhook_url": "https://[2001:db8::1/x"},
                                            "configuration.webhook_url: not a usable URL"),
    "webhook URL without a host": ({"webhook_url": "https://:443/x"},
                                   "configuration.webhook_url: no host name"),
    "bad index name": ({"index": "_internal"}, "configuration.index: '_internal' does not match"),
    "missing CA bundle": ({"webhook_url": "https://hooks.example.com/x",
                           "webhook_ca_bundle": "/nonexistent/ca.pem"},
                          "configuration.webhook_ca_bundle: no CA bundle file"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGURATION))
def test_configuration_error_is_found_before_anything_is_sent(python, tmp_path, spool, case):
    configuration, expected = BAD_CONFIGURATION[case]
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok") as server:
        run = run_alert(python, as_json(payload(server.uri, results, **configuration)), spool)
    assert run.returncode == 2, run.stderr
    assert server.requests == 0
    assert len(run.errors()) == 1 and expected in run.errors()[0], run.stderr
    assert "nothing was delivered" in run.errors()[0] and "Traceback" not in run.stderr
    assert spooled(spool) == []


def test_server_uri_with_a_bad_port_is_a_clear_error(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    run = run_alert(python, as_json(payload("https://127.0.0.1:99999", results)), spool)
    assert run.returncode == 2
    assert run.errors() == ["ERROR server_uri: not a usable URL (Port out of range 0-65535); "
                            "nothing was delivered"]


# ---------------------------------------------------------------- private webhook destinations

PRIVATE_HOSTS = {
    "cloud metadata": ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata"),
    "AWS IPv6 metadata": ("https://[fd00:ec2::254]/latest", "fd00:ec2::254 is a cloud metadata"),
    "link-local": ("https://169.254.10.20/x", "169.254.10.20 is a link-local address"),
    "IPv6 link-local": ("https://[fe80::1]/x", "fe80::1 is a link-local address"),
    "splunkd on localhost": ("https://localhost:8089/services", "localhost is a loopback name"),
    "IPv6 loopback": ("https://[::1]:8089/x", "::1 is a loopback address"),
    "loopback mapped in IPv6": ("https://[::ffff:127.0.0.1]/x", "is a loopback address"),
    "the unspecified address": ("https://0.0.0.0:8089/x", "is the unspecified address"),
    # Not an address literal to ipaddress, but the resolver's: the check resolves the name.
    "loopback by resolution": ("https://127.1:8089/x", "127.1 (127.0.0.1) is a loopback address"),
    "loopback in decimal": ("https://2130706433:8089/x", "(127.0.0.1) is a loopback address"),
}


@pytest.mark.parametrize("case", sorted(PRIVATE_HOSTS))
def test_private_webhook_destination_is_refused_by_default(python, tmp_path, spool, case):
    url, expected = PRIVATE_HOSTS[case]
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    with Recorder("ok") as server:
        run = run_alert(python, as_json(payload(server.uri, results, webhook_url=url,
                                                webhook_secret=WEBHOOK_SECRET)), spool)
    assert run.returncode == 2, run.stderr
    assert server.requests == 0
    assert len(run.errors()) == 1, run.stderr
    assert expected in run.errors()[0] and "param.webhook_allow_private = 1" in run.errors()[0], run.stderr


def test_private_webhook_destination_is_used_when_allowed(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok") as server:
        hook = server.uri.replace("127.0.0.1", "127.1") + "/hook"
        refused = run_alert(python, as_json(payload(server.uri, results, sid="s1", webhook_url=hook,
                                                    webhook_allow_http="1",
                                                    webhook_secret=WEBHOOK_SECRET)), spool)
        allowed = run_alert(python, as_json(payload(server.uri, results, sid="s2", webhook_url=hook,
                                                    webhook_allow_http="1", webhook_allow_private="1",
                                                    webhook_secret=WEBHOOK_SECRET)), spool)
    assert refused.returncode == 2
    assert allowed.returncode == 0, allowed.stderr
    assert [b["count"] for b in server.webhook_batches] == [2]


# ---------------------------------------------------------------- results_file confined

def test_results_file_outside_the_dispatch_directory_is_refused(python, tmp_path, spool):
    outside = write_results(str(tmp_path / "elsewhere.csv.gz"), spike_rows(2))
    inside = results_path(tmp_path, "linked")
    os.symlink(outside, inside)
    dispatch = os.path.dirname(os.path.dirname(inside))
    climbing = os.path.join(dispatch, "linked", "..", "..", "..", "..", "..", "..", "elsewhere.csv.gz")
    assert os.path.realpath(climbing) == os.path.realpath(outside)
    with Recorder("ok") as server:
        runs = [run_alert(python, as_json(payload(server.uri, path)), spool)
                for path in (outside, inside, climbing)]
    assert server.requests == 0
    for run in runs:
        assert run.returncode == 2, run.stderr
        assert len(run.errors()) == 1 and "is outside the dispatch directory" in run.errors()[0], \
            run.stderr


def test_results_file_needs_splunk_home(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    run = run_alert(python, as_json(payload(closed_port_uri(), results)), spool, SPLUNK_HOME="")
    assert run.returncode == 2
    assert any("SPLUNK_HOME is not set" in e for e in run.errors()), run.stderr
