"""A flow record that lasts longer than a bucket is laid over the buckets it lasted
(records.spread, records.split): Zeek's conn.log reports a flow once, when it ends, with its start
in `ts` and its length in `duration`; a firewall writes a session's log when it closes.

Hand-made cases for the arithmetic; then the command itself, through the real protocol."""

import pytest
from hypothesis import given, strategies as st

from teredo_spike.records import (MAX_SPREAD_BUCKETS, RECORD_END, RECORD_START, split, spread)
from tests.flows import BUCKET, T0, as_tstats, flow
from tools.runner import run_search

SERVER = "65.55.158.80"
RELAY = "83.170.1.38"


def buckets(shares):
    return [bucket for bucket, _ in shares]


def test_a_record_of_a_bucket_or_less_is_the_bucket_of_its_time():
    assert spread(T0 + 100, 0.0, BUCKET) == [(T0, 1.0)]
    assert spread(T0 + 100, 499.9, BUCKET) == [(T0, 1.0)]
    assert spread(T0 + 100, 99.0, BUCKET, RECORD_END) == [(T0, 1.0)]
    # across a boundary too: an exporter's ordinary cut, counted where its _time puts it
    assert spread(T0 + 500, 600.0, BUCKET) == [(T0, 1.0)]
    assert spread(T0 + 100, 600.0, BUCKET, RECORD_END) == [(T0, 1.0)]


def test_a_record_from_its_start_lasts_over_the_buckets_after_it():
    # 10:05 for 20 minutes: 5 minutes in the first bucket, 10 in the next, 5 in the third
    shares = spread(T0 + 300, 1200.0, BUCKET)
    assert shares == [(T0, 0.25), (T0 + BUCKET, 0.75), (T0 + 2 * BUCKET, 1.0)]
    assert split(1000, shares) == [250, 500, 250]


def test_a_record_that_ends_as_a_bucket_begins_stays_out_of_it():
    assert buckets(spread(T0, 2.0 * BUCKET, BUCKET)) == [T0, T0 + BUCKET]


def test_a_record_from_its_end_lasts_over_the_buckets_before_it():
    # 20 minutes that ended at 10:25: from 10:05, as above
    shares = spread(T0 + 2 * BUCKET + 300, 1200.0, BUCKET, RECORD_END)
    assert shares == [(T0, 0.25), (T0 + BUCKET, 0.75), (T0 + 2 * BUCKET, 1.0)]
    assert split(1000, shares) == [250, 500, 250]
    # the bucket its _time falls in is always one of them, even when no time of it is there
    assert buckets(spread(T0 + BUCKET, 900.0, BUCKET, RECORD_END)) == [T0 - BUCKET, T0,
                                                                        T0 + BUCKET]


def test_a_record_longer_than_the_bound_is_laid_over_the_bound_with_all_its_traffic():
    shares = spread(T0, 1e308, BUCKET)
    assert len(shares) == MAX_SPREAD_BUCKETS and shares[0][0] == T0
    assert sum(split(10 ** 6, shares)) == 10 ** 6
    back = spread(T0, 1e308, BUCKET, RECORD_END)
    assert len(back) == MAX_SPREAD_BUCKETS and back[-1][0] == T0


@given(st.floats(0, 40 * BUCKET), st.floats(0, 10 ** 6), st.integers(0, 2 ** 53),
       st.sampled_from([RECORD_START, RECORD_END]), st.sampled_from([60, 600, 3600]))
def test_every_packet_is_counted_once_in_consecutive_buckets(offset, duration, total, record_time,
                                                             span):
    shares = spread(T0 + offset, duration, span, record_time)
    parts = split(total, shares)
    assert sum(parts) == total and min(parts) >= 0
    starts = buckets(shares)
    assert starts == list(range(starts[0], starts[-1] + span, span))
    assert T0 + offset - (T0 + offset) % span in starts
    assert [share for _, share in shares] == sorted(share for _, share in shares)
    assert shares[-1][1] == 1.0


# ---- through the command ----------------------------------------------------------------------

def zeek_client(record_time: str = RECORD_START):
    """One host's Teredo as Zeek reports it: one record of its client's refreshes to the server for
    the 6 hours it was online, and one of a 30-minute tunnel to a relay from the same port, 3 hours
    in. `_time` is each flow's start, or its end for record_time=end."""
    hours6, tunnel = 36 * BUCKET, 3 * BUCKET
    start = T0 + 18 * BUCKET
    refresh = flow(T0, "10.9.0.1", 3797, SERVER, 3544, 36 * 25, 36 * 25 * 90, "teredo")
    relay = flow(start, "10.9.0.1", 3797, RELAY, 52000, 3 * 9000, 3 * 9000 * 1200)
    refresh["duration"], relay["duration"] = "%.3f" % (hours6 - 10), "%.3f" % tunnel
    if record_time == RECORD_END:
        refresh["_time"] = "%.3f" % (T0 + hours6 - 10)
        relay["_time"] = "%.3f" % (start + tunnel)
    return [refresh, relay]


