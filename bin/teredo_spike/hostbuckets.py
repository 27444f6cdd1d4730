"""Each host's Teredo traffic per bucket: the attributed cells summed over client ports.

METRICS names the per-bucket quantities scoring works on; a HostSeries holds, per bucket, one
value and one z, baseline and baseline_sd per metric in METRICS order, and every reader takes them
by name (METRICS.index, or the offsets PACKETS, Z, ... made from it), never by a literal position.
"""

from array import array
from bisect import bisect_left
from functools import partial
from itertools import chain
from operator import attrgetter, itemgetter
from typing import (Callable, Dict, FrozenSet, Hashable, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Tuple)

from .cells import Cell, Key
from .partials import dest_packets, dest_text

METRICS = ("packets", "bytes", "flows", "dests", "relay_packets")
PACKETS, BYTES, FLOWS, DESTS, RELAY_PACKETS = (METRICS.index(name) for name in
                                               ("packets", "bytes", "flows", "dests", "relay_packets"))

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


# A bucket's doubles in HostSeries.scores: z per metric, then what every result row reports of
# its baseline (expected packets and bytes, and the packets' spread for the upper bound).
Z = 0
PACKETS_BASELINE, BYTES_BASELINE, PACKETS_SD = (len(METRICS) + i for i in range(3))
SCORES = len(METRICS) + 3
# A spike's baseline and spread of every metric (HostSeries.spike_baselines): where each starts.
BASELINE, BASELINE_SD = 0, len(METRICS)
# The largest metric value an array("q") holds; HostSeries.values falls back to a list above it.
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
# The Traffic field that holds each metric.
_METRIC_FIELD = {"packets": "packets", "bytes": "bytes", "flows": "flows", "dests": "dest_count",
                 "relay_packets": "relay_packets"}
_METRIC_VALUES = itemgetter(*(Traffic._fields.index(_METRIC_FIELD[name]) for name in METRICS))
_FIELD = {name: itemgetter(at) for at, name in enumerate(Traffic._fields)}


class Context(NamedTuple):
    """Where a bucket's traffic came from and went through, beside its counts and destinations
    (HostSeries.contexts: most buckets of a host repeat one)."""

    client_ports: Tuple[str, ...]
    servers: Tuple[str, ...]
    mapped: Tuple[str, ...]


_context = partial(tuple.__new__, Context)


def context_of(port: str, servers: Tuple[str, ...], mapped: Tuple[str, ...]) -> Context:
    """The Context of one client port's traffic (`port` empty when unknown)."""
    return _context(((port,) if port else (), servers, mapped))


