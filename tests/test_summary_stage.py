"""The two-stage detection (summary.py, README Tune) through the real protocol: flows cut into
windows, each window through `| teredospike output=buckets` with its search's earliest/latest
(one bucket more read on each side), the outputs concatenated as the summary index holds them,
then `| teredospike` over them: the same rows as one pass over the flows. Also the late-event
rule (rerun the windows around it), overlapping runs, a missed run, summary rows mixed with flows,
and unreadable summary rows (also fuzzed: hypothesis, through the protocol).

Runs are subprocesses (tools/runner.py) under Splunk's Pythons (tests/pythons.py); each window
costs two processes, so the sample is cut into 12-hour windows and the scenario into 10-minute
windows around its tunnel (and wide windows elsewhere), to keep this file well under 90 s.
"""

import json
import math
import os
import random
from typing import Dict, List, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teredo_spike.summary import (SKIP_BAD_SUMMARY, SKIP_NO_STAMP, SKIP_OTHER_SPAN, STAMP_FIELD,
                                  SUMMARY_FIELDS, owned_range)
from tests.pythons import SPLUNK_PYTHONS, splunk_python
from tests.test_golden import digest
from tests.test_hostile_records import NASTY
from tests.flows import BUCKET, T0, idle_client, relay_tunnel
from tests.test_spread import zeek_client
from tools import scenario
from tools.readers import read_records
from tools.runner import run_partitioned, run_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "samples", "enterprise_week.csv.gz")
GOLDEN = os.path.join(ROOT, "tests", "golden", "sample.json")
SPAN = 600
HOUR = 3600

Record = Dict[str, str]


# ---- running windows ---------------------------------------------------------------------

def bucket(record: Record) -> int:
    return int(float(record["_time"])) // SPAN * SPAN


def summary_run(records: Sequence[Record], start: int, end: int, python: str,
                partitions: int = 1) -> List[Record]:
    """One summary-stage run owning the buckets [start, end): it reads [start - span, end + span)
    and its search's time range says so (as the scheduled search's earliest/latest do)."""
    earliest, latest = start - SPAN, end + SPAN
    window = [r for r in records if earliest <= bucket(r) < latest]
    result = run_search(window, ["output=buckets"], partitions=partitions, python=python,
                        earliest=earliest, latest=latest)
    assert set(result.exit_codes) == {0}, result.messages
    assert not [m for m in result.messages if m[0] in ("ERROR", "WARN")], result.messages
    assert all(start <= int(row["_time"]) < end for row in result.rows)
    return result.rows


def summarised(records: Sequence[Record], cuts: Sequence[int], python: str,
               partitions: int = 1) -> List[Record]:
    """The summary rows of consecutive windows [cuts[i], cuts[i+1])."""
    rows: List[Record] = []
    for start, end in zip(cuts, cuts[1:]):
        rows += summary_run(records, start, end, python, partitions)
    return rows


def detection(summary_rows: Sequence[Record], python: str, output: str = "all",
              partitions: int = 1):
    result = run_search(summary_rows, ["output=" + output], partitions=partitions, python=python)
    assert set(result.exit_codes) == {0}, result.messages
    return result


def span_of(records: Sequence[Record]) -> Tuple[int, int]:
    """First bucket, and the end of the last."""
    buckets = [bucket(r) for r in records]
    return min(buckets), max(buckets) + SPAN


# ---- ownership, without a process ---------------------------------------------------------

def test_a_run_owns_the_buckets_between_its_neighbours():
    # [E, L) = [10:00, 11:00): reads 10:00-10:50, owns 10:10-10:40.
    first, last = owned_range(36000, 39600, SPAN)
    assert (first, last) == (36600, 38400)
    # Unaligned times: earliest snapped up, latest down.
    assert owned_range(36001, 39599, SPAN) == (37200, 37800)
    # 0 is unbounded (all time), as splunkd sends it.
    assert owned_range(0, 0, SPAN) == (-math.inf, math.inf)
    # The scheduled search (earliest -40m@m, latest -10m@m at 12:00) owns exactly 11:30.
    noon = 43200
    assert owned_range(noon - 40 * 60, noon - 10 * 60, SPAN) == (noon - 30 * 60, noon - 30 * 60)


# ---- (a) the sample, 16 windows of 12 hours ------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    return list(read_records(SAMPLE, "csv"))


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN, encoding="utf-8") as f:
        return json.load(f)


