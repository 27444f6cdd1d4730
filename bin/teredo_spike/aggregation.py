"""Mergeable per (host, client port, bucket) aggregates, and client-port attribution.

Both phases of `| teredospike` build the same `Cell`s:

- the map phase (indexers) reads flow records and keeps one Cell per (src, src_port, bucket);
- the reduce phase (search head) merges the map phases' Cells by adding counts and uniting sets.

A Cell with evidence of its own (label, prefix, port) makes its (src, src_port) a *live* Teredo client
port in its bucket and the neighbouring ones. A Cell without — plain UDP from that port, e.g. relay
traffic on an arbitrary port — counts only where the port is live. Whether it is live may only be known
after every indexer has reported, so such "candidate" Cells travel to the reduce phase unless the map
already saw the port live nearby. A Cell counts packets per destination too: a tunnel puts its volume on
relays new to the host, and scoring tells that from a familiar game or peer-to-peer session by it. The reduce phase keeps candidates in a spool file rather than memory
(DNS from random ports makes many of them) and attributes them once the input is finished. Sums and
unions commute, so the result does not depend on how the input was split into chunks or indexers.
"""

import csv
import sys
import tempfile
from collections import Counter
from itertools import repeat
from typing import (AbstractSet, Callable, Dict, FrozenSet, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Set, Tuple)

from . import evidence as ev
from .addresses import Networks, TeredoAddress
from .fields import UDP_VALUES, Chunk, Columns, columns_of, first_value, multivalue_cells

OWN_EVIDENCE = ev.LABEL | ev.PREFIX | ev.PORT

# A Teredo client refreshes its server every 20-30 s: a live port shows evidence in the bucket
# itself or a neighbouring one. A port reused later (QUIC, DNS, games) is not Teredo.
NEIGHBOURS = (0, -1, 1)

# Map-phase output: the first field marks the rows as partial aggregates of this command.
PARTIAL_MARKER = "teredospike_partial"
PARTIAL_FIELDS = (PARTIAL_MARKER, "_time", "src", "src_port", "packets", "bytes", "flows",
                  "evidence", "dests", "servers", "mapped", "records", "skipped")

SKIP_NO_TIME = "no or unreadable _time"
SKIP_NO_SOURCE = "no source address"
SKIP_NOT_IP = "source or destination is not an IP address"
SKIP_BAD_NUMBER = "non-numeric count, bytes or packets"
SKIP_NO_NETWORK_FIELDS = "no network fields (src_ip or src, dest_ip or dest)"

Key = Tuple[str, str, int]  # (src, src_port, bucket start in epoch seconds)

# Entries of the per-process memos of address and label tests before they are cleared: hosts and
# servers repeat across millions of records, but memory must not grow with the records.
MAX_MEMO = 100_000

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


def _number(cell: str, default: int) -> int:
    """A count field: empty means absent; a float text ("12.0", as tstats sums print) is accepted."""
    if not cell:
        return default
    try:
        return int(cell)
    except ValueError:
        value = float(cell)  # ValueError propagates: the record is unreadable
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(cell)
        return int(value)


