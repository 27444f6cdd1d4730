"""tools/schedule.py: the shipped alert replayed run by run. The parts that stand in for Splunk
(relative times, what a run can see, the new-episode filter, suppression) on hand-made cases, and
one short replay through the real protocol."""

import textwrap

import pytest

from tools import schedule, scenario
from tools.schedule import Delivery, Record, Result, Schedule

SPAN = scenario.SPAN
NOON = 1793880000 - 1793880000 % 86400 + 12 * 3600  # a day's 12:00 UTC


def test_relative_time_offsets_then_snaps_down():
    assert schedule.relative_time(NOON + 17 * 60 + 42, "-7d@h") == NOON - 7 * 86400
    assert schedule.relative_time(NOON + 30 * 60 + 20, "-5m@m") == NOON + 25 * 60
    assert schedule.relative_time(NOON + 30 * 60, "-45m@m") == NOON - 15 * 60
    assert schedule.relative_time(NOON, "-90s") == NOON - 90


@pytest.mark.parametrize("spec", ["now", "-7d@w0", "7d", "-1mon@mon", ""])
def test_relative_time_refuses_forms_it_does_not_know(spec):
    with pytest.raises(ValueError):
        schedule.relative_time(NOON, spec)


def _write_default(folder, cron="*/15 * * * *", new="where episode_end >= relative_time(now(), \"-20m@m\")",
                   suppress="alert.suppress = 1\nalert.suppress.fields = src,severity\nalert.suppress.period = 2h"):
    (folder / "savedsearches.conf").write_text(textwrap.dedent("""\
        [%s]
        search = `teredo_spike_detection_base` | teredospike
        cron_schedule = %s
        dispatch.earliest_time = -3d@d
        dispatch.latest_time = -2m@m
        """) % (schedule.DETECTION, cron) + suppress + "\n")
    (folder / "macros.conf").write_text("[%s]\ndefinition = %s\n" % (schedule.NEW_EPISODES, new))


def test_the_schedule_is_read_from_the_conf_files(tmp_path):
    _write_default(tmp_path)
    assert schedule.shipped_schedule(tmp_path) == Schedule(
        every=900, earliest="-3d@d", latest="-2m@m", new_field="episode_end", new_since="-20m@m",
        suppress_fields=("src", "severity"), suppress_period=7200)


def test_no_suppression_when_the_search_does_not_suppress(tmp_path):
    _write_default(tmp_path, suppress="alert.suppress = 0")
    assert schedule.shipped_schedule(tmp_path).suppress_fields == ()


@pytest.mark.parametrize("change", [{"cron": "0 * * * *"}, {"new": "search severity=high"}])
def test_a_schedule_or_filter_the_replay_cannot_follow_is_an_error(tmp_path, change):
    _write_default(tmp_path, **change)
    with pytest.raises(ValueError):
        schedule.shipped_schedule(tmp_path)


def test_the_shipped_detection_is_one_the_replay_can_follow():
    shipped = schedule.shipped_schedule()
    assert shipped.new_field in ("_time", "episode_end")
    assert shipped.every > 0 and shipped.suppress_fields


def _bucket(time, lag=60):
    return Record(time, [str(time), "10.0.0.1", "5000", "8.8.8.8", "3544", "teredo", "1000", "10", "2"],
                  single_flow=False, lag=lag)


def test_a_bucket_of_summed_flows_is_seen_in_the_part_that_has_arrived():
    now = NOON + 30 * 60
    latest = schedule.relative_time(now, "-5m@m")  # 12:25
    assert schedule.visible_share(_bucket(NOON), now, latest, []) == 1.0
    assert schedule.visible_share(_bucket(NOON + 20 * 60), now, latest, []) == 0.5      # 12:20-12:25
    assert schedule.visible_share(_bucket(NOON + 20 * 60, lag=420), now, latest, []) == pytest.approx(0.3)
    assert schedule.visible_share(_bucket(NOON + 30 * 60), now, latest, []) == 0.0


def test_a_stall_holds_back_what_would_have_arrived_during_it():
    record = _bucket(NOON, lag=60)
    stall = [(NOON + 4 * 60, NOON + 60 * 60)]   # 12:04 to 13:00
    # At 12:30 only the traffic that arrived before the stall (12:00-12:03) is there...
    assert schedule.visible_share(record, NOON + 30 * 60, NOON + 25 * 60, stall) == pytest.approx(0.3)
    # ...and all of it once the stall has ended.
    assert schedule.visible_share(record, NOON + 60 * 60, NOON + 55 * 60, stall) == 1.0
    # A stall that began 30 s before the run holds what was due in those 30 s.
    just_begun = [(NOON + 1770, NOON + 3600)]
    assert schedule.visible_share(_bucket(NOON + 1200, lag=60), NOON + 1800, NOON + 1800, just_begun) == \
        pytest.approx((1770 - 60 - 1200) / 600.0)
    assert schedule.held_back(NOON + 10 * 60, stall) == NOON + 60 * 60
    assert schedule.held_back(NOON + 61 * 60, stall) == NOON + 61 * 60