def test_sample_in_12_hour_windows_equals_one_pass(sample, golden):
    """Under the first Python with one map partition (the scenario's windows take turns with
    the other Python and three partitions: each sample run costs seconds)."""
    python = splunk_python(SPLUNK_PYTHONS[0])
    first, end = span_of(sample)
    cuts = list(range(first, end, 12 * HOUR)) + [end]
    assert len(cuts) == 17
    rows = summarised(sample, cuts, python)
    assert len({(r["src"], r["src_port"], r["_time"]) for r in rows}) == len(rows)
    # One pass over the flows is pinned by tests/test_golden.py: the same digest, row for row.
    assert digest(detection(rows, python, "all", partitions=3).rows) == golden["all"]


# ---- (b)-(e) a scenario in 10-minute windows ------------------------------------------------

@pytest.fixture(scope="module")
def world():
    """A small scenario's records, its first tunnel, and the cuts: 10-minute windows from an hour
    before that tunnel's start to 80 minutes after, one wide window before and one after."""
    params = scenario.Params(seed=5, hosts=24, days=3, tunnels=2, repeat_share=0.0,
                             durations=(3, 6))
    rows, truth = scenario.generate(params)
    records = [dict(zip(scenario.HEADER, map(str, row))) for row in rows]
    tunnel = min(truth["tunnels"], key=lambda t: t["start"])
    first, end = span_of(records)
    fine_start = max(first + SPAN, tunnel["start"] - HOUR)
    fine_end = min(end - SPAN, tunnel["start"] + HOUR + 2 * SPAN)
    cuts = [first] + list(range(fine_start, fine_end, SPAN)) + [fine_end, end]
    return records, tunnel, cuts


@pytest.fixture(scope="module")
def one_pass(world):
    records, _, _ = world
    return {version: run_search(records, ["output=all"], python=splunk_python(version)).rows
            for version in SPLUNK_PYTHONS}


@pytest.fixture(scope="module")
def windows(world):
    """Each window's summary rows; the windows take turns: the first Python with one map
    partition, the last with three (every third window: four processes a run)."""
    records, _, cuts = world
    turns = [(splunk_python(SPLUNK_PYTHONS[0]), 1), (splunk_python(SPLUNK_PYTHONS[-1]), 3)]
    return [summary_run(records, start, end, *turns[i % 3 == 1])
            for i, (start, end) in enumerate(zip(cuts, cuts[1:]))]


def test_scenario_in_10_minute_windows_equals_one_pass(world, windows, one_pass):
    _, tunnel, cuts = world
    rows = [row for window in windows for row in window]
    assert any(r["src"] == tunnel["src"] and r["src_port"] == str(tunnel["client_port"])
               for r in rows)
    for version in SPLUNK_PYTHONS:
        result = detection(rows, splunk_python(version), partitions=3)
        assert result.rows == one_pass[version], version
    assert sum(1 for start, end in zip(cuts, cuts[1:]) if end - start == SPAN) >= 12


def test_summary_rows_newest_first_or_shuffled_give_the_same_rows(world, windows, one_pass):
    """A search of the summary index returns its events newest first; a host's rows may also
    come interleaved with reruns. The order they arrive in never changes the detection."""
    import random
    rows = [row for window in windows for row in window]
    python = splunk_python(SPLUNK_PYTHONS[0])
    shuffled = list(rows)
    random.Random(7).shuffle(shuffled)
    assert detection(rows[::-1], python).rows == one_pass[SPLUNK_PYTHONS[0]]
    assert detection(shuffled, python).rows == one_pass[SPLUNK_PYTHONS[0]]


def _teredo_record_of(world) -> Tuple[int, Record]:
    """The tunnel's first server flow (dest port 3544) inside the 10-minute windows."""
    records, tunnel, cuts = world
    for index, record in enumerate(records):
        if (record["All_Traffic.src_ip"] == tunnel["src"]
                and record["All_Traffic.dest_port"] == "3544"
                and record["All_Traffic.src_port"] == str(tunnel["client_port"])
                and cuts[2] <= bucket(record) < cuts[-3]):
            return index, record
    raise AssertionError("no server flow of the tunnel in the fine windows")


