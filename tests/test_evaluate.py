"""The detection-quality evaluation: its metrics on hand-made cases, and one run end to end through the
real command on a tiny scenario (the full run with several seeds is `python tools/evaluate.py`)."""

import csv

import pytest

from tools import evaluate, scenario
from tools.evaluate import Episode, merge_episodes, score_episodes

T0 = 1_800_000_000 - 1_800_000_000 % 600


def at(bucket: int) -> int:
    return T0 + 600 * bucket


def tunnel(number, src, first, last):
    return {"id": number, "src": src, "start": at(first), "end": at(last)}


def test_flagged_buckets_merge_into_episodes_across_at_most_two_quiet_buckets():
    flagged = [("a", at(b)) for b in (0, 1, 4, 8, 9)] + [("b", at(b)) for b in (4, 2, 2)]
    assert merge_episodes(flagged) == [
        Episode("a", at(0), at(4)),   # 1 -> 4: two quiet buckets, same episode
        Episode("b", at(2), at(4)),   # duplicates and order do not matter
        Episode("a", at(8), at(9)),   # 4 -> 8: three quiet buckets, a new episode
    ]
    assert merge_episodes([("a", at(0)), ("a", at(2))], gap=0) == [Episode("a", at(0), at(0)),
                                                                 Episode("a", at(2), at(2))]
    assert merge_episodes([]) == []


def test_precision_recall_f1_latency_and_false_episodes_per_1000_host_days():
    tunnels = [tunnel(0, "a", 10, 15), tunnel(1, "b", 20, 20), tunnel(2, "c", 30, 40)]
    flagged = {("a", at(12)), ("a", at(13)),      # tunnel 0, detected 2 buckets late
               ("b", at(21)),                     # after tunnel 1 ended: false, tunnel 1 missed
               ("d", at(50)), ("d", at(60)),      # two false episodes on a host without a tunnel
               ("c", at(30))}                     # tunnel 2, in its first bucket
    episodes = merge_episodes(flagged)
    # 500 hosts over 2 days = 1,000 host-days.
    score = score_episodes(episodes, flagged, tunnels, hosts=500, eval_start=at(0), eval_end=at(2 * 144 - 1))
    assert (score.episodes, score.true_episodes, len(score.false)) == (5, 2, 3)
    assert score.precision == pytest.approx(2 / 5)
    assert score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 * (2 / 5) * (2 / 3) / (2 / 5 + 2 / 3))
    assert score.detected == {0: 2, 2: 0}
    assert score.host_days == pytest.approx(1000)
    assert score.false_per_1000_host_days == pytest.approx(3.0)


def test_warm_up_episodes_count_neither_way_and_an_empty_run_is_not_perfect():
    flagged = {("a", at(5)), ("a", at(500))}
    score = score_episodes(merge_episodes(flagged), flagged, [tunnel(0, "z", 600, 601)], hosts=100,
                           eval_start=at(144), eval_end=at(1439))
    assert score.episodes == 1 and len(score.false) == 1          # the one at bucket 5 is warm-up
    assert score.false_per_1000_host_days == pytest.approx(1000 / (100 * 9))
    assert score.recall == 0.0 and score.f1 == 0.0


def test_pooled_scores_add_up_over_seeds():
    one = score_episodes([Episode("a", at(1), at(1))], {("a", at(1))}, [tunnel(0, "a", 1, 1)], 10, at(0), at(143))
    two = score_episodes([Episode("b", at(1), at(1))], {("b", at(1))}, [tunnel(0, "a", 1, 1)], 30, at(0), at(143))
    both = evaluate.pooled([one, two])
    assert (both.episodes, both.true_episodes, both.tunnels, len(both.detected)) == (2, 1, 2, 1)
    assert both.false_per_1000_host_days == pytest.approx(1000 / 40)


def test_escu_spike_pattern_needs_50_samples_and_uses_avg_plus_k_stdev():
    values = {("a", at(i)): 10 for i in range(50)}
    values[("a", at(50))] = 100
    values.update({("b", at(i)): 10 for i in range(48)})
    values[("b", at(48))] = 1000                      # 49 samples: never flagged
    stats = evaluate.host_stats(values)
    samples, mean, sd = stats["a"]
    assert samples == 51 and mean == pytest.approx((500 + 100) / 51)
    assert evaluate.flag_spike(values, 2.0, stats) == {("a", at(50))}
    assert evaluate.flag_spike(values, (100 - mean) / sd + 0.01, stats) == set()
    assert evaluate.flag_static(values, 100) == {("a", at(50)), ("b", at(48))}


