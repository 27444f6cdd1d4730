"""The shipped alert as a SOC runs it: the detection's saved search on its schedule, over records
that reach Splunk when they do.

tools/evaluate.py scores each bucket once, with every record of the scenario present. The alert is
not that. `Teredo Spike - Outbound Teredo Tunnel - Rule` runs every 30 minutes over the last 7 days
(`dispatch.earliest_time`, `dispatch.latest_time`); it sees only the records indexed by then; it
alerts on the episodes that `teredo_spike_new_episodes` calls new; and Splunk suppresses a host's
results for an hour after it alerted (`alert.suppress.*`). This tool replays that run by run:
each run is the command through the real protocol (tools/runner.py) over what Splunk would hold at
that moment, and what Splunk does after the command (the macro's filter, the suppression) is done
here in a few lines, as the .conf files say. The schedule and the filter are read from the app's
`default/` files, so the replay follows what ships.

When a record reaches Splunk (`Delivery`): a record that stands for one flow (it carries a
`duration`, as Zeek's conn.log and firewall session logs do) is written when its flow ends, so it
arrives at its end plus the indexing lag; a record without a duration is one bucket's flows summed
(the `tstats` rows of 10-minute records), and each flow in it arrives shortly after it ended, so
at a run the bucket holds the part of its traffic that has arrived. A backlog (a forwarder or an
indexer queue that stalls) holds back everything that would have arrived during it until it ends.

Scored per tunnel: was it alerted, and how long after it began; per alert: was it a tunnel
(the host's own tunnel overlapping the alerted episode) or false; how many alerts one tunnel made.
Beside it, the same scenario's one-pass episodes (the matrix's view), matched the same way.

    python tools/schedule.py --family long-flows --hosts 300 --scored-days 3 --report build/eval/schedule.md
"""
from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ksconf.conf.parser import PARSECONF_STRICT_NC, parse_conf  # noqa: E402

from tools import evaluate, scenario  # noqa: E402

SPAN = scenario.SPAN
DETECTION = "Teredo Spike - Outbound Teredo Tunnel - Rule"
NEW_EPISODES = "teredo_spike_new_episodes"
DEFAULT = ROOT / "default"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RELATIVE = re.compile(r"^([+-]\d+)([smhd])(?:@([smhd]))?$")
_NEW_FILTER = re.compile(r'^\s*where\s+(\w+)\s*>=\s*relative_time\(now\(\),\s*"([^"]+)"\)\s*$')
_EVERY = re.compile(r"^\*/(\d+) \* \* \* \*$")


def relative_time(now: int, spec: str) -> int:
    """Splunk's relative time `-7d@h` (an offset, then a snap down to the unit) from `now`, in epoch
    seconds (UTC: the scenarios' days start at midnight UTC). Only the forms the app's saved
    searches use; anything else is a ValueError, not a guess."""
    match = _RELATIVE.match(spec.strip())
    if not match:
        raise ValueError("relative time %r is not of the form -<n><s|m|h|d>[@<s|m|h|d>]" % spec)
    offset, unit, snap = match.groups()
    value = now + int(offset) * _UNITS[unit]
    if snap:
        value -= value % _UNITS[snap]
    return value


@dataclass(frozen=True)
class Schedule:
    """The detection's saved search, the parts that decide what alerts and when."""
    every: int              # seconds between runs (cron_schedule */N minutes)
    earliest: str           # dispatch.earliest_time
    latest: str             # dispatch.latest_time
    new_field: str          # teredo_spike_new_episodes: the field compared (_time or episode_end)...
    new_since: str          # ...with relative_time(now(), this)
    suppress_fields: Tuple[str, ...]  # alert.suppress.fields ('' when alert.suppress = 0)
    suppress_period: int    # alert.suppress.period, seconds


def _period(text: str) -> int:
    match = re.match(r"^(\d+)([smhd])$", text.strip())
    if not match:
        raise ValueError("period %r is not of the form <n><s|m|h|d>" % text)
    return int(match.group(1)) * _UNITS[match.group(2)]


