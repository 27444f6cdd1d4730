"""score_host, discount_familiar_peaks and episodes on hand-made hosts, each case small enough to
check by hand against the rule it names (scoring.py's docstring)."""

from array import array
from typing import Sequence

from teredo_spike.hostbuckets import METRICS, HostBucket, Traffic
from teredo_spike.scoring import (EPISODE_GAP, MIN_SD, Settings, discount_familiar_peaks,
                                  episodes, is_spike, score_host)

SPAN = 600
DAY = 86400
SETTINGS = Settings(span=SPAN, threshold=6.0, min_packets=50, min_bytes=16000)
RELAY = "83.170.1.38"


def bucket(at: int, packets: int, dests: Sequence[str] = (RELAY,)) -> HostBucket:
    share = packets // len(dests)
    return HostBucket("10.0.0.1", Traffic(
        bucket=at, packets=packets, bytes=100 * packets, flows=max(1, packets // 10),
        relay_packets=packets, dest_count=len(dests), dests=tuple(dests),
        dest_packets=(share,) * len(dests), client_ports=("3797",), servers=(), mapped=(),
        evidence=0))


def test_first_bucket_is_scored_against_the_prior_alone():
    import math
    hb = bucket(0, 20)
    prior = [(0.5, 4.0)] * len(METRICS)  # sd 2.0, above MIN_SD
    score_host([hb], prior, SETTINGS)
    expected = [(math.log1p(v) - 0.5) / 2.0 for v in hb.values]
    assert list(hb.z) == expected
    assert hb.score == max(expected)
    assert list(hb.baseline) == [0.5] * len(METRICS)
    assert list(hb.baseline_sd) == [2.0] * len(METRICS)


def test_the_sigma_floor_holds_when_the_prior_is_tight():
    hb = bucket(0, 20)
    score_host([hb], [(0.0, 0.0)] * len(METRICS), SETTINGS)
    assert list(hb.baseline_sd) == [MIN_SD] * len(METRICS)


def test_a_spike_does_not_teach_the_baseline_but_a_quiet_bucket_does():
    series = [bucket(i * SPAN, 10) for i in range(40)] + [bucket(40 * SPAN, 5000),
                                                          bucket(41 * SPAN, 5000)]
    prior = [(0.0, 1.0)] * len(METRICS)
    score_host(series, prior, SETTINGS)
    first, second = series[-2], series[-1]
    assert is_spike(first.score, first, SETTINGS) and is_spike(second.score, second, SETTINGS)
    assert list(second.baseline) == list(first.baseline)  # the first spike was not learned
    assert series[-3].score < SETTINGS.threshold
    assert list(series[-3].baseline) != list(first.baseline)  # the quiet bucket before was


def test_a_high_score_below_the_volume_floor_is_learned():
    floor = Settings(span=SPAN, threshold=6.0, min_packets=10 ** 9, min_bytes=10 ** 12)
    series = [bucket(i * SPAN, 10) for i in range(40)] + [bucket(40 * SPAN, 5000),
                                                          bucket(41 * SPAN, 5000)]
    score_host(series, [(0.0, 1.0)] * len(METRICS), floor)
    assert series[-2].score >= floor.threshold and not is_spike(series[-2].score, series[-2], floor)
    assert list(series[-1].baseline) != list(series[-2].baseline)


def spiked(at: int, dests: Sequence[str] = (RELAY,)) -> HostBucket:
    """A spike bucket as score_host would leave it: z 10 on every metric, sd 1."""
    hb = bucket(at, 3000, dests)
    hb.z = array("d", [10.0] * len(METRICS))
    hb.baseline_sd = array("d", [1.0] * len(METRICS))
    hb.score = 10.0
    return hb


def scores_after_discount(series):
    discount_familiar_peaks(series, SETTINGS)
    return [hb.score for hb in series]


def test_a_level_reached_on_two_earlier_days_is_familiar():
    assert scores_after_discount([spiked(0), spiked(DAY), spiked(2 * DAY)]) == [10.0, 0.0, 0.0]


def test_a_session_that_ended_yesterday_makes_its_level_familiar():
    assert scores_after_discount([spiked(0), spiked(DAY)]) == [10.0, 0.0]


def test_one_session_days_ago_is_not_familiar():
    assert scores_after_discount([spiked(0), spiked(3 * DAY)]) == [10.0, 10.0]


def test_within_twelve_hours_a_spike_never_excuses_itself():
    assert scores_after_discount([spiked(0), spiked(6 * 3600)]) == [10.0, 10.0]


def test_the_same_level_to_new_destinations_is_new_use():
    new = spiked(2 * DAY, dests=("198.51.100.1", "198.51.100.2"))
    assert scores_after_discount([spiked(0), spiked(DAY), new]) == [10.0, 0.0, 10.0]


def test_a_relay_new_to_the_host_with_a_fifth_of_the_packets_is_new_use():
    # three familiar destinations and one new, each with a quarter of the packets
    familiar = ("198.51.100.1", "198.51.100.2", "198.51.100.3")
    mixed = spiked(2 * DAY, dests=familiar + ("203.0.113.9",))
    before = [spiked(0, familiar), spiked(DAY, familiar)]
    assert scores_after_discount(before + [mixed])[-1] == 10.0


def marked(pattern: str) -> list:
    """Buckets one span apart; "S" a spike (its score its position), "." a quiet bucket."""
    series = []
    for i, mark in enumerate(pattern):
        hb = bucket(i * SPAN, 100)
        hb.is_spike = mark == "S"
        hb.score = float(i) if hb.is_spike else 0.0
        series.append(hb)
    return series


def test_episodes_allow_up_to_episode_gap_quiet_buckets():
    assert EPISODE_GAP == 2
    series = marked("SS..S...S.")
    found = episodes(series, SPAN)
    assert [(e.buckets[0].bucket, e.buckets[-1].bucket) for e in found] == [
        (0, 4 * SPAN), (8 * SPAN, 8 * SPAN)]
    assert [e.peak.bucket for e in found] == [4 * SPAN, 8 * SPAN]
    assert len(found[0].buckets) == 5  # the quiet buckets inside are part of the episode


def test_episodes_split_on_missing_buckets_too():
    series = marked("SS")
    series[1].bucket = 4 * SPAN  # the host had no Teredo traffic in buckets 1-3
    assert len(episodes(series, SPAN)) == 2
    assert episodes(marked("...."), SPAN) == []