def test_one_flow_is_searchable_whole_once_it_has_arrived():
    names = scenario.HEADER + [scenario.DURATION]
    row = [NOON, "10.0.0.1", 5000, "8.8.8.8", 3544, "teredo", 1000, 10, 1, 3 * SPAN - 60]
    [record] = schedule.records([row], names, scenario.Behaviour(), Delivery(lag=(90, 90)), [])
    assert record.single_flow and record.arrives == NOON + 3 * SPAN - 60 + 90
    assert schedule.visible_share(record, record.arrives - 1, NOON + 86400, []) == 0.0
    assert schedule.visible_share(record, record.arrives, NOON + 86400, []) == 1.0
    end_stamped = scenario.Behaviour(record_time="end", record_durations=True, flow_timeout=0)
    [record] = schedule.records([row], names, end_stamped, Delivery(lag=(90, 90)), [])
    assert record.arrives == NOON + SPAN - 60 + 90   # _time is the bucket of its last packet


def test_a_run_gets_its_window_with_a_partial_bucket_scaled():
    names = scenario.HEADER
    records = [_bucket(NOON - 8 * 86400), _bucket(NOON), _bucket(NOON + 20 * 60), _bucket(NOON + 30 * 60)]
    now = NOON + 30 * 60
    got = schedule.searchable(records, names, now, schedule.relative_time(now, "-7d@h"),
                              schedule.relative_time(now, "-5m@m"), [])
    assert [(r["_time"], r["packets_out"], r["bytes_out"], r["count"]) for r in got] == [
        (str(NOON), "10", "1000", "2"), (str(NOON + 1200), "5", "500", "1")]


def _result(run, src, first, last=None):
    return Result(run, src, first, first if last is None else last, "high")


# The detection as it shipped before the replay: episodes that began in the last 45 minutes, a host
# suppressed for an hour.
BY_START = Schedule(every=1800, earliest="-7d@h", latest="-5m@m", new_field="_time", new_since="-45m@m",
                    suppress_fields=("src",), suppress_period=3600)


def test_the_new_episode_filter_compares_the_field_it_names():
    old_start = _result(NOON, "10.0.0.1", NOON - 3 * 3600, NOON - 20 * 60)
    assert schedule.alerts([old_start], BY_START) == []
    by_end = Schedule(**dict(BY_START.__dict__, new_field="episode_end"))
    assert schedule.alerts([old_start], by_end) == [old_start]


def test_suppression_drops_a_host_for_the_period_then_lets_it_alert_again():
    results = [_result(NOON, "10.0.0.1", NOON - 20 * 60), _result(NOON, "10.0.0.1", NOON - 10 * 60),
               _result(NOON, "10.0.0.2", NOON - 10 * 60),
               _result(NOON + 1800, "10.0.0.1", NOON + 1200),
               _result(NOON + 3600, "10.0.0.1", NOON + 3000)]
    fired = schedule.alerts(results, BY_START)
    assert [(a.run, a.src, a.first) for a in fired] == [
        (NOON, "10.0.0.1", NOON - 1200), (NOON, "10.0.0.2", NOON - 600), (NOON + 3600, "10.0.0.1", NOON + 3000)]
    unsuppressed = Schedule(**dict(BY_START.__dict__, suppress_fields=(), suppress_period=0))
    assert len(schedule.alerts(results, unsuppressed)) == 5