def shipped_schedule(default: Path = DEFAULT) -> Schedule:
    """The schedule, window, new-episode filter and suppression that default/ ships."""
    searches = parse_conf(str(default / "savedsearches.conf"), profile=PARSECONF_STRICT_NC)
    macros = parse_conf(str(default / "macros.conf"), profile=PARSECONF_STRICT_NC)
    rule = searches[DETECTION]
    every = _EVERY.match(rule["cron_schedule"].strip())
    if not every:
        raise ValueError("cron_schedule %r is not */N minutes" % rule["cron_schedule"])
    new = _NEW_FILTER.match(macros[NEW_EPISODES]["definition"])
    if not new:
        raise ValueError("%s is not 'where <field> >= relative_time(now(), \"...\")'" % NEW_EPISODES)
    suppressed = rule.get("alert.suppress", "0").strip() == "1"
    return Schedule(every=int(every.group(1)) * 60, earliest=rule["dispatch.earliest_time"].strip(),
                    latest=rule["dispatch.latest_time"].strip(), new_field=new.group(1),
                    new_since=new.group(2),
                    suppress_fields=tuple(f.strip() for f in rule["alert.suppress.fields"].split(",") if f.strip())
                    if suppressed else (),
                    suppress_period=_period(rule["alert.suppress.period"]) if suppressed else 0)


# ------------------------------------------------------------------------------------------ delivery
@dataclass(frozen=True)
class Delivery:
    """When records reach Splunk.

    `lag`: seconds from the end of a flow to the record being searchable, drawn per record. A
    universal forwarder tailing a log indexes within seconds; Zeek writes a UDP flow a minute
    after its last packet (its inactivity timeout), and a sensor's log shipping adds a minute or
    two: 30 s to 3 min is the usual range, and the default.

    `backlogs`: stalls per week, each holding back every record that would have arrived during it
    until it ends (a forwarder that lost its indexer, a full indexing queue, a sensor restarted).
    0 to a few a week; `backlog_minutes` is each one's length, 15 minutes to 2 hours."""
    lag: Tuple[int, int] = (30, 180)
    backlogs: float = 0.0
    backlog_minutes: Tuple[int, int] = (15, 120)
    seed: int = 1


@dataclass
class Record:
    """One row of a scenario and when it is searchable: `arrives` for a record that is one flow;
    for one bucket's flows summed, `lag` (each flow arrives that long after it ended)."""
    time: int
    values: List[str]          # the row, as text, in the scenario's column order
    single_flow: bool
    arrives: int = 0
    lag: int = 0


def backlog_periods(delivery: Delivery, start: int, end: int) -> List[Tuple[int, int]]:
    """The stalls between `start` and `end`: (first second, first second after), sorted."""
    rng = random.Random("backlogs %d" % delivery.seed)
    weeks = (end - start) / (7 * 86400.0)
    count = int(delivery.backlogs * weeks + rng.random())  # the fraction by chance
    periods = []
    for _ in range(count):
        begin = start + int(rng.random() * (end - start))
        periods.append((begin, begin + 60 * rng.randint(*delivery.backlog_minutes)))
    return sorted(periods)


def held_back(at: int, periods: Sequence[Tuple[int, int]]) -> int:
    """When something due at `at` arrives: at the end of a stall that holds it, else at `at`."""
    for begin, end in periods:
        if begin <= at < end:
            return end
    return at


def records(rows: Sequence[list], names: Sequence[str], behaviour: scenario.Behaviour,
            delivery: Delivery, periods: Sequence[Tuple[int, int]]) -> List[Record]:
    """Each row with when it reaches Splunk (the module docstring)."""
    rng = random.Random("lag %d" % delivery.seed)
    has_duration = scenario.DURATION in names
    duration_at = names.index(scenario.DURATION) if has_duration else -1
    end_stamped = behaviour.record_time == "end"
    out = []
    for row in rows:
        lag = rng.randint(*delivery.lag)
        values = [str(v) for v in row]
        if has_duration:
            start = int(row[0])
            # An end-stamped record's _time is the bucket of its last packet (floored, as tstats floors
            # it); the generator's flows stop LAST_PACKET_GAP before their last bucket ends.
            end = start + SPAN - scenario.LAST_PACKET_GAP if end_stamped else start + int(float(row[duration_at]))
            out.append(Record(start, values, True, arrives=held_back(end + lag, periods)))
        else:
            out.append(Record(int(row[0]), values, False, lag=lag))
    return out


