"""The webhook's address is checked when delivery connects, not only before sending (issue 14).

A name can resolve to a public address when the payload is checked and to 127.0.0.1 or the metadata
address when urllib3 connects (DNS rebinding), and a name that did not resolve when checked is let
through then. Each run is the real action as splunkd runs it, with the resolver scripted in its
process (tests/scripted_dns_alert.py): DNS is the boundary, and nothing else is replaced. The servers
are real: splunkd's receiver on 127.0.0.1, and the webhook on 127.0.0.1 (where a rebound name leads)
or on this machine's own outward address.
"""
import ipaddress
import json
import os
import socket

import pytest

from teredo_spike.alert.destinations import private_kind
from tests.alert_support import (WEBHOOK_SECRET, Recorder, as_json, make_tls, payload, results_path,
                                 run_alert, spike_rows, spooled, write_results)

SCRIPTED_DNS_ALERT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripted_dns_alert.py")
HOOK_NAME = "hook.test"
PUBLIC = "203.0.113.10"  # TEST-NET-3: allowed by the rule, and never connected to by these tests
# In the webhook URL's query, as a token would be: no log line may show it.
PATH_TOKEN = "PathToken9xQ4"


@pytest.fixture(scope="module")
def hook_tls(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("hook_tls")), "hook test CA", server_name=HOOK_NAME)


@pytest.fixture(scope="module")
def other_tls(tmp_path_factory):
    """A certificate for another name, from a CA the run is given: only the name can fail."""
    return make_tls(str(tmp_path_factory.mktemp("other_tls")), "other test CA",
                    server_name="other.test")


def hook_url(server: Recorder) -> str:
    return "https://{}:{}/hook?token={}".format(HOOK_NAME, server.server_address[1], PATH_TOKEN)


def run_with_dns(python, tmp_path, spool, answers, stdin):
    """The alert with the scripted resolver; the names it looked up, in order."""
    lookups = str(tmp_path / "lookups.log")
    if os.path.exists(lookups):
        os.remove(lookups)
    run = run_alert(python, stdin, spool, script=SCRIPTED_DNS_ALERT, secrets=(PATH_TOKEN,),
                    TEREDO_TEST_DNS=json.dumps({HOOK_NAME: answers}), TEREDO_TEST_DNS_LOG=lookups)
    asked = []
    if os.path.exists(lookups):
        with open(lookups, encoding="utf-8") as f:
            asked = f.read().split()
    return run, asked


def webhook_payload(splunkd, webhook, tls, results, sid="scheduler__admin__teredo_spike__RMD5_1",
                    **configuration):
    return as_json(payload(splunkd.uri, results, sid=sid, webhook_url=hook_url(webhook),
                           webhook_secret=WEBHOOK_SECRET, webhook_ca_bundle=tls.ca_pem,
                           **configuration))


def spooled_webhook_ids(spool_dir):
    found = set()
    for name in spooled(spool_dir):
        with open(os.path.join(spool_dir, name), encoding="utf-8") as f:
            item = json.load(f)
        if item["kind"] == "webhook":
            found.add(item["event"]["event_id"])
    return found


def batch_ids(server):
    return [e["event_id"] for batch in server.webhook_batches for e in batch["events"]]


