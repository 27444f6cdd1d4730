"""Each host's Teredo traffic per bucket: the attributed cells summed over client ports.

METRICS names the per-bucket quantities scoring works on; `HostBucket.values`, `z`, `baseline`
and `baseline_sd` hold one number per metric in METRICS order, and every reader takes them by
name (METRICS.index), never by a literal position. `HostBucket.scores` holds z, baseline and
baseline_sd one after the other (Z, BASELINE and BASELINE_SD are where each starts).
"""

from array import array
from functools import partial
from operator import attrgetter, itemgetter
from typing import (AbstractSet, Callable, Dict, FrozenSet, Hashable, Iterable, List, NamedTuple,
                    Optional, Sequence, Tuple)

from .cells import Cell, Key

METRICS = ("packets", "bytes", "flows", "dests", "relay_packets")
PACKETS, BYTES, FLOWS, RELAY_PACKETS = (METRICS.index(name) for name in
                                        ("packets", "bytes", "flows", "relay_packets"))

_BUCKET_OF = attrgetter("bucket")


# The largest value a metric takes: the scoring's y = ln(1 + x) of more would overflow a double.
MAX_VOLUME = 10 ** 300


def metric_values(*, packets: int, bytes: int, flows: int, dests: int, relay_packets: int
                  ) -> Tuple[int, ...]:
    """The METRICS of one host-bucket, in METRICS order (tests/test_hostbuckets.py holds the two
    to the same order), inside the scoring's domain (in_domain)."""
    return in_domain((packets, bytes, flows, dests, relay_packets))


def in_domain(values: Tuple[int, ...]) -> Tuple[int, ...]:
    """Metric values where the scoring's y = ln(1 + x) is defined and finite: 0 to MAX_VOLUME.
    Records are checked before they are counted (records.read_count), so this changes nothing on
    real input; it keeps any input from reaching the log of a negative number."""
    for x in values:
        if not 0 <= x <= MAX_VOLUME:
            return tuple(min(max(x, 0), MAX_VOLUME) for x in values)
    return values


# Where z, baseline and baseline_sd start in HostBucket.scores.
Z, BASELINE, BASELINE_SD = (i * len(METRICS) for i in range(3))
NO_SCORES = array("d", (0.0,) * (3 * len(METRICS)))  # HostBucket.scores before scoring
# The largest metric value an array("q") holds; HostBucket.values falls back to a tuple above it.
_MAX_Q = 2 ** 63 - 1



class Traffic(NamedTuple):
    """One cell's traffic, as host_buckets copies it out."""

    bucket: int
    packets: int
    bytes: int
    flows: int
    relay_packets: int
    dest_count: int
    dests: Tuple[str, ...]
    dest_packets: Tuple[int, ...]  # packets to each of dests
    client_ports: Tuple[str, ...]
    servers: Tuple[str, ...]
    mapped: Tuple[str, ...]
    evidence: int


# Traffic from a tuple in field order, without the Python-level __new__ of a NamedTuple (one per
# cell: hundreds of thousands at the search head).
_traffic = partial(tuple.__new__, Traffic)
# What a HostBucket takes from its Traffic, by field name, in one C call each.
_KEPT = itemgetter(*map(Traffic._fields.index, (
    "bucket", "dests", "dest_packets", "client_ports", "servers", "mapped", "evidence")))
# The Traffic field that holds each metric.
_METRIC_FIELD = {"packets": "packets", "bytes": "bytes", "flows": "flows", "dests": "dest_count",
                 "relay_packets": "relay_packets"}
_METRIC_VALUES = itemgetter(*(Traffic._fields.index(_METRIC_FIELD[name]) for name in METRICS))


class HostBucket:
    """One host's Teredo traffic in one bucket, summed over its client ports, with its scores.

    The search head holds one per host and bucket with Teredo traffic (millions, for thousands of
    always-on clients over a week), so it is kept small: its destinations, client ports, servers and
    mapped addresses are tuples of distinct values (48-56 bytes for one or two, a set costs 216;
    host_buckets shares equal ones). Its metric values are an array of 64-bit integers (104 bytes;
    a tuple of five ints above 256 costs 80 + 4 x 28), a tuple only for a value beyond 2**63
    (in_domain allows up to MAX_VOLUME). Its per-metric scores (z, baseline, baseline_sd) are one
    array of 15 doubles (184 bytes; three arrays of five cost 312, three lists of five floats 648);
    `z`, `baseline` and `baseline_sd` are writable views on it, for readers outside the hot loop.
    """

    __slots__ = ("src", "bucket", "values", "dests", "dest_packets", "client_ports", "servers",
                 "mapped", "evidence", "scores", "score", "fleet_adjustment", "is_spike")

    def __init__(self, src: str, traffic: Traffic) -> None:
        self.src = src
        (self.bucket, self.dests, self.dest_packets, self.client_ports, self.servers,
         self.mapped, self.evidence) = _KEPT(traffic)
        # Made here rather than copied out with the cell, so that it sits by the HostBucket.
        self.values = _compact(in_domain(_METRIC_VALUES(traffic)))
        # Filled by score_host (and discount_familiar_peaks for z and score). A copy of a template
        # (a slice copies the doubles) is made three times faster than an array from a tuple.
        self.scores = NO_SCORES[:]
        self.score = 0.0
        self.fleet_adjustment = 0.0
        self.is_spike = False

    def merge(self, other: "HostBucket") -> None:
        """Add the host's traffic from other client ports in the same bucket (before scoring)."""
        dests = dict(zip(self.dests, self.dest_packets))
        for dest, packets in zip(other.dests, other.dest_packets):
            dests[dest] = dests.get(dest, 0) + packets
        servers = set(self.servers).union(other.servers)
        mine, others = self.values, other.values
        self.values = _compact(metric_values(
            packets=mine[PACKETS] + others[PACKETS], bytes=mine[BYTES] + others[BYTES],
            flows=mine[FLOWS] + others[FLOWS], dests=len(dests),
            relay_packets=_relay_packets(dests, servers)))
        self.dests = tuple(dests)
        self.dest_packets = tuple(dests.values())
        self.client_ports += other.client_ports
        self.servers = tuple(servers)
        self.mapped = tuple(set(self.mapped).union(other.mapped))
        self.evidence |= other.evidence

    @property
    def z(self) -> memoryview:
        """z per metric (a view: writing it writes `scores`)."""
        return memoryview(self.scores)[Z:BASELINE]

    @z.setter
    def z(self, zs: Sequence[float]) -> None:
        self.scores[Z:BASELINE] = array("d", zs)

    @property
    def baseline(self) -> memoryview:
        """Expected y per metric before this bucket (a view on `scores`)."""
        return memoryview(self.scores)[BASELINE:BASELINE_SD]

    @property
    def baseline_sd(self) -> memoryview:
        """The baseline's spread per metric (a view on `scores`)."""
        return memoryview(self.scores)[BASELINE_SD:]

    @baseline_sd.setter
    def baseline_sd(self, sds: Sequence[float]) -> None:
        self.scores[BASELINE_SD:] = array("d", sds)

    @property
    def packets(self) -> int:
        return self.values[PACKETS]

    @property
    def bytes(self) -> int:
        return self.values[BYTES]

    @property
    def relays(self) -> FrozenSet[str]:
        """Destinations other than Teredo servers (computed where a result row needs them)."""
        return frozenset(self.dests).difference(self.servers)


