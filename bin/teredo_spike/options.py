"""The command's options: parsed and checked once, with messages that say what to type instead."""

import re
from collections import Counter
from typing import NamedTuple

from .addresses import Networks
from .scoring import Settings

OPTION_NAMES = "span, threshold, min_packets, min_bytes, internal, output"
OUTPUTS = ("spikes", "all")
MAX_SPAN = 7 * 86400

_SPAN = re.compile(r"^\s*(\d+)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class OptionError(ValueError):
    """A bad option value; its text goes to the search's messages."""


class Options(NamedTuple):
    scoring: Settings
    internal: Networks
    output: str


def parse_span(text: str) -> int:
    match = _SPAN.match(text or "")
    if not match:
        raise OptionError("span=%s: expected a duration such as 10m, 1h or 600 (seconds)" % text)
    unit = (match.group(2) or "s")[0].lower()
    seconds = int(match.group(1)) * _UNIT_SECONDS[unit]
    if not 0 < seconds <= MAX_SPAN:
        raise OptionError("span=%s: must be between 1 second and 7 days" % text)
    return seconds


def _number(name: str, text: str, kind, minimum) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise OptionError("%s=%s: expected %s" % (
            name, text, "a number, e.g. 6.0" if kind is float else "a whole number, e.g. 50"))
    if value != value or value < minimum or value == float("inf"):
        raise OptionError("%s=%s: must be at least %s" % (name, text, minimum))
    return value


def _unquote(text: str) -> str:
    """`internal="10.0.0.0/8,fd00::/8"` may arrive with its quotes: splunklib keeps them."""
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def parse(span: str, threshold: str, min_packets: str, min_bytes: str, internal: str,
          output: str) -> Options:
    """Check every option; raise OptionError naming the first bad one."""
    span, threshold, min_packets, min_bytes, internal, output = (
        _unquote(v) for v in (span, threshold, min_packets, min_bytes, internal, output))
    seconds = parse_span(span)
    settings = Settings(
        span=seconds,
        threshold=_number("threshold", threshold, float, 0.1),
        min_packets=_number("min_packets", min_packets, int, 0),
        min_bytes=_number("min_bytes", min_bytes, int, 0),
    )
    try:
        networks = Networks.parse(internal)
    except ValueError as error:
        raise OptionError("internal=%s: %s" % (internal, error))
    if output not in OUTPUTS:
        raise OptionError("output=%s: expected spikes (one row per episode) or all (every "
                          "host-bucket with Teredo traffic)" % output)
    return Options(settings, networks, output)


def skipped_message(records: int, skipped: Counter) -> str:
    """A warning naming how many records were skipped and why; empty when none were."""
    total = sum(skipped.values())
    if not total:
        return ""
    reasons = "; ".join("%s %s" % ("{:,}".format(count), reason)
                        for reason, count in skipped.most_common())
    return "teredospike skipped %s of %s records it could not read: %s." % (
        "{:,}".format(total), "{:,}".format(records), reasons)
