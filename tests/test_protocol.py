"""`| teredospike` as splunkd runs it: a subprocess spoken to through the chunked protocol, under
Splunk's Python 3.9 and 3.13, whatever the chunk size or the number of indexers."""

import random

import pytest

from teredo_spike.partials import ENTRIES_PER_ROW
from tests.flows import (BUCKET, DAY, T0, as_tstats, flow, idle_client, ordinary_udp, relay_tunnel,
                         small_enterprise)
from tools.runner import run_partitioned, run_search


@pytest.fixture(scope="module")
def raw_events():
    return small_enterprise(hosts=12, days=3)


@pytest.fixture(scope="module")
def tstats_rows(raw_events):
    return as_tstats(raw_events)


def spikes(result):
    return [(row["src"], row["_time"], row["episode_buckets"]) for row in result.rows]


def test_finds_the_tunnel_and_nothing_else(tstats_rows, python):
    result = run_search(tstats_rows, [], python=python)
    assert result.exit_codes == [0, 0]
    assert [row["src"] for row in result.rows] == ["10.1.0.10"]
    row = result.rows[0]
    assert row["_time"] == str(T0 + 2 * DAY + 60 * BUCKET)   # flagged in the bucket it starts
    assert row["episode_buckets"] == "4"
    assert "client_port" in row["evidence"]
    assert sorted(row["relays"]) == ["195.140.195.140", "83.170.1.38"]
    assert row["teredo_servers"] == "65.55.158.80"
    assert row["mitre_technique_id"] == "T1572"
    assert "relay destinations via client port" in row["reason"]


@pytest.mark.parametrize("output", ["spikes", "all"])
def test_chunk_size_and_python_do_not_change_results(tstats_rows, output):
    from tests.pythons import SPLUNK_PYTHONS, splunk_python
    reference = run_search(tstats_rows, ["output=" + output], chunk_size=50000,
                           python=splunk_python(SPLUNK_PYTHONS[0]))
    assert reference.rows
    for version in SPLUNK_PYTHONS:
        for size in (1, 2500, 50000):
            result = run_search(tstats_rows, ["output=" + output], chunk_size=size,
                                python=splunk_python(version))
            assert result.rows == reference.rows, (version, size)
            assert result.exit_codes == [0, 0]


def test_raw_events_and_tstats_rows_agree(raw_events, tstats_rows):
    """The saved search's tstats path and a raw-event search find the same episodes."""
    raw = run_search(raw_events, ["output=all"], chunk_size=50000)
    rows = run_search(tstats_rows, ["output=all"], chunk_size=50000)
    assert raw.rows == rows.rows


@pytest.mark.parametrize("partitions", [2, 5])
def test_distributed_search_equals_one_process(tstats_rows, partitions):
    single = run_search(tstats_rows, ["output=all"], partitions=1)
    spread = run_search(tstats_rows, ["output=all"], partitions=partitions)
    assert spread.rows == single.rows
    assert len(spread.exit_codes) == partitions + 1


def test_relay_flows_on_another_indexer_than_the_server_flows(tstats_rows):
    """A host's 3544 flows on one indexer, its relay flows on another: still attributed."""
    tunnel_host = "10.1.0.10"
    server_part = [r for r in tstats_rows if r["All_Traffic.dest_port"] == "3544"]
    relay_part = [r for r in tstats_rows if r["All_Traffic.dest_port"] != "3544"]
    split = run_partitioned([server_part, relay_part], ["output=all"])
    single = run_search(tstats_rows, ["output=all"])
    assert split.rows == single.rows
    # ...and the relay rows really are on their own partition, and do count.
    tunnel = [r for r in split.rows if r["src"] == tunnel_host and r["is_spike"] == "1"]
    assert tunnel and all(r["relays"] for r in tunnel)


def test_ordinary_udp_travels_packed_and_relay_flows_among_it_still_count():
    """The map phase passes plain outbound UDP on as entries, many to a row, not a row per
    record; relay flows among them, on another indexer than their client's server flows, are
    still attributed when the search head has every indexer's rows."""
    rng = random.Random(3)
    src, port = "10.9.0.1", 4000
    server_flows = idle_client(src, port, T0, 12, rng)
    relay = relay_tunnel(src, port, T0 + 6 * BUCKET, 4, ["83.170.1.38"], 900, rng)
    ordinary = [r for h in range(100) for r in ordinary_udp("10.9.1.%d" % h, T0, 12, rng)]
    other = sorted(relay + ordinary, key=lambda r: float(r["_time"]))
    split = run_partitioned([server_flows, other], ["output=all"])
    single = run_search(sorted(server_flows + other, key=lambda r: float(r["_time"])),
                        ["output=all"])
    assert split.rows == single.rows
    relayed = [r for r in split.rows if r["relays"]]
    assert len(relayed) == 4 and all(r["src"] == src for r in relayed)
    assert split.map_rows < len(ordinary) / ENTRIES_PER_ROW + 40  # + cells, counts


