"""Real traffic (issue 3): captures, Zeek conn.log and Suricata eve.json, read by tools/readers and run
through `| teredospike` over the chunked protocol, held against what Zeek itself decided.

The captures and Zeek's logs are read in place from ../shared/data (see its README and
pcaps/PROVENANCE.md). tshark and Suricata 7 are installed by tools/setup.sh.
"""

import os
import shutil
import subprocess
from collections import defaultdict

import pytest

from tests.conftest import IN_CI
from tools.readers import read_records, zeek
from tools.runner import run_search
from tools.verdicts import flow_verdicts

LABEL_FIELDS = ("app", "service", "app_proto", "tunnel_type")
INNER_FIELDS = ("inner_src_ip", "inner_dest_ip")

# Zeek btest baseline directory -> the capture it was made from (PROVENANCE.md).
BASELINES = {
    "core.tunnels.teredo": "zeek_Teredo.pcap",
    "core.tunnels.teredo_bubble_with_payload": "zeek_teredo_bubble_with_payload.pcap",
    "core.tunnels.gtp.inner_teredo": "zeek_gtp8_teredo.pcap",
}
# Suricata 7 does not decapsulate GTP-U, so it cannot see the Teredo inside zeek_gtp8_teredo.pcap.
SURICATA_CAPTURES = ("zeek_Teredo.pcap", "zeek_teredo_bubble_with_payload.pcap", "ndpi_teredo.pcap",
                     "zeek_false-teredo.pcap", "zeek_teredo-udp-in-udp.pcap")


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        message = "%s is not installed (./tools/setup.sh installs it)" % tool
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def capture_flows(shared_data):
    """Flow records of each capture (tshark runs once per capture)."""
    need("tshark")
    cache = {}

    def flows(name):
        if name not in cache:
            cache[name] = read_records(os.path.join(shared_data, "pcaps", name), "pcap")
            assert cache[name], "no flows read from %s" % name
        return [dict(record) for record in cache[name]]
    return flows


def host_verdicts(records, python, args=()):
    """src -> the union of its `output=all` rows: the command's verdict per host, over the protocol."""
    result = run_search(records, ["output=all"] + list(args), python=python)
    assert all(code == 0 for code in result.exit_codes), result.messages
    hosts = defaultdict(lambda: defaultdict(set))
    for row in result.rows:
        for field in ("client_ports", "teredo_servers", "relays", "mapped", "evidence"):
            value = row.get(field) or []
            hosts[row["src"]][field] |= set(value if isinstance(value, list) else [value])
    return {src: dict(fields) for src, fields in hosts.items()}


def five_tuple(record):
    return (record.get("transport", ""), record.get("src_ip", ""), record.get("src_port", ""),
            record.get("dest_ip", ""), record.get("dest_port", ""))


def without(records, fields, where=lambda record: True):
    return [{k: v for k, v in r.items() if not (k in fields and where(r))} for r in records]


def verdict_table(title, rows):
    lines = [title, "%-58s  %-34s  %s" % ("flow (transport src:port -> dest:port)", "Zeek", "pipeline")]
    for key, left, right in rows:
        lines.append("%-58s  %-34s  %s" % ("%s %s:%s -> %s:%s" % key, left, right))
    return "\n".join(lines)


def compare_hosts(expected, got, exact=("client_ports", "relays"), subset=("teredo_servers", "mapped")):
    """Differences between two host verdicts: same hosts; `exact` fields equal; `subset` fields of
    `got` within `expected`'s (the capture sees every Teredo address, a log only some)."""
    lines = []
    for src in sorted(set(expected) | set(got)):
        if src not in got or src not in expected:
            lines.append("%s: only in %s" % (src, "capture" if src in expected else "other"))
            continue
        for field in exact:
            if expected[src][field] != got[src][field]:
                lines.append("%s %s: capture %s, other %s" % (
                    src, field, sorted(expected[src][field]), sorted(got[src][field])))
        for field in subset:
            if not got[src][field] <= expected[src][field]:
                lines.append("%s %s: %s not seen in the capture" % (
                    src, field, sorted(got[src][field] - expected[src][field])))
    return lines


# ---- 1. zeek_Teredo.pcap ------------------------------------------------------------------------

def test_teredo_capture_client_servers_relay_and_mapped_address(capture_flows, python):
    hosts = host_verdicts(capture_flows("zeek_Teredo.pcap"), python)
    assert set(hosts) == {"192.168.2.16"}, hosts
    host = hosts["192.168.2.16"]
    assert host["client_ports"] == {"3797"}
    assert host["teredo_servers"] == {"65.55.158.80", "65.55.158.81"}
    assert host["relays"] == {"83.170.1.38"}
    assert host["mapped"] == {"70.55.215.234:3797"}


RELAY = ("udp", "192.168.2.16", "3797", "83.170.1.38", "32900")


def _unlabelled(source, capture_flows, shared_data):
    if source == "capture":
        return capture_flows("zeek_Teredo.pcap")
    records = list(zeek.read(os.path.join(shared_data, "zeek-baselines", "core.tunnels.teredo",
                                          "conn.log"), masked_time_ok=True))
    return _with_capture_times(records, capture_flows("zeek_Teredo.pcap"))