def _compact(values: Tuple[int, ...]) -> Sequence[int]:
    """Metric values as an array of 64-bit integers, or the tuple itself if one does not fit."""
    for x in values:
        if x > _MAX_Q:
            return values
    return array("q", values)


def traffic_of(port: str, bucket: int, packets: int, bytes_: int, flows: int, evidence: int,
               dests: Dict[str, int], servers: AbstractSet[str], mapped: AbstractSet[str],
               share: Callable[[Hashable, Hashable], Hashable]) -> Traffic:
    """One (host, client port, bucket)'s traffic as host_buckets keeps it (from a cell, or from a
    summary row: summary.SummaryReader). `share` (a dict's setdefault) keeps each distinct tuple
    once: host-buckets repeat a few (a host's client port, its Teredo server, a lone destination
    and its packet count; on the bench, reduce-phase peak RSS 407 -> 354 MB on Python 3.9)."""
    names, counts = tuple(dests), tuple(dests.values())
    ports, servers = (port,) if port else (), tuple(servers)
    return _traffic((bucket, packets, bytes_, flows, _relay_packets(dests, servers), len(names),
                     share(names, names), share(counts, counts), share(ports, ports),
                     share(servers, servers), tuple(mapped), evidence))


def host_buckets(cells: Dict[Key, Cell], traffic: Optional[Dict[str, List[Traffic]]] = None
                 ) -> Dict[str, List[HostBucket]]:
    """Sum each host's attributed cells (and `traffic` already copied out: summary rows) per
    bucket; buckets sorted by time.

    Empties `cells` and `traffic`: each cell is dropped as soon as its traffic is copied out, each
    host's copies as soon as its HostBuckets are made, so that the search head never holds every
    cell and every host-bucket at once."""
    # Two passes, for memory and for speed. The cells come with every host interleaved; each
    # one's traffic is copied into tuples as it is dropped, so that the cells' memory is reused
    # as it goes. Then the HostBuckets are made host by host in time order, the order in which
    # every scoring pass walks them: made together, they sit together in memory. (Measured on
    # the bench's 403,200 host-buckets: scoring ~15% less CPU than with HostBuckets made in the
    # cells' order, for 2-5% more peak RSS.)
    if traffic is None:
        traffic = {}
    share = {}.setdefault
    while cells:
        (src, port, bucket), cell = cells.popitem()
        copied = traffic_of(port, bucket, cell.packets, cell.bytes, cell.flows, cell.evidence,
                            cell.dests, cell.servers, cell.mapped, share)
        host = traffic.get(src)
        if host is None:
            traffic[src] = [copied]
        else:
            host.append(copied)
    cells.clear()  # popitem leaves the dict's table allocated; clear() frees it
    hosts: Dict[str, List[HostBucket]] = {}
    for src in list(traffic):  # in the order the hosts came
        host = traffic.pop(src)
        host.sort(key=_BUCKET_OF)
        series = [HostBucket(src, copied) for copied in host]
        del host  # the copies go as soon as the host's HostBuckets are made
        # A cell is one client port's traffic: a host that used two ports in a bucket has two
        # HostBuckets of that bucket, side by side. Most hosts keep one port.
        if len(set(map(_BUCKET_OF, series))) < len(series):
            series = _merge_ports(series)
        hosts[src] = series
    return hosts


def _relay_packets(dests: Dict[str, int], servers: Iterable[str]) -> int:
    """Packets to destinations other than the Teredo servers (`dests`: destination -> packets):
    all packets less the servers' (a loop over a cell's one or two servers rather than a filter
    over its destinations)."""
    packets = sum(dests.values())
    for server in servers:
        packets -= dests.get(server, 0)
    return packets


def _merge_ports(series: List[HostBucket]) -> List[HostBucket]:
    """`series` (sorted by bucket) with each bucket's HostBuckets merged into one."""
    merged = [series[0]]
    for hb in series[1:]:
        if hb.bucket == merged[-1].bucket:
            merged[-1].merge(hb)
        else:
            merged.append(hb)
    return merged