class Aggregator:
    """Cells of one command process, with the counts of records read and skipped."""

    def __init__(self, span: int, internal: Networks) -> None:
        self.span = span
        self.internal = internal
        self.cells: Dict[Key, Cell] = {}
        self.records = 0
        self.skipped: Counter = Counter()
        self._spool = None  # candidate rows waiting for the end of input (reduce phase)
        self._inside = _Inside(internal)  # address -> internal.contains(address), memoised
        self._teredo_label = _TeredoLabels()

    # ---- reading flow records (map phase) -------------------------------------------------

    def add_chunk(self, chunk: Chunk) -> Dict[Key, Cell]:
        """Aggregate one chunk of raw flow records. Cells with own evidence, and candidates next to
        a live port already seen here, go into `self.cells`; the other candidates are returned,
        for the caller to emit (map) or spool (reduce)."""
        if len(self._inside) > MAX_MEMO or len(self._teredo_label) > MAX_MEMO:
            self._inside.clear()
            self._teredo_label.clear()
        columns = columns_of(chunk.header)
        lines = chunk.lines()
        if not columns.has_network_fields:
            count = len(lines) if lines is not None else sum(1 for _ in chunk.rows())
            self.records += count
            if count:
                self.skipped[SKIP_NO_NETWORK_FIELDS] += count
            return {}
        candidates: Dict[Key, Cell] = {}
        if lines is None:
            self._add_rows(columns, _padded(chunk.rows(), len(chunk.header)), candidates,
                           count=True)
        else:
            self.records += len(lines)
            self._add_rows(columns, self._outbound_udp_rows(columns, lines), candidates,
                           count=False)
        return self._keep_resolvable(candidates)

    def _outbound_udp_rows(self, c: Columns, lines: List[str]) -> List[List[str]]:
        """The cells of the lines that can be outbound UDP, or are unreadable (_add_rows counts
        those). Most records are TCP, internal or inbound: they are dropped after splitting off
        only the cells the tests need, with the tests _add_rows would make: transport; both
        addresses IP addresses and internal -> external."""
        if not lines:
            return []
        sample = lines[0].split(",")
        if c.transport is not None:
            split, maxsplit, at = _cheapest_split(sample, (c.transport,))
            can_be_udp = _TransportVerdicts()
            heads = map(split, lines, repeat(","), repeat(maxsplit))
            lines = [line for line, cells in zip(lines, heads) if can_be_udp[cells[at[0]]]]
        split, maxsplit, (src, dest) = _cheapest_split(sample, (c.src, c.dest))
        inside = self._inside
        heads = map(split, lines, repeat(","), repeat(maxsplit))
        # Kept: the source or the destination is not an IP address (skipped and counted later),
        # or the source is internal and the destination is not.
        lines = [line for line, cells in zip(lines, heads)
                 if (s := inside[cells[src]]) is None or (d := inside[cells[dest]]) is None
                 or (s and not d)]
        return [line.split(",") for line in lines]

    def _add_rows(self, c: Columns, rows: Iterable[List[str]], candidates: Dict[Key, Cell],
                  count: bool) -> None:
        """The per-record hot path: plain locals, memoised address and label tests, no call per
        record except where a record may be Teredo."""
        span = self.span
        cells = self.cells
        skipped = self.skipped
        inside = self._inside
        teredo_label = self._teredo_label
        transport_at, src_at, dest_at, time_at = c.transport, c.src, c.dest, c.time
        count_at, packets_at, bytes_at = c.count, c.packets, c.bytes
        src_port_at, dest_port_at, labels = c.src_port, c.dest_port, c.labels
        inner = tuple(i for i in (c.inner_src, c.inner_dest) if i is not None)
        records = 0
        for row in rows:
            records += 1
            if transport_at is not None:
                transport = row[transport_at]
                if transport and transport not in UDP_VALUES and transport.lower() not in UDP_VALUES:
                    continue
            src = row[src_at]
            if "\n" in src:
                src = first_value(src)
            if not src:
                skipped[SKIP_NO_SOURCE] += 1
                continue
            dest = row[dest_at]
            if "\n" in dest:
                dest = first_value(dest)
            src_inside = inside[src]
            dest_inside = inside[dest] if dest else None
            if src_inside is None or dest_inside is None:
                skipped[SKIP_NOT_IP] += 1
                continue
            if not src_inside or dest_inside:
                continue  # not outbound
            try:
                bucket = int(float(row[time_at])) // span * span
            except (TypeError, ValueError, OverflowError):
                skipped[SKIP_NO_TIME] += 1
                continue
            try:
                flows = _number(row[count_at], 1) if count_at is not None else 1
                packets = _number(row[packets_at], flows) if packets_at is not None else flows
                octets = _number(row[bytes_at], 0) if bytes_at is not None else 0
            except (ValueError, OverflowError):
                skipped[SKIP_BAD_NUMBER] += 1
                continue
            src_port = row[src_port_at] if src_port_at is not None else ""
            if "\n" in src_port:
                src_port = first_value(src_port)
            dest_port = row[dest_port_at] if dest_port_at is not None else ""
            if "\n" in dest_port:
                dest_port = first_value(dest_port)
            key = (src, src_port, bucket)
            # Evidence of its own (evidence.record_evidence), tested cheaply first: most
            # outbound UDP has none and becomes a candidate cell.
            may_be_teredo = dest_port == ev.SERVER_PORT_TEXT
            if not may_be_teredo:
                for i in labels:
                    if teredo_label[row[i]]:
                        may_be_teredo = True
                        break
                else:
                    for i in inner:
                        if row[i]:
                            may_be_teredo = True
                            break
            if may_be_teredo:
                teredo: List[TeredoAddress] = []
                own = _split_cell(row, c.inner_src)
                peers = _split_cell(row, c.inner_dest)
                mask = ev.record_evidence([row[i] for i in labels], dest_port, own, peers, teredo)
            else:
                mask = 0
            if mask:
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = candidates.pop(key, None) or Cell()
            else:
                mask = ev.CLIENT_PORT
                cell = cells.get(key)
                if cell is None:
                    cell = candidates.get(key)
                    if cell is None:
                        cell = candidates[key] = Cell()
            cell.packets += packets
            cell.bytes += octets
            cell.flows += flows
            cell.evidence |= mask
            dests = cell.dests
            dests[dest] = dests.get(dest, 0) + packets
            if mask & ev.PORT:
                cell.add_server(dest)
            if mask & ev.PREFIX:
                for address in teredo:
                    cell.add_server(address.server)
                    cell.add_mapped(address.mapped)
        if count:
            self.records += records

    def _is_live_near(self, key: Key) -> bool:
        src, port, bucket = key
        cells = self.cells
        for step in NEIGHBOURS:
            cell = cells.get((src, port, bucket + step * self.span))
            if cell is not None and cell.is_live:
                return True
        return False

    def _keep_resolvable(self, candidates: Dict[Key, Cell]) -> Dict[Key, Cell]:
        """Merge the candidates whose port is live in their bucket or a neighbouring one
        (_is_live_near, inlined: there is one call per candidate); return the others."""
        cells = self.cells
        span = self.span
        unresolved = {}
        for key, cell in candidates.items():
            mine = cells.get(key)
            if mine is not None:
                mine.merge(cell)
                continue
            src, port, bucket = key
            before = cells.get((src, port, bucket - span))
            after = cells.get((src, port, bucket + span))
            if (before is not None and before.is_live) or (after is not None and after.is_live):
                cells[key] = cell
            else:
                unresolved[key] = cell
        return unresolved

    def _merge(self, key: Key, cell: Cell) -> None:
        mine = self.cells.get(key)
        if mine is None:
            self.cells[key] = cell
        else:
            mine.merge(cell)

    # ---- partial aggregates between phases ----------------------------------------------

    def partial_table(self, cells: Dict[Key, Cell]) -> "PartialTable":
        """Map-phase output rows for `cells`, in PARTIAL_FIELDS order and already in wire form
        (each field's cell followed by its __mv_ cell): sets travel as multivalue fields."""
        plain = []
        rows = []
        for (src, port, bucket), cell in cells.items():
            if len(cell.dests) == 1 and len(cell.servers) <= 1 and not cell.mapped:
                (dest,) = cell.dests
                server = next(iter(cell.servers), "")
                plain.append(_PLAIN_ROW % (bucket, src, port, cell.packets, cell.bytes,
                                           cell.flows, cell.evidence, dest, cell.packets, server))
            else:
                rows.append(_wire_row(src, port, bucket, cell))
        text = "".join(plain)
        if not _is_plain(text, len(plain)):  # a cell needs quoting after all
            return PartialTable("", 0, [_wire_row(s, p, b, cell)
                                        for (s, p, b), cell in cells.items()])
        return PartialTable(text, len(plain), rows)

    def counts_table(self) -> "PartialTable":
        """The map phase's record counts (one wire row), so that the search head can report
        skipped records."""
        row = [""] * (2 * len(PARTIAL_FIELDS))
        row[0] = "1"
        row[2 * PARTIAL_FIELDS.index("records")] = str(self.records)
        at = 2 * PARTIAL_FIELDS.index("skipped")
        row[at], row[at + 1] = multivalue_cells(
            ["%s=%d" % item for item in sorted(self.skipped.items())])
        return PartialTable("", 0, [row])

    def add_partial_rows(self, header: Sequence[str], rows: Iterable[List[str]]) -> None:
        """Merge map-phase output rows (reduce phase). Candidates not yet resolvable are spooled."""
        at = {name: header.index(name) for name in PARTIAL_FIELDS if name in header}
        missing = [name for name in PARTIAL_FIELDS if name not in at]
        if missing:
            raise ValueError("partial results lack fields: %s" % ", ".join(missing))
        (time_at, src_at, port_at, packets_at, bytes_at, flows_at, evidence_at, dests_at,
         servers_at, mapped_at, records_at, skipped_at) = (at[name] for name in PARTIAL_FIELDS[1:])
        cells = self.cells
        intern = sys.intern  # the same host, port and addresses arrive in thousands of rows
        for row in rows:
            src = row[src_at]
            if not src:
                self._add_counts(row[records_at], row[skipped_at])
                continue
            cell = Cell()
            cell.packets = int(row[packets_at])
            cell.bytes = int(row[bytes_at])
            cell.flows = int(row[flows_at])
            cell.evidence = int(row[evidence_at])
            cell.dests = _dest_packets(row[dests_at])
            if row[servers_at]:
                cell.servers = _values(row[servers_at])
            if row[mapped_at]:
                cell.mapped = _values(row[mapped_at])
            key = (intern(src), intern(row[port_at]), int(row[time_at]))
            if cell.evidence & OWN_EVIDENCE or key in cells or self._is_live_near(key):
                self._merge(key, cell)
            else:
                self.spool(key, cell)

    def _add_counts(self, records: str, skipped: str) -> None:
        self.records += int(records or 0)
        for entry in _values(skipped):
            reason, _, count = entry.rpartition("=")
            self.skipped[reason] += int(count)

    def spool(self, key: Key, cell: Cell) -> None:
        """Keep a candidate on disk until every live port is known (memory stays bounded by the
        Teredo clients, not by the amount of ordinary UDP)."""
        if self._spool is None:
            # splunklib points tempfile at the search's dispatch directory.
            self._spool = tempfile.TemporaryFile("w+", newline="", encoding="utf-8")
            self._spool_writer = csv.writer(self._spool)
        src, port, bucket = key
        self._spool_writer.writerow((src, port, bucket, cell.packets, cell.bytes, cell.flows,
                                     "\n".join(_dest_values(cell.dests))))

    def spool_candidates(self, candidates: Dict[Key, Cell]) -> None:
        for key, cell in candidates.items():
            self.spool(key, cell)

    def resolve_spool(self) -> None:
        """At end of input: attribute spooled candidates whose port was live nearby; drop the rest."""
        if self._spool is None:
            return
        self._spool.seek(0)
        for src, port, bucket, packets, octets, flows, dests in csv.reader(self._spool):
            key = (src, port, int(bucket))
            if key in self.cells or self._is_live_near(key):
                cell = Cell()
                cell.packets, cell.bytes, cell.flows = int(packets), int(octets), int(flows)
                cell.evidence = ev.CLIENT_PORT
                cell.dests = _dest_packets(dests)
                self._merge(key, cell)
        self._spool.close()
        self._spool = None