@pytest.mark.parametrize("source", ["capture", "zeek conn.log"])
def test_relay_flow_counts_by_client_port_without_any_label(source, capture_flows, shared_data,
                                                            python):
    records = _unlabelled(source, capture_flows, shared_data)
    # Every application label gone; the relay flow also loses its Teredo addresses, so that only
    # the client port can tie it to the host.
    records = without(records, LABEL_FIELDS)
    records = without(records, INNER_FIELDS, lambda r: five_tuple(r) == RELAY)
    relay = [i for i, r in enumerate(records) if five_tuple(r) == RELAY]
    assert len(relay) == 1
    verdict = flow_verdicts(records)[relay[0]]
    assert verdict.teredo and verdict.evidence == ["client_port"], verdict
    host = host_verdicts(records, python)["192.168.2.16"]
    assert host["relays"] == {"83.170.1.38"} and "client_port" in host["evidence"], host

    # The same relay flow two hours later, when port 3797 is no longer a live client port: not Teredo.
    late = dict(records[relay[0]], _time="%.6f" % (float(records[relay[0]]["_time"]) + 7200))
    assert not flow_verdicts(records + [late])[-1].teredo


# ---- 2. ndpi_teredo.pcap -------------------------------------------------------------------------

def test_ndpi_capture_five_clients_one_server(capture_flows, python):
    hosts = host_verdicts(capture_flows("ndpi_teredo.pcap"), python)
    assert set(hosts) == {"10.112.16.64", "10.112.16.67", "10.112.16.89", "10.112.16.92",
                          "10.112.16.106"}, hosts
    for src, host in hosts.items():
        assert host["teredo_servers"] == {"194.136.28.76"}, (src, host)
        assert len(host["client_ports"]) == 1, (src, host)


# ---- 3. negative controls ------------------------------------------------------------------------

@pytest.mark.parametrize("capture,internal", [
    # Internal DNS only: count the resolver 192.168.1.1 as external so the flows are outbound UDP.
    ("zeek_false-teredo.pcap", "192.168.1.96/28"),
    # One fuzzed IPv6/UDP packet from ::38:5f55:6265:726b that tshark's heuristic takes for Teredo.
    ("zeek_teredo-udp-in-udp.pcap", "::/8"),
])
def test_negative_controls_have_no_teredo_host(capture, internal, capture_flows, python):
    records = capture_flows(capture)
    args = ["internal=" + internal]
    verdicts = flow_verdicts(records, args)
    assert any(v.counted for v in verdicts), "the control must reach the command as outbound UDP"
    assert not [r for r, v in zip(records, verdicts) if v.teredo]
    assert not any(r.get(field) for r in records for field in INNER_FIELDS)
    assert host_verdicts(records, python, args) == {}


# ---- 4. flow by flow against Zeek's verdicts -----------------------------------------------------

def zeek_teredo_flows(folder):
    """Outer 5-tuples Zeek calls Teredo: conn.log service=teredo, and tunnel.log Tunnel::TEREDO
    (Zeek decapsulates a server's lone answer but withholds service=teredo until it has seen Teredo
    both ways; the tunnel is Zeek's verdict all the same)."""
    tunnels = zeek.teredo_tunnel_uids(os.path.join(folder, "tunnel.log"))
    flows = {}
    for record in zeek.read(os.path.join(folder, "conn.log"), masked_time_ok=True, tunnel_log=None):
        why = []
        if "teredo" in str(record.get("service", "")).lower():
            why.append("service=teredo")
        if record.get("uid") in tunnels:
            why.append("tunnel.log TEREDO")
        if why:
            flows[five_tuple(record)] = ", ".join(why)
    return flows


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_flows_marked_teredo_are_the_flows_zeek_marks(baseline, capture_flows, shared_data):
    expected = zeek_teredo_flows(os.path.join(shared_data, "zeek-baselines", baseline))
    assert expected, "Zeek marks no flow in %s" % baseline
    records = capture_flows(BASELINES[baseline])
    got = {five_tuple(r): ",".join(v.evidence)
           for r, v in zip(records, flow_verdicts(records)) if v.teredo}
    differences = [(key, expected.get(key, "-"), got.get(key, "-"))
                   for key in sorted(set(expected) ^ set(got))]
    assert not differences, verdict_table(
        "%s: flows Zeek and this pipeline disagree on" % BASELINES[baseline], differences)


# ---- 5. Zeek's and Suricata's logs give the capture's verdicts -----------------------------------

