"""The scenario generator: the bundled sample is reproducible byte for byte, and the properties the
evaluation relies on are really in the rows (not only claimed by the ground truth)."""
import csv
import gzip
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from tools import scenario

SAMPLE = ROOT / "samples" / "enterprise_week.csv.gz"
SAMPLE_TRUTH = ROOT / "samples" / "enterprise_week.truth.json"
DAY = 86400


def read_rows(path):
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sample():
    return read_rows(SAMPLE), json.loads(SAMPLE_TRUTH.read_text())


def test_generator_reproduces_bundled_sample_byte_for_byte(tmp_path):
    out, truth = tmp_path / "week.csv.gz", tmp_path / "week.truth.json"
    assert scenario.main(["--preset", "sample", "--out", str(out), "--truth", str(truth)]) == 0
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(SAMPLE.read_bytes()), \
        "the sample's rows differ from what tools/scenario.py --preset sample generates"
    assert out.read_bytes() == SAMPLE.read_bytes()
    assert truth.read_text() == SAMPLE_TRUTH.read_text()


def test_cli_is_deterministic_and_seed_matters(tmp_path):
    def run(seed, name):
        out = tmp_path / name
        subprocess.run([sys.executable, str(ROOT / "tools" / "scenario.py"), "--seed", str(seed),
                        "--hosts", "40", "--days", "4", "--out", str(out)], check=True, capture_output=True)
        return out.read_bytes()
    first, again, other = run(3, "a.csv.gz"), run(3, "b.csv.gz"), run(4, "c.csv.gz")
    assert first == again
    assert first != other
    assert first[4:8] == b"\0\0\0\0", "gzip header must carry mtime 0"
    assert gzip.decompress(first).decode().splitlines()[0] == ",".join(scenario.HEADER)


def test_sample_is_small_and_has_every_host_population(sample):
    rows, truth = sample
    assert SAMPLE.stat().st_size <= 3 * 1024 * 1024
    classes = {h["class"] for h in truth["hosts"].values()}
    assert classes == {"idle", "off", "laptop", "server", "heavy", "new"}
    assert 200 <= len(truth["hosts"]) <= 500 and truth["parameters"]["days"] >= 8
    assert len(rows) == truth["rows"]
    apps = {r["All_Traffic.app"] for r in rows}
    assert {"teredo", "quic", "dns", "ntp", "unknown"} <= apps
    assert all(int(r["_time"]) % 600 == 0 for r in rows)
    keys = [(r["_time"], r["All_Traffic.src_ip"], r["All_Traffic.src_port"], r["All_Traffic.dest_ip"],
             r["All_Traffic.dest_port"], r["All_Traffic.app"]) for r in rows]
    assert len(set(keys)) == len(keys), "one row per bucket and 5-tuple, as tstats groups them"


def test_idle_requalification_is_20_to_30_flows_and_11_to_18_kB_per_hour(sample):
    rows, truth = sample
    per_host_bytes, per_host_buckets = defaultdict(int), defaultdict(set)
    storm = range(truth["storm"]["start"], truth["storm"]["end"] + 1, 600)
    bursts = {(b["src"], b["start"] + 600 * i) for b in truth["nat_bursts"] for i in range(b["buckets"])}
    counts = []
    for r in rows:
        src, t = r["All_Traffic.src_ip"], int(r["_time"])
        if truth["hosts"][src]["class"] == "idle" and r["All_Traffic.dest_port"] == "3544" \
                and t not in storm and (src, t) not in bursts:
            per_host_bytes[src] += int(r["bytes_out"])
            per_host_buckets[src].add(t)
            if r["All_Traffic.dest_ip"] == "65.55.158.80":
                counts.append(int(r["count"]))
    rates = [per_host_bytes[h] / (len(per_host_buckets[h]) / 6) for h in per_host_bytes]
    assert 11000 <= min(rates) and max(rates) <= 19000
    counts.sort()
    assert 19 <= counts[len(counts) // 20] and counts[-len(counts) // 20] <= 31


def test_storm_makes_every_idle_host_requalify_in_the_same_hour(sample):
    rows, truth = sample
    storm = set(range(truth["storm"]["start"], truth["storm"]["end"] + 1, 600))
    assert len(storm) == 6
    in_storm, before = defaultdict(int), defaultdict(int)
    for r in rows:
        if r["All_Traffic.dest_port"] != "3544":
            continue
        t = int(r["_time"])
        if t in storm:
            in_storm[r["All_Traffic.src_ip"]] += int(r["packets_out"])
        elif truth["storm"]["start"] - 86400 <= t < truth["storm"]["start"] - 86400 + 3600:
            before[r["All_Traffic.src_ip"]] += int(r["packets_out"])
    both = [h for h in in_storm if h in before]
    assert len(both) >= 50
    assert sum(in_storm[h] >= 3 * before[h] for h in both) >= 0.9 * len(both)


def test_client_ports_are_reused_days_later_by_ordinary_udp(sample):
    rows, truth = sample
    teredo_times = defaultdict(list)
    for r in rows:
        if r["All_Traffic.dest_port"] == "3544":
            teredo_times[(r["All_Traffic.src_ip"], int(r["All_Traffic.src_port"]))].append(int(r["_time"]))
    reused = 0
    for reuse in truth["port_reuse"]:
        key = (reuse["src"], reuse["port"])
        quic = [int(r["_time"]) for r in rows if r["All_Traffic.src_ip"] == reuse["src"]
                and int(r["All_Traffic.src_port"]) == reuse["port"] and r["All_Traffic.dest_port"] == "443"]
        assert quic, reuse
        last_teredo_before = max(t for t in teredo_times[key] if t < min(quic))
        assert min(quic) - last_teredo_before >= 2 * DAY
        assert not [t for t in teredo_times[key] if abs(t - min(quic)) <= 1200]
        reused += 1
    assert reused >= 10


def test_injected_tunnels_are_in_the_rows_and_port_3544_counting_misses_relays(sample):
    rows, truth = sample
    by_src = defaultdict(list)
    for r in rows:
        by_src[r["All_Traffic.src_ip"]].append(r)
    missed_relays, cold_relays = 0, 0
    for tunnel in truth["tunnels"]:
        buckets = range(tunnel["start"], tunnel["end"] + 1, 600)
        via_port, to_3544 = defaultdict(int), defaultdict(int)
        for r in by_src[tunnel["src"]]:
            t = int(r["_time"])
            if r["All_Traffic.dest_port"] == "3544":
                to_3544[t] += int(r["packets_out"])
            elif int(r["All_Traffic.src_port"]) == tunnel["client_port"]:
                via_port[t] += int(r["packets_out"])
                if tunnel["host_class"] != "heavy":
                    assert r["All_Traffic.app"] in ("unknown", "", "udp"), "tunnel flows carry no Teredo label"
        assert all(via_port[t] >= 0.8 * tunnel["extra_packets"] for t in buckets), tunnel["id"]
        assert all(to_3544[t] > 0 for t in buckets), "a Teredo client keeps talking to its server"
        if tunnel["kind"] == "relay" and max(to_3544[t] for t in buckets) < 50:
            missed_relays += 1
            first_teredo = min(int(r["_time"]) for r in by_src[tunnel["src"]] if r["All_Traffic.dest_port"] == "3544")
            if tunnel["host_class"] == "cold" and first_teredo == tunnel["start"]:
                cold_relays += 1
    assert missed_relays >= 3
    assert cold_relays >= 1
    assert any(t["repeat"] for t in truth["tunnels"])