def visible_share(record: Record, now: int, latest: int, periods: Sequence[Tuple[int, int]]) -> float:
    """The share of a record that a search run at `now` with latest time `latest` sees: all or
    nothing for one flow; for one bucket's flows, the part of the bucket before `latest` whose
    flows have arrived (traffic at t arrives at t + lag, or at the end of a stall that holds it)."""
    if record.single_flow:
        return 1.0 if record.arrives <= now and record.time < latest else 0.0
    # Traffic at t is due at t + lag. Arrival is non-decreasing in t, so what is seen is t < cut:
    # cut = now - lag, unless a stall holds now (then only what was due before it began).
    cut = now - record.lag
    for begin, end in periods:
        if begin <= now < end:
            cut = begin - record.lag
            break
    top = min(record.time + SPAN, latest, cut)
    return max(0.0, min(1.0, (top - record.time) / float(SPAN)))


SCALED = ("bytes_out", "packets_out", "count")


def searchable(records_: Sequence[Record], names: Sequence[str], now: int, earliest: int, latest: int,
               periods: Sequence[Tuple[int, int]]) -> List[Dict[str, str]]:
    """The records a run at `now` over [earliest, latest) gets, as the command receives them; a
    bucket seen in part has its packets, bytes and flows scaled to that part."""
    scaled = [names.index(n) for n in SCALED if n in names]
    out = []
    for record in records_:
        if record.time < earliest or record.time >= latest:
            continue
        share = visible_share(record, now, latest, periods)
        if share <= 0.0:
            continue
        values = record.values
        if share < 1.0:
            # Scaled and rounded; a count may round to 0 flows, which the scoring does not judge.
            values = list(values)
            for i in scaled:
                values[i] = str(int(float(values[i]) * share + 0.5))
            if all(values[i] == "0" for i in scaled):
                continue
        out.append(dict(zip(names, values)))
    return out


# ------------------------------------------------------------------------------------------ runs
@dataclass(frozen=True)
class Result:
    """One output=spikes row of one run."""
    run: int        # the run's time
    src: str
    first: int      # _time: the episode's first bucket
    last: int       # episode_end
    severity: str

    def value(self, name: str) -> object:
        """The output field `name` (those the filter and the suppression may name)."""
        fields = {"_time": self.first, "episode_end": self.last, "src": self.src, "severity": self.severity}
        if name not in fields:
            raise ValueError("the replay knows the fields %s, not %r" % (", ".join(fields), name))
        return fields[name]