class HostSeries:
    """One host's Teredo traffic in each bucket it had any (summed over its client ports), in time
    order, with its scores: columns with one entry per bucket, not an object per bucket.

    The search head holds every host-bucket of the search (millions, for thousands of always-on
    clients over a week), so they are kept as arrays per host (issue 15: an object per bucket,
    with arrays of its own, took ~490 bytes a host-bucket):
    - `buckets`: the bucket start times (32-bit where they fit, as every time read_bucket
      accepts does); `values`: the METRICS of bucket i at
      values[i * len(METRICS) + k] (64-bit integers; a list for a host with a value beyond 2**63,
      which in_domain allows up to MAX_VOLUME, and where the caller holds them as ints shared
      between host-buckets (`packed` false: series_of_rows): a list of shared ints takes what
      an array takes, and reading it makes no int, where the population prior's sort of every
      host-bucket's bytes took 40 bytes a host-bucket at the reduce phase's peak);
    - `scores`: SCORES doubles a bucket from i * SCORES: z per metric from Z, then the baseline
      that result rows report (PACKETS_BASELINE, BYTES_BASELINE, PACKETS_SD); `score` and
      `is_spike` one per bucket; `fleet_adjustment` where the fleet correction or event applied;
      `routine_relay_packets` only for a spike bucket that the routine rules left a spike and
      that has a routine level (scoring.routine_level): the host's routine relay packets at that
      hour, which severity holds critical above (output.severity); `kept_by` only for a spike
      bucket of a host with earlier sessions that the routine rules left a spike: which of their
      rules kept it and the level it was judged against (scoring.KEPT_*; the reason names it);
      `background_relay_packets` the relay packets of the host's background over the search, for
      a host with spikes that has one (scoring.search_background: the fleet's use level leaves
      out the buckets within ROUTINE_RATIO of it);
    - `spike_baseline(i)`: for a bucket that scored as a spike before the fleet correction (only
      these can be reported as spikes, and only theirs do the routine rules and reasons read),
      the baseline and its spread of every metric (from BASELINE and BASELINE_SD); a heavy
      user's buckets are often such spikes (30% of the bench's host-buckets), so they are kept
      in two arrays (88 bytes each) rather than a dict of arrays (~200);
    - `dests`: a bucket's packets to each destination as text (partials.dest_text), read where
      needed (`destinations`): the scoring reads those of spikes only;
    - `contexts`: the host's distinct Contexts, bucket i's at context_index[i] (most buckets of
      a host repeat its client port and server; a tuple a bucket of the text and these took 64
      bytes a host-bucket on rows of heavy users, whose texts all differ); `evidence`.
    All but the traffic are filled by scoring. `series[i]` is a Bucket, the same by name, for
    readers outside the scoring's loops."""

    __slots__ = ("src", "buckets", "values", "scores", "score", "is_spike", "fleet_adjustment",
                 "routine_relay_packets", "kept_by", "background_relay_packets", "spiked", "spike_baselines", "dests", "contexts",
                 "context_index", "evidence")

    def __init__(self, src: str, buckets: array, values: List[int], dests: List[str],
                 contexts: List[Context], evidence: array, packed: bool = True) -> None:
        """Columns of one entry per bucket, in time order (`values`: len(METRICS) per bucket, in
        METRICS order, kept as an array unless `packed` is false; `contexts` a Context per
        bucket); series_of makes them from Traffic."""
        count = len(buckets)
        self.src = src
        self.buckets = _smallest(buckets, ("I", "q"))
        if values and not (min(values) >= 0 and max(values) <= MAX_VOLUME):
            values = [x for at in range(0, len(values), len(METRICS))
                      for x in in_domain(tuple(values[at:at + len(METRICS)]))]
        self.values: Sequence[int] = (
            array("q", values) if packed and (not values or max(values) <= _MAX_Q) else values)
        self.scores = array("d", bytes(8 * SCORES * count))  # zeros
        self.score = array("d", bytes(8 * count))
        self.is_spike = bytearray(count)
        self.fleet_adjustment: Dict[int, float] = {}
        self.routine_relay_packets: Dict[int, float] = {}
        self.kept_by: Dict[int, Tuple[str, float]] = {}
        self.background_relay_packets: Optional[float] = None
        self.spiked = array("q")            # the buckets with a spike baseline, in order
        self.spike_baselines = array("d")   # theirs, 2 * len(METRICS) doubles each
        self.dests = dests
        distinct = dict.fromkeys(contexts)
        self.contexts: Tuple[Context, ...] = tuple(distinct)
        self.context_index = _smallest(
            list(map(dict(zip(distinct, range(len(distinct)))).__getitem__, contexts)),
            ("B", "H", "I", "q"))
        self.evidence = evidence

    def __len__(self) -> int:
        return len(self.buckets)

    def __getitem__(self, index: int) -> "Bucket":
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return Bucket(self, index % len(self))

    def __iter__(self) -> Iterator["Bucket"]:
        return map(partial(Bucket, self), range(len(self)))

    def values_at(self, index: int) -> Sequence[int]:
        """Bucket `index`'s METRICS values."""
        at = index * len(METRICS)
        return self.values[at:at + len(METRICS)]

    def destinations(self, index: int) -> Dict[str, int]:
        """Bucket `index`'s packets to each destination (read from its text)."""
        return dest_packets(self.dests[index], None)

    def keep_spike_baseline(self, index: int, baselines: Sequence[float]) -> None:
        """Keep bucket `index`'s baseline and spread of every metric (buckets in time order)."""
        self.spiked.append(index)
        self.spike_baselines.extend(baselines)

    def spike_baseline(self, index: int) -> Optional[Sequence[float]]:
        """Bucket `index`'s baseline and spread of every metric, if it scored as a spike."""
        at = bisect_left(self.spiked, index)
        if at == len(self.spiked) or self.spiked[at] != index:
            return None
        width = 2 * len(METRICS)
        return self.spike_baselines[at * width:(at + 1) * width]

    def forget_spike_baselines(self) -> None:
        """Before scoring (again)."""
        del self.spiked[:], self.spike_baselines[:]


def _smallest(values: Sequence[int], codes: Sequence[str]) -> array:
    """`values` in the first array of `codes` (unsigned, then "q") that holds them all."""
    low, high = (min(values), max(values)) if len(values) else (0, 0)
    for code in codes[:-1]:
        if low >= 0 and high < 1 << (8 * array(code).itemsize):
            return array(code, values)
    return array(codes[-1], values)


