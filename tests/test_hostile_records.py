"""One record never stops the detection (issue 14): whatever a record holds, the search ends with
exit 0 and no ERROR, the record is skipped and counted by reason, and the other records' results do
not change. Through the real protocol, as splunkd runs the command."""

import csv
import io
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.flows import BUCKET, T0, flow, idle_client, relay_tunnel
from tools.runner import run_search

SERVER = "65.55.158.80"


def errors(result):
    return [text for level, text in result.messages if level in ("ERROR", "FATAL")]


def warnings(result):
    return " ".join(text for level, text in result.messages if level == "WARN")


def good_records():
    """Three idle clients over 6 hours and one relay tunnel: a result that any damage would change."""
    rng = random.Random(3)
    records = []
    for n, port in enumerate((3797, 41000, 52001)):
        records += idle_client("10.9.0.%d" % (n + 1), port, T0, 36, rng)
    records += relay_tunnel("10.9.0.1", 3797, T0 + 30 * BUCKET, 3, ["83.170.1.38"], 3000, rng)
    records.sort(key=lambda r: float(r["_time"]))
    return records


GOOD = good_records()


@pytest.fixture(scope="module")
def reference():
    result = run_search(GOOD, ["output=all"], chunk_size=500)
    assert result.exit_codes == [0, 0] and result.rows
    return result.rows


def bad_teredo_flow(**fields):
    """A Teredo record (to the server on 3544, from a client port) with some fields replaced."""
    record = flow(T0 + 5000, "10.9.0.77", 3544, SERVER, 3544, 5000, 5_000_000, "teredo")
    record.update(fields)
    return record


@pytest.mark.parametrize("fields,reason", [
    ({"packets_out": "-5"}, "count, bytes or packets"),
    ({"bytes_out": "-1"}, "count, bytes or packets"),
    ({"count": "-3"}, "count, bytes or packets"),
    ({"packets_out": "9" * 400}, "count, bytes or packets"),
    ({"bytes_out": "1e308"}, "count, bytes or packets"),
    ({"bytes_out": "nan"}, "count, bytes or packets"),
    ({"bytes_out": "inf"}, "count, bytes or packets"),
    ({"src_port": "70000"}, "port"),
    ({"src_port": "<b>x</b>"}, "port"),
    ({"src_port": "=HYPERLINK(1)"}, "port"),
    ({"src_port": "-1"}, "port"),
    ({"src_port": "4" * 4301}, "port"),
    ({"dest_port": "3544.0"}, "port"),
    ({"_time": "1e12"}, "_time"),
    ({"_time": "%d" % (T0 * 1000)}, "_time"),
    ({"_time": "5"}, "_time"),
    ({"_time": "-1700000000"}, "_time"),
    ({"_time": "1e400"}, "_time"),
])
@pytest.mark.parametrize("output", ["all", "spikes"])
def test_a_bad_record_is_skipped_counted_and_changes_nothing(fields, reason, output, python,
                                                            reference):
    records = GOOD + [bad_teredo_flow(**fields), bad_teredo_flow(**fields)]
    result = run_search(records, ["output=" + output], chunk_size=500, python=python)
    assert result.exit_codes == [0, 0], result.messages
    assert errors(result) == []
    if output == "all":
        assert result.rows == reference
    assert "10.9.0.77" not in {row["src"] for row in result.rows}
    warning = warnings(result)
    assert "skipped 2 of {:,} records".format(len(records)) in warning, result.messages
    assert reason in warning


@pytest.mark.parametrize("duration", ["-5", "nan", "inf", "1e400", "0:01:23", "3 hours"])
def test_a_duration_that_is_no_number_of_seconds_counts_the_record_at_its_time(duration, python):
    """The record is not lost (a source may write durations as h:mm:ss): it counts as one without a
    duration, and the search says how many and what to fix."""
    unread = bad_teredo_flow(duration=duration)
    plain = bad_teredo_flow()
    result = run_search(GOOD + [unread], ["output=all"], chunk_size=500, python=python)
    assert result.exit_codes == [0, 0], result.messages
    assert errors(result) == []
    assert result.rows == run_search(GOOD + [plain], ["output=all"], chunk_size=500).rows
    assert "counted 1 of {:,} records at their _time".format(len(GOOD) + 1) in warnings(result)
    assert "duration is not a number of seconds" in warnings(result)
    assert "skipped" not in warnings(result)


def test_milliseconds_are_named_as_the_likely_mistake(python):
    """A dataset whose _time is in milliseconds: every record skipped, and the warning says what to
    fix, instead of 0 results and no word."""
    records = [dict(r, _time="%d" % (float(r["_time"]) * 1000)) for r in GOOD]
    result = run_search(records, [], python=python)
    assert result.exit_codes == [0, 0] and errors(result) == []
    assert result.rows == []
    assert "milliseconds" in warnings(result)


def test_overflowing_sums_in_one_cell_do_not_fail_the_search(python):
    """Two records that are each readable but whose sum overflows a float (bytes_out=1e307 x 20)."""
    huge = [bad_teredo_flow(bytes_out="1" + "0" * 307, _time=str(T0 + 5000 + i)) for i in range(20)]
    result = run_search(GOOD + huge, ["output=all"], python=python)
    assert result.exit_codes == [0, 0], result.messages
    assert errors(result) == []