def test_a_reused_old_client_port_does_not_count(raw_events):
    """10.1.0.11 used Teredo on port 41000 on day 1; QUIC reuses the port on day 3."""
    rows = run_search(raw_events, ["output=all"]).rows
    host = [r for r in rows if r["src"] == "10.1.0.11"]
    assert host, "its day-1 Teredo traffic must be there"
    assert max(int(r["_time"]) for r in host) < T0 + DAY + BUCKET
    # The QUIC flows themselves are in the input, from that very port.
    reused = [r for r in raw_events if r["src_ip"] == "10.1.0.11" and r["dest_port"] == "443"]
    assert reused and {r["src_port"] for r in reused} == {"41000"}


def test_relay_traffic_counts_only_next_to_live_buckets():
    """Relay flows one bucket after the last refresh count; two buckets after, they do not."""
    src, port, server, relay = "10.9.0.1", "4000", "65.55.158.80", "83.170.1.38"
    events = [flow(T0 + 5, src, port, server, 3544, 2, 185, "teredo"),
              flow(T0 + BUCKET + 5, src, port, relay, 32900, 40, 40000),
              flow(T0 + 3 * BUCKET + 5, src, port, relay, 32900, 40, 40000)]
    rows = run_search(events, ["output=all"]).rows
    assert [(r["_time"], r["packets"], r["evidence"]) for r in rows] == [
        (str(T0), "2", ["label", "port"]),
        (str(T0 + BUCKET), "40", "client_port"),
    ]


@pytest.mark.parametrize("partitions", [1, 2])
def test_two_client_ports_in_one_bucket_make_one_row(partitions):
    """The client restarts on a new port mid-bucket: one host-bucket with both ports' traffic,
    whether the two ports' flows meet in one process or on two indexers."""
    src, server, relay = "10.9.0.2", "65.55.158.80", "83.170.1.38"
    old_port = [flow(T0 + 5, src, 4000, server, 3544, 2, 185, "teredo"),
                flow(T0 + 20, src, 4000, relay, 32900, 10, 10000)]
    new_port = [flow(T0 + 300, src, 5000, server, 3544, 3, 240, "teredo"),
                flow(T0 + 310, src, 5000, relay, 32900, 40, 40000),
                flow(T0 + BUCKET + 5, src, 5000, server, 3544, 1, 90, "teredo")]
    parts = [old_port + new_port] if partitions == 1 else [new_port, old_port]
    rows = run_partitioned(parts, ["output=all"]).rows
    assert [(r["_time"], r["packets"], r["bytes"], r["dests"], r["relay_packets"],
             r["client_ports"], r["relays"]) for r in rows] == [
        (str(T0), "55", "50425", "2", "50", ["4000", "5000"], relay),
        (str(T0 + BUCKET), "1", "90", "1", "0", "5000", ""),
    ]


def test_port_3544_only_counting_misses_the_relay_tunnel(tstats_rows):
    only_3544 = [r for r in tstats_rows if r["All_Traffic.dest_port"] == "3544"]
    assert run_search(only_3544, []).rows == []
    assert [r["src"] for r in run_search(tstats_rows, []).rows] == ["10.1.0.10"]


def test_on_the_sample_port_3544_only_counting_misses_relay_tunnels_this_command_finds():
    import json
    import os
    from tools.readers import read_records
    sample = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")
    truth = json.load(open(os.path.join(sample, "enterprise_week.truth.json")))
    relay_tunnels = [t for t in truth["tunnels"] if t["kind"] == "relay"]
    assert len(relay_tunnels) >= 3
    records = read_records(os.path.join(sample, "enterprise_week.csv.gz"))

    def caught(rows):
        return [t["id"] for t in relay_tunnels
                if any(r["src"] == t["src"] and int(r["_time"]) <= t["end"]
                       and int(r["episode_end"]) >= t["start"] for r in rows)]

    only_3544 = [r for r in records if r.get("All_Traffic.dest_port") == "3544"]
    assert caught(run_search(only_3544, []).rows) == []
    found = caught(run_search(records, []).rows)
    heavy = [t["id"] for t in relay_tunnels if t["host_class"] == "heavy"]
    assert set(found) >= {t["id"] for t in relay_tunnels} - set(heavy)


@pytest.mark.parametrize("output", ["all", "spikes"])
def test_src_returns_one_hosts_rows_scored_against_every_host(tstats_rows, output, python):
    """`src=` (a dashboard's one-host panel) returns exactly that host's rows of the full result:
    every host still counts in the population prior and the fleet correction."""
    everyone = run_search(tstats_rows, ["output=" + output], python=python)
    for hosts in (["10.1.0.10"], ["10.1.0.10", "10.1.0.12"]):
        chosen = run_search(tstats_rows, ["output=" + output, 'src="%s"' % ",".join(hosts)],
                            python=python)
        assert chosen.exit_codes == [0, 0]
        expected = [row for row in everyone.rows if row["src"] in hosts]
        assert expected and chosen.rows == expected
