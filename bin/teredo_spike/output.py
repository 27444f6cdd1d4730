"""Result rows of `| teredospike`, each with a `reason` an analyst can read at 3 a.m."""

import heapq
import math
from typing import AbstractSet, Dict, Iterator, Optional, Sequence

from . import evidence as ev
from .hostbuckets import BYTES, METRICS, PACKETS, RELAY_PACKETS, Bucket, HostSeries
from .scoring import (DAILY_SESSIONS, KEPT_FEW_SESSIONS, KEPT_NEW_DESTINATIONS, KEPT_NEW_HOUR,
                      ONCE_BELOW, RELAY_MIN_PACKETS, ROUTINE_WINDOW, Episode, Settings, episodes,
                      fleet_use_level)

MITRE_TECHNIQUE_ID = "T1572"

SEVERITIES = ("low", "medium", "high", "critical")
RISK_SCORES = {"informational": 0, "low": 25, "medium": 50, "high": 75, "critical": 100}
# Severity from the peak's score: low below SEVERITY_MEDIUM, medium below SEVERITY_HIGH, high
# from it; one step up for a first-seen host or an episode of LONG_EPISODE_BUCKETS or more, to high
# at most. Critical only for volume far above both the host's routine and the fleet: a score of
# CRITICAL_SCORE or more (x6,300 the baseline at the sigma floor), relay packets at least
# CRITICAL_FLEET_MULTIPLE x the fleet's use level (scoring.fleet_use_level), so that a heavy user's
# first session, at the fleet's usual level of use, is high and not critical, and relay packets at
# least CRITICAL_ROUTINE_MULTIPLE x the host's routine relay packets at that hour
# (HostSeries.routine_relay_packets; a host with no routine at that hour meets it), because the
# score measures a heavy user against its idle baseline (spikes do not teach it): without this a
# heavy user's tunnel just above scoring.ROUTINE_RATIO (5x, where paging starts) can be critical.
# Set by reasoning, not tuned: at threshold 6, a score of 9 is x20 the baseline at the sigma floor;
# "far above" the routine is the same x20 as above the fleet, 4x the ratio at which a heavy user's
# bucket starts to page (checked on the tuning seed: critical 17 -> 9 of 193 episodes).
SEVERITY_MEDIUM = 9.0
SEVERITY_HIGH = 12.0
LONG_EPISODE_BUCKETS = 3
CRITICAL_SCORE = 25.0
CRITICAL_FLEET_MULTIPLE = 20.0
CRITICAL_ROUTINE_MULTIPLE = 20.0
# A spike on a host with Teredo sessions of its own (a heavy user) judged on volume against the
# host's level (_own_level: its routine at that hour, or the level a routine rule named when it
# kept the spike, e.g. its typical session at an hour it never used): at that level's volume, from
# scoring.ONCE_BELOW below it (a low session is still the host's use) to OWN_HIGH_MULTIPLE above
# it, in relay packets, it is at most medium, whatever its score. Such a host is scored against its
# idle baseline, so its own sessions and phases score like a tunnel on an idle client; how far
# from its own level a bucket is says more. From scoring.ROUTINE_RATIO (5x, where such a spike
# starts to page) to 10x is what a heavy user's own phases reach (docs/detection-quality.md,
# hard-phased); a tunnel there is medium too, and the reason says the host's level. Far below it
# (a small tunnel at an hour the host never used) keeps its score's severity. Set by reasoning
# (twice the ratio at which paging starts), not tuned.
OWN_HIGH_MULTIPLE = 10.0
# A spike on a host whose Teredo the search holds for less than this before it says so: no routine
# can have been learned (sessions on two earlier days, scoring.ROUTINE_SESSIONS). The search's range
# may have just begun, the host may be new, or it came back on a new address (a DHCP lease, a VPN
# pool): the command knows a host by its address unless its flows carry src_host
# (fields.HOST_FIELD; docs/detection-quality.md, family address-churn).
SHORT_HISTORY = 2 * 86400