def test_comparator_features_attribute_relays_to_live_client_ports_only():
    rows = [
        [at(0), "10.0.0.1", 4000, "65.55.158.80", 3544, "teredo", 2000, 20, 20],
        [at(1), "10.0.0.1", 4000, "85.1.2.3", 40000, "unknown", 90000, 300, 1],   # relay, next bucket
        [at(1), "10.0.0.1", 4000, "10.0.0.53", 53, "dns", 700, 10, 10],          # internal: never
        [at(300), "10.0.0.1", 4000, "142.250.1.1", 443, "quic", 9000, 900, 1],   # port reused later
        [at(300), "10.0.0.2", 5000, "83.170.6.76", 3544, "", 1800, 18, 18],      # unlabelled server flow
    ]
    feats = evaluate.features(rows)
    assert feats.teredo == {("10.0.0.1", at(0)): 20, ("10.0.0.1", at(1)): 300, ("10.0.0.2", at(300)): 18}
    assert feats.port3544 == {("10.0.0.1", at(0)): 20, ("10.0.0.2", at(300)): 18}


def test_command_threshold_is_reapplied_with_the_volume_floor():
    bucket = evaluate.CommandBucket
    buckets = {("a", at(0)): bucket(9.0, True, 60, 100, 20.0, 40.0),
               ("a", at(1)): bucket(9.0, False, 10, 15000, 20.0, 40.0),   # below both floors
               ("b", at(0)): bucket(4.0, False, 5000, 10 ** 6, 20.0, 40.0)}
    assert evaluate.flag_command(buckets) == {("a", at(0))}
    assert evaluate.flag_command(buckets, threshold=3.0) == {("a", at(0)), ("b", at(0))}


