"""The teredo_attack_context alert run as splunkd runs it (subprocess, --execute, JSON on stdin)
under Splunk's Python 3.9 and 3.13, against real HTTP(S) servers on 127.0.0.1."""
import jsonschema
import pytest

from tests.alert_support import (WEBHOOK_SECRET, Recorder, as_json, closed_port_uri, make_tls,
                                 payload, results_path, run_alert, spike_rows, spooled, write_results)
from tests.alert_schemas import event_schema

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("tls")), "teredo test CA")


@pytest.fixture(scope="module")
def rogue_tls(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("rogue")), "untrusted CA")


@pytest.fixture(scope="module")
def default_cert_tls(tmp_path_factory):
    """Like Splunk's default: a certificate for SplunkServerDefaultCert, not for 127.0.0.1."""
    return make_tls(str(tmp_path_factory.mktemp("default_cert")), "SplunkCommonCA",
                    server_name="SplunkServerDefaultCert")


def ids(events):
    return [e["event_id"] for e in events]


def test_three_rows_enriched_delivered_to_index_and_webhook(python, tmp_path, tls, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    with Recorder("ok", tls=tls) as server:
        run = run_alert(python, as_json(payload(
            server.uri, results, webhook_url=server.uri + "/hook", webhook_allow_private="1",
            webhook_secret=WEBHOOK_SECRET,
            splunkd_ca_bundle=tls.ca_pem, webhook_ca_bundle=tls.ca_pem, index="teredo")), spool)
    assert run.returncode == 0, run.stderr
    assert run.errors() == [] and run.stdout == ""
    assert server.rejected == 0
    assert len(server.index_events) == 3
    for params in server.index_params:
        assert params["index"] == ["teredo"] and params["sourcetype"] == ["teredo_spike:alert"]
    validator = jsonschema.Draft202012Validator(event_schema())
    for n, event in enumerate(server.index_events, 1):
        validator.validate(event)
        assert event["src"] == "10.0.0.{}".format(n)
        assert event["mitre_technique_id"] == "T1572"
        assert event["mitre_technique"] == "Protocol Tunneling"
        assert event["mitre_tactic"] == ["command-and-control"]
        assert event["mitre_url"] == "https://attack.mitre.org/techniques/T1572"
        assert [m["id"] for m in event["mitre_mitigations"]] == ["M1031", "M1037"]
        assert "Network Traffic Flow" in event["mitre_data_components"]
        assert event["evidence"] == ["port", "prefix", "client_port"]
        assert event["score"] == 10 + n and event["packets"] == 12000 + n
        assert event["teredo"]["client_ports"] == [3797]
        assert event["teredo"]["mapped"] == [{"address": "203.0.113.{}".format(n), "port": 40000 + n}]
        assert event["time"] == 1700000000 + 600 * n
        checks = " ".join(event["analyst_checks"])
        assert "10.0.0.{}".format(n) in checks and "3797" in checks and "allowlist" in checks
        assert "192.0.2.{}".format(n) in checks
    assert len(server.webhook_batches) == 1
    batch = server.webhook_batches[0]
    assert batch["count"] == 3
    for event in batch["events"]:
        validator.validate(event)
    assert batch["events"] == server.index_events
    assert spooled(spool) == []


def test_splunkd_certificate_name_is_checked_against_the_configured_name(python, tmp_path,
                                                                        default_cert_tls, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    with Recorder("ok", tls=default_cert_tls) as server:
        mismatch = run_alert(python, as_json(payload(
            server.uri, results, sid="s1", splunkd_ca_bundle=default_cert_tls.ca_pem)), spool)
        named = run_alert(python, as_json(payload(
            server.uri, results, sid="s2", splunkd_ca_bundle=default_cert_tls.ca_pem,
            splunkd_tls_server_name="SplunkServerDefaultCert")), spool)
    assert mismatch.returncode == 3
    assert any("TLS certificate not verified" in e and "SplunkServerDefaultCert" in e
               for e in mismatch.errors()), mismatch.stderr
    assert named.returncode == 0, named.stderr
    assert [e["alert"]["sid"] for e in server.index_events] == ["s1", "s2"]  # s1 held, then delivered


def test_retry_with_backoff_gets_through(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    with Recorder("fail_first", failures=1) as server:
        run = run_alert(python, as_json(payload(server.uri, results, retries="2")), spool)
    assert run.returncode == 0, run.stderr
    assert server.requests == 4  # one 500, answered by a retry, then two more events
    assert len(server.index_events) == 3


FAULTS = ["down", "http_500", "hanging", "tls_unverified", "tls_no_ca_given"]


@pytest.mark.parametrize("fault", FAULTS)
def test_receiver_fault_holds_events_and_next_run_delivers_each_once(python, tmp_path, tls, rogue_tls,
                                                                    spool, fault):
    first = write_results(results_path(tmp_path, "first"), spike_rows(3))
    second = write_results(results_path(tmp_path, "second"), spike_rows(1, first_host=10))
    expected_error = {"down": "cannot connect", "http_500": "HTTP 500", "hanging": "no answer within 1 s",
                      "tls_unverified": "TLS certificate not verified",
                      "tls_no_ca_given": "TLS certificate not verified"}[fault]
    if fault == "down":
        run = run_alert(python, as_json(payload(closed_port_uri(), first, sid="s1")), spool)
    else:
        server_tls = {"tls_unverified": rogue_tls, "tls_no_ca_given": tls}.get(fault)
        mode = {"http_500": "error", "hanging": "hang"}.get(fault, "ok")
        config = {"splunkd_ca_bundle": tls.ca_pem} if fault == "tls_unverified" else {}
        with Recorder(mode, tls=server_tls) as faulty:
            run = run_alert(python, as_json(payload(faulty.uri, first, sid="s1", timeout="1", **config)),
                            spool)
        assert faulty.index_events == []
    assert run.returncode == 3, run.stderr
    assert any(expected_error in line for line in run.errors()), run.stderr
    assert any("3 event deliveries held in the spool" in line for line in run.errors()), run.stderr
    assert "Traceback" not in run.stderr
    assert len(spooled(spool)) == 3

    with Recorder("ok", tls=tls) as healthy:
        run2 = run_alert(python, as_json(payload(healthy.uri, second, sid="s2",
                                                 splunkd_ca_bundle=tls.ca_pem)), spool)
        run3 = run_alert(python, as_json(payload(healthy.uri, second, sid="s3",
                                                 splunkd_ca_bundle=tls.ca_pem)), spool)
    assert run2.returncode == 0 and run3.returncode == 0, run2.stderr + run3.stderr
    sources = [e["src"] for e in healthy.index_events]
    # Held events first, each exactly once, then the new run's own; the third run resends nothing held.
    assert sources == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.10"]
    assert len(set(ids(healthy.index_events))) == 5
    assert [e["alert"]["sid"] for e in healthy.index_events] == ["s1", "s1", "s1", "s2", "s3"]
    assert any("(3 from the spool)" in line for line in run2.lines)
    assert spooled(spool) == []


def test_rerun_of_the_same_alert_rows_sends_each_once(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    run = run_alert(python, as_json(payload(closed_port_uri(), results, sid="same")), spool)
    assert run.returncode == 3 and len(spooled(spool)) == 3
    with Recorder("ok") as server:
        run2 = run_alert(python, as_json(payload(server.uri, results, sid="same")), spool)
    assert run2.returncode == 0, run2.stderr
    assert [e["src"] for e in server.index_events] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_webhook_down_index_up_redelivers_only_to_webhook(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    empty = write_results(results_path(tmp_path, "none"), [])
    with Recorder("ok", webhook_mode="error") as server:
        config = dict(webhook_url=server.uri + "/hook", webhook_allow_private="1",
                      webhook_allow_http="1",
                      webhook_secret=WEBHOOK_SECRET)
        run = run_alert(python, as_json(payload(server.uri, results, sid="s1", **config)), spool)
        assert run.returncode == 3
        assert any("webhook http://127.0.0.1" in e and "HTTP 500" in e for e in run.errors()), run.stderr
        assert len(server.index_events) == 3 and len(spooled(spool)) == 3
        server.webhook_mode = "ok"
        run2 = run_alert(python, as_json(payload(server.uri, empty, sid="s2", **config)), spool)
        run3 = run_alert(python, as_json(payload(server.uri, empty, sid="s3", **config)), spool)
    assert run2.returncode == 0 and run3.returncode == 0, run2.stderr + run3.stderr
    assert len(server.index_events) == 3  # the index got them the first time: no duplicates
    assert [len(b["events"]) for b in server.webhook_batches] == [3]
    assert ids(server.webhook_batches[0]["events"]) == ids(server.index_events)
    assert spooled(spool) == []


def test_events_held_for_another_webhook_stay_held(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok", webhook_mode="error") as first:
        run = run_alert(python, as_json(payload(
            first.uri, results, sid="s1", webhook_url=first.uri + "/hook", webhook_allow_private="1",
            webhook_allow_http="1",
            webhook_secret=WEBHOOK_SECRET)), spool)
    assert run.returncode == 3 and len(spooled(spool)) == 2
    with Recorder("ok") as second:
        run2 = run_alert(python, as_json(payload(
            second.uri, results, sid="s2", webhook_url=second.uri + "/hook", webhook_allow_private="1",
            webhook_allow_http="1",
            webhook_secret=WEBHOOK_SECRET)), spool)
    assert run2.returncode == 0, run2.stderr
    assert [[e["alert"]["sid"] for e in b["events"]] for b in second.webhook_batches] == [["s2", "s2"]]
    assert len(spooled(spool)) == 2  # still owed to the first webhook, whose URL this run does not know


def test_webhook_url_path_and_query_never_reach_the_log(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    with Recorder("ok", webhook_mode="error") as server:
        hook = server.uri + "/hooks/T0001/B0002/pathtoken42?token=querytoken42"
        run = run_alert(python, as_json(payload(server.uri, results, webhook_url=hook,
                                                webhook_allow_private="1",
                                                webhook_allow_http="1", retries="2")), spool)
    assert run.returncode == 3
    assert any("webhook " + server.uri + ": HTTP 500" in e for e in run.errors()), run.stderr
    assert "pathtoken42" not in run.stderr and "querytoken42" not in run.stderr


def test_full_spool_says_so_and_exits_4(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(3))
    run = run_alert(python, as_json(payload(closed_port_uri(), results, spool_max_events="2")), spool)
    assert run.returncode == 4
    assert any("is full" in e and "1 event deliveries could not be kept" in e for e in run.errors()), \
        run.stderr
    assert len(spooled(spool)) == 2


def test_refused_session_key_is_reported_without_the_key(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    document = payload("http://placeholder", results)
    with Recorder("ok") as server:
        document["server_uri"] = server.uri
        document["session_key"] = "not-the-right-key"
        run = run_alert(python, as_json(document), spool)
    assert run.returncode == 3
    assert any("HTTP 401" in e and "session key was refused" in e for e in run.errors()), run.stderr
    assert "not-the-right-key" not in run.stderr


def test_plain_http_webhook_is_refused_unless_allowed(python, tmp_path, spool):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    with Recorder("ok") as server:
        run = run_alert(python, as_json(payload(server.uri, results, webhook_url=server.uri + "/hook",
                                                webhook_allow_private="1",
                                                webhook_secret=WEBHOOK_SECRET)), spool)
    assert run.returncode == 2
    assert server.requests == 0
    assert len(run.errors()) == 1 and "webhook_allow_http" in run.errors()[0]


def _oversized(tmp_path):
    path = results_path(tmp_path, "huge")
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)  # sparse: no disk cost
    return path


BAD_PAYLOADS = {
    "empty stdin": (lambda results, tmp: b"", "no payload on stdin"),
    "not JSON": (lambda results, tmp: b"{'server_uri': ", "payload on stdin is not JSON"),
    "JSON but a list": (lambda results, tmp: b"[1, 2]", "(top level): [1, 2] is not of type 'object'"),
    "missing session_key": (lambda results, tmp: as_json(
        {k: v for k, v in payload("http://127.0.0.1:1", results).items() if k != "session_key"}),
        "'session_key' is a required property"),
    "session_key of the wrong type": (lambda results, tmp: as_json(
        dict(payload("http://127.0.0.1:1", results), session_key=12345678987654321)),
        "session_key: does not satisfy 'type'"),
    "timeout of the wrong type": (lambda results, tmp: as_json(
        payload("http://127.0.0.1:1", results, timeout=5)), "configuration.timeout: 5 is not of type 'string'"),
    "bad index name": (lambda results, tmp: as_json(
        payload("http://127.0.0.1:1", results, index="Main Index")), "configuration.index: 'Main Index' does not match"),
    "missing results_file": (lambda results, tmp: as_json(
        payload("http://127.0.0.1:1", results_path(tmp, "absent"))), "cannot be read: No such file"),
    "corrupt results_file": (lambda results, tmp: as_json(
        payload("http://127.0.0.1:1", results_path(tmp, "plain"))), "is not a readable gzip file"),
    "oversized results_file": (lambda results, tmp: as_json(
        payload("http://127.0.0.1:1", _oversized(tmp))), "more than the 67108864 an alert reads"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_payload_one_clear_error_nonzero_exit(python, tmp_path, spool, case):
    results = write_results(results_path(tmp_path, "results"), spike_rows(1))
    with open(results_path(tmp_path, "plain"), "w") as f:
        f.write("src,score\n10.0.0.1,12\n")
    make_stdin, expected = BAD_PAYLOADS[case]
    run = run_alert(python, make_stdin(results, tmp_path), spool)
    assert run.returncode == 2
    assert len(run.errors()) == 1, run.stderr
    assert expected in run.errors()[0] and "nothing was delivered" in run.errors()[0], run.stderr
    assert "Traceback" not in run.stderr
    assert spooled(spool) == []


def test_without_execute_flag_explains_itself(python, tmp_path, spool):
    run = run_alert(python, b"", spool, args=[])
    assert run.returncode == 2
    assert run.errors() == ["ERROR teredo_attack_context is a Splunk alert action: splunkd runs it "
                            "with --execute and a JSON payload on stdin"]


def test_unusable_rows_are_counted_and_the_rest_delivered(python, tmp_path, spool):
    rows = spike_rows(3)
    del rows[1]["src"]
    rows[2]["score"] = "lots"
    results = write_results(results_path(tmp_path, "results"), rows)
    with Recorder("ok") as server:
        run = run_alert(python, as_json(payload(server.uri, results)), spool)
    assert run.returncode == 5, run.stderr
    assert [e["src"] for e in server.index_events] == ["10.0.0.1"]
    errors = run.errors()
    assert any("row 2 skipped" in e and "'src' is a required property" in e for e in errors), run.stderr
    assert any("row 3 skipped" in e and "score: 'lots' is not of type 'number'" in e for e in errors)
    assert any("2 of 3 result rows skipped" in e for e in errors)