def _cheapest_split(sample: List[str], needed: Sequence[int]
                    ) -> Tuple[Callable, int, Tuple[int, ...]]:
    """How to split the cells `needed` off a line at least cost: str.split from the left up to
    the last of them, or str.rsplit from the right down to the first (empty cells, such as the
    `__mv_` columns splunkd puts last, cost nothing). Returns (method, maxsplit, positions):
    `method(line, ",", maxsplit)[positions[k]]` is cell `needed[k]`. `sample` is one line's
    cells; either way gives the same cells."""
    first, last = min(needed), max(needed)
    from_left = sum(1 for cell in sample[:last + 1] if cell)
    from_right = sum(1 for cell in sample[first:] if cell)
    if first == 0 or from_left <= from_right:
        return str.split, last + 1, tuple(needed)
    # rsplit(",", width - first): part 0 holds cells 0..first-1, part j holds cell first+j-1.
    return str.rsplit, len(sample) - first, tuple(i - first + 1 for i in needed)


class PartialTable(NamedTuple):
    """Map-phase output rows: `text` holds `text_rows` rows already written as CSV lines (the
    common candidate cell, whose cells need no quoting); `rows` the others as wire cells."""

    text: str
    text_rows: int
    rows: List[List[str]]


# One plain row (bucket, src, port, packets, bytes, flows, evidence, its one destination and its
# packets, its server if any; no mapped address) as a CSV line in splunklib's dialect: 26 cells,
# `\r\n`.
_PLAIN_ROW = ",".join(["1", "", "%d", "", "%s", "", "%s", "", "%d", "", "%d", "", "%d", "",
                       "%d", "", "%s=%d", "", "%s"] + [""] * 7) + "\r\n"
