"""score_host, discount_familiar_peaks and episodes on hand-made hosts, each case small enough to
check by hand against the rule it names (scoring.py's docstring)."""

import math
import statistics
from typing import List, NamedTuple, Sequence, Tuple, Union

import pytest
from hypothesis import given, settings, strategies as st

from teredo_spike.hostbuckets import (BYTES, METRICS, PACKETS, RELAY_PACKETS, HostSeries, Traffic,
                                      series_of as host_series)
from teredo_spike.output import (CRITICAL_ROUTINE_MULTIPLE, OWN_HIGH_MULTIPLE, SHORT_HISTORY, episode_row,
                                 reason, severity)
from teredo_spike.scoring import (ANY_HOUR_GAP, ANY_HOUR_SESSIONS, DAILY_SESSIONS, DAILY_SPREAD, EPISODE_GAP,
                                  EVENT_MIN_HOSTS, EVENT_RATIO, EVENT_WINDOW, LONE_RATIO, MIN_SD, ONCE_BELOW,
                                  RELAY_MIN_PACKETS, ROUTINE_HOURS, ROUTINE_RATIO, SWING_BUCKETS, SWING_QUIET,
                                  Settings, background_level, discount_familiar_peaks, episodes, fleet_events,
                                  fleet_use_level, is_spike, score_host)

SPAN = 600
DAY = 86400
SETTINGS = Settings(span=SPAN, threshold=6.0, min_packets=50, min_bytes=16000)
RELAY = "83.170.1.38"