def test_a_late_event_is_counted_once_its_windows_are_rerun(world, windows, one_pass):
    records, _, cuts = world
    python = splunk_python(SPLUNK_PYTHONS[0])
    late_at, late = _teredo_record_of(world)
    on_time = records[:late_at] + records[late_at + 1:]
    late_bucket = bucket(late)
    # The windows ran before the late event was indexed: the ones that read its bucket lack it.
    affected = [i for i, (start, end) in enumerate(zip(cuts, cuts[1:]))
                if start - SPAN <= late_bucket < end + SPAN]
    assert len(affected) == 3
    first_runs = [window if i not in affected
                  else summary_run(on_time, cuts[i], cuts[i + 1], python)
                  for i, window in enumerate(windows)]
    stale = [row for window in first_runs for row in window]
    assert detection(stale, python).rows != one_pass[SPLUNK_PYTHONS[0]], \
        "the late event must matter, or this test proves nothing"
    # The documented rule: rerun the windows whose read range holds the late bucket (a backfill
    # from late bucket - 2 spans to late bucket + 3 spans); the newest stamp wins.
    reruns = summary_run(records, late_bucket - SPAN, late_bucket + 2 * SPAN, python)
    assert min(r[STAMP_FIELD] for r in reruns) > max(r[STAMP_FIELD] for r in stale)
    assert detection(stale + reruns, python).rows == one_pass[SPLUNK_PYTHONS[0]]