class Bucket:
    """Bucket `index` of a HostSeries, by name: a view (writing it writes the series), made where
    a result row is written and in tests, never in the scoring's loops."""

    __slots__ = ("series", "index")

    def __init__(self, series: HostSeries, index: int) -> None:
        self.series = series
        self.index = index

    @property
    def src(self) -> str:
        return self.series.src

    @property
    def bucket(self) -> int:
        return self.series.buckets[self.index]

    @bucket.setter
    def bucket(self, start: int) -> None:
        self.series.buckets[self.index] = start

    @property
    def values(self) -> Sequence[int]:
        return self.series.values_at(self.index)

    @property
    def packets(self) -> int:
        return self.values[PACKETS]

    @property
    def bytes(self) -> int:
        return self.values[BYTES]

    @property
    def z(self) -> memoryview:
        """z per metric (a view on the series' scores)."""
        at = self.index * SCORES + Z
        return memoryview(self.series.scores)[at:at + len(METRICS)]

    @z.setter
    def z(self, zs: Sequence[float]) -> None:
        self.z[:] = array("d", zs)

    def baseline(self, k: int) -> float:
        """Metric k's expected y before this bucket: kept for packets and bytes, and for every
        metric of a bucket that scored as a spike (KeyError for another)."""
        return self._kept(k, BASELINE, {PACKETS: PACKETS_BASELINE, BYTES: BYTES_BASELINE})

    def baseline_sd(self, k: int) -> float:
        """The spread of metric k's baseline: kept for packets, and for every metric of a bucket
        that scored as a spike (KeyError for another)."""
        return self._kept(k, BASELINE_SD, {PACKETS: PACKETS_SD})

    def _kept(self, k: int, first: int, reported: Dict[int, int]) -> float:
        full = self.series.spike_baseline(self.index)
        if full is not None:
            return full[first + k]
        if k not in reported:
            raise KeyError("kept for spikes only: " + METRICS[k])
        return self.series.scores[self.index * SCORES + reported[k]]

    @property
    def score(self) -> float:
        return self.series.score[self.index]

    @score.setter
    def score(self, score: float) -> None:
        self.series.score[self.index] = score

    @property
    def fleet_adjustment(self) -> float:
        return self.series.fleet_adjustment.get(self.index, 0.0)

    @property
    def routine_relay_packets(self) -> Optional[float]:
        """The host's routine relay packets at this bucket's hour, for a spike that has a routine
        level (None otherwise)."""
        return self.series.routine_relay_packets.get(self.index)

    @property
    def kept_by(self) -> Optional[Tuple[str, float]]:
        """For a spike on a host with earlier sessions: the routine rule that kept it a spike and
        the relay packets it was judged against (HostSeries.kept_by; None otherwise)."""
        return self.series.kept_by.get(self.index)

    @property
    def is_spike(self) -> bool:
        return bool(self.series.is_spike[self.index])

    @is_spike.setter
    def is_spike(self, spike: bool) -> None:
        self.series.is_spike[self.index] = spike

    @property
    def context(self) -> Context:
        series = self.series
        return series.contexts[series.context_index[self.index]]

    @property
    def dests(self) -> Tuple[str, ...]:
        return tuple(self.series.destinations(self.index))

    @property
    def client_ports(self) -> Tuple[str, ...]:
        return self.context.client_ports

    @property
    def servers(self) -> Tuple[str, ...]:
        return self.context.servers

    @property
    def mapped(self) -> Tuple[str, ...]:
        return self.context.mapped

    @property
    def evidence(self) -> int:
        return self.series.evidence[self.index]

    @property
    def relays(self) -> FrozenSet[str]:
        """Destinations other than Teredo servers (computed where a result row needs them)."""
        return frozenset(self.dests).difference(self.servers)


def traffic_of(port: str, bucket: int, packets: int, bytes_: int, flows: int, evidence: int,
               dests: Tuple[str, ...], dest_packets: Tuple[int, ...], servers: Iterable[str],
               mapped: Iterable[str], share: Callable[[Hashable, Hashable], Hashable]) -> Traffic:
    """One (host, client port, bucket)'s traffic as host_buckets keeps it (from a cell, or from a
    summary row: summary.SummaryReader); `dest_packets`: the packets to each of `dests`. `share`
    (a dict's setdefault) keeps each distinct tuple once: host-buckets repeat a few (a host's
    client port, its Teredo server, a lone destination and its packet count; on the bench,
    reduce-phase peak RSS 407 -> 354 MB on Python 3.9)."""
    ports, servers = (port,) if port else (), tuple(servers)
    return _traffic((bucket, packets, bytes_, flows, relay_packets(dests, dest_packets, servers),
                     len(dests), share(dests, dests), share(dest_packets, dest_packets),
                     share(ports, ports), share(servers, servers), tuple(mapped), evidence))


