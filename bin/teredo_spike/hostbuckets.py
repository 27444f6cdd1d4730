"""Each host's Teredo traffic per bucket: the attributed cells summed over client ports.

METRICS names the per-bucket quantities scoring works on; `HostBucket.values`, `z`, `baseline`
and `baseline_sd` hold one number per metric in METRICS order, and every reader takes them by
name (METRICS.index), never by a literal position.
"""

from array import array
from functools import partial
from operator import attrgetter, itemgetter
from typing import Dict, FrozenSet, Iterable, List, NamedTuple, Tuple

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


NO_SCORES = array("d", (0.0,) * len(METRICS))  # z, baseline and baseline_sd before scoring



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
    host_buckets shares equal ones), and its per-metric scores are arrays of doubles (104 bytes for
    five, a list of five floats 216).
    """

    __slots__ = ("src", "bucket", "values", "dests", "dest_packets", "client_ports", "servers",
                 "mapped", "evidence", "z", "score", "fleet_adjustment", "baseline", "baseline_sd",
                 "is_spike")

    def __init__(self, src: str, traffic: Traffic) -> None:
        self.src = src
        (self.bucket, self.dests, self.dest_packets, self.client_ports, self.servers,
         self.mapped, self.evidence) = _KEPT(traffic)
        # Made here rather than copied out with the cell, so that it sits by the HostBucket.
        self.values = in_domain(_METRIC_VALUES(traffic))
        # Filled by score_host (and discount_familiar_peaks for z and score). Copies of a template
        # (a slice copies the doubles) are made three times faster than arrays from a tuple.
        self.z = NO_SCORES[:]
        self.score = 0.0
        self.fleet_adjustment = 0.0
        self.baseline = NO_SCORES[:]     # expected y per metric before this bucket
        self.baseline_sd = NO_SCORES[:]
        self.is_spike = False

    def merge(self, other: "HostBucket") -> None:
        """Add the host's traffic from other client ports in the same bucket (before scoring)."""
        dests = dict(zip(self.dests, self.dest_packets))
        for dest, packets in zip(other.dests, other.dest_packets):
            dests[dest] = dests.get(dest, 0) + packets
        servers = set(self.servers).union(other.servers)
        mine, others = self.values, other.values
        self.values = metric_values(
            packets=mine[PACKETS] + others[PACKETS], bytes=mine[BYTES] + others[BYTES],
            flows=mine[FLOWS] + others[FLOWS], dests=len(dests),
            relay_packets=_relay_packets(dests, servers))
        self.dests = tuple(dests)
        self.dest_packets = tuple(dests.values())
        self.client_ports += other.client_ports
        self.servers = tuple(servers)
        self.mapped = tuple(set(self.mapped).union(other.mapped))
        self.evidence |= other.evidence

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


def host_buckets(cells: Dict[Key, Cell]) -> Dict[str, List[HostBucket]]:
    """Sum each host's attributed cells per bucket; buckets sorted by time.

    Empties `cells`: each cell is dropped as soon as its traffic is copied out, so that the search
    head never holds every cell and every host-bucket at once."""
    # Two passes, for memory and for speed. The cells come with every host interleaved; each
    # one's traffic is copied into tuples as it is dropped, so that the cells' memory is reused
    # as it goes. Then the HostBuckets are made host by host in time order, the order in which
    # every scoring pass walks them: made together, they sit together in memory. (Measured on
    # the bench's 403,200 host-buckets: scoring ~15% less CPU than with HostBuckets made in the
    # cells' order, for 2-5% more peak RSS.)
    traffic: Dict[str, List[Traffic]] = {}
    # Host-buckets repeat a few tuples (a host's client port, its Teredo server, a lone destination
    # and its packet count): each distinct one is kept once, here and in the HostBuckets (on the
    # bench, reduce-phase peak RSS 407 -> 354 MB on Python 3.9, and less CPU: fewer allocations).
    shared: Dict[tuple, tuple] = {}
    share = shared.setdefault
    while cells:
        (src, port, bucket), cell = cells.popitem()
        dests = cell.dests
        names, packets = tuple(dests), tuple(dests.values())
        ports, servers = (port,) if port else (), tuple(cell.servers)
        copied = _traffic((bucket, cell.packets, cell.bytes, cell.flows,
                           _relay_packets(dests, cell.servers), len(names), share(names, names),
                           share(packets, packets), share(ports, ports), share(servers, servers),
                           tuple(cell.mapped), cell.evidence))
        host = traffic.get(src)
        if host is None:
            traffic[src] = [copied]
        else:
            host.append(copied)
    cells.clear()  # popitem leaves the dict's table allocated; clear() frees it
    hosts: Dict[str, List[HostBucket]] = {}
    for src, host in traffic.items():
        host.sort(key=_BUCKET_OF)
        series = [HostBucket(src, copied) for copied in host]
        host.clear()  # the copies go as soon as the host's HostBuckets are made
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