_PLAIN_COMMAS = 2 * len(PARTIAL_FIELDS) - 1


def _is_plain(text: str, rows: int) -> bool:
    """True when no cell of these rows holds a comma, quote or line break (then csv.writer
    would have written exactly this text)."""
    return (text.count(",") == rows * _PLAIN_COMMAS and text.count("\n") == rows
            and text.count("\r") == rows and '"' not in text)


def _wire_row(src: str, port: str, bucket: int, cell: Cell) -> List[str]:
    dests, dests_mv = multivalue_cells(_dest_values(cell.dests))
    servers, servers_mv = multivalue_cells(cell.servers)
    mapped, mapped_mv = multivalue_cells(cell.mapped)
    return ["1", "", str(bucket), "", src, "", port, "", str(cell.packets), "", str(cell.bytes),
            "", str(cell.flows), "", str(cell.evidence), "", dests, dests_mv, servers,
            servers_mv, mapped, mapped_mv, "", "", "", ""]


class _TransportVerdicts(dict):
    """transport cell -> can the record be UDP (empty means absent: it can)."""

    def __missing__(self, cell: str) -> bool:
        verdict = self[cell] = not cell or cell in UDP_VALUES or cell.lower() in UDP_VALUES
        return verdict


class _Inside(dict):
    """address -> internal (True), external (False), not an IP address (None)."""

    def __init__(self, internal: Networks) -> None:
        super().__init__()
        self.contains = internal.contains

    def __missing__(self, address: str) -> Optional[bool]:
        verdict = self[address] = self.contains(address)
        return verdict