def test_alerts_are_scored_against_the_tunnels_of_their_host():
    first, last = NOON, NOON + 86400
    tunnels = [{"id": 1, "src": "10.0.0.1", "start": NOON + 3600, "end": NOON + 3600 + 2 * SPAN},
               {"id": 2, "src": "10.0.0.2", "start": NOON + 7200, "end": NOON + 7200 + 5 * SPAN},
               {"id": 3, "src": "10.0.0.3", "start": last - SPAN, "end": last + 5 * SPAN}]  # ends after: not scored
    fired = [_result(NOON + 5400, "10.0.0.1", NOON + 3600, NOON + 4200),
             _result(NOON + 9000, "10.0.0.1", NOON + 4200, NOON + 4800),      # a repeat on tunnel 1
             _result(NOON + 9000, "10.0.0.2", NOON + 3600),                    # before tunnel 2: false
             _result(NOON + 1800, "10.0.0.4", NOON - 3600),                    # began before the scored days
             _result(last + 1800, "10.0.0.3", last - SPAN)]                   # tunnel 3's: neither
    score = schedule.score_alerts(fired, tunnels, hosts=10, first=first, last=last)
    assert score.tunnels == 2 and score.recall == 0.5
    assert score.alerted == {1: [NOON + 5400, NOON + 9000]} and score.repeats == 1
    assert [a.src for a in score.false] == ["10.0.0.2"]
    assert score.alerts == 4 and score.false_per_1000_host_days == pytest.approx(100.0)
    assert score.latencies(tunnels) == [1800]


def _ongoing(src, start, hours, every=1800):
    """An episode as every run over `hours` sees it: begun at `start`, its newest bucket 15 minutes old."""
    return [_result(run, src, start, run - 900) for run in range(start + every, start + hours * 3600 + 1, every)]


def test_the_shipped_detection_alerts_once_on_an_episode_of_twelve_hours():
    shipped = schedule.shipped_schedule()
    fired = schedule.alerts(_ongoing("10.0.0.1", NOON, 12) + _ongoing("10.0.0.2", NOON + 3600, 2), shipped)
    assert [(a.src, a.run) for a in fired] == [("10.0.0.1", NOON + 1800), ("10.0.0.2", NOON + 5400)]


def test_the_shipped_detection_alerts_on_an_episode_whose_records_came_hours_late():
    """A tunnel of 12:00-13:00 whose client's flow to its server was written at 19:00: every run from
    19:30 shows the episode; the detection as it shipped before never alerted on it."""
    late = [_result(run, "10.0.0.1", NOON, NOON + 3000) for run in range(NOON + 7 * 3600 + 1800, NOON + 86400, 1800)]
    assert [a.run for a in schedule.alerts(late, schedule.shipped_schedule())] == [NOON + 7 * 3600 + 1800]
    assert schedule.alerts(late, BY_START) == []


def test_run_times_are_the_crons_multiples():
    assert schedule.run_times(NOON + 1, NOON + 3600, 1800) == [NOON + 1800, NOON + 3600]


def test_the_shipped_alert_fires_on_a_tunnel_through_the_real_protocol():
    """A short replay: 40 hosts, 7 days of history, runs every 30 minutes across the scored day's
    first tunnel that the one-pass command finds; the shipped filter alerts on it, once."""
    params = scenario.Params(seed=3, hosts=40, days=8, warmup_days=7, heavy_tunnels=0)
    rows, truth = scenario.generate(params)
    names = scenario.header(params.behaviour)
    first, last = params.start + 7 * 86400, params.start + 8 * 86400
    found = schedule.score_alerts(schedule.one_pass(rows, names, [], 50000), truth["tunnels"], 40, first, last)
    tunnel = min((t for t in truth["tunnels"] if t["id"] in found.alerted and t["buckets"] >= 3),
                 key=lambda t: t["start"])
    timeline = schedule.records(rows, names, params.behaviour, Delivery(), [])
    shipped = schedule.shipped_schedule()
    runs = schedule.run_times(tunnel["start"], tunnel["start"] + 5400, shipped.every)
    results = schedule.replay(timeline, names, [], shipped, runs, [], 50000, lambda text: None)
    score = schedule.score_alerts(schedule.alerts(results, shipped), [tunnel], 40, first, last)
    assert list(score.alerted) == [tunnel["id"]] and score.repeats == 0
    assert score.latencies([tunnel])[0] <= 3600


def test_runs_written_are_read_back(tmp_path):
    results = [_result(NOON, "10.0.0.1", NOON - 1200, NOON - 600), _result(NOON + 1800, "10.0.0.2", NOON)]
    schedule.write_details(tmp_path, results, [], {}, NOON, NOON + 86400)
    assert schedule.read_runs(tmp_path / "runs.csv") == results


def test_a_scenario_option_is_set_with_its_type():
    behaviour = schedule.behaviour_with(scenario.FAMILIES["long-flows"], ["label_share=1.0", "flow_timeout=3"])
    assert behaviour.label_share == 1.0 and behaviour.flow_timeout == 3 and behaviour.record_durations
    with pytest.raises(ValueError):
        schedule.behaviour_with(behaviour, ["no_such_option=1"])
