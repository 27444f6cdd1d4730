"""The command's options, declared once (OPTIONS), parsed and checked with messages that say what
to type instead. The command's splunklib Options, tools/verdicts.py's defaults, the README's
options table and searchbnf.conf's syntax are made from or checked against OPTIONS
(tests/test_options.py)."""

import re
from collections import Counter
from typing import Callable, Dict, FrozenSet, NamedTuple, Sequence

from .addresses import DEFAULT_INTERNAL, Networks
from .records import NOTE_UNREAD_DURATION, RECORD_END, RECORD_START
from .scoring import Settings

OUTPUTS = ("spikes", "all", "buckets")
RECORD_TIMES = (RECORD_START, RECORD_END)
# A live client refreshes its server every 20-30 s: a bucket shorter than a minute cannot tell a
# live client port from an idle one, and would make a cell of every record (memory).
MIN_SPAN = 60
MAX_SPAN = 7 * 86400

_SPAN = re.compile(r"^\s*(\d+)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class OptionError(ValueError):
    """A bad option value; its text goes to the search's messages."""


def parse_span(text: str) -> int:
    match = _SPAN.match(text or "")
    if not match:
        raise OptionError("span=%s: expected a duration such as 10m, 1h or 600 (seconds)" % text)
    unit = (match.group(2) or "s")[0].lower()
    seconds = int(match.group(1)) * _UNIT_SECONDS[unit]
    if not MIN_SPAN <= seconds <= MAX_SPAN:
        raise OptionError("span=%s: must be between 1 minute and 7 days (a Teredo client "
                          "refreshes every 20-30 s; a shorter bucket cannot tell that it is live)"
                          % text)
    return seconds


def _number(kind, minimum) -> Callable[[str, str], float]:
    def parse(name: str, text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise OptionError("%s=%s: expected %s" % (
                name, text, "a number, e.g. 6.0" if kind is float else "a whole number, e.g. 50"))
        if value != value or value < minimum or value == float("inf"):
            raise OptionError("%s=%s: must be at least %s" % (name, text, minimum))
        return value
    return parse


def _networks(name: str, text: str) -> Networks:
    try:
        return Networks.parse(text)
    except ValueError as error:
        raise OptionError("%s=%s: %s" % (name, text, error))


def _hosts(name: str, text: str) -> FrozenSet[str]:
    """Comma-separated hosts (empty: every host)."""
    return frozenset(host.strip() for host in text.split(",") if host.strip())


def _choice(values: Sequence[str], meanings: str) -> Callable[[str, str], str]:
    """A parser of an option that takes one of `values`; `meanings` says what each means, in the
    error's "expected ..."."""
    def parse(name: str, text: str) -> str:
        if text not in values:
            raise OptionError("%s=%s: expected %s" % (name, text, meanings))
        return text
    return parse


_output = _choice(OUTPUTS, "spikes (one row per episode), all (every host-bucket with Teredo "
                           "traffic) or buckets (the summary stage's rows)")
_record_time = _choice(RECORD_TIMES, "start (a record's _time is when its flow began: Zeek "
                                     "conn.log, NetFlow) or end (when it ended: firewall session "
                                     "logs)")


class OptionSpec(NamedTuple):
    name: str
    default: str          # as typed in the search bar
    parse: Callable       # (name, text) -> value, or OptionError
    syntax: str           # searchbnf.conf's placeholder
    help: str             # the command's doc and the README table's meaning
    readme_default: str   # the README table's default column (the short form of `default`)


OPTIONS = (
    OptionSpec("span", "10m", lambda name, text: parse_span(text), "<timespan>",
               "bucket width (`10m`, `1h`, `600`)", "`10m`"),
    OptionSpec("threshold", "6.0", _number(float, 0.1), "<num>",
               "score at or above which a bucket is a spike", "`6.0`"),
    OptionSpec("min_packets", "50", _number(int, 0), "<int>",
               "per-bucket volume floor: below it **and** below `min_bytes`, no spike", "`50`"),
    OptionSpec("min_bytes", "16000", _number(int, 0), "<int>",
               "per-bucket byte floor, with `min_packets`", "`16000`"),
    OptionSpec("internal", DEFAULT_INTERNAL, _networks, "<string>",
               "comma-separated CIDRs; outbound = from these to anywhere else",
               "`10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, fc00::/7, fe80::/10`"),
    OptionSpec("output", "spikes", _output, "(spikes|all|buckets)",
               "`spikes`: one row per spike episode; `all`: every host-bucket with Teredo traffic; "
               "`buckets`: the summary stage's rows, one per host, client port and owned bucket, "
               "unscored (README, Tune)", "`spikes`"),
    OptionSpec("record_time", RECORD_START, _record_time, "(start|end)",
               "what a flow record's `_time` marks where it has a `duration` (seconds): `start` "
               "(Zeek conn.log, NetFlow first-switched) or `end` (firewall session logs); its "
               "traffic is spread evenly over the buckets it lasted", "`start`"),
    OptionSpec("src", "", _hosts, "<string>",
               "comma-separated hosts whose rows to return (empty: every host); every host still "
               "counts in the baselines, so a host's rows are the same as without it", "(every host)"),
    OptionSpec("max_host_buckets", "5000000", _number(int, 1), "<int>",
               "the most (host, client port, bucket) aggregates one search holds (on the search "
               "head, about 1 KB each from flow records, 250-350 bytes from summary rows: more "
               "where hosts reach many destinations a bucket); beyond it the search stops with a "
               "message", "`5000000`"),
)
OPTION_NAMES = ", ".join(spec.name for spec in OPTIONS)
DEFAULTS: Dict[str, str] = {spec.name: spec.default for spec in OPTIONS}


class Options(NamedTuple):
    scoring: Settings
    internal: Networks
    output: str
    max_host_buckets: int
    hosts: FrozenSet[str]  # src: the hosts whose rows to return; empty for every host
    record_time: str       # what a record's _time marks (records.spread)


def _unquote(text: str) -> str:
    """`internal="10.0.0.0/8,fd00::/8"` may arrive with its quotes: splunklib keeps them."""
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def parse(**texts: str) -> Options:
    """Check every option (name -> text as typed; a missing one takes its default); raise
    OptionError naming the first bad one."""
    unknown = sorted(set(texts) - set(DEFAULTS))
    if unknown:
        raise OptionError("unknown option %s; the options are %s" % (unknown[0], OPTION_NAMES))
    values = {spec.name: spec.parse(spec.name, _unquote(texts.get(spec.name, spec.default)))
              for spec in OPTIONS}
    settings = Settings(span=values["span"], threshold=values["threshold"],
                        min_packets=values["min_packets"], min_bytes=values["min_bytes"])
    return Options(settings, values["internal"], values["output"], values["max_host_buckets"],
                   values["src"], values["record_time"])


def searchbnf_syntax() -> str:
    """searchbnf.conf's `syntax` line."""
    return "teredospike " + " ".join("(%s=%s)?" % (spec.name, spec.syntax) for spec in OPTIONS)


def readme_table() -> str:
    """The README's options table (Markdown)."""
    lines = ["| option | default | meaning |", "|---|---|---|"]
    lines += ["| `%s` | %s | %s |" % (spec.name, spec.readme_default, spec.help)
              for spec in OPTIONS]
    return "\n".join(lines) + "\n"


def unread_durations_message(records: int, notes: Counter) -> str:
    """A warning naming how many records' duration could not be read; empty when none."""
    count = notes[NOTE_UNREAD_DURATION]
    if not count:
        return ""
    return ("teredospike counted {} of {} records at their _time without spreading them over the "
            "time they lasted: their duration is not a number of seconds (e.g. 0:01:23, or "
            "text). Make duration seconds in the base search.".format(
                "{:,}".format(count), "{:,}".format(records)))


def skipped_message(records: int, skipped: Counter) -> str:
    """A warning naming how many records were skipped and why; empty when none were."""
    total = sum(skipped.values())
    if not total:
        return ""
    reasons = "; ".join("%s %s" % ("{:,}".format(count), reason)
                        for reason, count in skipped.most_common())
    return "teredospike skipped %s of %s records it could not read: %s." % (
        "{:,}".format(total), "{:,}".format(records), reasons)