class _TeredoLabels(dict):
    """label cell -> does it name Teredo (evidence.is_teredo_label)."""

    def __missing__(self, cell: str) -> bool:
        verdict = self[cell] = bool(cell) and ev.is_teredo_label(cell)
        return verdict


def _padded(rows: Iterable[List[str]], width: int) -> Iterator[List[str]]:
    """Rows with at least `width` cells: a short row's missing cells read as empty (absent)."""
    for row in rows:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        yield row


def _split_cell(row: List[str], at: Optional[int]) -> Sequence[str]:
    """The values of a (multivalue) cell; none when the chunk lacks the field."""
    if at is None or not row[at]:
        return ()
    return row[at].split("\n")


def _values(cell: str) -> Set[str]:
    """The values of a multivalue cell, interned: the reduce phase keeps them for every host and
    bucket, and the same servers and relays come back in thousands of rows."""
    return set(map(sys.intern, cell.split("\n"))) if cell else set()


def _dest_values(dests: Dict[str, int]) -> List[str]:
    """Packets per destination as multivalue values, `address=packets` (an address holds no `=`)."""
    return ["%s=%d" % item for item in dests.items()]


def _dest_packets(cell: str) -> Dict[str, int]:
    """The inverse of _dest_values, addresses interned (see _values)."""
    dests: Dict[str, int] = {}
    if cell:
        intern = sys.intern
        for value in cell.split("\n"):
            dest, _, packets = value.rpartition("=")
            dests[intern(dest)] = int(packets)
    return dests


def is_partial(header: Sequence[str]) -> bool:
    """True for the map phase's output, False for flow records."""
    return PARTIAL_MARKER in header