def test_overlapping_runs_and_duplicate_rows_do_not_double_count(world, windows, one_pass):
    records, tunnel, cuts = world
    python = splunk_python(SPLUNK_PYTHONS[0])
    rows = [row for window in windows for row in window]
    # A run over an hour that the 10-minute windows also own, and every row of one window twice
    # (a duplicate event of the same run).
    middle = cuts[len(cuts) // 2]
    overlap = summary_run(records, middle - HOUR, middle + HOUR, python)
    assert overlap
    duplicated = windows[len(windows) // 2] * 2
    result = detection(rows + overlap + duplicated, python)
    assert result.rows == one_pass[SPLUNK_PYTHONS[0]]


def test_a_missed_run_leaves_its_bucket_out_until_backfilled(world, windows, one_pass):
    records, tunnel, cuts = world
    python = splunk_python(SPLUNK_PYTHONS[0])
    missed = next(i for i, window in enumerate(windows)
                  if cuts[i + 1] - cuts[i] == SPAN and any(r["src"] == tunnel["src"] for r in window))
    gap = str(cuts[missed])
    rows = [row for i, window in enumerate(windows) if i != missed for row in window]
    reference = one_pass[SPLUNK_PYTHONS[0]]
    result = detection(rows, python).rows
    # The documented effect: no host-bucket of the missed bucket; every other bucket's traffic is
    # as one pass counts it (its scores may differ: the baselines saw a quiet bucket).
    assert any(r["_time"] == gap for r in reference)
    assert not any(r["_time"] == gap for r in result)
    volume = ("_time", "src", "packets", "bytes", "flows", "dests", "client_ports", "relays")
    assert ([[r[f] for f in volume] for r in result]
            == [[r[f] for f in volume] for r in reference if r["_time"] != gap])
    # Backfilled: the window rerun, and the result is one pass's again.
    backfill = summary_run(records, cuts[missed], cuts[missed + 1], python)
    assert detection(rows + backfill, python).rows == reference


def test_without_splunklibs_private_names_both_stages_give_the_same_rows(world, windows):
    """splunk_adapter's public fallback (write_body, write_results through write_records)."""
    from tests.test_splunk_adapter import PUBLIC_API_COMMAND
    records, _, cuts = world
    python = splunk_python(SPLUNK_PYTHONS[0])
    start, end = cuts[2], cuts[5]
    window = [r for r in records if start - SPAN <= bucket(r) < end + SPAN]
    public = run_search(window, ["output=buckets"], partitions=3, python=python,
                        script=PUBLIC_API_COMMAND, earliest=start - SPAN, latest=end + SPAN)
    private = summary_run(records, start, end, python)

    def unstamped(rows):
        return [{k: v for k, v in row.items() if k != STAMP_FIELD} for row in rows]
    assert public.rows and unstamped(public.rows) == unstamped(private)
    rows = [row for window in windows for row in window]
    assert (run_search(rows, ["output=all"], partitions=3, python=python,
                       script=PUBLIC_API_COMMAND).rows
            == detection(rows, python).rows)


# ---- (f) flows mixed with summary rows; (g) unreadable summary rows ----------------------

@pytest.mark.parametrize("where", ["one indexer", "two indexers"])
def test_flows_mixed_with_summary_rows_are_refused(world, windows, python, where):
    records, _, _ = world
    flows, summary = records[:3000], windows[0]
    if where == "one indexer":
        result = run_partitioned([flows + summary], ["output=all"], python=python)
    else:
        result = run_partitioned([flows, summary], ["output=all"], python=python)
    errors = [text for level, text in result.messages if level == "ERROR"]
    assert errors and "both flow records and summary rows" in errors[0], result.messages
    assert "teredo_spike_base_summary" in errors[0]
    assert "Traceback" not in " ".join(errors)
    assert result.rows == [] and 1 in result.exit_codes


# ---- records with a duration -----------------------------------------------------------------

def test_records_of_a_bucket_or_less_keep_the_summary_equal_to_one_pass(python):
    """Records of up to 10 minutes that cross bucket boundaries (an exporter's ordinary cut): each
    counts at its _time, so 10-minute windows give one pass's rows, and no run warns."""
    rng = random.Random(11)
    records = []
    for n, port in enumerate((3797, 41000, 52001)):
        records += idle_client("10.9.0.%d" % (n + 1), port, T0, 18, rng)
    records += relay_tunnel("10.9.0.1", 3797, T0 + 6 * BUCKET, 4, ["83.170.1.38"], 3000, rng)
    for record in records:
        record["duration"] = "%.6f" % rng.uniform(0, BUCKET)
    records.sort(key=lambda r: float(r["_time"]))
    cuts = list(range(T0, T0 + 18 * BUCKET + 1, BUCKET))
    rows = summarised(records, cuts, python)
    assert detection(rows, python).rows == run_search(records, ["output=all"], python=python).rows
    assert any(float(r["_time"]) // BUCKET != (float(r["_time"]) + float(r["duration"])) // BUCKET
               for r in records), "no record crosses a boundary: this test proves nothing"


# ---- records longer than a bucket ------------------------------------------------------------

@pytest.mark.parametrize("partitions", [1, 2])
def test_a_summary_run_says_when_teredo_records_last_longer_than_a_bucket(python, partitions):
    """A client's refreshes reported once for 6 hours (Zeek): the run owning its first bucket
    writes that bucket only, and says that the rest of such records is in no summary row. The
    map phases count them (the count crosses the partial rows)."""
    records = zeek_client()
    start = bucket(records[0])
    result = run_search(records, ["output=buckets"], partitions=partitions, python=python,
                        earliest=start - SPAN, latest=start + 2 * SPAN)
    assert set(result.exit_codes) == {0}, result.messages
    assert [int(row["_time"]) for row in result.rows] == [start]
    warnings = [text for level, text in result.messages if level == "WARN"]
    assert len(warnings) == 1 and "1 Teredo flow record lasted longer than the 10-minute span" \
        in warnings[0], result.messages
    # one pass counts all of it, and says nothing
    whole = run_search(records, ["output=all"], partitions=partitions, python=python)
    assert len(whole.rows) == 36 and not [m for m in whole.messages if m[0] == "WARN"]


def test_unreadable_summary_rows_are_skipped_and_counted(world, windows, python):
    rows = [row for window in windows[:3] for row in window]
    good = detection(rows, python)
    template = dict(rows[0])
    bad = [dict(template, _time=template["_time"] + "000"),      # milliseconds
           dict(template, _time=str(int(template["_time"]) + 60)),  # another span's bucket
           dict(template, packets="-5"),
           dict(template, src_port="=HYPERLINK(1)"),
           dict(template, evidence="all"),
           dict(template, dests="1.2.3.4=many"),
           dict(template, evidence="65536"),
           dict(template, src=""),
           dict(template, src=template["src"] + " 10.9.9.9"),  # a known host, and another
           dict(template, **{STAMP_FIELD: ""})]
    assert set(template) == set(SUMMARY_FIELDS)
    result = detection(rows + bad, python)
    assert result.rows == good.rows
    warnings = [text for level, text in result.messages if level == "WARN"]
    assert len(warnings) == 1, result.messages
    assert "skipped 10 of %s records" % "{:,}".format(len(rows) + len(bad)) in warnings[0]
    for reason in (SKIP_BAD_SUMMARY, SKIP_OTHER_SPAN, SKIP_NO_STAMP, "milliseconds",
                   "src_port or dest_port", "count, bytes or packets"):
        assert reason in warnings[0], reason


# ---- fuzzed summary rows ------------------------------------------------------------------

# Each fuzzed summary row is certainly unusable (so that the good rows' results must not change):
# one of these replaces a field that every kept row needs.
UNUSABLE_SUMMARY = st.sampled_from([
    ("_time", "yesterday"), ("_time", "1e400"), ("_time", "1700000060"), ("src", ""),
    ("src", "a b"), ("src_port", "70000"), ("src_port", "=HYPERLINK(1)"), ("packets", "-5"),
    ("bytes", "nan"), ("flows", "9" * 400), ("evidence", "all"), ("evidence", "65536"),
    ("dests", "1.2.3.4=many"), (STAMP_FIELD, ""), (STAMP_FIELD, "-3"),
])


@st.composite
def unusable_summary_row(draw, template: Record) -> Record:
    # A newer stamp: were the row not skipped, it would replace the template's (a rerun's row).
    row = dict(template, **{STAMP_FIELD: str(int(template[STAMP_FIELD]) + 1)})
    for name in draw(st.lists(st.sampled_from(SUMMARY_FIELDS[1:]), max_size=4, unique=True)):
        row[name] = draw(NASTY)
    name, value = draw(UNUSABLE_SUMMARY)
    row[name] = value
    return row


@pytest.fixture(scope="module")
def first_windows(windows):
    """The first three windows' summary rows, and the detection over them alone."""
    rows = [row for window in windows[:3] for row in window]
    result = run_search(rows, ["output=all"], python=splunk_python(SPLUNK_PYTHONS[-1]))
    assert set(result.exit_codes) == {0}, result.messages
    return rows, result.rows


@given(st.data())
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_summary_rows_never_fail_the_detection_or_change_it(first_windows, data):
    """One summary row must never stop the detection stage either: whatever a marked row holds,
    exit 0, no ERROR, and the other rows' results unchanged (skipped and counted)."""
    rows, good = first_windows
    bad = data.draw(st.lists(unusable_summary_row(rows[len(rows) // 2]), min_size=1, max_size=6))
    mixed = list(rows)
    for row in bad:
        mixed.insert(data.draw(st.integers(0, len(mixed))), row)
    result = run_search(mixed, ["output=all"], chunk_size=data.draw(st.sampled_from([3, 50, 5000])),
                        python=splunk_python(SPLUNK_PYTHONS[-1]))
    assert set(result.exit_codes) == {0}, result.messages
    assert not [m for m in result.messages if m[0] in ("ERROR", "FATAL")], result.messages
    assert result.rows == good


def test_two_client_ports_in_a_bucket_are_one_host_bucket():
    """Summary rows of two client ports in one bucket (a restarted client) make one host-bucket
    with both ports' traffic, as one pass merges them (hostbuckets.series_of), whatever order the
    rows come in; a rerun's row of one port replaces the earlier one."""
    from collections import Counter
    from teredo_spike.summary import SummaryReader

    def row(bucket: int, port: str, packets: int, written: int) -> List[str]:
        values = {"teredospike_summary": "1", "_time": str(bucket), "src": "10.0.0.9",
                  "src_port": port, "packets": str(packets), "bytes": str(100 * packets),
                  "flows": "2", "evidence": "4", "dests": "65.55.158.80=%d 9.9.9.9=5" % packets,
                  "servers": "65.55.158.80", "mapped": "", STAMP_FIELD: str(written)}
        return [values[name] for name in SUMMARY_FIELDS]

    day = 1793577600  # 2026-11-02 (a record's time must be in 2000-2099)
    rows = [row(day, "5000", 30, 1), row(day + 600, "5000", 40, 1), row(day + 600, "6000", 7, 1),
            row(day + 600, "6000", 8, 2), row(day + 1200, "6000", 9, 1)]
    for ordered in (rows, rows[::-1], rows[2:] + rows[:2]):
        reader = SummaryReader(600, Counter())
        assert list(reader.read(list(SUMMARY_FIELDS), [list(r) for r in ordered])) == []
        (src, series), = reader.by_host()
        assert src == "10.0.0.9" and list(series.buckets) == [day, day + 600, day + 1200]
        merged = series[1]
        assert (merged.packets, sorted(merged.client_ports)) == (48, ["5000", "6000"])
        assert merged.values[-1] == 10  # relay packets: 5 to 9.9.9.9 from each port
