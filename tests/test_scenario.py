"""The scenario generator: the bundled sample is reproducible byte for byte, and the properties the
evaluation relies on are really in the rows (not only claimed by the ground truth)."""
import csv
import dataclasses
import gzip
import json
import math
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
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


# ------------------------------------------------------------------------------------------ options
# Each behavioural option changes what its docstring says it does, seen in the rows (a small scenario).

def family(**changes):
    """Rows as dicts and the truth of a small scenario with the given behaviour changes."""
    params = scenario.Params(seed=3, hosts=60, days=6, behaviour=scenario.Behaviour(**changes))
    rows, truth = scenario.generate(params)
    return [dict(zip(scenario.header(params.behaviour), row)) for row in rows], truth


def row_key(row):
    """A row's group (bucket, src, src_port, dest, dest_port, app), as tstats groups them."""
    return tuple(row[f] for f in scenario.HEADER[:6])


def flow_key(row):
    """A row's flow: its group without the bucket."""
    return tuple(row[f] for f in scenario.HEADER[1:6])


SERVERS = {s for pair in scenario.TEREDO_SERVERS for s in pair if s}


def heavy_session_destinations(rows, truth):
    """Per heavy host, per session: the set of destinations (not servers) in its session buckets."""
    sessions = defaultdict(list)
    for s in truth["heavy_sessions"]:
        sessions[s["src"]].append((s["start"], s["end"]))
    tunnel_hosts = {t["src"] for t in truth["tunnels"]}
    out = defaultdict(lambda: defaultdict(set))
    for r in rows:
        src = r["All_Traffic.src_ip"]
        if src not in sessions or src in tunnel_hosts or r["All_Traffic.dest_ip"] in SERVERS \
                or r["All_Traffic.dest_port"] in (443, 53, 123) or r["packets_out"] <= 4:
            continue
        for number, (start, end) in enumerate(sessions[src]):
            if start <= r["_time"] <= end:
                out[src][number].add(r["All_Traffic.dest_ip"])
    return out


def overlaps(per_session):
    sets = [s for s in per_session.values() if s]
    return sum(bool(a & b) for i, a in enumerate(sets) for b in sets[i + 1:])


def test_fresh_destinations_make_every_heavy_session_reach_new_peers_and_relays():
    fixed = heavy_session_destinations(*family(heavy_share=0.1))
    fresh = heavy_session_destinations(*family(heavy_share=0.1, heavy_destinations="fresh"))
    partly = heavy_session_destinations(*family(heavy_share=0.1, heavy_destinations="partly"))
    assert len(fresh) >= 3 and all(len(s) >= 3 for s in fresh.values())
    assert all(overlaps(s) == 0 for s in fresh.values()), "fresh: sessions' destination sets are disjoint"
    assert all(overlaps(s) > 0 for s in fixed.values()), "fixed: every host's sessions share destinations"
    assert all(overlaps(s) > 0 for s in partly.values())
    new_share = [len(b - a) / len(b) for s in partly.values() for a, b in zip(list(s.values()), list(s.values())[1:])]
    assert 0.2 < sum(new_share) / len(new_share) < 0.95, "partly: each session adds new destinations"


def relay_hosts(rows):
    """Relay-looking destinations (relay address ranges, high ports) -> the hosts that sent to them."""
    octets = {str(o) for o in scenario.RELAY_OCTETS}
    out = defaultdict(set)
    for r in rows:
        if r["All_Traffic.dest_ip"].split(".")[0] in octets and r["All_Traffic.dest_port"] > 1024 \
                and r["All_Traffic.dest_ip"] not in SERVERS:
            out[r["All_Traffic.dest_ip"]].add(r["All_Traffic.src_ip"])
    return out


def test_shared_relay_pool_puts_heavy_users_and_tunnels_on_the_same_relays():
    private = relay_hosts(family(heavy_share=0.2, heavy_destinations="fresh")[0])
    rows, truth = family(heavy_share=0.2, heavy_destinations="fresh", relay_pool="shared")
    shared = relay_hosts(rows)
    assert max(len(h) for h in private.values()) == 1, "private relays: one host each"
    assert sum(len(h) >= 2 for h in shared.values()) >= 10
    pool = {ip for ip, _ in scenario._relay_pool(scenario.Params(seed=3))}
    assert set(shared) <= pool
    tunnel_hosts = {t["src"] for t in truth["tunnels"] if t["kind"] == "relay"}
    heavy = {h for h, v in truth["hosts"].items() if v["class"] == "heavy"}
    assert any(hosts & tunnel_hosts and hosts & heavy - tunnel_hosts for hosts in shared.values()), \
        "an injected tunnel uses a relay that a heavy user's session uses too"