@pytest.mark.parametrize("record_time", [RECORD_START, RECORD_END])
@pytest.mark.parametrize("partitions", [1, 2])
def test_long_records_are_spread_and_their_port_is_live_while_they_last(record_time, partitions,
                                                                        python):
    """On two indexers the relay record is on the one without the client's server flow: the map
    phase passes it on as a candidate entry, and the search head spreads it as the exact reader
    would."""
    result = run_search(zeek_client(record_time), ["output=all", "record_time=" + record_time],
                        python=python, partitions=partitions)
    assert set(result.exit_codes) == {0}, result.messages
    rows = {int(float(row["_time"])): row for row in result.rows}
    assert sorted(rows) == [T0 + i * BUCKET for i in range(36)]
    assert sum(int(row["packets"]) for row in rows.values()) == 36 * 25 + 3 * 9000
    tunnel = [T0 + (18 + i) * BUCKET for i in range(3)]
    # the relay traffic, on an arbitrary port, counts because the refreshes' record lasts over it
    assert [int(rows[b]["relay_packets"]) for b in tunnel] == [9000, 9000, 9000]
    assert all(int(row["relay_packets"]) == 0 for b, row in rows.items() if b not in tunnel)
    # the refreshes, evenly: 25 packets a bucket
    assert {int(row["packets"]) for b, row in rows.items() if b not in tunnel} == {25}


def test_a_client_online_for_a_fortnight_keeps_its_port_live_to_the_end(python):
    """An always-on host's client: one Zeek record of its refreshes for 14 days, and a tunnel from
    the same port on day 12. A bound shorter than the search (it was a week) cut the refreshes' record
    short, and the tunnel was tied to no client: not Teredo at all."""
    days14, day12 = 14 * 144 * BUCKET, T0 + 12 * 144 * BUCKET
    refresh = flow(T0, "10.9.0.1", 3797, SERVER, 3544, 14 * 144 * 25, 14 * 144 * 25 * 90, "teredo")
    refresh["duration"] = "%.3f" % (days14 - 10)
    relay = flow(day12, "10.9.0.1", 3797, RELAY, 52000, 9000, 9000 * 1200)
    result = run_search([refresh, relay], ["output=all"], python=python)
    assert set(result.exit_codes) == {0}, result.messages
    rows = {int(float(row["_time"])): row for row in result.rows}
    assert len(rows) == 14 * 144 <= MAX_SPREAD_BUCKETS
    assert int(rows[day12]["relay_packets"]) == 9000
    assert {int(row["packets"]) for b, row in rows.items() if b != day12} == {25}


def test_without_a_duration_a_record_counts_at_its_time():
    """The same records without `duration` (a source that drops it): the refreshes count in their
    first bucket, and the tunnel, 3 hours later, has no evidence of a live client port near it."""
    records = zeek_client()
    for record in records:
        del record["duration"]
    result = run_search(records, ["output=all"])
    assert [(int(float(row["_time"])), int(row["packets"])) for row in result.rows] == [
        (T0, 36 * 25)]


def test_the_tstats_rows_of_long_records_are_spread_as_the_records_are():
    """The shipped base (`tstats ... max(All_Traffic.duration) AS duration ... BY _time span=10m`)
    gives each group its longest duration and its bucket's start as _time."""
    records = zeek_client()
    one_pass = run_search(records, ["output=all"]).rows
    grouped = run_search(as_tstats(records), ["output=all"]).rows
    assert [(r["_time"], r["packets"], r["relay_packets"]) for r in grouped] == [
        (r["_time"], r["packets"], r["relay_packets"]) for r in one_pass]
    assert len(grouped) == 36


def test_an_absurd_duration_is_laid_over_31_days_and_the_search_ends_cleanly(python):
    """A Teredo record whose duration is 1e308 seconds (garbage, or an event made to look like
    one) makes at most MAX_SPREAD_BUCKETS host-buckets, with all its packets."""
    record = flow(T0, "10.9.0.1", 3797, SERVER, 3544, 5000, 500000, "teredo")
    record["duration"] = "1e308"
    result = run_search([record], ["output=all"], python=python)
    assert result.exit_codes == [0, 0], result.messages
    assert not [m for m in result.messages if m[0] in ("ERROR", "FATAL")], result.messages
    assert len(result.rows) == MAX_SPREAD_BUCKETS
    assert sum(int(row["packets"]) for row in result.rows) == 5000