# Every row carries every field, in this order: splunklib freezes the output header at the first row.
FIELDS = (
    "_time", "episode_end", "episode_buckets", "src", "is_spike", "score", "severity",
    "risk_score", *METRICS, "baseline_packets", "baseline_bytes", "baseline_packets_upper",
    *("z_" + metric for metric in METRICS), "fleet_adjustment",
    "first_seen", "evidence", "client_ports", "teredo_servers", "relays", "mapped",
    "mitre_technique_id", "reason",
)


# The per-metric fields of a row: each metric's value, then its z (rounded to _Z_DIGITS).
_PER_METRIC_FIELDS = METRICS + tuple("z_" + metric for metric in METRICS)
_Z_DIGITS = (2,) * len(METRICS)


def severity(score: float, first_seen: bool, buckets: int, relay_packets: int,
             fleet_level: float, routine_relay_packets: Optional[float],
             own_level: Optional[float] = None) -> str:
    """low [6, 9), medium [9, 12), high >= 12; one step up (to high at most) for a first-seen host or
    a long spike; critical for a score >= CRITICAL_SCORE whose relay packets are at least
    CRITICAL_FLEET_MULTIPLE x `fleet_level` (and RELAY_MIN_PACKETS) and at least
    CRITICAL_ROUTINE_MULTIPLE x `routine_relay_packets`, the host's routine relay packets at that
    hour (HostSeries.routine_relay_packets; None for a host with no routine at that hour, which
    meets this part). Not critical, at most medium from `own_level` / ONCE_BELOW to below
    OWN_HIGH_MULTIPLE x `own_level`, the relay packets of the host's own level it was judged
    against (_own_level; None for a host without sessions of its own)."""
    own = max(own_level, 1.0) if own_level is not None else None
    near_own = own is not None and own / ONCE_BELOW <= relay_packets < OWN_HIGH_MULTIPLE * own
    if (not near_own and score >= CRITICAL_SCORE
            and relay_packets >= max(RELAY_MIN_PACKETS, CRITICAL_FLEET_MULTIPLE * fleet_level)
            and (routine_relay_packets is None
                 or relay_packets >= CRITICAL_ROUTINE_MULTIPLE * routine_relay_packets)):
        return "critical"
    level = 0 if score < SEVERITY_MEDIUM else 1 if score < SEVERITY_HIGH else 2
    if first_seen or buckets >= LONG_EPISODE_BUCKETS:
        level = min(level + 1, 2)
    if near_own:
        level = min(level, 1)
    return SEVERITIES[level]


def _own_level(hb: Bucket) -> Optional[float]:
    """The relay packets of the host's own level that spike `hb` was judged against on volume:
    the level named by the routine rule that kept it (HostSeries.kept_by), else its routine at that
    hour. None for a spike on a host without sessions of its own, and for one kept for its new
    destinations (KEPT_NEW_DESTINATIONS: a host that keeps to its own reaching others is no
    question of volume; on the bundled sample, a 300-packet relay tunnel on a heavy user's host)."""
    kept = hb.kept_by
    if kept is None:
        return hb.routine_relay_packets
    return None if kept[0] in (KEPT_NEW_DESTINATIONS, KEPT_FEW_SESSIONS) else kept[1]


def format_span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def _expected(hb: Bucket, k: int, sigmas: float = 0.0) -> int:
    y = hb.baseline(k) + sigmas * hb.baseline_sd(k) if sigmas else hb.baseline(k)
    return int(round(math.expm1(y)))