def bucket(at: int, packets: int, dests: Sequence[str] = (RELAY,), flows: int = 0) -> Traffic:
    share = packets // len(dests)
    return Traffic(
        bucket=at, packets=packets, bytes=100 * packets, flows=flows or max(1, packets // 10),
        relay_packets=packets, dest_count=len(dests), dests=tuple(dests),
        dest_packets=(share,) * len(dests), client_ports=("3797",), servers=(), mapped=(),
        evidence=0)


class Spiked(NamedTuple):
    """A bucket as score_host leaves a spike: z 10 on every metric, sd `sd` (series_of)."""

    traffic: Traffic
    sd: float = 1.0


Made = Union[Traffic, Spiked]


def series_of(made: Sequence[Made], src: str = "10.0.0.1") -> HostSeries:
    """A host's series of these buckets (in time order), the Spiked ones scored as spikes."""
    series = host_series(src, [m.traffic if isinstance(m, Spiked) else m for m in made])
    for index, m in enumerate(made):
        if isinstance(m, Spiked):
            hb = series[index]
            hb.z = [10.0] * len(METRICS)
            series.keep_spike_baseline(index, [0.0] * len(METRICS) + [m.sd] * len(METRICS))
            hb.score = 10.0
    return series


def test_first_bucket_is_scored_against_the_prior_alone():
    import math
    series = series_of([bucket(0, 20)])
    hb = series[0]
    prior = [(0.5, 4.0)] * len(METRICS)  # sd 2.0, above MIN_SD
    score_host(series, prior, SETTINGS)
    expected = [(math.log1p(v) - 0.5) / 2.0 for v in hb.values]
    assert list(hb.z) == expected
    assert hb.score == max(expected)
    assert (hb.baseline(PACKETS), hb.baseline(BYTES), hb.baseline_sd(PACKETS)) == (0.5, 0.5, 2.0)
    # what is kept of the baseline of a bucket that is no spike: what result rows report
    with pytest.raises(KeyError):
        hb.baseline(METRICS.index("flows"))


def test_the_sigma_floor_holds_when_the_prior_is_tight():
    series = series_of([bucket(0, 20)])
    hb = series[0]
    score_host(series, [(0.0, 0.0)] * len(METRICS), SETTINGS)
    assert hb.baseline_sd(PACKETS) == MIN_SD


def test_a_spike_does_not_teach_the_baseline_but_a_quiet_bucket_does():
    series = series_of([bucket(i * SPAN, 10) for i in range(40)] + [bucket(40 * SPAN, 5000),
                                                                    bucket(41 * SPAN, 5000)])
    prior = [(0.0, 1.0)] * len(METRICS)
    score_host(series, prior, SETTINGS)
    first, second = series[-2], series[-1]
    assert (is_spike(first.score, first.values, SETTINGS)
            and is_spike(second.score, second.values, SETTINGS))
    # a spike keeps its baseline of every metric
    every = range(len(METRICS))
    assert [second.baseline(k) for k in every] == [first.baseline(k) for k in every]  # not learned
    assert [second.baseline_sd(k) for k in every] == [first.baseline_sd(k) for k in every]
    assert series[-3].score < SETTINGS.threshold
    assert series[-3].baseline(PACKETS) != first.baseline(PACKETS)  # the quiet bucket before was


def test_a_high_score_below_the_volume_floor_is_learned_data_without_widening_the_baseline():
    # signalling (to the server: no relay packets) far above the baseline but below the volume
    # floor is learned; the same volume through the tunnel short of a spike moves the baseline's
    # level but not its spread (which, widened, let a session's buckets widen it until the host's
    # tunnels scored as its baseline)
    floor = Settings(span=SPAN, threshold=6.0, min_packets=10 ** 9, min_bytes=10 ** 12)

    def last_two(relay: int) -> Sequence:
        burst = [bucket(at * SPAN, 5000)._replace(relay_packets=relay) for at in (40, 41)]
        series = series_of([bucket(i * SPAN, 10) for i in range(40)] + burst)
        score_host(series, [(0.0, 1.0)] * len(METRICS), floor)
        assert (series[-2].score >= floor.threshold
                and not is_spike(series[-2].score, series[-2].values, floor))
        return series[-2], series[-1]
    signalling = last_two(0)
    assert signalling[1].baseline(PACKETS) != signalling[0].baseline(PACKETS)
    assert signalling[1].baseline_sd(PACKETS) > signalling[0].baseline_sd(PACKETS)
    data = last_two(RELAY_MIN_PACKETS)
    assert data[1].baseline(PACKETS) == pytest.approx(signalling[1].baseline(PACKETS))
    assert data[1].baseline_sd(PACKETS) <= data[0].baseline_sd(PACKETS)


def spiked(at: int, dests: Sequence[str] = (RELAY,), packets: int = 3000, flows: int = 0
           ) -> Spiked:
    """A spike bucket as score_host would leave it: z 10 on every metric, sd 1."""
    return Spiked(bucket(at, packets, dests, flows))


def scores_after_discount(made: Sequence[Made]) -> List[float]:
    series = series_of(made)
    discount_familiar_peaks(series, SETTINGS)
    return list(series.score)


def test_a_level_reached_on_two_earlier_days_is_familiar():
    assert scores_after_discount([spiked(0), spiked(DAY), spiked(2 * DAY)]) == [10.0, 0.0, 0.0]


def test_a_session_that_ended_yesterday_makes_its_level_familiar():
    assert scores_after_discount([spiked(0), spiked(DAY)]) == [10.0, 0.0]


def test_one_session_days_ago_is_not_familiar():
    assert scores_after_discount([spiked(0), spiked(3 * DAY)]) == [10.0, 10.0]


def test_within_twelve_hours_a_spike_never_excuses_itself():
    assert scores_after_discount([spiked(0), spiked(6 * 3600)]) == [10.0, 10.0]


def test_the_same_level_to_new_destinations_is_routine_when_it_recurs():
    # destination novelty never vetoes the routine rule: peers are other people every session
    new = spiked(2 * DAY, dests=("198.51.100.1", "198.51.100.2"))
    assert scores_after_discount([spiked(0), spiked(DAY), new])[-1] < SETTINGS.threshold


def test_a_relay_new_to_the_host_is_not_familiar_destinations_after_days_away():
    # one session 3 days ago (neither routine rule applies): the familiar-destination rule alone
    # would excuse the same relays, not a new relay with a fifth of the packets
    familiar = ("198.51.100.1", "198.51.100.2", "198.51.100.3")
    mixed = spiked(3 * DAY, dests=familiar + ("203.0.113.9",))
    same = spiked(3 * DAY, dests=familiar)
    assert scores_after_discount([spiked(0, familiar), mixed])[-1] == 10.0
    assert scores_after_discount([spiked(0, familiar), spiked(DAY, familiar), same])[-1] == 0.0


def daily_sessions(days: int, hour: int = 20, packets: int = 3000) -> List[Made]:
    """A heavy user's evening session every day, 6 buckets, to destinations new every day."""
    series = []
    for day in range(days):
        dests = tuple("198.51.%d.%d" % (day, i) for i in range(1, 41))
        series += [spiked(day * DAY + hour * 3600 + i * SPAN, dests, packets) for i in range(6)]
    return series


def pages(made: Sequence[Made]) -> Tuple[List[bool], HostSeries]:
    """Per day, whether any of its buckets is still a spike after discount_familiar_peaks; and
    the series."""
    series = series_of(made)
    discount_familiar_peaks(series, SETTINGS)
    out = {}
    for hb in series:
        out[hb.bucket // DAY] = (out.get(hb.bucket // DAY, False)
                                 or is_spike(hb.score, hb.values, SETTINGS))
    return [out[day] for day in sorted(out)], series


def test_a_heavy_user_whose_destinations_change_every_day_stops_paging_by_day_three():
    assert pages(daily_sessions(7))[0][2:] == [False] * 5


def test_a_heavy_users_tunnel_six_times_its_routine_pages():
    tunnel = [spiked(5 * DAY + 20 * 3600 + i * SPAN, packets=6 * 3000) for i in range(2)]
    _, scored = pages(daily_sessions(5) + tunnel)
    assert 6 > ROUTINE_RATIO and list(scored.score[-2:]) == [10.0, 10.0]


def test_a_lone_bucket_in_a_session_pages_only_from_lone_ratio_times_the_routine():
    # one bucket 6x the routine, its neighbours at the routine: a session's own swing; the same
    # bucket above LONE_RATIO pages. So do two such buckets in a row (SWING_BUCKETS), and three
    # page at 6x: a tunnel lasts.
    def scores(times: float, run: int) -> List[float]:
        at = 5 * DAY + 20 * 3600
        swing = ([spiked(at, packets=3000)]
                 + [spiked(at + i * SPAN, packets=int(times * 3000)) for i in range(1, run + 1)]
                 + [spiked(at + (run + 1) * SPAN, packets=3000)])
        return list(pages(daily_sessions(5) + swing)[1].score[-run - 1:-1])
    assert ROUTINE_RATIO < 6 < LONE_RATIO < 11 and SWING_BUCKETS == 2
    assert max(scores(6, 1)) < SETTINGS.threshold and scores(11, 1) == [10.0]
    assert max(scores(6, 2)) < SETTINGS.threshold and scores(11, 2) == [10.0, 10.0]
    assert scores(6, 3) == [10.0] * 3
    # a long tunnel about ROUTINE_RATIO x the routine crosses it in ones and twos: not a swing
    at = 5 * DAY + 20 * 3600
    hovering = [spiked(at + i * SPAN, packets=(6 if i % SWING_QUIET == 1 else 4) * 3000)
                for i in range(9)]
    assert 4 < ROUTINE_RATIO
    assert pages(daily_sessions(5) + hovering)[1].score[-8] == 10.0
    # between two idle buckets (signalling to the server only: no session to swing) 6x pages
    at = 5 * DAY + 20 * 3600
    idle = [bucket(at + i * SPAN, 25)._replace(relay_packets=0) for i in (0, 2)]
    alone = [idle[0], spiked(at + SPAN, packets=6 * 3000), idle[1]]
    assert pages(daily_sessions(5) + alone)[1].score[-2] == 10.0


def test_familiar_destinations_do_not_excuse_a_tunnel_above_the_routine():
    # evening sessions to the same relay every day, each with one bucket at 4x (a swing: the
    # session's peak); on day 5 two buckets at 6x the routine to that relay page, though they are
    # within ROUTINE_RATIO of the sessions' peaks (the familiar-destination rule's level)
    sessions = []
    for day in range(5):
        sessions += [spiked(day * DAY + 20 * 3600 + i * SPAN, packets=4 * 3000 if i == 2 else 3000)
                     for i in range(6)]
    tunnel = [spiked(5 * DAY + 20 * 3600 + i * SPAN, packets=6 * 3000) for i in range(2)]
    assert 6 / 4 < ROUTINE_RATIO < 6
    _, scored = pages(sessions + tunnel)
    assert list(scored.score[-2:]) == [10.0, 10.0]
    # at an hour without a routine (the morning), the same destinations at the sessions' level
    # are still familiar
    morning = [spiked(5 * DAY + 9 * 3600 + i * SPAN) for i in range(2)]
    _, scored = pages(sessions + morning)
    assert max(scored.score[-2:]) < SETTINGS.threshold


def test_bytes_alone_above_the_routine_do_not_page():
    # a routine bucket whose packets are larger (8x the bytes at the routine's packets): bytes
    # per packet change with what a session carries; the same bytes with 6x the packets page
    at = 5 * DAY + 20 * 3600
    big = [Spiked(bucket(at + i * SPAN, 3000)._replace(bytes=8 * 100 * 3000)) for i in range(2)]
    _, scored = pages(daily_sessions(5) + big)
    assert max(scored.score[-2:]) < SETTINGS.threshold
    more = [spiked(at + i * SPAN, packets=6 * 3000) for i in range(2)]
    _, scored = pages(daily_sessions(5) + more)
    assert list(scored.score[-2:]) == [10.0, 10.0]


def test_destinations_or_bytes_far_above_the_routine_page_only_with_packets():
    # daily evening sessions of 3,000 packets to 40 destinations; on day 5 a bucket inside a
    # session reaches 20x the destinations at the routine's packets, or carries 7x the packets
    # with 12x the bytes: a session's swings (the peers of a swarm, bytes per packet). Two buckets
    # in a row at 6x the packets (with the destinations) page.
    at = 5 * DAY + 20 * 3600
    swarm = tuple("203.0.%d.%d" % (i // 200, i % 200 + 1) for i in range(800))
    assert len(swarm) == 20 * 40
    heavy_bytes = Spiked(bucket(at + SPAN, 7 * 3000)._replace(bytes=12 * 100 * 3000))
    for middle in (spiked(at + SPAN, swarm), heavy_bytes):
        session = [spiked(at), middle, spiked(at + 2 * SPAN)]
        _, scored = pages(daily_sessions(5) + session)
        assert max(scored.score[-3:]) < SETTINGS.threshold
    tunnel = [spiked(at + i * SPAN, swarm, packets=6 * 3000) for i in range(2)]
    _, scored = pages(daily_sessions(5) + tunnel)
    assert list(scored.score[-2:]) == [10.0, 10.0]


def test_an_hour_used_once_at_the_hosts_daily_level_is_routine():
    # evening sessions on days 0-3 and one lunch session on day 1: lunch on day 5 at the daily
    # level is routine; an hour used once by a tunnel (10x the daily level) is not, nor an hour
    # never used
    assert DAILY_SESSIONS <= 5
    def peers(net: int) -> Tuple[str, ...]:
        return tuple("198.18.%d.%d" % (net, i) for i in range(1, 41))  # as daily_sessions: new ones
    lunch = [spiked(1 * DAY + 12 * 3600 + i * SPAN, peers(1)) for i in range(6)]
    evenings = sorted(daily_sessions(4) + lunch, key=lambda m: m.traffic.bucket)
    again = [spiked(5 * DAY + 12 * 3600 + i * SPAN, peers(5)) for i in range(6)]
    _, scored = pages(evenings + again)
    assert max(scored.score[-6:]) < SETTINGS.threshold
    tunnel = [spiked(1 * DAY + 12 * 3600 + i * SPAN, peers(1), packets=10 * 3000) for i in range(6)]
    _, scored = pages(sorted(daily_sessions(4) + tunnel, key=lambda m: m.traffic.bucket) + again)
    assert list(scored.score[-6:]) == [10.0] * 6
    small = [spiked(1 * DAY + 12 * 3600 + i * SPAN, peers(1), packets=300) for i in range(6)]
    repeated = [spiked(5 * DAY + 12 * 3600 + i * SPAN, peers(5), packets=300) for i in range(6)]
    _, scored = pages(sorted(daily_sessions(4) + small, key=lambda m: m.traffic.bucket) + repeated)
    assert list(scored.score[-6:]) == [10.0] * 6, "an hour used once far below the daily level"
    _, scored = pages(daily_sessions(4) + again)
    assert list(scored.score[-6:]) == [10.0] * 6


def test_an_hour_used_once_in_a_low_session_is_routine_down_to_once_below():
    # as above, the one lunch session lower than the evenings (3,000): 3x below the host's median,
    # lunch at the daily level on day 5 is routine (within ROUTINE_RATIO of that session); 4.3x
    # below (beyond ONCE_BELOW), no session of the host's use was at lunch: a new hour
    def lunch_pages(once: int) -> bool:
        def peers(day: int) -> Tuple[str, ...]:  # new ones every session, as daily_sessions
            return tuple("198.18.%d.%d" % (day, i) for i in range(1, 41))
        lunch = [spiked(1 * DAY + 12 * 3600 + i * SPAN, peers(1), packets=once) for i in range(6)]
        again = [spiked(5 * DAY + 12 * 3600 + i * SPAN, peers(5), packets=3000) for i in range(6)]
        _, scored = pages(sorted(daily_sessions(4) + lunch, key=lambda m: m.traffic.bucket) + again)
        return max(scored.score[-6:]) >= SETTINGS.threshold

    assert 3000 / 1000 < ONCE_BELOW < 3000 / 700 < ROUTINE_RATIO
    assert not lunch_pages(1000)
    assert lunch_pages(700)


def test_a_host_that_uses_teredo_at_any_hour_has_no_hour_it_never_uses():
    # one-bucket sessions at the daily level on days 0-3, new destinations each; then one at 03:00
    # on day 5, more than ROUTINE_HOURS from every earlier one (an hour the host never used)
    def session(day: int, hour: int, packets: int = 3000) -> Made:
        return spiked(day * DAY + hour * 3600, tuple("198.18.%d.%d" % (day, i) for i in range(1, 41)), packets)

    def night_pages(hours: Sequence[int], packets: int = 3000, earlier: int = 3000) -> bool:
        made = [session(day, hour, earlier if day == 0 else 3000) for day, hour in enumerate(hours)]
        _, scored = pages(made + [session(5, 3, packets)])
        return scored[-1].score == 10.0

    assert ANY_HOUR_SESSIONS == 4 and ANY_HOUR_GAP == 12 * 3600
    assert 3 - ROUTINE_HOURS / 3600 > 0 and 6 - 3 > ROUTINE_HOURS / 3600  # 03:00 is no used hour
    assert not night_pages([0, 6, 12, 18]), "starts 6 hours apart: any hour"
    assert night_pages([6, 12, 18]), "3 sessions are not enough"
    assert night_pages([12, 13, 18, 20]), "a gap of 16 hours: the host has hours of its own"
    assert night_pages([0, 6, 12, 18], packets=6 * 3000), "ROUTINE_RATIO above the daily level"
    # the session at 00:00 was a tunnel (10x the others): it does not spread the host's hours
    assert night_pages([0, 6, 12, 18, 20], earlier=10 * 3000)
    assert not night_pages([0, 6, 12, 18, 20])


def test_the_same_hour_reaches_routine_hours_either_side_of_a_session():
    # sessions 20:00-21:00 on days 0-2: on day 3 a session starting just inside ROUTINE_HOURS
    # before 20:00 is routine, one just outside it pages
    inside = 20 * 3600 - ROUTINE_HOURS + SPAN
    outside = 20 * 3600 - ROUTINE_HOURS - SPAN
    for start, expected in ((inside, False), (outside, True)):
        _, scored = pages(daily_sessions(3) + [spiked(3 * DAY + start)])
        assert (scored[-1].score == 10.0) == expected


def test_the_routine_level_at_an_hour_the_host_never_uses_pages():
    # sessions at 20:00 on days 0-2, new destinations each: the next morning at 10:00 (14 hours
    # after the last one started) pages, that evening and three days later at 20:00 do not
    series = daily_sessions(3)
    _, scored = pages(series + [spiked(3 * DAY + 10 * 3600), spiked(3 * DAY + 20 * 3600)])
    morning, evening = scored[-2], scored[-1]
    assert morning.score == 10.0 and evening.score < SETTINGS.threshold
    _, scored = pages(daily_sessions(3) + [spiked(6 * DAY + 21 * 3600)])
    assert scored[-1].score < SETTINGS.threshold


def test_a_few_bubble_packets_with_a_zero_baseline_never_page():
    # an idle client: 25 packets a bucket to its server only (relay packets 0); then its
    # qualification burst (60 more to the server) and 8 bubble packets to two new peers
    server = "65.55.158.80"

    def idle(at: int, to_server: int, bubbles: int = 0) -> Traffic:
        dests = (server,) + (("198.51.100.7", "198.51.100.8") if bubbles else ())
        shares = (to_server,) + ((bubbles // 2,) * 2 if bubbles else ())
        return Traffic(
            bucket=at, packets=sum(shares), bytes=90 * sum(shares), flows=len(dests) + 24,
            relay_packets=bubbles, dest_count=len(dests), dests=dests, dest_packets=shares,
            client_ports=("3797",), servers=(server,), mapped=(), evidence=0)

    import math
    # a fleet of idle clients
    prior = [(math.log1p(v), MIN_SD ** 2) for v in series_of([idle(0, 25)])[0].values]
    quiet = [idle(i * SPAN, 25) for i in range(100)]
    series = series_of(quiet + [idle(100 * SPAN, 85, bubbles=8)], "10.0.0.2")
    score_host(series, prior, SETTINGS)
    last = series[-1]
    assert last.packets >= SETTINGS.min_packets and 8 < RELAY_MIN_PACKETS
    assert last.z[METRICS.index("relay_packets")] >= SETTINGS.threshold  # z alone would page
    assert not is_spike(last.score, last.values, SETTINGS)
    # the same bucket with a tunnel's relay packets does page
    series = series_of(quiet + [idle(100 * SPAN, 85, bubbles=2 * RELAY_MIN_PACKETS)], "10.0.0.2")
    score_host(series, prior, SETTINGS)
    assert is_spike(series[-1].score, series[-1].values, SETTINGS)


def test_critical_needs_a_high_score_and_volume_far_above_the_fleets_use():
    assert severity(30.0, False, 1, relay_packets=30000, fleet_level=1500.0,
                    routine_relay_packets=None) == "critical"
    assert severity(30.0, False, 1, relay_packets=29999, fleet_level=1500.0,
                    routine_relay_packets=None) == "high"
    assert severity(20.0, True, 10, relay_packets=30000, fleet_level=1500.0,
                    routine_relay_packets=None) == "high"
    assert (severity(9.5, True, 1, 0, 0.0, None) == "high"
            and severity(9.5, False, 1, 0, 0.0, None) == "medium")
    assert (severity(6.0, False, 1, 0, 0.0, None) == "low"
            and severity(6.0, False, 3, 0, 0.0, None) == "medium")
    # no relay use in the fleet: the relay floor still applies
    assert severity(30.0, False, 1, relay_packets=RELAY_MIN_PACKETS - 1, fleet_level=0.0,
                    routine_relay_packets=None) == "high"


def test_a_spike_near_the_hosts_own_level_is_at_most_medium():
    # a heavy user's spike judged against its own level (1,000 relay packets): below
    # OWN_HIGH_MULTIPLE x that level it is medium at most, whatever the score; from it on, as before
    own = 1000.0
    below, at_multiple = int(OWN_HIGH_MULTIPLE * own) - 1, int(OWN_HIGH_MULTIPLE * own)
    assert severity(20.0, False, 5, below, 100.0, own, own_level=own) == "medium"
    assert severity(20.0, False, 5, at_multiple, 100.0, own, own_level=own) == "high"
    assert severity(6.0, False, 1, below, 100.0, own, own_level=own) == "low"  # never raised
    # far below the host's use (more than ONCE_BELOW under it): not the host's use, its score's
    assert severity(20.0, False, 5, int(own / ONCE_BELOW), 100.0, own, own_level=own) == "medium"
    assert severity(20.0, False, 5, int(own / ONCE_BELOW) - 1, 100.0, own, own_level=own) == "high"
    # nor critical: volume far above the fleet, but near the level the host was judged against
    # (a new hour: no routine there, own_level its typical session)
    assert severity(30.0, False, 1, 30000, 100.0, None, own_level=3001.0) == "medium"
    assert severity(30.0, False, 1, 30000, 100.0, None, own_level=3000.0) == "critical"
    assert severity(30.0, False, 1, 30000, 100.0, None) == "critical"


def test_critical_needs_volume_far_above_the_hosts_routine_too():
    routine = 30000 / CRITICAL_ROUTINE_MULTIPLE
    assert CRITICAL_ROUTINE_MULTIPLE > ROUTINE_RATIO  # "far above": more than where paging starts
    assert severity(30.0, False, 1, relay_packets=30000, fleet_level=1500.0,
                    routine_relay_packets=routine) == "critical"
    assert severity(30.0, False, 1, relay_packets=30000, fleet_level=1500.0,
                    routine_relay_packets=routine + 1) == "high"


def test_scoring_keeps_the_routine_relay_packets_of_a_spike_it_leaves_a_spike():
    # a heavy user's evening sessions (3,000 relay packets a bucket), then a tunnel at 20:00 on
    # day 5 at 6x that for two buckets (pages: above ROUTINE_RATIO) with a score far above the
    # critical one
    tunnel = 6 * 3000
    made = daily_sessions(5) + [spiked(5 * DAY + 20 * 3600 + i * SPAN, packets=tunnel)
                                for i in range(2)]
    series = series_of(made)
    for index in (-2, -1):
        series[index].z = [30.0] * len(METRICS)
        series[index].score = 30.0
    discount_familiar_peaks(series, SETTINGS)
    peak = series[-2]
    assert peak.score == 30.0 and peak.routine_relay_packets == pytest.approx(3000)
    # what the routine rule excused keeps none: it is given no severity
    assert series[-3].score < SETTINGS.threshold and series[-3].routine_relay_packets is None
    series.is_spike[len(series) - 2] = True
    [episode] = [e for e in episodes(series, SPAN) if e.first == len(series) - 2]
    row = episode_row(episode, SETTINGS, False, fleet_level=0.0)
    # 6x its routine: not critical (below CRITICAL_ROUTINE_MULTIPLE), and at most medium (below
    # OWN_HIGH_MULTIPLE, where a heavy user's own phases reach), whatever the score
    assert 6 < OWN_HIGH_MULTIPLE < CRITICAL_ROUTINE_MULTIPLE and row["severity"] == "medium"
    # the same bucket on a host with no routine at that hour is critical
    fresh = series_of([spiked(5 * DAY + 20 * 3600, packets=tunnel)])
    fresh[0].z = [30.0] * len(METRICS)
    fresh[0].score = 30.0
    discount_familiar_peaks(fresh, SETTINGS)
    fresh.is_spike[0] = True
    assert fresh[0].routine_relay_packets is None
    assert episode_row(episodes(fresh, SPAN)[0], SETTINGS, False, 0.0)["severity"] == "critical"


def test_the_fleet_use_level_is_the_median_of_buckets_with_relay_use():
    hosts = {"a": series_of([bucket(i * SPAN, p) for i, p in enumerate((10, 100, 300))], "a"),
             "b": series_of([bucket(0, 1000), bucket(SPAN, RELAY_MIN_PACKETS - 1)], "b")}
    assert fleet_use_level(hosts) == 300.0
    assert fleet_use_level({"c": series_of([bucket(0, 5)], "c")}) == 0.0


def marked(pattern: str) -> HostSeries:
    """Buckets one span apart; "S" a spike (its score its position), "." a quiet bucket."""
    series = series_of([bucket(i * SPAN, 100) for i in range(len(pattern))])
    for hb, mark in zip(series, pattern):
        hb.is_spike = mark == "S"
        hb.score = float(hb.index) if hb.is_spike else 0.0
    return series


def test_episodes_allow_up_to_episode_gap_quiet_buckets():
    assert EPISODE_GAP == 2
    series = marked("SS..S...S.")
    found = episodes(series, SPAN)
    assert [(series[e.first].bucket, series[e.last].bucket) for e in found] == [
        (0, 4 * SPAN), (8 * SPAN, 8 * SPAN)]
    assert [series[e.peak].bucket for e in found] == [4 * SPAN, 8 * SPAN]
    assert found[0].last - found[0].first + 1 == 5  # the quiet buckets inside are in the episode


def test_episodes_split_on_missing_buckets_too():
    series = marked("SS")
    series[1].bucket = 4 * SPAN  # the host had no Teredo traffic in buckets 1-3
    assert len(episodes(series, SPAN)) == 2
    assert episodes(marked("...."), SPAN) == []


def test_a_host_that_keeps_to_its_destinations_pages_on_a_new_relay_within_its_routine():
    # daily sessions to the same relay (a game's): at the same hour and level, a new relay carrying
    # half the packets pages; one whose destinations are new every day (daily_sessions) does not
    kept: List[Made] = []
    for day in range(4):
        kept += [spiked(day * DAY + 20 * 3600 + i * SPAN) for i in range(6)]
    tunnel = spiked(4 * DAY + 20 * 3600, dests=(RELAY, "203.0.113.9"))
    same = spiked(4 * DAY + 20 * 3600 + SPAN)
    _, scored = pages(kept + [tunnel, same])
    assert scored[-2].score == 10.0 and scored[-1].score < SETTINGS.threshold
    assert ("new destinations on a host that keeps to its own (its routine here 3,000 relay packets"
            " in 10m)") in reason(scored[-2], SETTINGS, False, 1, scored[-2].bucket)
    # its severity is its score's (high), not held to medium as volume near the host's level is:
    # its volume is the routine's, its destinations are what is new
    scored.is_spike[len(scored) - 2] = True
    scored[-2].score = 20.0
    [episode] = [e for e in episodes(scored, SPAN) if e.first == len(scored) - 2]
    assert episode_row(episode, SETTINGS, False, fleet_level=0.0)["severity"] == "high"
    other = spiked(4 * DAY + 20 * 3600, dests=(RELAY, "203.0.113.9"))
    _, scored = pages(daily_sessions(4) + [other])
    assert scored[-1].score < SETTINGS.threshold


def test_a_session_that_began_at_the_usual_hour_stays_routine_past_it():
    # sessions 20:00-21:00 on days 0-2; on day 3 one from 20:00 runs on to 00:30: its late
    # buckets are judged at the hour it began; the same level starting at 00:30 pages
    long_evening = [spiked(3 * DAY + 20 * 3600 + i * SPAN, packets=3000) for i in range(28)]
    _, scored = pages(daily_sessions(3) + long_evening)
    assert all(score < SETTINGS.threshold for score in scored.score[-28:])
    _, scored = pages(daily_sessions(3) + [spiked(3 * DAY + 24 * 3600 + 30 * 60)])
    assert scored[-1].score == 10.0


def test_a_nat_retry_burst_inside_a_routine_session_does_not_page():
    # sessions at 20:00 on days 0-2, new destinations each; on day 3 a bucket at the same level
    # whose client re-qualifies ten times faster (a NAT retry burst: ten times the flows, all of
    # them signalling to its server) is routine: flows are not judged against the routine level.
    # The same bucket with six times the routine packets still pages (three of them: a tunnel
    # lasts; two are a session's swing, SWING_BUCKETS).
    burst = spiked(3 * DAY + 20 * 3600, dests=("203.0.113.1", "203.0.113.2"), flows=10 * 300)
    tunnel = [spiked(3 * DAY + 20 * 3600 + i * SPAN, dests=("203.0.113.1", "203.0.113.2"),
                     packets=6 * 3000) for i in (1, 2, 3)]
    _, scored = pages(daily_sessions(3) + [burst] + tunnel)
    assert scored[-4].score < SETTINGS.threshold and scored[-3].score == 10.0


def test_flows_alone_never_keep_a_routine_bucket_a_spike():
    # as the NAT retry burst above, with the spike's own sigma at the floor (MIN_SD), where ten
    # times the routine's flows alone score z = ln(10) / 0.35 > 6 against the routine level
    burst = spiked(3 * DAY + 20 * 3600, dests=("203.0.113.1", "203.0.113.2"), flows=10 * 300)
    series = series_of(daily_sessions(3) + [burst._replace(sd=MIN_SD)])
    assert math.log(10) / MIN_SD > SETTINGS.threshold
    discount_familiar_peaks(series, SETTINGS)
    assert series[-1].score < SETTINGS.threshold


def test_one_low_session_at_an_hour_does_not_lower_its_routine_below_the_hosts_typical_level():
    # evening sessions of 3,000 packets on days 0-3, and yesterday one lunch session: at 1,600
    # (within DAILY_SPREAD of the host's typical level, its use) the routine at lunch is at least
    # 3,000, and two buckets at 9,000 (5.6x that session, 3x the typical level) are routine; after
    # a lunch session at 1,000 (outside DAILY_SPREAD: not the host's use) they page
    lunch_day = 3

    def lunch_pages(packets: int) -> bool:
        lunch = [spiked(lunch_day * DAY + 12 * 3600 + i * SPAN, packets=packets) for i in range(6)]
        made = sorted(daily_sessions(4) + lunch, key=lambda m: m.traffic.bucket)
        tunnel = [spiked((lunch_day + 1) * DAY + 12 * 3600 + i * SPAN, packets=9000) for i in range(2)]
        return max(pages(made + tunnel)[1].score[-2:]) == 10.0

    assert 9000 > ROUTINE_RATIO * 1600 and 9000 < ROUTINE_RATIO * 3000
    assert 3000 / 1600 < DAILY_SPREAD < 3000 / 1000
    assert not lunch_pages(1600)
    assert lunch_pages(1000)


def test_the_reason_says_which_routine_rule_kept_a_heavy_users_spike():
    # evening sessions of 3,000 packets on days 0-4 (typical and routine level 3,000); on day 5:
    # two buckets at 6x at 20:00 (above the routine), one at 10:00 (no routine at that hour)
    def kept_reason(made: Sequence[Made], index: int = -1) -> str:
        _, scored = pages(made)
        assert scored[index].score == 10.0
        return reason(scored[index], SETTINGS, False, 1, scored[index].bucket)

    evening = 5 * DAY + 20 * 3600
    above = kept_reason(daily_sessions(5) + [spiked(evening + i * SPAN, packets=18000) for i in range(2)])
    assert "relay packets 6.0x the host's routine at this hour (3,000 in 10m)" in above
    new_hour = kept_reason(daily_sessions(5) + [spiked(5 * DAY + 10 * 3600)])
    assert "no routine at this hour of day in the last 14 days (typical session 3,000 relay packets in 10m)" in new_hour
    # a host with no earlier session (its first bucket: first seen): nothing said of a routine
    assert "routine" not in reason(series_of([spiked(evening)])[0], SETTINGS, True, 1, evening)
    # two earlier sessions at other hours, fewer than DAILY_SESSIONS: no rule can excuse the
    # spike, and the reason says why
    few = kept_reason(daily_sessions(2) + [spiked(5 * DAY + 10 * 3600)])
    assert DAILY_SESSIONS == 3
    assert "only 2 earlier spike sessions in the last 14 days, none at this hour: a routine needs 3" \
        in few


def test_the_reason_says_when_the_search_holds_little_of_the_hosts_teredo():
    # a host's first Teredo bucket 19 hours (then 2 days) before the spike: too little to have
    # learned a routine, said with why it may be (the search's start, a new host, a new address)
    def history_reason(before: int, first_seen: bool = False) -> str:
        at = 3 * DAY
        series = series_of(([bucket(at - before, 25)] if before else []) + [spiked(at)])
        return reason(series[len(series) - 1], SETTINGS, first_seen, 1, at)

    hint = ("only 19 hours of this host's Teredo before it in this search: no routine yet (the search's "
            "start, a new host, or a new address)")
    assert hint in history_reason(19 * 3600)
    assert "only 40 minutes of this host's Teredo" in history_reason(40 * 60)
    assert SHORT_HISTORY == 2 * DAY and "no routine yet" not in history_reason(2 * DAY)
    # the host's first bucket is in the episode: the reason says that instead
    assert "first Teredo seen from this host" in history_reason(0, first_seen=True)
    assert "no routine yet" not in history_reason(0, first_seen=True)


def background_days(days: int, evening: int = 2000) -> List[Made]:
    """A peer-to-peer client left running: on from 08:00 to 23:00 each day, 90 relay packets a
    bucket to new peers (each a spike: the spike-free baseline never learns them), and the user's
    own session at 20:00-21:00 at `evening` packets."""
    made: List[Made] = []
    for day in range(days):
        for i in range(90):
            at = day * DAY + 8 * 3600 + i * SPAN
            if 20 * 3600 <= at % DAY < 21 * 3600:
                made.append(spiked(at, tuple("198.51.%d.%d" % (day, j) for j in range(1, 41)), evening))
            else:
                made.append(spiked(at, ("203.0.%d.%d" % (day, i),), 90))
    return made


def test_a_clients_background_pages_on_its_first_days_only_and_its_sessions_are_its_routine():
    series = series_of(background_days(6))
    discount_familiar_peaks(series, SETTINGS)
    by_day = {}
    for hb in series:
        by_day.setdefault(hb.bucket // DAY, []).append(is_spike(hb.score, hb.values, SETTINGS))
    assert all(by_day[0])  # a host's first day of Teredo
    # from the fourth day the trickle is its background, and the evening its routine: before, a
    # day's trickle made one session whose level was the trickle's, and the evening paged at 22x
    assert not any(by_day[3] + by_day[4] + by_day[5])
    assert series.background_relay_packets == pytest.approx(90)


def test_above_its_background_or_at_an_hour_it_never_uses_a_clients_host_still_pages():
    tunnel = [spiked(6 * DAY + 20 * 3600 + i * SPAN, packets=2000 * 10) for i in range(3)]
    night = [spiked(6 * DAY + 3 * 3600 + i * SPAN, packets=300) for i in range(3)]
    for made in (tunnel, night):
        series = series_of(sorted(background_days(6) + made, key=lambda m: m.traffic.bucket))
        discount_familiar_peaks(series, SETTINGS)
        assert [hb.score for hb in series if hb.bucket >= 6 * DAY] == [10.0] * 3


def test_a_background_needs_three_days():
    two = series_of([spiked(day * DAY + i * SPAN, packets=90) for day in (0, 2) for i in range(6)])
    three = series_of([spiked(day * DAY + i * SPAN, packets=90) for day in (0, 1, 2) for i in range(6)])
    assert background_level(two, 3 * DAY) is None
    assert background_level(three, 3 * DAY)[RELAY_PACKETS] == pytest.approx(math.log1p(90))


def test_the_fleet_use_level_leaves_out_a_hosts_background():
    trickle = series_of([bucket(i * SPAN, 90) for i in range(5)] + [bucket(5 * SPAN, 1000)], "t")
    hosts = {"a": series_of([bucket(0, 300)], "a"), "t": trickle}
    assert fleet_use_level(hosts) == 90.0
    trickle.background_relay_packets = 90.0
    assert fleet_use_level(hosts) == 650.0  # 300 and 1000: above 5x the trickle


def sessions_and_tunnel(levels: Sequence[int], tunnel_packets: int, tunnel_buckets: int) -> HostSeries:
    """A host with Teredo only in its sessions (at 20:00 on days 0-5, each bucket's packets from
    `levels`, to new peers each day) and a tunnel at 20:00 on day 6, after the routine rules."""
    made = [spiked(day * DAY + 20 * 3600 + i * SPAN, tuple("198.51.%d.%d" % (day, j) for j in range(1, 41)),
                   packets)
            for day in range(6) for i, packets in enumerate(levels)]
    tunnel = [spiked(6 * DAY + 20 * 3600 + i * SPAN, packets=tunnel_packets) for i in range(tunnel_buckets)]
    series = series_of(made + tunnel)
    discount_familiar_peaks(series, SETTINGS)
    return series


def test_where_a_hosts_teredo_is_mostly_its_sessions_their_phases_do_not_become_their_level():
    # no idle buckets (sampled flows, or a client only on for its sessions): the background is the
    # sessions' level, and a phase above it is no second level; a tunnel 12x the sessions pages
    series = sessions_and_tunnel((1000, 1500, 2000, 2500, 2500, 2500, 4000, 4000, 4000, 4000, 2000, 16000),
                                 50000, 3)
    assert [hb.score for hb in series][-3:] == [10.0] * 3
    assert not any(is_spike(hb.score, hb.values, SETTINGS) for hb in series if 3 * DAY <= hb.bucket < 6 * DAY)


def test_where_a_hosts_teredo_is_mostly_its_sessions_their_scattered_peaks_do_not_become_their_level():
    # a client dormant between sessions (Teredo only in them): its background is the sessions'
    # level, and two lone buckets a session at 6x it (a swing, a capped burst) are not a second
    # level; before, they were, and a tunnel at 17x the sessions' level passed as within 5x of it
    levels = [1500] * 12
    levels[3] = levels[9] = 9000
    series = sessions_and_tunnel(levels, 25000, 6)
    assert 25000 < ROUTINE_RATIO * 9000 and 9000 > ROUTINE_RATIO * 1500
    assert [hb.score for hb in series][-6:] == [10.0] * 6
    assert not any(is_spike(hb.score, hb.values, SETTINGS) for hb in series if 3 * DAY <= hb.bucket < 6 * DAY)


def test_a_session_all_above_the_background_is_one_level_its_own():
    # a client's trickle on days 0-5; on days 6 and 7 at 20:00 a session wholly above it, a block
    # of four buckets and, 40 minutes on, a lone one: nothing in it at the background, so nothing
    # to part, and the second evening is the first's routine (the session that started 24 h before)
    made = background_days(6)

    def evening(day: int) -> List[Made]:
        at = day * DAY + 20 * 3600
        return [spiked(at + i * SPAN, tuple("198.51.%d.%d" % (day, j) for j in range(1, 41)), 3000)
                for i in (0, 1, 2, 3, 7)]
    series = series_of(made + evening(6) + evening(7))
    discount_familiar_peaks(series, SETTINGS)
    assert [is_spike(hb.score, hb.values, SETTINGS) for hb in series if hb.bucket >= 7 * DAY] == [False] * 5


def crowd(starts: Sequence[int], score: float = 10.0, first_host: int = 0, days: bool = True
          ) -> dict:
    """One host per start (a bucket time), each with a spike bucket at its start scored `score`,
    as a fleet event's hosts are left by the routine rules; with `days`, an hour of quiet chatter
    two days before it (EVENT_HISTORY) and a bucket of it the day after (the spike is the host's
    bucket 6)."""
    hosts = {}
    for n, at in enumerate(starts):
        src = "10.1.%d.%d" % divmod(first_host + n, 250)
        before = [bucket(at - 2 * DAY + i * SPAN, 30, flows=3) for i in range(6)] if days else []
        after = [bucket(at + DAY, 30, flows=3)] if days else []
        series = series_of(before + [spiked(at)] + after, src)
        series[len(before)].score = score
        hosts[src] = series
    return hosts


def still_paging(hosts: dict) -> List[str]:
    return sorted(src for src, series in hosts.items()
                  if any(is_spike(hb.score, hb.values, SETTINGS) for hb in series))


def test_many_hosts_spiking_within_an_hour_are_scored_against_each_other():
    # an update fetched from Teredo peers: EVENT_MIN_HOSTS hosts within EVENT_WINDOW buckets
    # of one another at about one level, one of them far above it, and a tunnel two days later
    event = 10 * DAY
    starts = [event + (n % (2 * EVENT_WINDOW + 1) - EVENT_WINDOW) * SPAN // 2 // SPAN * SPAN
              for n in range(EVENT_MIN_HOSTS + 5)]
    hosts = crowd(starts)
    far = sorted(hosts)[0]
    hosts[far][6].score = 20.0
    hosts.update(crowd([event + 2 * DAY], first_host=100))
    fleet_events(hosts, SETTINGS)
    assert still_paging(hosts) == sorted([far, "10.1.0.100"])
    adjusted = hosts[far][6]
    assert adjusted.fleet_adjustment == pytest.approx(10.0 - 1.0)
    assert adjusted.score == pytest.approx(20.0 - 9.0)
    assert "fleet-wide rise of 9.0 discounted" in reason(adjusted, SETTINGS, False, 1, adjusted.index)


def test_fewer_hosts_than_an_event_or_hosts_hours_apart_each_page():
    event = 10 * DAY
    few = crowd([event] * (EVENT_MIN_HOSTS - 1))
    fleet_events(few, SETTINGS)
    assert len(still_paging(few)) == EVENT_MIN_HOSTS - 1
    apart = crowd([event + n * (2 * EVENT_WINDOW + 1) * SPAN for n in range(EVENT_MIN_HOSTS + 5)])
    fleet_events(apart, SETTINGS)
    assert len(still_paging(apart)) == EVENT_MIN_HOSTS + 5


def test_an_event_is_a_crowd_far_above_that_time_of_day_on_other_days():
    # 25 hosts spiking at 10:00 every day are the fleet's working hour, no event; 25 at 18:00,
    # where the other days hold 4, are (EVENT_RATIO x 4 <= 25); 25 at 14:00, where they hold 6,
    # are not (EVENT_RATIO x 6 > 25)
    hour = 3600
    hosts, events, working, busier = {}, {}, {}, {}
    for day in range(1, 6):
        working.update(crowd([day * DAY + 10 * hour] * 25, first_host=100 * day))
        if day == 3:
            events = crowd([day * DAY + 18 * hour] * 25, first_host=1000)
            busier = crowd([day * DAY + 14 * hour] * 25, first_host=1100)
        else:
            hosts.update(crowd([day * DAY + 18 * hour] * 4, first_host=1200 + 10 * day))
            hosts.update(crowd([day * DAY + 14 * hour] * 6, first_host=1300 + 10 * day))
    for made in (working, events, busier):
        hosts.update(made)
    fleet_events(hosts, SETTINGS)
    assert len(still_paging(working)) == 5 * 25 and len(still_paging(busier)) == 25
    assert not still_paging(events)
    assert len(still_paging(hosts)) == len(hosts) - 25
    # hosts without two days of Teredo before them (a search's first days, new hosts) make no
    # crowd and are not scored against one
    new = crowd([3 * DAY + 18 * hour] * 40, first_host=2000, days=False)
    hosts.update(new)
    fleet_events(hosts, SETTINGS)
    assert len(still_paging(new)) == 40 and not still_paging(events)


# A cell: its bucket number, in a search of 500 buckets or its hour around bucket 400 (so that
# crowds form there and not elsewhere), and the score of a spike there (None: quiet chatter).
CELLS = st.tuples(st.one_of(st.integers(0, 500), st.integers(400 - EVENT_WINDOW, 400 + EVENT_WINDOW)),
                  st.one_of(st.none(), st.floats(6.0, 20.0)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 150), st.lists(CELLS, min_size=1, max_size=4)),
                min_size=EVENT_MIN_HOSTS - 2, max_size=2 * EVENT_MIN_HOSTS + 5))
def test_fleet_events_are_their_definition(made):
    """`made`: per host, the bucket of its first chatter and its cells (bucket number, score or
    None), in a search of 500 buckets whose crowds form around bucket 400."""
    hosts = {}
    for h, (known, cells) in enumerate(made):
        cells = sorted(dict([(known, None)] + cells).items())
        series = series_of([spiked(b * SPAN) if score is not None else bucket(b * SPAN, 30, flows=3)
                            for b, score in cells], "10.2.0.%d" % h)
        for hb, (_, score) in zip(series, cells):
            if score is not None:
                hb.score = score
        hosts[series.src] = series
    # the definition, over every bucket of the search
    spikes = [(hb.bucket, src, hb.score) for src, series in hosts.items() for hb in series
              if is_spike(hb.score, hb.values, SETTINGS) and hb.bucket - series[0].bucket >= 2 * DAY]
    reach = EVENT_WINDOW * SPAN
    first = min(hb.bucket for series in hosts.values() for hb in series)
    last = max(hb.bucket for series in hosts.values() for hb in series)
    counts = {b: len({src for t, src, _ in spikes if abs(t - b) <= reach})
              for b in range(first, last + SPAN, SPAN)}
    expected = {}
    for t, src, score in spikes:
        adjustment = 0.0
        same_time = [n for b, n in counts.items() if b != t and (b - t) % DAY == 0]
        if counts[t] >= EVENT_MIN_HOSTS and same_time \
                and counts[t] >= EVENT_RATIO * statistics.median(same_time):
            peaks = {}
            for other, other_src, other_score in spikes:
                if abs(other - t) <= reach:
                    peaks[other_src] = max(peaks.get(other_src, 0.0), other_score)
            adjustment = max(0.0, statistics.median(peaks.values()) - 1.0)
        expected[src, t] = (max(0.0, score - adjustment), adjustment)
    fleet_events(hosts, SETTINGS)
    for src, series in hosts.items():
        for hb in series:
            if (src, hb.bucket) in expected:
                score, adjustment = expected[src, hb.bucket]
                assert (hb.score, hb.fleet_adjustment) == (pytest.approx(score), pytest.approx(adjustment))