def outward_address() -> str:
    """This machine's own address towards the internet: one the rule allows, with a server on it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("203.0.113.1", 9))  # UDP: nothing is sent, the kernel only picks the source
        address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if private_kind(ipaddress.ip_address(address)):
        pytest.skip("this machine has no address but loopback to serve a webhook on")
    return address


# Answers at check time, then at connect time, and what the refusal must say.
REBOUND = {
    "public, then loopback": ([[PUBLIC], ["127.0.0.1"]], "hook.test (127.0.0.1) is a loopback address"),
    "public, then metadata": ([[PUBLIC], ["169.254.169.254"]],
                              "hook.test (169.254.169.254) is a cloud metadata address"),
    # Refused whole, as before sending: no connection is tried to the public address either.
    "public, then public and loopback": ([[PUBLIC], [PUBLIC, "127.0.0.1"]],
                                         "hook.test (127.0.0.1) is a loopback address"),
    # The name did not resolve when checked (let through, so that a DNS outage spools rather than
    # loses events): it is checked once it resolves.
    "unresolved, then loopback": ([None, ["127.0.0.1"]], "hook.test (127.0.0.1) is a loopback address"),
}


@pytest.mark.parametrize("case", sorted(REBOUND))
def test_a_name_rebound_to_a_refused_address_is_refused_when_connecting(python, tmp_path, spool,
                                                                         hook_tls, case):
    answers, expected = REBOUND[case]
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok") as splunkd, Recorder("ok", tls=hook_tls) as webhook:
        run, asked = run_with_dns(python, tmp_path, spool, answers,
                                  webhook_payload(splunkd, webhook, hook_tls, results))
    # Looked up when checked and when connecting, and not again: a refusal is not retried.
    assert asked == [HOOK_NAME, HOOK_NAME], run.stderr
    assert webhook.requests == 0  # the rebound name never reached the local webhook server
    assert len(splunkd.index_events) == 2, run.stderr  # splunkd on 127.0.0.1 is its own session
    assert run.returncode == 3, run.stderr
    assert spooled_webhook_ids(spool) == {e["event_id"] for e in splunkd.index_events}
    refusal = [e for e in run.errors() if "not connected" in e]
    assert len(refusal) == 1, run.stderr
    assert refusal[0].startswith("ERROR webhook https://hook.test:{}: not connected: "
                                 "configuration.webhook_url: ".format(webhook.server_address[1]))
    assert expected in refusal[0], run.stderr
    assert "unless param.webhook_allow_private = 1" in refusal[0]
    assert ":{}/hook".format(webhook.server_address[1]) not in run.stderr  # nor is the URL path


def test_with_private_allowed_the_same_server_gets_the_held_and_new_events(python, tmp_path, spool,
                                                                           hook_tls):
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok") as splunkd, Recorder("ok", tls=hook_tls) as webhook:
        refused, _ = run_with_dns(python, tmp_path, spool, [[PUBLIC], ["127.0.0.1"]],
                                  webhook_payload(splunkd, webhook, hook_tls, results, sid="s1"))
        held = spooled_webhook_ids(spool)
        allowed, asked = run_with_dns(python, tmp_path, spool, [["127.0.0.1"]],
                                      webhook_payload(splunkd, webhook, hook_tls, results, sid="s2",
                                                      webhook_allow_private="1"))
    assert refused.returncode == 3 and len(held) == 2, refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert asked == [HOOK_NAME]  # not checked before sending, only resolved to connect
    # TLS to 127.0.0.1 verified against the name: the certificate is for hook.test only.
    new = {e["event_id"] for e in splunkd.index_events} - held
    assert len(new) == 2
    assert set(batch_ids(webhook)[:2]) == held  # the held events first
    assert set(batch_ids(webhook)[2:]) == new and len(batch_ids(webhook)) == 4
    assert spooled(spool) == []


@pytest.mark.parametrize("certificate", ["for the name", "for another name"])
def test_an_allowed_address_is_connected_to_and_its_certificate_checked_by_name(
        python, tmp_path, spool, hook_tls, other_tls, certificate):
    address = outward_address()
    server_tls = hook_tls if certificate == "for the name" else other_tls
    results = write_results(results_path(tmp_path, "results"), spike_rows(2))
    with Recorder("ok") as splunkd, Recorder("ok", tls=server_tls, address=address) as webhook:
        run, asked = run_with_dns(python, tmp_path, spool, [[address]],
                                  webhook_payload(splunkd, webhook, server_tls, results))
    assert asked == [HOOK_NAME, HOOK_NAME], run.stderr
    assert len(splunkd.index_events) == 2, run.stderr
    if certificate == "for the name":
        assert run.returncode == 0, run.stderr
        assert len(batch_ids(webhook)) == 2
        assert spooled(spool) == []
    else:
        assert run.returncode == 3, run.stderr
        assert webhook.webhook_batches == []
        assert any("webhook https://hook.test:{}: TLS certificate not verified".format(
            webhook.server_address[1]) in e for e in run.errors()), run.stderr
        assert len(spooled_webhook_ids(spool)) == 2