def reason(peak: Bucket, settings: Settings, first_seen: bool, buckets: int, start: int) -> str:
    """E.g. "packets 12,400 in 10m vs baseline 20 (z 14.2); 3 relay destinations via client port
    3797". `start`: the first bucket of the episode (or the bucket) that `peak` is the peak of."""
    k = max(range(len(METRICS)), key=lambda i: peak.z[i])
    parts = ["%s %s in %s vs baseline %s (z %.1f)" % (
        METRICS[k].replace("_", " "), "{:,}".format(peak.values[k]), format_span(settings.span),
        "{:,}".format(_expected(peak, k)), peak.z[k])]
    relays = peak.relays
    if relays:
        ports = sorted(peak.client_ports, key=_port_order)
        parts.append("%d relay destination%s via client port%s %s" % (
            len(relays), "" if len(relays) == 1 else "s",
            "" if len(ports) == 1 else "s", ", ".join(ports)))
    kept = peak.kept_by
    if kept is not None:
        parts.append(_kept_reason(kept[0], kept[1], peak.values[RELAY_PACKETS], settings))
    if peak.fleet_adjustment > 0:
        parts.append("fleet-wide rise of %.1f discounted" % peak.fleet_adjustment)
    if first_seen:
        parts.append("first Teredo seen from this host")
    else:
        history = start - peak.series.buckets[0]
        if history < SHORT_HISTORY:
            parts.append("only %s of this host's Teredo before it in this search: no routine yet "
                         "(the search's start, a new host, or a new address)" % _duration(history))
    if buckets > 1:
        parts.append("episode of %d buckets" % buckets)
    return "; ".join(parts)


