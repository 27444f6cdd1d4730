"""Mergeable per (host, client port, bucket) aggregates, and when a client port is live.

Both phases of `| teredospike` build the same `Cell`s: the map phase from flow records, the reduce
phase by merging the map phases' Cells (adding counts, uniting sets). Sums and unions commute, so
the result does not depend on how the input was split into chunks or indexers.

A Cell with evidence of its own (label, prefix, port) makes its (src, src_port) a *live* Teredo
client port in its bucket and the NEIGHBOURS. A Cell without (plain UDP from that port, e.g. relay
traffic on an arbitrary port) counts only where the port is live. A Cell counts packets per
destination too: a tunnel puts its volume on relays new to the host, and scoring tells that from a
familiar game or peer-to-peer session by it.
"""

from typing import AbstractSet, Dict, FrozenSet, Set, Tuple

from . import evidence as ev

OWN_EVIDENCE = ev.LABEL | ev.PREFIX | ev.PORT

# A Teredo client refreshes its server every 20-30 s: a live port shows evidence in the bucket
# itself or a neighbouring one. A port reused later (QUIC, DNS, games) is not Teredo.
# The only statement of which buckets count as near: every liveness test derives from it.
NEIGHBOURS = (0, -1, 1)

Key = Tuple[str, str, int]  # (src, src_port, bucket start in epoch seconds)

# Most cells have no Teredo server or mapped address (relay traffic, candidates): they share this
# empty set and get a set of their own when the first value arrives. An empty set costs 216 bytes,
# and the search head holds a cell per host, client port and bucket.
NO_VALUES: FrozenSet[str] = frozenset()


class Cell:
    """Outbound UDP from one (src, src_port) in one bucket."""

    __slots__ = ("packets", "bytes", "flows", "evidence", "dests", "servers", "mapped")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.flows = 0
        self.evidence = 0
        self.dests: Dict[str, int] = {}  # destination -> packets
        self.servers: AbstractSet[str] = NO_VALUES  # add_server
        self.mapped: AbstractSet[str] = NO_VALUES  # add_mapped

    def add_server(self, server: str) -> None:
        if self.servers is NO_VALUES:
            self.servers = set()
        self.servers.add(server)

    def add_mapped(self, mapped: str) -> None:
        if self.mapped is NO_VALUES:
            self.mapped = set()
        self.mapped.add(mapped)

    @property
    def is_live(self) -> bool:
        """Evidence of its own: this port is a Teredo client port in this bucket."""
        return bool(self.evidence & OWN_EVIDENCE)

    def merge(self, other: "Cell") -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.flows += other.flows
        self.evidence |= other.evidence
        dests = self.dests
        for dest, packets in other.dests.items():
            dests[dest] = dests.get(dest, 0) + packets
        if other.servers:
            self.servers = _united(self.servers, other.servers)
        if other.mapped:
            self.mapped = _united(self.mapped, other.mapped)


def _united(mine: AbstractSet[str], other: AbstractSet[str]) -> Set[str]:
    """`mine` with `other` added, as a set of its own (never the shared NO_VALUES)."""
    if mine is NO_VALUES:
        return set(other)
    mine |= other
    return mine


def neighbour_offsets(span: int) -> Tuple[int, ...]:
    """Seconds from a bucket to each bucket near it (NEIGHBOURS), itself first."""
    return tuple(step * span for step in NEIGHBOURS)


def is_live_near(cells: Dict[Key, Cell], key: Key, span: int) -> bool:
    """Is the key's client port live in its bucket or a neighbouring one?"""
    src, port, bucket = key
    for offset in neighbour_offsets(span):
        cell = cells.get((src, port, bucket + offset))
        if cell is not None and cell.is_live:
            return True
    return False


def merge_into(cells: Dict[Key, Cell], key: Key, cell: Cell) -> None:
    mine = cells.get(key)
    if mine is None:
        cells[key] = cell
    else:
        mine.merge(cell)


def attribute(cells: Dict[Key, Cell], key: Key, cell: Cell, span: int) -> bool:
    """Merge a candidate whose key has a cell already or whose port is live near; False if not."""
    if key in cells or is_live_near(cells, key, span):
        merge_into(cells, key, cell)
        return True
    return False


def keep_resolvable(cells: Dict[Key, Cell], candidates: Dict[Key, Cell], span: int
                    ) -> Dict[Key, Cell]:
    """Merge the candidates that `attribute` would take; return the others. The same test with
    the offsets bound once (one call per chunk, not per candidate)."""
    offsets = neighbour_offsets(span)
    unresolved = {}
    for key, cell in candidates.items():
        mine = cells.get(key)
        if mine is not None:
            mine.merge(cell)
            continue
        src, port, bucket = key
        for offset in offsets:
            near = cells.get((src, port, bucket + offset))
            if near is not None and near.is_live:
                cells[key] = cell
                break
        else:
            unresolved[key] = cell
    return unresolved