def host_buckets(cells: Dict[Key, Cell],
                 summarised: Iterable[Tuple[str, HostSeries]] = ()) -> Dict[str, HostSeries]:
    """Sum each host's attributed cells per bucket, as one HostSeries per host, beside the series
    of `summarised` hosts (read from summary rows: summary.SummaryReader.by_host; the command
    never has both for one host: it refuses flows and summary rows in one search).

    Empties `cells`: each cell is dropped as soon as its traffic is copied out, each host's
    copies as soon as its series is made, so that the search head never holds every cell and
    every host-bucket at once."""
    # The cells come with every host interleaved; each one's traffic is copied into tuples as it
    # is dropped, so that the cells' memory is reused as it goes. Then each host's series.
    traffic: Dict[str, List[Traffic]] = {}
    share = {}.setdefault
    while cells:
        (src, port, bucket), cell = cells.popitem()
        copied = traffic_of(port, bucket, cell.packets, cell.bytes, cell.flows, cell.evidence,
                            tuple(cell.dests), tuple(cell.dests.values()), cell.servers,
                            cell.mapped, share)
        host = traffic.get(src)
        if host is None:
            traffic[src] = [copied]
        else:
            host.append(copied)
    cells.clear()  # popitem leaves the dict's table allocated; clear() frees it
    hosts = dict(summarised)
    for src in list(traffic):
        hosts[src] = series_of(src, traffic.pop(src))
    return hosts


def series_of(src: str, host: List[Traffic]) -> HostSeries:
    """A host's series from its traffic (a Traffic per client port and bucket, in any order)."""
    host.sort(key=_BUCKET_OF)
    # A cell is one client port's traffic: a host that used two ports in a bucket has two of
    # that bucket, side by side. Most hosts keep one port.
    if len(set(map(_BUCKET_OF, host))) < len(host):
        host = _merge_ports(host)
    return HostSeries(src, array("q", map(_FIELD["bucket"], host)),
                      list(chain.from_iterable(map(_METRIC_VALUES, host))),
                      [dest_text(zip(t.dests, t.dest_packets)) for t in host],
                      [_context((t.client_ports, t.servers, t.mapped)) for t in host],
                      array("H", map(_FIELD["evidence"], host)))


def series_of_rows(src: str, rows: Sequence[int], buckets: Sequence[int], packets: Sequence[int],
                   bytes_: Sequence[int], flows: Sequence[int], dest_counts: Sequence[int],
                   relays: Sequence[int], dests: Sequence[str], contexts: Sequence[Context],
                   evidence: Sequence[int]) -> HostSeries:
    """A host's series from summary rows held in columns (summary.SummaryReader): `rows`, the
    indices of those to take, one per bucket in time order; `dests` as dest_text writes them,
    `dest_counts` and `relays` their destinations and relay packets (relay_packets); `contexts`
    (context_of) and the counts' ints best shared (the series keeps them: HostSeries.values).
    The same series as series_of makes from their Traffic, without a Traffic per row (the
    detection stage reads a week of rows for every host)."""
    values: List[int] = []
    extend = values.extend
    for i in rows:
        # METRICS order (tests/test_hostbuckets.py holds it to series_of's)
        extend((packets[i], bytes_[i], flows[i], dest_counts[i], relays[i]))
    # values[:]: a copy without the spare room that extend leaves
    return HostSeries(src, array("q", map(buckets.__getitem__, rows)), values[:],
                      list(map(dests.__getitem__, rows)), list(map(contexts.__getitem__, rows)),
                      array("H", map(evidence.__getitem__, rows)), packed=False)


def relay_packets(dests: Sequence[str], dest_packets: Sequence[int], servers: Iterable[str]
                  ) -> int:
    """Packets to destinations other than the Teredo servers: all packets less the servers' (a
    loop over a cell's one or two servers rather than a filter over its destinations)."""
    packets = sum(dest_packets)
    for server in servers:
        if server in dests:
            packets -= dest_packets[dests.index(server)]
    return packets


def _merge_ports(host: List[Traffic]) -> List[Traffic]:
    """`host` (sorted by bucket) with each bucket's traffic from several client ports merged into
    one: every count summed, but destinations (the distinct ones) and relay packets (to the
    destinations that are no server of any of them)."""
    merged: List[Traffic] = []
    for copied in host:
        if not merged or merged[-1].bucket != copied.bucket:
            merged.append(copied)
            continue
        mine = merged[-1]
        dests = dict(zip(mine.dests, mine.dest_packets))
        for dest, packets in zip(copied.dests, copied.dest_packets):
            dests[dest] = dests.get(dest, 0) + packets
        names, counts = tuple(dests), tuple(dests.values())
        servers = tuple(set(mine.servers).union(copied.servers))
        packets, bytes_, flows, _, relay = metric_values(
            packets=mine.packets + copied.packets, bytes=mine.bytes + copied.bytes,
            flows=mine.flows + copied.flows, dests=len(names),
            relay_packets=relay_packets(names, counts, servers))
        merged[-1] = _traffic((mine.bucket, packets, bytes_, flows, relay, len(names), names,
                               counts, mine.client_ports + copied.client_ports, servers,
                               tuple(set(mine.mapped).union(copied.mapped)),
                               mine.evidence | copied.evidence))
    return merged