def test_evaluation_runs_end_to_end_through_the_command_on_a_tiny_scenario(tmp_path):
    report = tmp_path / "quality.md"
    summary = evaluate.evaluate(seeds=[1, 2], tune_seed=1, hosts=40, days=5, command_args=[],
                                chunk_size=2500, report=report, plots_dir=tmp_path, log=lambda text: None,
                                details=tmp_path / "details")
    text = report.read_text()
    assert "## Main table" in text and "## Targets" in text and "## Recall per slice" in text
    names = [name for name in summary if not name.startswith("_")]
    assert len(names) == 5 and names[0].startswith("teredospike")
    for name in names:
        numbers = summary[name]
        assert 0.0 <= numbers["precision"] <= 1.0 and 0.0 <= numbers["recall"] <= 1.0
        assert "| %s | %.2f | %.2f |" % (name, numbers["precision"], numbers["recall"]) in text
    # The command ran for real and found at least one injected tunnel of the tiny scenario.
    assert summary[names[0]]["recall"] > 0.0
    for png in ("detection-quality-host.png", "detection-quality-curves.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The per-tunnel details: one row per injected tunnel of every seed, each approach's verdict.
    with open(tmp_path / "details" / "tunnels.csv", newline="") as handle:
        tunnels = list(csv.DictReader(handle))
    expected = [(seed, t["id"]) for seed in (1, 2)
                for t in scenario.generate(evaluate.scenario_params(seed, 40, 5))[1]["tunnels"]]
    assert [(int(t["seed"]), int(t["id"])) for t in tunnels] == expected
    assert any(t["latency_teredospike"] != "" for t in tunnels)


def test_episode_merge_matches_the_commands_own_episodes():
    from tools.runner import run_search
    rows, _ = scenario.generate(evaluate.scenario_params(3, 40, 5))
    records = [dict(zip(scenario.HEADER, map(str, row))) for row in rows]
    every_bucket = run_search(records, ["output=all"], chunk_size=50000).rows
    spikes = run_search(records, ["output=spikes"], chunk_size=50000).rows
    flagged = {(r["src"], int(r["_time"])) for r in every_bucket if r["is_spike"] == "1"}
    merged = {(e.src, e.first, e.last) for e in merge_episodes(flagged)}
    assert merged, "the tiny scenario should hold at least one spike"
    assert merged == {(r["src"], int(r["_time"]), int(r["episode_end"])) for r in spikes}


# ------------------------------------------------------------------------------------------ matrix
def bucket(packets, spike=False, score=0.0):
    return evaluate.CommandBucket(score, spike, packets, packets * 500, None, None)


def test_routine_level_is_the_median_of_session_buckets_outside_tunnels():
    truth = {"heavy_sessions": [{"src": "h", "start": at(0), "end": at(3)}, {"src": "h", "start": at(144), "end": at(145)}],
             "tunnels": [dict(tunnel(0, "h", 145, 145), extra_packets=9000, buckets=1, host_kind="heavy")]}
    buckets = {("h", at(0)): bucket(100), ("h", at(1)): bucket(200), ("h", at(2)): bucket(300),
               # at(3): no Teredo row (client off): not a zero
               ("h", at(144)): bucket(1000), ("h", at(145)): bucket(9999, True),   # the tunnel's bucket
               ("h", at(50)): bucket(5000)}                                        # outside any session
    assert evaluate.routine_levels(truth, buckets) == {"h": 250}
    assert [t["id"] for t in evaluate.heavy_tunnels(truth, {"h": 250})] == [0]       # 9000 >= 5 x 250
    assert evaluate.heavy_tunnels(truth, {"h": 2000}) == []                           # 9000 < 5 x 2000
    assert evaluate.heavy_tunnels(truth, {}) == []                                    # no routine: not counted


def test_light_tunnels_are_at_least_300_packets_for_3_buckets_on_hosts_that_are_not_heavy_users():
    def t(number, packets, buckets, kind):
        return {"id": number, "extra_packets": packets, "buckets": buckets, "host_kind": kind}
    truth = {"tunnels": [t(0, 300, 3, "idle"), t(1, 299, 3, "idle"), t(2, 300, 2, "off"), t(3, 3000, 6, "heavy"),
                         t(4, 10000, 72, "server")]}
    assert [x["id"] for x in evaluate.light_tunnels(truth)] == [0, 4]
    score = evaluate.Score(0, 0, [], 5, {0: 0, 3: 1}, 1.0)
    assert evaluate.subset_recall(score, evaluate.light_tunnels(truth)) == (0.5, 2)
    recall, n = evaluate.subset_recall(score, [])
    assert recall != recall and n == 0


def test_worst_family_per_metric_takes_direction_and_ties_into_account_and_skips_nan():
    nan = float("nan")
    keys = [key for key, _, _ in evaluate.MATRIX_METRICS]
    table = {"a": {k: (0.9, 1) for k in keys}, "b": {k: (0.5, 1) for k in keys}, "c": {k: (0.5, 1) for k in keys}}
    table["a"]["false_rate"] = (3.0, 9)
    table["b"]["heavy_recall"] = (nan, 0)
    table["c"]["heavy_recall"] = (nan, 0)
    worst = evaluate.worst_families(table)
    assert worst["f1"] == ["b", "c"] and worst["precision"] == ["b", "c"]
    assert worst["false_rate"] == ["a"]                    # lower is better
    assert worst["heavy_recall"] == ["a"]                  # no cases is not the worst


def test_matrix_runs_each_family_through_the_command(tmp_path):
    lines, table = evaluate.matrix_report(["default", "bubbles"], 3, 40, 5, 50000, lambda text: None,
                                          details=tmp_path, tuning=False, warmup_days=2)
    text = "\n".join(lines)
    assert set(table) == {"default", "bubbles"}
    for name, row in table.items():
        line = next(line for line in lines if line.startswith("| %s |" % name))
        assert line.split(" | ")[1].strip("*") == evaluate._fmt(row["precision"][0])
        assert row["recall"][1] > 0 and 0.0 <= row["recall"][0] <= 1.0
    assert table["default"]["recall"][0] > 0.0, "the command ran for real and found an injected tunnel"
    assert "**Worst family per metric:**" in text
    assert "### Severity of true and false episodes (after warm-up)" in text
    with open(tmp_path / "missed_tunnels.csv") as handle:
        header = handle.readline()
    assert header == "" or header.startswith("family,seed,id")


# Exact Poisson 95% limits of a mean after k events, as tabulated (Garwood 1936; e.g. Ulm 1990, Table 1,
# and every epidemiology textbook's table of Poisson confidence limits), 3-4 significant figures.
GARWOOD_95 = {0: (0.0, 3.689), 1: (0.0253, 5.572), 2: (0.242, 7.225), 3: (0.619, 8.767), 5: (1.623, 11.668),
              10: (4.795, 18.390), 20: (12.217, 30.888)}


def test_poisson_interval_matches_the_closed_forms_and_the_tabulated_limits():
    import math
    # k = 0: P(X <= 0) = exp(-mu) = 0.025; k = 1 lower: P(X >= 1) = 1 - exp(-mu) = 0.025
    assert evaluate.poisson_interval(0) == (0.0, pytest.approx(-math.log(0.025), rel=1e-9))
    assert evaluate.poisson_interval(1)[0] == pytest.approx(-math.log(0.975), rel=1e-9)
    # k = 1 upper: P(X <= 1) = exp(-mu) (1 + mu) = 0.025, checked by its own definition
    hi = evaluate.poisson_interval(1)[1]
    assert math.exp(-hi) * (1 + hi) == pytest.approx(0.025, rel=1e-9)
    for k, (lo, hi) in GARWOOD_95.items():
        got = evaluate.poisson_interval(k)
        assert got[0] == pytest.approx(lo, abs=6e-4) and got[1] == pytest.approx(hi, abs=6e-4), k
    assert evaluate.poisson_interval(2, confidence=0.90)[1] < evaluate.poisson_interval(2)[1]
    with pytest.raises(ValueError):
        evaluate.poisson_interval(-1)


def test_false_rate_interval_is_per_1000_host_days_and_the_verdict_says_whether_the_size_resolves_it():
    assert evaluate.false_rate_interval(0, 10_000) == (0.0, pytest.approx(0.3689, abs=1e-4))
    lo, hi = evaluate.false_rate_interval(1, 10_000)
    assert lo == pytest.approx(0.00253, abs=1e-5) and hi == pytest.approx(0.5572, abs=1e-4)
    assert evaluate.false_rate_interval(1, 2_100)[1] == pytest.approx(2.653, abs=1e-3)  # the seed-2 matrix's 0.48 (1)
    assert evaluate.rate_verdict(0, 13_000) == "met"                       # upper 0.284
    assert evaluate.rate_verdict(0, 12_000) == "not resolved"              # upper 0.307: zero is not enough
    assert evaluate.rate_verdict(1, 6_300) == "not resolved"               # 0.16, upper 0.88
    assert evaluate.rate_verdict(3, 6_300) == "missed, not resolved"       # 0.48, lower 0.098
    assert evaluate.rate_verdict(10, 6_300) == "missed"                    # 1.59, lower 0.761


def test_the_matrix_cell_and_the_target_verdicts_carry_the_interval():
    keys = [key for key, _, _ in evaluate.MATRIX_METRICS]
    row = {k: (1.0, 10) for k in keys}
    row["critical_share"] = (0.0, 10)
    table = {"quiet": dict(row, false_rate=(0.0, 0), host_days=(6300.0, 900)),
             "noisy": dict(row, false_rate=(1000 * 3 / 6300, 3), host_days=(6300.0, 900), f1=(0.9, 10))}
    assert evaluate._cell(table["noisy"], "false_rate") == "0.48 (3; 95% <= 1.39)"
    worst = evaluate.worst_families(table)
    text = "\n".join(evaluate.target_verdicts(table, worst))
    assert "false / 1,000 host-days <= 0.3, noisy 0.48 (3; 95% 0.10-1.39): missed, not resolved" in text
    assert "F1 >= 0.93, noisy 0.90: missed" in text
    assert "not resolved: quiet" in text
    assert "upper bound at 0.59" in text and "from 12,296 host-days" in text


def test_a_new_address_is_its_own_false_cause_and_host_days_count_machines_not_addresses():
    truth = {"hosts": {"a": {"class": "heavy", "join": at(0)},
                       "b": {"class": "heavy", "join": at(144), "address_of": "a"}},
             "heavy_sessions": [{"src": "b", "start": at(150), "end": at(160)},
                                {"src": "b", "start": at(600), "end": at(610)}],
             "storm": {"start": at(5000), "end": at(5005)}, "nat_bursts": [], "port_reuse": [], "tunnels": []}
    assert evaluate.machines(truth) == 1
    assert evaluate.false_cause(truth, Episode("b", at(150), at(152))) == "new address, first days"
    assert evaluate.false_cause(truth, Episode("b", at(600), at(602))) == "heavy user, in a session"
    assert evaluate.false_cause(truth, Episode("a", at(150), at(152))) == "heavy user, outside a session"


def test_a_new_heavy_users_first_days_are_their_own_false_cause():
    truth = {"hosts": {"a": {"class": "heavy", "join": at(0), "heavy_from": at(288)},
                       "b": {"class": "heavy", "join": at(0)}},
             "heavy_sessions": [{"src": src, "start": at(start), "end": at(start + 10)}
                                for src in "ab" for start in (300, 600)],
             "storm": {"start": at(5000), "end": at(5005)}, "nat_bursts": [], "port_reuse": [], "tunnels": []}
    assert evaluate.false_cause(truth, Episode("a", at(300), at(302))) == "new heavy user, first days"
    assert evaluate.false_cause(truth, Episode("a", at(600), at(602))) == "heavy user, in a session"
    assert evaluate.false_cause(truth, Episode("b", at(300), at(302))) == "heavy user, in a session"


def test_a_heavy_users_first_days_back_from_an_absence_are_their_own_false_cause():
    truth = {"hosts": {"a": {"class": "heavy", "join": at(0), "absent": [at(144), at(1440)]}},
             "heavy_sessions": [{"src": "a", "start": at(start), "end": at(start + 10)}
                                for start in (100, 1450, 1800)],
             "storm": {"start": at(5000), "end": at(5005)}, "nat_bursts": [], "port_reuse": [], "tunnels": []}
    assert evaluate.false_cause(truth, Episode("a", at(1450), at(1452))) == "heavy user, back from days away"
    assert evaluate.false_cause(truth, Episode("a", at(1800), at(1802))) == "heavy user, in a session"
    assert evaluate.false_cause(truth, Episode("a", at(100), at(102))) == "heavy user, in a session"


def test_severity_is_split_between_true_and_false_episodes():
    def flagged(src, bucket):
        return (src, at(bucket)), evaluate.CommandBucket(score=9.0, is_spike=True, packets=900, bytes=90000,
                                                         baseline=20.0, upper=40.0)
    truth = {"start": at(0), "end": at(1000), "parameters": {"warmup_days": 0},
             "hosts": {"a": {"class": "idle", "join": at(0)}, "b": {"class": "heavy", "join": at(0)}},
             "tunnels": [tunnel(0, "a", 100, 102)]}
    buckets = dict([flagged("a", 100), flagged("a", 101), flagged("b", 300), flagged("b", 500)])
    spikes = [{"src": "a", "_time": str(at(100)), "severity": "high"},
              {"src": "b", "_time": str(at(300)), "severity": "medium"},
              {"src": "b", "_time": "%d.000" % at(500), "severity": "high"}]
    run = evaluate.FamilyRun("f", 1, truth, buckets, spikes, 0.0)
    true, false = evaluate.severity_split(run)
    assert dict(true) == {"high": 1} and dict(false) == {"medium": 1, "high": 1}
    assert evaluate._high_share(false) == "0.50 (n=2)" and evaluate._high_share({}) == "- (n=0)"


def test_a_family_of_end_stamped_records_runs_the_command_with_record_time_end():
    """run_family tells the command what the family's records are (scenario.command_args): records
    stamped at their end are spread back to where they began, up to the bucket floor early, and none
    runs past its flow's last bucket, as it would spread forward from its end."""
    def packets(family):
        run = evaluate.run_family(family, seed=3, hosts=40, days=4, chunk_size=20000, log=lambda _: None)
        return {key for key, bucket in run.buckets.items() if bucket.packets}
    started, ended = packets("long-flows"), packets("end-stamped-flows")
    assert ended - started  # the floor: some records begin a bucket early
    assert all((src, t) in started or (src, t + 600) in started for src, t in ended)