def run_times(first: int, last: int, every: int) -> List[int]:
    """Cron's run times from `first` to `last`: the multiples of `every`."""
    start = -(-first // every) * every
    return list(range(start, last + 1, every))


def replay(records_: Sequence[Record], names: Sequence[str], options: Sequence[str], schedule: Schedule,
           runs: Sequence[int], periods: Sequence[Tuple[int, int]], chunk_size: int,
           log: Callable[[str], None]) -> List[Result]:
    """Every run's output=spikes rows (the command through the real protocol)."""
    from tools.runner import run_search
    out = []
    clock = time.monotonic()
    for number, now in enumerate(runs):
        earliest = relative_time(now, schedule.earliest)
        latest = relative_time(now, schedule.latest)
        rows = searchable(records_, names, now, earliest, latest, periods)
        result = run_search(rows, args=["output=spikes"] + list(options), chunk_size=chunk_size,
                            earliest=earliest, latest=latest)
        errors = [text for level, text in result.messages if level.upper() in ("ERROR", "FATAL")]
        if errors or any(result.exit_codes):
            raise RuntimeError("teredospike failed at run %d: %s" % (now, "; ".join(errors)))
        for row in result.rows:
            out.append(Result(now, row["src"], int(float(row["_time"])), int(float(row["episode_end"])),
                              row.get("severity", "")))
        if number % 24 == 23:
            log("run %d of %d (%.0f s)" % (number + 1, len(runs), time.monotonic() - clock))
    return out


def alerts(results: Sequence[Result], schedule: Schedule) -> List[Result]:
    """What alerts: each run's rows the new-episode filter keeps, less those Splunk suppresses
    (a result whose suppress-field values alerted less than the period ago, this run included)."""
    by_run: Dict[int, List[Result]] = defaultdict(list)
    for result in results:
        by_run[result.run].append(result)
    until: Dict[tuple, int] = {}
    out = []
    for now in sorted(by_run):
        since = relative_time(now, schedule.new_since)
        for result in sorted(by_run[now], key=lambda r: (r.first, r.src)):
            if result.value(schedule.new_field) < since:
                continue
            if schedule.suppress_fields:
                key = tuple(result.value(f) for f in schedule.suppress_fields)
                if until.get(key, 0) > now:
                    continue
                until[key] = now + schedule.suppress_period
            out.append(result)
    return out


# ------------------------------------------------------------------------------------------ scoring
@dataclass
class AlertScore:
    tunnels: int
    alerted: Dict[int, List[int]] = field(default_factory=dict)   # tunnel id -> its alerts' run times
    false: List[Result] = field(default_factory=list)
    host_days: float = 0.0
    alerts: int = 0

    def latencies(self, tunnels: Sequence[dict]) -> List[int]:
        """Seconds from each alerted tunnel's start to its first alert."""
        starts = {t["id"]: t["start"] for t in tunnels}
        return sorted(min(times) - starts[i] for i, times in self.alerted.items())

    @property
    def recall(self) -> float:
        return len(self.alerted) / self.tunnels if self.tunnels else 1.0

    @property
    def false_per_1000_host_days(self) -> float:
        return 1000.0 * len(self.false) / self.host_days if self.host_days else 0.0

    @property
    def repeats(self) -> int:
        """Alerts beyond the first on the same tunnel."""
        return sum(len(times) - 1 for times in self.alerted.values())


def scored_tunnels(tunnels: Sequence[dict], first: int, last: int) -> List[dict]:
    """The tunnels that begin from `first` and end by `last`."""
    return [t for t in tunnels if first <= t["start"] and t["end"] + SPAN <= last]


def score_alerts(fired: Sequence[Result], tunnels: Sequence[dict], hosts: int, first: int, last: int) -> AlertScore:
    """An alert is a tunnel's when it names the tunnel's host and its episode overlaps the tunnel;
    false when it overlaps none of the host's tunnels (any tunnel, scored or not). Alerts on
    episodes that began before `first` are neither."""
    by_src: Dict[str, List[dict]] = defaultdict(list)
    for tunnel in tunnels:
        by_src[tunnel["src"]].append(tunnel)
    scored = {t["id"] for t in scored_tunnels(tunnels, first, last)}
    score = AlertScore(tunnels=len(scored), host_days=hosts * (last - first) / 86400.0)
    for alert in fired:
        if alert.first < first:
            continue
        score.alerts += 1
        hit = [t for t in by_src.get(alert.src, ()) if alert.first <= t["end"] and alert.last >= t["start"]]
        if not hit:
            score.false.append(alert)
        for tunnel in hit:
            if tunnel["id"] in scored:
                score.alerted.setdefault(tunnel["id"], []).append(alert.run)
    return score


def one_pass(rows: Sequence[list], names: Sequence[str], options: Sequence[str], chunk_size: int) -> List[Result]:
    """The matrix's view: the command once over every record, as if each had arrived the moment its
    bucket ended; each episode given as alerted when its first bucket ended."""
    from tools.runner import run_search
    result = run_search([dict(zip(names, map(str, row))) for row in rows], args=["output=spikes"] + list(options),
                        chunk_size=chunk_size)
    if any(result.exit_codes):
        raise RuntimeError("teredospike failed: %s" % (result.messages,))
    out = []
    for row in result.rows:
        first, end = int(float(row["_time"])), int(float(row["episode_end"]))
        out.append(Result(first + SPAN, row["src"], first, end, row.get("severity", "")))
    return out


# ------------------------------------------------------------------------------------------ report
def _minutes(seconds: Sequence[int], q: float) -> str:
    if not seconds:
        return "-"
    ordered = sorted(seconds)
    return "%.0f" % (ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 60.0)


def score_row(name: str, score: AlertScore, tunnels: Sequence[dict], alerting: bool = True) -> str:
    """A table row; `alerting` False for rows that are not alerts (tunnels and latency only)."""
    latencies = score.latencies(tunnels)
    found = ("| %s | %d of %d (%.2f) | %s / %s / %s |"
             % (name, len(score.alerted), score.tunnels, score.recall, _minutes(latencies, 0.5),
                _minutes(latencies, 0.9), _minutes(latencies, 1.0)))
    if not alerting:
        return found + " - | - | - |"
    _, high = evaluate.false_rate_interval(len(score.false), score.host_days)
    return found + (" %d | %.2f (%d; 95%% <= %.2f) | %d |"
                    % (score.alerts, score.false_per_1000_host_days, len(score.false), high, score.repeats))


TABLE_HEADER = ["| what alerts | tunnels alerted | minutes from tunnel start to first alert: median / p90 / max "
                "| alerts | false alerts / 1,000 host-days | repeat alerts on one tunnel |",
                "|---|---|---|---|---|---|"]


def describe(schedule: Schedule) -> str:
    """A filter and suppression in words, as the report names them."""
    return "%s >= %s, suppressed by %s for %s" % (
        schedule.new_field, schedule.new_since, ",".join(schedule.suppress_fields) or "nothing",
        _span(schedule.suppress_period))


def _span(seconds: int) -> str:
    return "%dh" % (seconds // 3600) if seconds % 3600 == 0 else "%dm" % (seconds // 60)


# Filters and suppressions scored beside the shipped one (parse_variant's form): the detection as it
# shipped before the replay (episodes that began in the last 45 minutes, a host suppressed for an
# hour), the README's earlier advice for records written when a flow ends (episodes with a bucket in
# the last 45 minutes), and a shorter window than the shipped one.
ALTERNATIVES = ("_time,-45m@m,src,1h", "episode_end,-45m@m,src,1h", "episode_end,-4h,src,24h")


def variants(schedule: Schedule, extra: Sequence[str] = ()) -> Dict[str, Schedule]:
    """The shipped filter and suppression, then ALTERNATIVES and `extra`, each named once."""
    named = {"shipped: " + describe(schedule): schedule}
    for text in tuple(ALTERNATIVES) + tuple(extra):
        other = parse_variant(text, schedule)
        if other != schedule and describe(other) not in named:
            named[describe(other)] = other
    return named


def parse_variant(text: str, schedule: Schedule) -> Schedule:
    """FIELD,SINCE,SUPPRESS_FIELDS,PERIOD (`episode_end,-24h,src+_time,7d`): another filter and
    suppression on the shipped schedule, window and cadence."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("variant %r is not FIELD,SINCE,SUPPRESS_FIELDS,PERIOD" % text)
    field_, since, fields, period = parts
    relative_time(0, since)  # refuses what it cannot read
    return replace(schedule, new_field=field_, new_since=since,
                   suppress_fields=tuple(f for f in fields.split("+") if f), suppress_period=_period(period))


def behaviour_with(behaviour: scenario.Behaviour, settings: Sequence[str]) -> scenario.Behaviour:
    """`behaviour` with NAME=VALUE settings (a family pushed further: `label_share=1.0`)."""
    changes = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        if name not in scenario.Behaviour.__dataclass_fields__:
            raise ValueError("no scenario option %r" % name)
        current = getattr(behaviour, name)
        kind = type(current) if current is not None else float
        changes[name] = (text.lower() in ("1", "true")) if kind is bool else kind(text)
    return replace(behaviour, **changes)


def read_runs(path: Path) -> List[Result]:
    """The rows write_details wrote to runs.csv."""
    with open(path, newline="") as handle:
        return [Result(int(r["run"]), r["src"], int(r["_time"]), int(r["episode_end"]), r["severity"])
                for r in csv.DictReader(handle)]


def write_details(folder: Path, results: Sequence[Result], tunnels: Sequence[dict],
                  scores: Dict[str, AlertScore], first: int, last: int) -> None:
    """runs.csv: every run's output row; tunnels.csv: each scored tunnel, and per score when it
    first alerted (blank: never)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "runs.csv", "w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["run", "src", "_time", "episode_end", "severity"])
        out.writerows([r.run, r.src, r.first, r.last, r.severity] for r in results)
    with open(folder / "tunnels.csv", "w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["id", "src", "host_kind", "kind", "extra_packets", "start", "end"] + list(scores))
        for t in scored_tunnels(tunnels, first, last):
            out.writerow([t["id"], t["src"], t["host_kind"], t["kind"], t["extra_packets"], t["start"], t["end"]]
                         + [min(s.alerted[t["id"]]) if t["id"] in s.alerted else "" for s in scores.values()])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="default", help="scenario family (tools/scenario.py)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="a scenario option on top of the family's (repeatable), e.g. label_share=1.0")
    parser.add_argument("--variant", action="append", default=[], metavar="FIELD,SINCE,SUPPRESS,PERIOD",
                        help="a filter and suppression to score beside the shipped ones (repeatable), "
                             "e.g. episode_end,-24h,src+_time,7d")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--scored-days", type=int, default=3, help="days of scheduled runs after 7 days of history")
    parser.add_argument("--lag", default="30,180", help="seconds from a flow's end to its record searchable")
    parser.add_argument("--backlogs", type=float, default=0.0, help="indexing stalls per week")
    parser.add_argument("--backlog-minutes", default="15,120", help="each stall's length")
    parser.add_argument("--chunk-size", type=int, default=50000)
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "eval" / "schedule.md")
    parser.add_argument("--from-runs", type=Path, metavar="RUNS_CSV",
                        help="score the runs of an earlier replay (its --details runs.csv, the same options) "
                             "instead of replaying")
    parser.add_argument("--details", type=Path,
                        help="folder for every run's output rows (runs.csv) and the tunnels per variant (tunnels.csv)")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def pair(text: str) -> Tuple[int, int]:
        low, high = (int(x) for x in text.split(","))
        return low, high

    schedule = shipped_schedule()
    history = 7
    days = history + args.scored_days
    behaviour = behaviour_with(scenario.FAMILIES[args.family], args.set)
    params = scenario.Params(seed=args.seed, hosts=args.hosts, days=days, behaviour=behaviour,
                             warmup_days=history, heavy_tunnels=args.hosts // evaluate.HEAVY_TUNNELS_PER)
    delivery = Delivery(lag=pair(args.lag), backlogs=args.backlogs, backlog_minutes=pair(args.backlog_minutes),
                        seed=args.seed)
    clock = time.monotonic()
    rows, truth = scenario.generate(params)
    names = scenario.header(behaviour)
    options = scenario.command_args(behaviour)
    first = params.start + history * 86400
    last = params.start + days * 86400
    periods = backlog_periods(delivery, first - 86400, last + 3 * 3600)
    timeline = records(rows, names, behaviour, delivery, periods)
    runs = run_times(first, last + 3 * 3600, schedule.every)
    log("%s seed %d: %d rows, %d tunnels, %d runs, %d backlogs" % (args.family, args.seed, len(rows),
                                                                   len(truth["tunnels"]), len(runs), len(periods)))
    if args.from_runs:
        results = read_runs(args.from_runs)
    else:
        results = replay(timeline, names, options, schedule, runs, periods, args.chunk_size, log)
    hosts = evaluate.machines(truth)
    tunnels = truth["tunnels"]
    scores = {name: score_alerts(alerts(results, variant), tunnels, hosts, first, last)
              for name, variant in variants(schedule, args.variant).items()}
    seen = score_alerts(results, tunnels, hosts, first, last)
    once = score_alerts(one_pass(rows, names, options, args.chunk_size), tunnels, hosts, first, last)
    table = list(TABLE_HEADER) + [score_row(name, score, tunnels) for name, score in scores.items()]
    table.append(score_row("in any run's output (before the filter and suppression)", seen, tunnels, alerting=False))
    table.append(score_row("one pass over every record (the matrix's view)", once, tunnels))
    if args.details:
        write_details(args.details, results, tunnels, dict(scores, **{"any run": seen, "one pass": once}),
                      first, last)
    seconds = time.monotonic() - clock
    lines = ["# The shipped alert, run on its schedule", "",
             "Generated by `python tools/schedule.py%s` in %.0f s: family `%s`, seed %d, %d hosts, 7 days of "
             "history then %d scored days, %d runs every %d minutes over `%s` to `%s`, suppression %s for %d s; "
             "records searchable %s s after their flow ended, %d backlogs."
             % ("".join(" " + a for a in (argv if argv is not None else sys.argv[1:])), seconds, args.family,
                args.seed, args.hosts, args.scored_days, len(runs), schedule.every // 60, schedule.earliest,
                schedule.latest, ",".join(schedule.suppress_fields) or "none", schedule.suppress_period,
                "-".join(map(str, delivery.lag)), len(periods)), ""] + table
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