def session_starts(truth):
    out = defaultdict(list)
    for s in truth["heavy_sessions"]:
        out[s["src"]].append((s["start"] - truth["start"]) % DAY // 600)
    return out


def test_habitual_heavy_users_keep_their_hours_and_their_own_level():
    _, random_truth = family(heavy_share=0.1)
    rows, truth = family(heavy_share=0.1, heavy_rhythm="habitual")
    habitual = session_starts(truth)
    assert len(habitual) >= 5 and all(max(v) - min(v) <= 8 for v in habitual.values()), "+-40 minutes"
    assert any(max(v) - min(v) > 24 for v in session_starts(random_truth).values())
    days = truth["parameters"]["days"]
    assert any(len(v) < days for v in habitual.values()), "some days skipped"
    assert all(len(v) >= days // 3 for v in habitual.values()), "most days"
    levels = {}
    sessions = {(s["src"], t) for s in truth["heavy_sessions"] for t in range(s["start"], s["end"] + 1, 600)}
    tunnel = {(t["src"], b) for t in truth["tunnels"] for b in range(t["start"], t["end"] + 1, 600)}
    per_bucket = defaultdict(int)
    for r in rows:
        key = (r["All_Traffic.src_ip"], r["_time"])
        if key in sessions and key not in tunnel and r["All_Traffic.dest_port"] not in (443, 53, 123, 3544):
            per_bucket[key] += r["packets_out"]
    for (src, _), packets in per_bucket.items():
        levels.setdefault(src, []).append(packets)
    medians = sorted(sorted(v)[len(v) // 2] for v in levels.values())
    assert medians[-1] >= 3 * medians[0], "each host has a level of its own"


def test_mixed_rhythm_gives_each_heavy_host_one_of_the_two_rhythms_about_half_each():
    def sessions(rhythm):
        _, truth = family(heavy_share=0.3, heavy_rhythm=rhythm)
        out = defaultdict(list)
        for s in truth["heavy_sessions"]:
            out[s["src"]].append((s["start"], s["end"]))
        return out
    random_, habitual, mixed = sessions("random"), sessions("habitual"), sessions("mixed")
    assert set(mixed) == set(random_) == set(habitual) and len(mixed) == 18
    assert all(random_[h] != habitual[h] for h in mixed)
    as_habitual = {h for h in mixed if mixed[h] == habitual[h]}
    as_random = {h for h in mixed if mixed[h] == random_[h]}
    assert as_habitual | as_random == set(mixed), "each host draws exactly what one pure rhythm draws"
    assert 5 <= len(as_habitual) <= 13, "about half each"
    assert scenario.FAMILIES["hard"].heavy_rhythm == "mixed"
    assert scenario.FAMILIES["habitual-heavy"].heavy_rhythm == "habitual"


def bubble_flows(rows, truth):
    """Flows of <= 4 packets to peer addresses from idle hosts (which have no sessions or tunnels)."""
    octets = {str(o) for o in scenario.PEER_OCTETS}
    tunnel_hosts = {t["src"] for t in truth["tunnels"]}
    return [r for r in rows if truth["hosts"][r["All_Traffic.src_ip"]]["class"] == "idle"
            and r["All_Traffic.src_ip"] not in tunnel_hosts and r["All_Traffic.dest_ip"].split(".")[0] in octets
            and r["packets_out"] <= 4 and r["All_Traffic.dest_port"] not in (443, 53, 123)]


def test_anytime_heavy_users_start_at_any_hour_and_some_days_more_than_once():
    def starts(rhythm):
        _, truth = family(heavy_share=0.3, heavy_rhythm=rhythm)
        out = defaultdict(list)
        for s in truth["heavy_sessions"]:
            assert s["end"] >= s["start"]
            out[s["src"]].append(((s["start"] - truth["start"]) // DAY, (s["start"] - truth["start"]) % DAY // 600))
        return out
    two_slots = range(66, 133)  # both two-slot rhythms start 11:00-22:00
    random_, anytime = starts("random"), starts("anytime")
    assert set(anytime) == set(random_) and len(anytime) == 18
    assert all(slot in two_slots for v in random_.values() for _, slot in v)
    slots = [slot for v in anytime.values() for _, slot in v]
    outside = [slot for slot in slots if slot not in two_slots]
    assert len(outside) >= len(slots) // 4, "about half of a day lies outside 11:00-22:00"
    assert {slot // 18 for slot in slots} == set(range(8)), "every 3 hours of the day"
    assert any(len(v) > len({day for day, _ in v}) for v in anytime.values()), "more than one session a day"
    for v in anytime.values():
        assert v == sorted(v) and len(set(v)) == len(v), "sessions in order, merged where they meet"


def test_bubbles_appear_on_idle_hosts_and_scale_with_their_rate():
    none = bubble_flows(*family())
    some = bubble_flows(*family(bubbles_per_hour=0.5))
    many = bubble_flows(*family(bubbles_per_hour=2.0))
    assert none == []
    assert len(some) >= 50 and 2.5 <= len(many) / len(some) <= 6
    assert all(r["bytes_out"] <= 64 * r["packets_out"] for r in many), "bubbles are small packets"


def first_bucket_server_packets(rows, truth):
    """Per idle host, packets to its server in the first bucket of each online stretch and in the others."""
    by_host = defaultdict(dict)
    for r in rows:
        if r["All_Traffic.dest_port"] == 3544 and truth["hosts"][r["All_Traffic.src_ip"]]["class"] == "idle":
            times = by_host[r["All_Traffic.src_ip"]]
            times[r["_time"]] = times.get(r["_time"], 0) + r["packets_out"]
    first, other = [], []
    for times in by_host.values():
        for t, packets in times.items():
            (other if t - 600 in times else first).append(packets)
    return sorted(first)[len(first) // 2], sorted(other)[len(other) // 2]


def test_startup_packets_raise_the_first_bucket_of_each_client_start():
    first, other = first_bucket_server_packets(*family())
    assert first <= other + 5
    first, other = first_bucket_server_packets(*family(startup_packets=60))
    assert first >= other + 30


def test_nat_burst_rate_and_size():
    _, usual = family()
    rows, truth = family(nat_burst_rate=0.5, nat_burst_factor=(7, 10))
    assert len(truth["nat_bursts"]) >= 5 * max(1, len(usual["nat_bursts"]))
    assert {b["factor"] for b in truth["nat_bursts"]} <= set(range(7, 11))
    assert {b["factor"] for b in usual["nat_bursts"]} <= set(range(3, 7))
    to_server = defaultdict(int)
    for r in rows:
        if r["All_Traffic.dest_port"] == 3544:
            to_server[(r["All_Traffic.src_ip"], r["_time"])] += r["packets_out"]
    storm = range(truth["storm"]["start_index"], truth["storm"]["end_index"] + 1)
    burst = [to_server[(b["src"], b["start"])] for b in truth["nat_bursts"]
             if b["start_index"] not in storm and (b["src"], b["start"]) in to_server]
    assert len(burst) >= 5 and sorted(burst)[len(burst) // 2] >= 6 * 20


def test_label_share_labels_that_share_of_teredo_flows_tunnel_data_included():
    def labelled(share):
        rows, truth = family(label_share=share)
        ports = {(r["All_Traffic.src_ip"], r["All_Traffic.src_port"]) for r in rows if r["All_Traffic.dest_port"] == 3544}
        teredo = [r for r in rows if (r["All_Traffic.src_ip"], r["All_Traffic.src_port"]) in ports
                  and r["All_Traffic.dest_port"] not in (443, 53, 123)]
        data = [r for r in teredo if r["All_Traffic.dest_port"] != 3544]
        return (sum(r["All_Traffic.app"] == "teredo" for r in teredo) / len(teredo),
                sum(r["All_Traffic.app"] == "teredo" for r in data) / max(1, len(data)), len(data))
    assert labelled(0.0)[:2] == (0.0, 0.0)
    whole, data, n = labelled(1.0)
    assert whole == 1.0 and data == 1.0 and n > 100
    half, data, _ = labelled(0.5)
    assert 0.4 < half < 0.6 and 0.4 < data < 0.6


def test_heavy_share_sets_the_share_of_heavy_users():
    for share in (0.03, 0.15):
        _, truth = family(heavy_share=share)
        heavy = sum(h["class"] == "heavy" for h in truth["hosts"].values())
        assert heavy == round(share * 60)


def test_port_reuse_share_times_and_gap():
    _, usual = family()
    rows, truth = family(port_reuse_share=1.0, port_reuse_times=3, port_reuse_gap=2)
    teredo_hosts = {h for h, v in truth["hosts"].items() if v["teredo"]}
    per_host = defaultdict(int)
    for reuse in truth["port_reuse"]:
        per_host[reuse["src"]] += 1
    assert len(truth["port_reuse"]) >= 2 * len(usual["port_reuse"])
    assert max(per_host.values()) == 3 and len(per_host) >= 0.6 * len(teredo_hosts)
    assert min(r["start_index"] - r["retired_index"] for r in usual["port_reuse"]) >= 2 * 144
    soon = [r for r in truth["port_reuse"] if r["start_index"] - r["retired_index"] < 144]
    assert soon, "a retired port reused within a day"
    for reuse in soon:
        quic = [r for r in rows if r["All_Traffic.src_ip"] == reuse["src"] and r["All_Traffic.src_port"] == reuse["port"]
                and r["All_Traffic.dest_port"] == 443]
        assert quic


def test_address_churn_moves_hosts_to_new_addresses_at_day_starts():
    _, usual = family()
    rows, truth = family(address_churn=0.3)
    assert not any("address_of" in h for h in usual["hosts"].values())
    moved = {ip: h for ip, h in truth["hosts"].items() if "address_of" in h}
    first_day = truth["start"] // DAY
    chances = sum(5 - max(0, h["join"] // DAY - first_day) for h in usual["hosts"].values()
                  if h["class"] != "server")  # day starts 1-5 after each host joined
    assert 0.15 * chances <= len(moved) <= 0.35 * chances  # a few fall in tunnels and sessions
    sent = defaultdict(list)
    for row in rows:
        sent[row["All_Traffic.src_ip"]].append(int(row["_time"]))
    moves = defaultdict(list)
    for ip, h in moved.items():
        original = truth["hosts"][h["address_of"]]
        assert ip.startswith("10.%d." % scenario.CHURN_NET) and "address_of" not in original
        assert h["class"] == original["class"] != "server" and h["join"] % DAY == 0
        assert min(sent[ip], default=h["join"]) >= h["join"]
        moves[h["address_of"]].append(h["join"])
    assert sum(bool(sent[ip]) for ip in moved) >= 0.5 * len(moved)  # off hosts send nothing
    for original, joins in moves.items():
        assert max(sent[original], default=0) < min(joins), "the old address falls silent"
    # what happens on a host is named by the address it had then, and no move falls inside it
    for item in truth["tunnels"] + truth["heavy_sessions"]:
        host = truth["hosts"][item["src"]]
        assert host["join"] <= item["start"] and any(item["start"] <= t <= item["end"] for t in sent[item["src"]])
    assert any("address_of" in truth["hosts"][s["src"]] for s in truth["heavy_sessions"])


def test_default_behaviour_is_not_written_into_the_truth_and_families_are():
    _, truth = family()
    assert "behaviour" not in truth["parameters"]
    _, truth = family(heavy_destinations="fresh")
    assert truth["parameters"]["behaviour"]["heavy_destinations"] == "fresh"
    assert set(scenario.FAMILIES) >= {"default", "fresh-destinations", "shared-relays", "bubbles", "nat-bursts",
                                      "heavy-share", "port-reuse", "hard"}
    assert scenario.FAMILIES["default"] == scenario.Behaviour()


def test_heavy_tunnels_are_sized_on_the_heavy_hosts_routine_and_leave_the_other_tunnels_alone():
    def run(**extra):
        params = scenario.Params(seed=3, hosts=60, days=6, behaviour=scenario.Behaviour(heavy_share=0.1), **extra)
        rows, truth = scenario.generate(params)
        return [dict(zip(scenario.HEADER, row)) for row in rows], truth
    _, plain = run()
    rows, truth = run(heavy_tunnels=4, heavy_tunnel_factor=(5.0, 20.0))
    assert "heavy_tunnels" not in plain["parameters"] and truth["parameters"]["heavy_tunnels"] == 4
    assert truth["tunnels"][:len(plain["tunnels"])] == plain["tunnels"]
    extra = truth["tunnels"][len(plain["tunnels"]):]
    assert 3 <= len(extra) <= 4 and all(t["host_kind"] == "heavy" for t in extra)
    for t in extra:  # two days from any other tunnel of the host
        assert all(abs(o["start_index"] - t["start_index"]) >= scenario.HEAVY_TUNNEL_SPACING - o["buckets"]
                   for o in truth["tunnels"] if o["src"] == t["src"] and o is not t)
    # the default rhythm's session level is 1,500 packets per bucket: 5-20x that
    assert all(5 * 1500 <= t["extra_packets"] <= 20 * 1500 for t in extra)
    for t in extra:  # in the rows: the host's client port carries at least the tunnel's volume
        sent = sum(r["packets_out"] for r in rows if r["All_Traffic.src_ip"] == t["src"]
                   and r["_time"] == t["start"] and r["All_Traffic.src_port"] == t["client_port"])
        assert sent >= 0.8 * t["extra_packets"]


def heavy_session_packets(rows, truth):
    """Per heavy host (without injected tunnels), per session: its packets per bucket to
    destinations other than the Teredo servers, in time order."""
    sessions = defaultdict(list)
    for s in truth["heavy_sessions"]:
        sessions[s["src"]].append((s["start"], s["end"]))
    tunnel_hosts = {t["src"] for t in truth["tunnels"]}
    out = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in rows:
        src = r["All_Traffic.src_ip"]
        if src not in sessions or src in tunnel_hosts or r["All_Traffic.dest_ip"] in SERVERS \
                or r["All_Traffic.dest_port"] in (443, 53, 123):
            continue
        for number, (start, end) in enumerate(sessions[src]):
            if start <= r["_time"] <= end:
                out[src][number][r["_time"]] += r["packets_out"]
    return {src: [[per[t] for t in sorted(per)] for per in by.values() if len(per) >= 6]
            for src, by in out.items()}


def test_phased_session_volume_moves_in_phases_between_and_within_sessions():
    def measure(volume):
        per_host = heavy_session_packets(*family(heavy_share=0.3, session_volume=volume))
        logs = [[math.log(p) for p in session] for sessions in per_host.values() for session in sessions]
        pairs = [(a, b) for session in logs for a, b in zip(session, session[1:])]
        mean_a = statistics.fmean(a for a, _ in pairs)
        mean_b = statistics.fmean(b for _, b in pairs)
        lag1 = (sum((a - mean_a) * (b - mean_b) for a, b in pairs)
                / math.sqrt(sum((a - mean_a) ** 2 for a, _ in pairs) * sum((b - mean_b) ** 2 for _, b in pairs)))
        # how far each host's session medians are spread, on the log scale
        medians = [[statistics.median(session) for session in sessions]
                   for sessions in ([[math.log(p) for p in s] for s in v] for v in per_host.values())
                   if len(sessions) >= 3]
        between = statistics.median(statistics.pstdev(m) for m in medians)
        top = max(p for sessions in per_host.values() for session in sessions for p in session)
        return lag1, between, top
    steady, phased = measure("steady"), measure("phased")
    assert steady[0] < 0.2 < 0.5 < phased[0], "buckets follow each other in a phase"
    assert phased[1] > 1.5 * steady[1], "each session at its own level"
    assert steady[2] <= scenario.STEADY_CAP + 100 < phased[2] <= scenario.PHASE_CAP + 100
    assert scenario.FAMILIES["phased-heavy"].session_volume == "phased"
    assert scenario.FAMILIES["hard-phased"] == dataclasses.replace(scenario.FAMILIES["hard"], session_volume="phased")
    assert scenario.FAMILIES["hard"].session_volume == "steady"


def test_heavy_week_keeps_each_heavy_user_to_days_of_its_own():
    def two_weeks(**changes):
        params = scenario.Params(seed=3, hosts=60, days=14,
                                 behaviour=scenario.Behaviour(heavy_share=0.15, **changes))
        return scenario.generate(params)[1]
    daily, weekly = two_weeks(), two_weeks(heavy_week="weekly")

    def sessions(truth, ip):
        return [(s["start"], ((s["start"] - truth["start"]) // DAY) % 7)
                for s in truth["heavy_sessions"] if s["src"] == ip]
    heavy = [ip for ip, h in weekly["hosts"].items() if h["class"] == "heavy"]
    assert len(heavy) >= 5
    weekend_users = 0
    for ip in heavy:
        ours, theirs = sessions(weekly, ip), sessions(daily, ip)
        days = {weekday for _, weekday in ours}
        assert days == {5, 6} or (days <= set(range(5)) and len(days) <= 4), (ip, days)
        weekend_users += days == {5, 6}
        # the rhythm's own sessions, those on the host's days kept, the others dropped
        assert ours == [s for s in theirs if s[1] in days]
    assert 0 < weekend_users < len(heavy)


def test_nat_burst_buckets_make_bursts_that_last_hours_at_the_server_only():
    rows, truth = family(nat_burst_rate=0.5, nat_burst_buckets=(6, 12))
    _, usual = family(nat_burst_rate=0.5)
    assert {b["buckets"] for b in usual["nat_bursts"]} <= {1, 2, 3}
    long = truth["nat_bursts"]
    assert len(long) >= 5 and {b["buckets"] for b in long} <= set(range(6, 13))
    to_server = defaultdict(int)
    for r in rows:
        key = (r["All_Traffic.src_ip"], r["_time"])
        if r["All_Traffic.dest_port"] == 3544:
            to_server[key] += r["packets_out"]
    storm = range(truth["storm"]["start"], truth["storm"]["end"] + DAY // 144, DAY // 144)
    # every bucket of a burst, its last included, carries several times an idle client's 20-30 packets
    inside = [to_server[(b["src"], b["start"] + i * 600)] for b in long for i in range(b["buckets"])
              if (b["src"], b["start"] + i * 600) in to_server and b["start"] + i * 600 not in storm]
    last = [to_server[(b["src"], b["start"] + (b["buckets"] - 1) * 600)] for b in long
            if (b["src"], b["start"] + (b["buckets"] - 1) * 600) in to_server]
    assert len(inside) >= 30 and sorted(inside)[len(inside) // 10] >= 3 * 20 - 5
    assert last and statistics.median(last) >= 3 * 20
    assert scenario.FAMILIES["failing-clients"].nat_burst_buckets == (6, 72)


def test_shared_machines_add_other_users_sessions_and_sum_their_packets_where_they_overlap():
    changes = dict(heavy_share=0.15, heavy_rhythm="anytime")
    params = scenario.Params(seed=3, hosts=60, days=6, behaviour=scenario.Behaviour(shared_machines=1.0, **changes))
    hosts = [h for h in scenario.plan_hosts(params) if h.cls == "heavy"]
    rows, truth = family(shared_machines=1.0, **changes)
    _, usual = family(**changes)
    assert len(hosts) >= 5
    for host in hosts:
        assert truth["hosts"][host.ip]["users"] == host.users and 2 <= host.users <= 4
        ours = [(s["start"], s["end"]) for s in truth["heavy_sessions"] if s["src"] == host.ip]
        theirs = [(s["start"], s["end"]) for s in usual["heavy_sessions"] if s["src"] == host.ip]
        # the first user's sessions are all there, inside the merged ones, and others beside them
        assert all(any(a <= start and end <= b for a, b in ours) for start, end in theirs)
        assert sum(b - a for a, b in ours) > sum(b - a for a, b in theirs)
    assert not any("users" in h for h in usual["hosts"].values())
    # in the rows: where two users' sessions overlap, the host sends about twice the packets
    relay = defaultdict(int)
    for r in rows:
        if r["All_Traffic.dest_ip"] not in SERVERS and r["All_Traffic.dest_port"] not in (443, 53, 123):
            relay[(r["All_Traffic.src_ip"], r["_time"])] += r["packets_out"]
    tunnel_buckets = {(t["src"], b) for t in truth["tunnels"] for b in range(t["start"], t["end"] + 1, 600)}
    by_users = defaultdict(list)
    for host in hosts:
        for b, users in enumerate(host.users_on):
            key = (host.ip, params.start + b * 600)
            if users and key in relay and key not in tunnel_buckets:
                by_users[min(users, 2)].append(relay[key])
    assert len(by_users[1]) >= 50 and len(by_users[2]) >= 10
    assert 1.5 < statistics.median(by_users[2]) / statistics.median(by_users[1]) < 3.0
    assert scenario.FAMILIES["shared-machines"].shared_machines == 0.3


def test_heavy_absence_drops_a_stretch_of_days_and_nothing_else():
    def two_weeks(**changes):
        params = scenario.Params(seed=3, hosts=60, days=14,
                                 behaviour=scenario.Behaviour(heavy_share=0.15, **changes))
        return scenario.generate(params)[1]
    usual, away = two_weeks(), two_weeks(heavy_absence=1.0)
    heavy = [ip for ip, h in away["hosts"].items() if h["class"] == "heavy"]
    assert len(heavy) >= 5 and not any("absent" in h for h in usual["hosts"].values())
    dropped = 0
    for ip in heavy:
        first, end = away["hosts"][ip]["absent"]
        assert first % DAY == away["start"] % DAY
        assert 3 * DAY <= end - first <= 16 * DAY or end == away["start"] + 14 * DAY
        ours = [s for s in away["heavy_sessions"] if s["src"] == ip]
        theirs = [s for s in usual["heavy_sessions"] if s["src"] == ip]
        assert ours == [s for s in theirs if not first <= s["start"] < end]
        dropped += len(theirs) - len(ours)
    assert dropped >= 10


def test_heavy_onset_starts_heavy_use_on_a_day_of_the_scenario():
    _, usual = family(heavy_share=0.15)
    rows, truth = family(heavy_share=0.15, heavy_onset=1.0)
    assert not any("heavy_from" in h for h in usual["hosts"].values())
    heavy = {ip: h for ip, h in truth["hosts"].items() if h["class"] == "heavy"}
    assert len(heavy) >= 5 and all("heavy_from" in h for h in heavy.values())
    params = truth["parameters"]
    for ip, h in heavy.items():
        day = (h["heavy_from"] - truth["start"]) // DAY
        assert h["heavy_from"] % DAY == truth["start"] % DAY
        assert params["warmup_days"] <= day <= params["days"] - 2
        sessions = [s for s in truth["heavy_sessions"] if s["src"] == ip]
        assert all(s["start"] >= h["heavy_from"] for s in sessions)
        # before it, an idle client: its client port reaches only its Teredo server, but in tunnels
        tunnels = [t for t in truth["tunnels"] if t["src"] == ip]
        before = [r for r in rows if r["All_Traffic.src_ip"] == ip and int(r["_time"]) < h["heavy_from"]
                  and r["All_Traffic.dest_ip"] not in SERVERS
                  and int(r["All_Traffic.dest_port"]) not in (53, 123, 443)  # ordinary UDP
                  and not any(t["start"] <= int(r["_time"]) <= t["end"] for t in tunnels)]
        assert not before, (ip, before[:3])
    # the same hosts and the same heavy use from the onset on
    assert set(heavy) == {ip for ip, h in usual["hosts"].items() if h["class"] == "heavy"}
    for ip, h in heavy.items():
        ours = [s for s in truth["heavy_sessions"] if s["src"] == ip]
        theirs = [s for s in usual["heavy_sessions"] if s["src"] == ip and s["start"] >= h["heavy_from"]]
        assert ours == theirs


def test_flow_sampling_thins_rows_keeps_volume_on_average_and_scales_as_told():
    plain, truth = family()
    scaled, scaled_truth = family(flow_sampling=20)
    raw, _ = family(flow_sampling=20, sampling_scaled=False)
    assert scaled_truth["tunnels"] == truth["tunnels"]  # the same scenario underneath
    before = {row_key(r): r for r in plain}
    assert len(scaled) < 0.8 * len(plain)  # rows of a few packets (DNS, NTP, bubbles) mostly go
    assert [row_key(r) for r in scaled] == [row_key(r) for r in raw]  # the same packets seen
    packets = {"plain": 0, "scaled": 0}
    for row, unscaled in zip(scaled, raw):
        original = before[row_key(row)]  # sampling adds no row
        seen = int(unscaled["packets_out"])
        assert 1 <= seen <= int(original["packets_out"])
        assert int(row["packets_out"]) == 20 * seen
        assert 1 <= int(row["count"]) == int(unscaled["count"]) <= min(seen, int(original["count"]))
        per_packet = int(original["bytes_out"]) / int(original["packets_out"])
        assert abs(int(unscaled["bytes_out"]) - per_packet * seen) <= 0.5
        assert int(row["bytes_out"]) == 20 * int(unscaled["bytes_out"])
        packets["scaled"] += int(row["packets_out"])
    packets["plain"] = sum(int(r["packets_out"]) for r in plain)
    assert abs(packets["scaled"] / packets["plain"] - 1) < 0.02  # millions of packets: within 2%
    # large rows keep about their volume, and the chance a row survives grows with its packets
    big = [(int(before[row_key(r)]["packets_out"]), int(r["packets_out"])) for r in scaled
           if int(before[row_key(r)]["packets_out"]) >= 2000]
    assert big and all(0.7 < after / size < 1.3 for size, after in big)
    kept = {row_key(r) for r in scaled}
    single = [k for k, r in before.items() if int(r["packets_out"]) == 1]
    assert 0.02 < sum(k in kept for k in single) / len(single) < 0.08  # 1 in 20


def test_duplicate_share_doubles_a_window_of_the_drawn_hosts_rows():
    plain, truth = family()
    doubled, doubled_truth = family(duplicate_share=0.5)
    assert doubled_truth["tunnels"] == truth["tunnels"]
    before, after = ({row_key(r): r for r in rows} for rows in (plain, doubled))
    assert before.keys() == after.keys()  # no row added or lost
    times = defaultdict(list)
    for key, row in after.items():
        counts = [int(row[f]) for f in ("bytes_out", "packets_out", "count")]
        original = [int(before[key][f]) for f in ("bytes_out", "packets_out", "count")]
        assert counts in (original, [2 * v for v in original])
        if counts != original:
            times[row["All_Traffic.src_ip"]].append(int(row["_time"]))
    senders = {r["All_Traffic.src_ip"] for r in plain}
    assert 0.3 * len(senders) <= len(times) <= 0.7 * len(senders)
    for ip, doubled_at in times.items():  # one window each, within 1 hour to 3 days
        assert max(doubled_at) - min(doubled_at) < scenario.DUPLICATE_BUCKETS[1] * scenario.SPAN
        inside = [int(r["_time"]) for k, r in before.items() if r["All_Traffic.src_ip"] == ip
                  and min(doubled_at) <= int(r["_time"]) <= max(doubled_at)]
        assert len(inside) == len(doubled_at)  # every row of the window doubled


def test_flow_timeout_joins_a_flows_buckets_into_records_at_its_start():
    plain, truth = family()
    fields = ("bytes_out", "packets_out")

    def totals(rows):
        sums = defaultdict(lambda: [0, 0])
        for row in rows:
            key = flow_key(row)
            for i, f in enumerate(fields):
                sums[key][i] += int(row[f])
        return sums
    buckets = defaultdict(list)
    for row in plain:
        buckets[flow_key(row)].append(int(row["_time"]) // scenario.SPAN)

    def starts(times, timeout):  # where each record of a flow starts
        out, start, previous = [], None, None
        for b in sorted(times):
            if previous is None or b != previous + 1 or (timeout and b - start >= timeout):
                start = b
                out.append(b)
            previous = b
        return out
    for timeout in (3, 0):
        joined, joined_truth = family(flow_timeout=timeout)
        assert joined_truth["tunnels"] == truth["tunnels"]
        assert totals(joined) == totals(plain)  # every packet and byte, once
        assert all(row["count"] == 1 for row in joined)
        got = defaultdict(list)
        for row in joined:
            got[flow_key(row)].append(int(row["_time"]) // scenario.SPAN)
        assert {k: sorted(v) for k, v in got.items()} == {k: starts(v, timeout) for k, v in buckets.items()}
        assert len(joined) < len(plain)
    # without a timeout a client's flow to its server is one record per stretch it is online
    server_flows = [v for k, v in buckets.items() if k[3] == scenario.TEREDO_PORT]
    assert server_flows and max(len(v) / len(starts(v, 0)) for v in server_flows) > 6


def test_record_durations_say_how_long_each_record_lasted():
    plain, _ = family()
    assert "duration" not in plain[0]
    for timeout in (1, 0):
        rows, _ = family(flow_timeout=timeout, record_durations=True)
        unmarked, _ = family(flow_timeout=timeout)
        assert [{k: v for k, v in row.items() if k != "duration"} for row in rows] == unmarked
        lasted = defaultdict(list)  # a flow's buckets, to check each record's length against
        for row in family(flow_timeout=1)[0]:
            lasted[flow_key(row)].append(int(row["_time"]))
        for row in rows:
            start, seconds = int(row["_time"]), row["duration"]
            buckets = (seconds + scenario.LAST_PACKET_GAP) // scenario.SPAN
            assert seconds == buckets * scenario.SPAN - scenario.LAST_PACKET_GAP and buckets >= 1
            # the record covers a run of buckets in which its flow had traffic
            times = set(lasted[flow_key(row)])
            assert all(start + i * scenario.SPAN in times for i in range(buckets))
        longest = max(row["duration"] for row in rows)
        assert (longest > scenario.SPAN) == (timeout == 0)


def test_record_time_end_stamps_each_record_at_the_bucket_of_its_last_packet():
    start_rows, start_truth = family(flow_timeout=0, record_durations=True)
    end_rows, end_truth = family(flow_timeout=0, record_durations=True, record_time="end")
    assert end_truth["tunnels"] == start_truth["tunnels"]

    def moved(row):
        buckets = (row["duration"] + scenario.LAST_PACKET_GAP) // scenario.SPAN
        return dict(row, _time=row["_time"] + (buckets - 1) * scenario.SPAN)

    def ordered(rows):
        return sorted(rows, key=lambda r: tuple(str(r[f]) for f in scenario.header(scenario.FAMILIES["long-flows"])))
    assert ordered(end_rows) == ordered(moved(r) for r in start_rows)
    assert any(r["duration"] > scenario.SPAN for r in start_rows)
    # the site tells the command; records without a duration, or stamped at their start, need nothing
    assert scenario.command_args(scenario.FAMILIES["end-stamped-flows"]) == ["record_time=end"]
    assert scenario.command_args(scenario.FAMILIES["long-flows"]) == []
    assert scenario.command_args(scenario.Behaviour(record_time="end")) == []


def test_swarm_contacts_open_new_peers_with_bubbles_in_sessions_and_between_them():
    changes = dict(heavy_share=0.15)
    rows, truth = family(swarm_contacts=100, swarm_idle_contacts=10, **changes)
    usual_rows, usual = family(**changes)
    swarm_hosts = {ip for ip, h in truth["hosts"].items() if h.get("swarm")}
    heavy = {ip for ip, h in truth["hosts"].items() if h["class"] == "heavy"}
    assert 3 <= len(swarm_hosts) < len(heavy), "peer-to-peer users swarm, gamers through relays do not"
    assert not any("swarm" in h for h in usual["hosts"].values())
    # every other host's rows are what they were without swarms
    assert sorted(tuple(r.values()) for r in rows if r["All_Traffic.src_ip"] not in swarm_hosts) == \
        sorted(tuple(r.values()) for r in usual_rows if r["All_Traffic.src_ip"] not in swarm_hosts)
    in_session = {(s["src"], t) for s in truth["heavy_sessions"] for t in range(s["start"], s["end"] + 1, 600)}
    tunnel_buckets = {(t["src"], b) for t in truth["tunnels"] for b in range(t["start"], t["end"] + 1, 600)}

    def per_bucket(rows):
        """(src, bucket) -> [destinations other than servers, relay packets, packets to 3544]."""
        out = defaultdict(lambda: [set(), 0, 0])
        for r in rows:
            key = (r["All_Traffic.src_ip"], r["_time"])
            if r["All_Traffic.src_ip"] not in swarm_hosts or key in tunnel_buckets \
                    or r["All_Traffic.dest_port"] in (443, 53, 123):
                continue
            if r["All_Traffic.dest_port"] == 3544:
                out[key][2] += r["packets_out"]
            else:
                out[key][0].add((r["All_Traffic.dest_ip"], r["All_Traffic.dest_port"]))
                out[key][1] += r["packets_out"]
        return out
    ours, theirs = per_bucket(rows), per_bucket(usual_rows)
    session_keys = [k for k in theirs if k in in_session]
    idle_keys = [k for k in theirs if k not in in_session]
    assert len(session_keys) >= 50 and len(idle_keys) >= 200
    # in sessions: about 100 more destinations a bucket, each opened through a server on 3544
    more_dests = statistics.median(len(ours[k][0]) - len(theirs[k][0]) for k in session_keys)
    more_signalling = statistics.median(ours[k][2] - theirs[k][2] for k in session_keys)
    assert 60 <= more_dests <= 110 and 70 <= more_signalling <= 140
    # between sessions: relay packets where an idle client sends none
    assert all(theirs[k][1] == 0 for k in idle_keys)
    assert statistics.median(ours[k][1] for k in idle_keys) >= 20
    # indirect bubbles go to the peers' servers, not only the host's own
    servers = {r["All_Traffic.dest_ip"] for r in rows
               if r["All_Traffic.src_ip"] in swarm_hosts and r["All_Traffic.dest_port"] == 3544}
    assert len(servers) >= 3
    assert scenario.FAMILIES["swarms"].swarm_contacts == 200
    assert scenario.FAMILIES["hard-swarms"].heavy_destinations == "fresh"


def teredo_runs(rows, truth, hosts):
    """Per host of `hosts`: its runs of consecutive buckets with a flow to a Teredo server, each as
    (first bucket time, last bucket time, client ports seen)."""
    buckets = defaultdict(lambda: defaultdict(set))
    for r in rows:
        if r["All_Traffic.src_ip"] in hosts and r["All_Traffic.dest_port"] == 3544:
            buckets[r["All_Traffic.src_ip"]][r["_time"]].add(r["All_Traffic.src_port"])
    runs = defaultdict(list)
    for ip, times in buckets.items():
        for t in sorted(times):
            if runs[ip] and runs[ip][-1][1] == t - 600:
                runs[ip][-1][1] = t
                runs[ip][-1][2] |= times[t]
            else:
                runs[ip].append([t, t, set(times[t])])
    return runs


def test_dormant_clients_talk_to_their_server_only_around_a_use_from_a_new_port_each_time():
    rows, truth = family(dormant_share=1.0, wakes_per_hour=0.25)
    usual_rows, usual = family()
    dormant = {ip for ip, h in truth["hosts"].items() if h.get("dormant")}
    teredo = {ip for ip, h in truth["hosts"].items() if h["teredo"]}
    assert dormant == teredo and not any("dormant" in h for h in usual["hosts"].values())
    # hosts without a Teredo client send what they sent
    assert sorted(tuple(r.values()) for r in rows if r["All_Traffic.src_ip"] not in dormant) == \
        sorted(tuple(r.values()) for r in usual_rows if r["All_Traffic.src_ip"] not in dormant)
    in_use = defaultdict(list)  # what keeps a client awake besides a wake: sessions and tunnels
    for s in truth["heavy_sessions"]:
        in_use[s["src"]].append((s["start"], s["end"]))
    for t in truth["tunnels"]:
        in_use[t["src"]].append((t["start"], t["end"]))
    runs, usual_runs = teredo_runs(rows, truth, dormant), teredo_runs(usual_rows, usual, dormant)
    wakes = [run for ip, host_runs in runs.items() for run in host_runs
             if not any(a <= run[1] and run[0] <= b for a, b in in_use[ip])]
    used = [run for ip, host_runs in runs.items() for run in host_runs if run not in wakes]
    # a wake keeps the client qualified for an hour (less where the machine goes off, more where
    # another wake comes within the hour)
    lengths = sorted((run[1] - run[0]) // 600 + 1 for run in wakes)
    assert len(wakes) >= 100 and lengths[len(lengths) * 9 // 10] <= 2 * scenario.DORMANT_AFTER
    assert statistics.median(lengths) == scenario.DORMANT_AFTER
    # a use keeps it qualified to an hour after it: a session's run ends 1-2 hours after it does
    for ip, host_runs in runs.items():
        for a, b in in_use[ip]:
            run = next(run for run in host_runs if run[0] <= b <= run[1])
            assert run[1] - b <= 2 * scenario.DORMANT_AFTER * 600
    # far fewer buckets talk to a server than with clients that stay qualified
    buckets = sum((r[1] - r[0]) // 600 + 1 for host_runs in runs.values() for r in host_runs)
    usual_buckets = sum((r[1] - r[0]) // 600 + 1 for host_runs in usual_runs.values() for r in host_runs)
    assert buckets < 0.4 * usual_buckets
    # each wake qualifies from a new client port
    ports = [port for host_runs in runs.values() for run in host_runs for port in run[2]]
    assert len(set(ports)) >= 0.9 * len(ports)
    assert len(used) >= 10
    # the rate of wakes is what it says
    fewer, _ = family(dormant_share=1.0, wakes_per_hour=0.05)
    few_wakes = sum(len(r) for r in teredo_runs(fewer, truth, dormant).values())
    assert 2.5 <= len(wakes) / max(1, few_wakes - len(used)) <= 8
    assert scenario.FAMILIES["hard-dormant"].heavy_destinations == "fresh"
    assert scenario.FAMILIES["dormant-clients"].dormant_share == 1.0


def test_update_share_gives_half_the_clients_an_update_from_peers_after_the_release():
    rows, truth = family(update_share=0.5)
    usual_rows, usual = family()
    assert "updates" not in usual and "update_release" not in usual
    release, updates = truth["update_release"], truth["updates"]
    teredo = {ip for ip, h in truth["hosts"].items() if h["teredo"]}
    assert {u["src"] for u in updates} <= teredo
    assert 0.3 <= len(updates) / len(teredo) <= 0.7
    for u in updates:
        assert release <= u["start"] < release + scenario.UPDATE_WITHIN * 600
        assert 1 <= u["buckets"] <= scenario.UPDATE_BUCKETS[1]
    # every row but those of an update's host and buckets is what it was without the option
    updating = {(u["src"], u["start"] + k * 600) for u in updates for k in range(u["buckets"])}
    assert sorted(tuple(r.values()) for r in rows
                  if (r["All_Traffic.src_ip"], r["_time"]) not in updating) == \
        sorted(tuple(r.values()) for r in usual_rows
               if (r["All_Traffic.src_ip"], r["_time"]) not in updating)
    # what an update adds to its buckets: data to peers from the bucket's client port, at about
    # UPDATE_LEVEL packets
    before = {row_key(r) for r in usual_rows}
    added = [r for r in rows if row_key(r) not in before]
    assert added and all((r["All_Traffic.src_ip"], r["_time"]) in updating for r in added)
    client_ports = defaultdict(set)
    for r in rows:
        if r["All_Traffic.dest_port"] == 3544:
            client_ports[r["All_Traffic.src_ip"], r["_time"]].add(r["All_Traffic.src_port"])
    packets, peers = Counter(), defaultdict(set)
    for r in added:
        key = (r["All_Traffic.src_ip"], r["_time"])
        assert r["All_Traffic.src_port"] in client_ports[key]
        if r["All_Traffic.dest_port"] != 3544:
            packets[key] += r["packets_out"]
            peers[key].add(r["All_Traffic.dest_ip"])
    assert scenario.UPDATE_LEVEL / 3 <= statistics.median(packets.values()) <= 3 * scenario.UPDATE_LEVEL
    assert statistics.median(len(p) for p in peers.values()) >= 10
    # machines on at the release start together
    at_once = Counter(t for _, t in updating)
    assert max(at_once.values()) >= 0.2 * len(updates)
    assert scenario.FAMILIES["hard-updates"].heavy_destinations == "fresh"
    assert scenario.FAMILIES["update-peers"].update_share == 0.5


def test_an_update_wakes_a_dormant_client():
    rows, truth = family(update_share=0.5, dormant_share=1.0)
    updating = {(u["src"], u["start"] + k * 600) for u in truth["updates"] for k in range(u["buckets"])}
    to_server = {(r["All_Traffic.src_ip"], r["_time"]) for r in rows if r["All_Traffic.dest_port"] == 3544}
    assert updating and updating <= to_server