# ---- fuzzing --------------------------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "-1", "-0", "0", "nan", "NaN", "inf", "-inf", "1e308", "1e400", "1e-9",
                     "9" * 400, "70000", "65535", "65536", "3544", "3544.0", " 3544", "0x10",
                     "=HYPERLINK(1)", "+1", "@SUM(A1)", "<b>x</b>", '"', '""', ",", "\n", "\r\n",
                     "a\nb", "$a$;$b$", "10.9.0.1", "10.9.0.1\n10.9.0.2", "::1", "2001:0:4136:e378::1",
                     "999.1.1.1", "teredo", "Tunnel::TEREDO", "udp", "17", "tcp", "1e12",
                     "%d" % T0, "%d.5" % T0, "1700000000000"]),
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
FIELDS = ("_time", "src_ip", "src_port", "dest_ip", "dest_port", "transport", "packets_out",
          "bytes_out", "count", "app", "inner_src_ip", "src_host", "duration")
# Each fuzzed record is certainly unusable (so that the good records' results must not change):
# at least one of these replaces a field that every counted record needs.
UNUSABLE = st.sampled_from([
    ("_time", "yesterday"), ("_time", "1e400"), ("_time", "1e12"), ("src_ip", ""),
    ("src_ip", "not-an-ip"), ("dest_ip", "999.1.1.1"), ("src_port", "70000"),
    ("src_port", "=HYPERLINK(1)"), ("dest_port", "-1"), ("packets_out", "-5"),
    ("bytes_out", "nan"), ("count", "9" * 400), ("src_host", "=HYPERLINK(1)"), ("src_host", "a b"),
])


@st.composite
def unusable_record(draw):
    record = bad_teredo_flow(_time="%.3f" % (T0 + draw(st.integers(0, 36 * BUCKET))))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        record[name] = draw(NASTY)
    name, value = draw(UNUSABLE)
    record[name] = value
    return record


@given(st.lists(unusable_record(), min_size=1, max_size=8), st.sampled_from([7, 500, 2500]),
       st.sampled_from([1, 2]), st.randoms(use_true_random=False))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_records_never_fail_the_search_or_change_results(bad, chunk_size, partitions,
                                                                 rng):
    records = list(GOOD)
    for record in bad:
        records.insert(rng.randrange(len(records) + 1), record)
    result = run_search(records, ["output=all"], chunk_size=chunk_size, partitions=partitions)
    assert set(result.exit_codes) == {0}, result.messages
    assert errors(result) == [], result.messages
    assert result.rows == run_search(GOOD, ["output=all"], chunk_size=500).rows


@given(st.lists(st.fixed_dictionaries({}, optional={name: NASTY for name in FIELDS}),
                min_size=1, max_size=10))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_record_content_ends_the_search_cleanly(records):
    """Records made of anything (some of them may be usable): exit 0, no ERROR, in protocol."""
    result = run_search(GOOD[:50] + records, ["output=all"], chunk_size=7)
    assert set(result.exit_codes) == {0}, result.messages
    assert errors(result) == [], result.messages


FORGED_CELLS = {"_time": "1e400", "src": "10.9.0.5", "src_port": "3544", "packets": "-5",
                "bytes": "x", "flows": "1", "evidence": "4", "dests": "65.55.158.80=abc"}


@pytest.mark.parametrize("forged", [
    FORGED_CELLS,
    dict(FORGED_CELLS, _time=str(T0), packets="5", bytes="9" * 40),
    {"records": "many", "skipped": "reason=1"},
    {"candidates": "10.9.0.5 3544 %d 8.8.8.8 1 1" % T0},               # an entry short of a field
    {"candidates": "10.9.0.5 3544 1e400 8.8.8.8 1 1 1"},              # an entry with no time
])
def test_events_that_only_look_like_map_output_are_skipped(forged):
    """When no map phase runs before the command (after `| sort`, say), the reduce phase reads the
    events themselves: one that carries every partial field is taken for map output. Garbage in it
    is skipped and counted, never a failed search."""
    from teredo_spike.addresses import DEFAULT_INTERNAL, Networks
    from teredo_spike.fields import Chunk
    from teredo_spike.partials import PARTIAL_FIELDS, SKIP_FOREIGN_PARTIAL
    from teredo_spike.phases import ReducePhase
    from teredo_spike.scoring import Settings
    real = dict(FORGED_CELLS, _time=str(T0), packets="5", bytes="500", dests="65.55.158.80=5")
    body = io.StringIO()
    writer = csv.writer(body, lineterminator="\n")
    writer.writerow(PARTIAL_FIELDS)
    for row in (real, forged):
        writer.writerow(["1"] + [row.get(name, "") for name in PARTIAL_FIELDS[1:]])
    phase = ReducePhase(BUCKET, Networks.parse(DEFAULT_INTERNAL))
    phase.read(Chunk(body.getvalue()))
    hosts = phase.scored(Settings(span=BUCKET, threshold=6.0, min_packets=50, min_bytes=16000))
    assert phase.skipped[SKIP_FOREIGN_PARTIAL] == 1
    assert [hb.packets for hb in hosts["10.9.0.5"]] == [5]