def _with_capture_times(records, flows):
    """Zeek's baselines mask every ts: take each connection's time from the capture's flow with
    the same outer 5-tuple (either direction), else the capture's first packet."""
    times = {}
    for flow in flows:
        key = five_tuple(flow)
        times.setdefault(key, flow["_time"])
        times.setdefault((key[0], key[3], key[4], key[1], key[2]), flow["_time"])
    start = min(flow["_time"] for flow in flows)
    return [dict(r, _time=times.get(five_tuple(r), start)) for r in records]


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_zeek_conn_log_gives_the_capture_verdicts(baseline, capture_flows, shared_data, python):
    folder = os.path.join(shared_data, "zeek-baselines", baseline)
    with pytest.raises(Exception, match=r"line \d+: ts='XXXXXXXXXX.XXXXXX' is not a time"):
        list(zeek.read(os.path.join(folder, "conn.log")))
    flows = capture_flows(BASELINES[baseline])
    records = _with_capture_times(list(zeek.read(os.path.join(folder, "conn.log"),
                                                 masked_time_ok=True)), flows)
    from_capture, from_zeek = host_verdicts(flows, python), host_verdicts(records, python)
    assert from_capture
    differences = compare_hosts(from_capture, from_zeek)
    assert not differences, "\n".join(["%s vs Zeek's conn.log:" % BASELINES[baseline]] + differences)


@pytest.fixture(scope="module")
def eve_of(shared_data, tmp_path_factory):
    need("suricata")

    def run(capture):
        out = tmp_path_factory.mktemp("suricata")
        done = subprocess.run(["suricata", "-r", os.path.join(shared_data, "pcaps", capture),
                               "-l", str(out), "-k", "none", "--runmode", "single", "-S", os.devnull],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return str(out / "eve.json")
    return run


@pytest.mark.parametrize("capture", SURICATA_CAPTURES)
def test_suricata_eve_gives_the_capture_verdicts(capture, eve_of, capture_flows, python):
    records = read_records(eve_of(capture))  # detected as eve by its content
    assert records, "Suricata logged no flow for %s" % capture
    from_capture, from_eve = host_verdicts(capture_flows(capture), python), host_verdicts(records, python)
    differences = compare_hosts(from_capture, from_eve)
    assert not differences, "\n".join(["%s vs Suricata's eve.json:" % capture] + differences)


# ---- the readers on bad or unusual input ---------------------------------------------------------

def test_formats_are_told_by_content(shared_data, tmp_path):
    from tools.readers import detect_format
    pcaps, baselines = os.path.join(shared_data, "pcaps"), os.path.join(shared_data, "zeek-baselines")
    assert detect_format(os.path.join(pcaps, "zeek_Teredo.pcap")) == "pcap"
    assert detect_format(os.path.join(baselines, "core.tunnels.teredo", "conn.log")) == "zeek"
    renamed = tmp_path / "capture.bin.json"  # a capture under a misleading name is still a capture
    shutil.copyfile(os.path.join(pcaps, "ndpi_teredo.pcap"), str(renamed))
    assert detect_format(str(renamed)) == "pcap"
    zeek_json = tmp_path / "conn.json"
    zeek_json.write_text('{"ts": "2008-05-16T15:50:52.202579Z", "uid": "C1", "id.orig_h": "192.168.2.16", '
                         '"id.orig_p": 3797, "id.resp_h": "65.55.158.80", "id.resp_p": 3544, '
                         '"proto": "udp", "service": "teredo", "orig_bytes": 129, "orig_pkts": 2}\n')
    assert detect_format(str(zeek_json)) == "zeek"
    [record] = read_records(str(zeek_json))
    assert record == {"_time": "1210953052.202579", "uid": "C1", "src_ip": "192.168.2.16",
                      "src_port": "3797", "dest_ip": "65.55.158.80", "dest_port": "3544",
                      "transport": "udp", "service": "teredo", "app": "teredo",
                      "bytes_out": "129", "packets_out": "2"}


def test_unreadable_files_name_the_file_and_line(tmp_path, capsys):
    from tools.readers import InputError
    from tools.runner import main
    need("tshark")
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(b"\0" * 200)
    with pytest.raises(InputError, match=r"damaged.pcap: tshark cannot read it: The file .* "
                                         r"appears to be damaged or corrupt"):
        read_records(str(damaged))
    text = tmp_path / "notes.pcap"  # tshark takes text for a capture of one packet without time
    text.write_text("hello\n")
    with pytest.raises(InputError, match=r"notes.pcap, line 1: packet 1 has no time: not a packet"):
        read_records(str(text))
    short = tmp_path / "conn.log"
    short.write_text("#separator \\x09\n#fields\tts\tid.orig_h\n1.0\n")
    with pytest.raises(InputError, match=r"conn.log, line 3: 1 fields where #fields names 2"):
        read_records(str(short))
    bad_eve = tmp_path / "eve.json"
    bad_eve.write_text('{"event_type": "flow", "src_ip": "10.0.0.1", "flow": {"start": "yesterday"}}\n')
    with pytest.raises(InputError, match=r"eve.json, line 1: flow.start 'yesterday' is not a"):
        read_records(str(bad_eve))
    masked = tmp_path / "masked.conn.log"
    masked.write_text("#separator \\x09\n#fields\tts\tid.orig_h\nXXXXXXXXXX.XXXXXX\t10.0.0.1\n")
    assert main([str(masked)]) == 2
    assert "masked.conn.log, line 3: ts='XXXXXXXXXX.XXXXXX' is not a time" in capsys.readouterr().err
