"""The scoring's fleet-wide statistics are computed cheaply (counted values, buckets gathered only
where the fleet correction can apply) but exactly: the same floats as their definitions computed
with statistics.median over every host-bucket. So is a host's routine level (kept per set of
sessions it draws on): routine_level's answer at every bucket."""

import math
import statistics
from typing import Dict, List, Tuple

from hypothesis import given, strategies as st

from teredo_spike.hostbuckets import METRICS, RELAY_PACKETS, HostSeries, Traffic, series_of
from teredo_spike.scoring import (FLEET_FLOOR, FLEET_MIN_HOSTS, MIN_SD, RELAY_MIN_PACKETS, Session,
                                  fleet_correct, population_prior, routine_level)

SPAN = 600
# Small counts repeat (as idle clients' do), large ones rarely.
COUNTS = st.one_of(st.integers(0, 40), st.integers(0, 10 ** 12))
SCORES = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), st.floats(0.0, 20.0))


def traffic(bucket: int, packets: int, bytes_: int, flows: int, dests: int, relay_packets: int
            ) -> Traffic:
    """A host-bucket's traffic with these METRICS values."""
    addresses = tuple("198.51.100.%d" % n for n in range(dests))
    dest_packets = (relay_packets,) + (0,) * (dests - 1)
    return Traffic(bucket=bucket, packets=packets, bytes=bytes_, flows=flows,
                   relay_packets=relay_packets, dest_count=dests, dests=addresses,
                   dest_packets=dest_packets, client_ports=("3544",), servers=(), mapped=(),
                   evidence=0)


def hosts_of(made: Dict[str, List[Traffic]]) -> Dict[str, HostSeries]:
    return {src: series_of(src, host) for src, host in made.items()}


@given(st.lists(st.tuples(COUNTS, COUNTS, COUNTS, st.integers(1, 4), COUNTS), min_size=1,
                max_size=150))
def test_population_prior_is_the_median_and_mad_of_every_host_bucket(values):
    made: Dict[str, List[Traffic]] = {}
    for n, metrics in enumerate(values):
        made.setdefault("10.0.0.%d" % (n % 7), []).append(traffic(n * SPAN, *metrics))
    priors = population_prior(hosts_of(made))
    assert len(priors) == len(METRICS)
    for k, prior in enumerate(priors):
        ys = [math.log1p(v[k]) for v in values]
        centre = statistics.median(ys)
        sd = max(1.4826 * statistics.median([abs(y - centre) for y in ys]), MIN_SD)
        assert prior == (centre, sd * sd)


@given(st.integers(1, 3),
       st.lists(st.lists(st.one_of(st.none(), st.tuples(SCORES, st.sampled_from([0, 0, RELAY_MIN_PACKETS]))),
                         min_size=3, max_size=3),
                min_size=FLEET_MIN_HOSTS - 2, max_size=2 * FLEET_MIN_HOSTS + 5))
def test_fleet_correction_is_each_crowded_buckets_median_above_one(buckets, hosts_scores):
    """`hosts_scores`: each host's (score, relay packets) in each bucket, None where it has no
    Teredo traffic (so that buckets fall on both sides of FLEET_MIN_HOSTS)."""
    made: Dict[str, List[Traffic]] = {}
    for h, scores in enumerate(hosts_scores):
        for b, cell in enumerate(scores[:buckets]):
            if cell is not None:
                made.setdefault("10.0.1.%d" % h, []).append(traffic(b * SPAN, 1, 100, 1, 1, cell[1]))
    hosts = hosts_of(made)
    for h, scores in enumerate(hosts_scores):
        series = hosts.get("10.0.1.%d" % h)
        for hb, cell in zip(series or (), (c for c in scores[:buckets] if c is not None)):
            hb.score = cell[0]
    expected = _corrected(hosts)
    fleet_correct(hosts)
    assert [(hb.score, hb.fleet_adjustment) for series in hosts.values() for hb in series] == expected


def _corrected(hosts: Dict[str, HostSeries]) -> List[Tuple[float, float]]:
    """(score, fleet_adjustment) of every host-bucket by the definition: the median of the scores
    of the bucket's signalling-only hosts (fewer than RELAY_MIN_PACKETS relay packets), if there
    are FLEET_MIN_HOSTS of them, above FLEET_FLOOR, taken from every host in the bucket."""
    in_bucket: Dict[int, List[float]] = {}
    for series in hosts.values():
        for hb in series:
            scores = in_bucket.setdefault(hb.bucket, [])
            if hb.values[RELAY_PACKETS] < RELAY_MIN_PACKETS:
                scores.append(hb.score)
    result = []
    for series in hosts.values():
        for hb in series:
            scores = in_bucket[hb.bucket]
            adjustment = statistics.median(scores) - FLEET_FLOOR if scores else 0.0
            if len(scores) >= FLEET_MIN_HOSTS and adjustment > 0:
                result.append((max(0.0, hb.score - adjustment), adjustment))
            else:
                result.append((hb.score, 0.0))
    return result


SESSION_LEVELS = st.lists(st.floats(0.0, 12.0), min_size=len(METRICS), max_size=len(METRICS))
HOUR = 3600


@given(st.lists(st.tuples(st.integers(0, 13 * 24), st.integers(0, 6), SESSION_LEVELS), max_size=8),
       st.one_of(st.none(), SESSION_LEVELS),
       st.lists(st.tuples(st.integers(0, 15 * 24 * 6), st.integers(0, 12)), min_size=1, max_size=12))
def test_routine_levels_of_a_host_are_routine_level_at_each_bucket(sessions, typical, judged):
    # discount_familiar_peaks keeps the levels computed over one host's sessions (`known`, by the
    # sessions drawn on): asked in turn at buckets in time order, the answer at each is the one
    # computed afresh
    made = [Session(start * HOUR, (start + hours) * HOUR, level, level)
            for start, hours, level in sorted(sessions)]
    known: dict = {}
    for step, back in sorted(judged):
        at = step * 600
        started = max(0, at - back * 600)
        assert routine_level(made, at, started, typical, known) == routine_level(made, at, started, typical)