def _duration(seconds: int) -> str:
    """E.g. "19 hours", "1 hour", "40 minutes"."""
    count, unit = (seconds // 3600, "hour") if seconds >= 3600 else (seconds // 60, "minute")
    return "%d %s%s" % (count, unit, "" if count == 1 else "s")


def _kept_reason(rule: str, level: float, relay_packets: int, settings: Settings) -> str:
    """Why a spike on a host with earlier sessions (a heavy user) still pages: the routine rule
    that kept it (scoring.KEPT_*), and the host's level it was judged against (relay packets)."""
    span = format_span(settings.span)
    level_text = "{:,}".format(int(round(level)))
    if rule == KEPT_NEW_DESTINATIONS:
        return ("new destinations on a host that keeps to its own (its routine here %s relay packets"
                " in %s)" % (level_text, span))
    if rule == KEPT_FEW_SESSIONS:
        sessions = int(level)
        return "only %d earlier spike session%s in the last %d days, none at this hour: a " \
               "routine needs %d" % (sessions, "" if sessions == 1 else "s",
                                     ROUTINE_WINDOW // 86400, DAILY_SESSIONS)
    if rule == KEPT_NEW_HOUR:
        return "no routine at this hour of day in the last %d days (typical session %s relay packets in %s)" % (
            ROUTINE_WINDOW // 86400, level_text, span)
    # KEPT_ABOVE_ROUTINE
    return "relay packets %.1fx the host's routine at this hour (%s in %s)" % (
        relay_packets / max(level, 1.0), level_text, span)


def _port_order(port: str) -> tuple:
    return (0, int(port), "") if port.isdigit() and len(port) <= 5 else (1, 0, port)


def _common(hb: Bucket, values: Sequence[int]) -> Dict[str, object]:
    """The fields a bucket row and an episode row fill alike; `values` per METRICS."""
    return dict(zip(_PER_METRIC_FIELDS, (*values, *map(round, hb.z, _Z_DIGITS))),
                baseline_packets=_expected(hb, PACKETS), baseline_bytes=_expected(hb, BYTES),
                fleet_adjustment=round(hb.fleet_adjustment, 2),
                mitre_technique_id=MITRE_TECHNIQUE_ID)


def bucket_row(hb: Bucket, settings: Settings, first_seen: bool,
               fleet_level: float) -> Dict[str, object]:
    """`output=all`: one row per host-bucket with Teredo traffic, spike or not."""
    level = (severity(hb.score, first_seen, 1, hb.values[RELAY_PACKETS], fleet_level,
                      hb.routine_relay_packets, _own_level(hb))
             if hb.is_spike else "informational")
    row = _common(hb, hb.values)
    row.update({
        "_time": hb.bucket, "episode_end": hb.bucket, "episode_buckets": 1, "src": hb.src,
        "is_spike": int(hb.is_spike), "score": round(hb.score, 2), "severity": level,
        "risk_score": RISK_SCORES[level],
        "baseline_packets_upper": _expected(hb, PACKETS, settings.threshold),
        "first_seen": int(first_seen), "evidence": ev.names(hb.evidence),
        "client_ports": sorted(hb.client_ports, key=_port_order),
        "teredo_servers": sorted(hb.servers), "relays": sorted(hb.relays),
        "mapped": sorted(hb.mapped),
        "reason": reason(hb, settings, first_seen, 1, hb.bucket) if hb.is_spike else "",
    })
    return row


def episode_row(episode: Episode, settings: Settings, first_seen: bool,
                fleet_level: float) -> Dict[str, object]:
    """`output=spikes`: one row per episode, scored by its peak bucket."""
    series = episode.series
    buckets = [series[i] for i in range(episode.first, episode.last + 1)]
    peak = series[episode.peak]
    length = (buckets[-1].bucket - buckets[0].bucket) // settings.span + 1
    level = severity(peak.score, first_seen, length, peak.values[RELAY_PACKETS], fleet_level,
                     peak.routine_relay_packets, _own_level(peak))
    dests, ports, servers, relays, mapped = set(), set(), set(), set(), set()
    mask = 0
    for hb in buckets:
        dests.update(hb.dests)
        ports.update(hb.client_ports)
        servers.update(hb.servers)
        relays.update(hb.relays)
        mapped.update(hb.mapped)
        mask |= hb.evidence
    # Over the episode every metric is a sum, but destinations: the distinct ones of its buckets.
    totals = dict(zip(METRICS, map(sum, zip(*(hb.values for hb in buckets)))))
    totals["dests"] = len(dests)
    row = _common(peak, [totals[metric] for metric in METRICS])
    row.update({
        "_time": buckets[0].bucket, "episode_end": buckets[-1].bucket, "episode_buckets": length,
        "src": series.src, "is_spike": 1, "score": round(peak.score, 2), "severity": level,
        "risk_score": RISK_SCORES[level],
        "baseline_packets_upper": _expected(peak, PACKETS, settings.threshold),
        "first_seen": int(first_seen), "evidence": ev.names(mask),
        "client_ports": sorted(ports, key=_port_order), "teredo_servers": sorted(servers),
        "relays": sorted(relays), "mapped": sorted(mapped),
        "reason": reason(peak, settings, first_seen, length, buckets[0].bucket),
    })
    return row


def result_rows(hosts: Dict[str, HostSeries], settings: Settings,
                output: str, only: AbstractSet[str] = frozenset()) -> Iterator[Dict[str, object]]:
    """Rows in time order, then host: `spikes` (episodes) or `all` (every host-bucket); of the
    hosts in `only` when it names any (option src: a dashboard's one-host panel, whose reply then
    holds one host's rows, not every host's).

    Each host's rows come in time order already, so merging the hosts' rows sorts them, and makes
    each row only when it is written: `all` never holds a result row per host-bucket at once."""
    fleet_level = fleet_use_level(hosts)  # over every host, also when `only` names some
    if only:
        hosts = {src: series for src, series in hosts.items() if src in only}
    def host_rows(series: HostSeries) -> Iterator[Dict[str, object]]:
        if output == "all":
            return (bucket_row(hb, settings, hb.index == 0, fleet_level) for hb in series)
        return (episode_row(e, settings, e.first == 0, fleet_level)
                for e in episodes(series, settings.span))

    return heapq.merge(*(host_rows(series) for series in hosts.values()),
                       key=lambda row: (row["_time"], row["src"]))
