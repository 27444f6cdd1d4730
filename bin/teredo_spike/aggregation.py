"""Mergeable per (host, client port, bucket) aggregates, and client-port attribution.

Both phases of `| teredospike` build the same `Cell`s:

- the map phase (indexers) reads flow records and keeps one Cell per (src, src_port, bucket);
- the reduce phase (search head) merges the map phases' Cells by adding counts and uniting sets.

A Cell with evidence of its own (label, prefix, port) makes its (src, src_port) a *live* Teredo client
port in its bucket and the neighbouring ones. A Cell without — plain UDP from that port, e.g. relay
traffic on an arbitrary port — counts only where the port is live. Whether it is live may only be known
after every indexer has reported, so such "candidate" Cells travel to the reduce phase unless the map
already saw the port live nearby. Nearly every outbound UDP record is such a candidate (DNS and QUIC
from random ports), so the map phase passes most of them on as compact text *entries*, one per
record, many to a row, without making a Cell for each. The reduce phase keeps candidates in a spool
file rather than memory and attributes them once the input is finished. Sums and unions commute, so
the result does not depend on how the input was split into chunks or indexers.

A Cell counts packets per destination too: a tunnel puts its volume on relays new to the host, and
scoring tells that from a familiar game or peer-to-peer session by it.
"""

import csv
import math
import sys
import tempfile
from collections import Counter
from operator import itemgetter
from typing import (AbstractSet, Callable, Dict, FrozenSet, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Set, Tuple, Union)

from . import evidence as ev
from .addresses import Networks, TeredoAddress
from .fields import UDP_VALUES, Chunk, Columns, columns_of, first_value, unquoted
from .multivalue import multivalue_cells

OWN_EVIDENCE = ev.LABEL | ev.PREFIX | ev.PORT

# A Teredo client refreshes its server every 20-30 s: a live port shows evidence in the bucket
# itself or a neighbouring one. A port reused later (QUIC, DNS, games) is not Teredo.
NEIGHBOURS = (0, -1, 1)

# Map-phase output: the first field marks the rows as partial aggregates of this command.
PARTIAL_MARKER = "teredospike_partial"
PARTIAL_FIELDS = (PARTIAL_MARKER, "_time", "src", "src_port", "packets", "bytes", "flows",
                  "evidence", "dests", "servers", "mapped", "records", "skipped", "candidates")

# A candidate entry: one outbound UDP record as the text "src src_port _time dest count packets
# bytes", its cells as the record had them (a count field empty or absent takes its default, as in
# _add_rows). A row's `candidates` field holds up to ENTRIES_PER_ROW entries joined by ";": one row
# per record would cost the map phase more than reading the record did, and a row about as long as
# a raw event (~280 bytes) keeps the search head's chunks (up to 50,000 rows) as large as before.
ENTRY_FIELDS = 7
ENTRY_SEPARATOR = ";"
ENTRIES_PER_ROW = 5

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
        # (src, src_port) with evidence of its own here, in any bucket: its other records are read
        # into Cells (and attributed here if they can be), not passed on as entries.
        self._live_ports: Set[Tuple[str, str]] = set()

    # ---- reading flow records (map phase) -------------------------------------------------

    def add_chunk(self, chunk: Chunk) -> "Candidates":
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
            return Candidates({}, [])
        candidates: Dict[Key, Cell] = {}
        entries: List[str] = []
        udp_lines = None if lines is None else self._udp_lines(columns, lines, len(chunk.header))
        if udp_lines is None:
            self._add_rows(columns, _padded(chunk.rows(), len(chunk.header)), candidates,
                           count=True)
        else:
            self.records += len(lines)
            rows, entries = self._split_candidates(columns, udp_lines)
            self._add_rows(columns, rows, candidates, count=False)
        return Candidates(self._keep_resolvable(candidates), entries)

    def _udp_lines(self, c: Columns, lines: List[str], width: int) -> Optional[List[str]]:
        """The lines whose record can be UDP, without quotes (fields.unquoted); None when the
        chunk needs csv.reader. Most records are TCP: they are dropped on the last characters of
        their line (_TransportSuffixes), without splitting it."""
        if c.transport is not None:
            judge = _TransportSuffixes(c.transport, width)
            last = judge.characters
            lines = [line for line in lines
                     if (verdict := judge[line[-last:]])
                     or (verdict is None and judge.whole_line(line))]
        return unquoted(lines)

    def _split_candidates(self, c: Columns, lines: List[str]) -> Tuple[List[List[str]], List[str]]:
        """UDP lines -> the cells of the records _add_rows must read (they may be Teredo, come
        from a client port live here, or are unreadable), and an entry for each other outbound
        record: a plain candidate, passed on as text without a Cell. The rest (internal or
        inbound) are dropped. The tests are those of _add_rows, made cheaply first."""
        if c.time is None or c.src_port is None or c.dest_port is None:
            return [line.split(",") for line in lines], []
        inside = self._inside
        live_ports = self._live_ports
        hints = _TeredoHints(c, self._teredo_label)
        hint_cells = hints.cells
        entry_format, entry_cells = _entry_layout(c)
        src_at, dest_at, port_at, dest_port_at = c.src, c.dest, c.src_port, c.dest_port
        rows: List[List[str]] = []
        entries: List[str] = []
        for line in lines:
            cells = line.split(",")
            src_inside = inside[cells[src_at]]
            dest_inside = inside[cells[dest_at]]
            if src_inside and dest_inside is False:
                if (cells[dest_port_at] == ev.SERVER_PORT_TEXT
                        or (hint_cells is not None and hints[hint_cells(cells)])
                        or (cells[src_at], cells[port_at]) in live_ports):
                    rows.append(cells)
                else:
                    entries.append(entry_format % entry_cells(cells))
            elif src_inside is None or dest_inside is None:
                rows.append(cells)
        if not _readable_entries(entries):
            return [line.split(",") for line in lines], []
        return rows, entries

    def _add_rows(self, c: Columns, rows: Iterable[List[str]], candidates: Dict[Key, Cell],
                  count: bool) -> None:
        """The per-record hot path: plain locals, memoised address and label tests, no call per
        record except where a record may be Teredo."""
        span = self.span
        cells = self.cells
        skipped = self.skipped
        inside = self._inside
        teredo_label = self._teredo_label
        live_ports = self._live_ports
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
                live_ports.add((src, src_port))
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

    def partial_table(self, cells: Dict[Key, Cell], entries: Sequence[str] = ()
                      ) -> "PartialTable":
        """Map-phase output rows for `cells` and candidate `entries` (ENTRIES_PER_ROW to a row),
        in PARTIAL_FIELDS order and already in wire form (each field's cell followed by its __mv_
        cell): sets travel as multivalue fields."""
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
        packed = _packed(entries)
        plain += [_ENTRIES_ROW % text for text in packed]
        text = "".join(plain)
        if not _is_plain(text, len(plain)):  # a cell needs quoting after all
            return PartialTable("", 0, [_wire_row(s, p, b, cell)
                                        for (s, p, b), cell in cells.items()]
                                + [_entries_wire_row(text) for text in packed])
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
         servers_at, mapped_at, records_at, skipped_at, entries_at) = (
             at[name] for name in PARTIAL_FIELDS[1:])
        cells = self.cells
        intern = sys.intern  # the same host, port and addresses arrive in thousands of rows
        for row in rows:
            if row[entries_at]:
                self._spool_entries(row[entries_at])
                continue
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
        src, port, bucket = key
        self._spool_writer().writerow((src, port, bucket, cell.packets, cell.bytes, cell.flows,
                                       "\n".join(_dest_values(cell.dests))))

    def _spool_entries(self, text: str) -> None:
        """Keep candidate entries (ENTRY_SEPARATOR-joined) on disk as they came: one spool row."""
        self._spool_writer().writerow((text,))

    def _spool_writer(self):
        """The spool file's csv writer; the file is made on first use."""
        if self._spool is None:
            # splunklib points tempfile at the search's dispatch directory.
            self._spool = tempfile.TemporaryFile("w+", newline="", encoding="utf-8")
            self._spool_csv = csv.writer(self._spool)
        return self._spool_csv

    def spool_candidates(self, candidates: "Candidates") -> None:
        for key, cell in candidates.cells.items():
            self.spool(key, cell)
        for text in _packed(candidates.entries):
            self._spool_entries(text)

    def resolve_spool(self) -> None:
        """At end of input: attribute spooled candidates whose port was live nearby; drop the rest."""
        if self._spool is None:
            return
        self._spool.seek(0)
        # A candidate can only be attributed to a (src, src_port) that has cells by now.
        ports = {(src, port) for src, port, _ in self.cells}
        for row in csv.reader(self._spool):
            if len(row) == 1:
                self._attribute_entries(row[0], ports)
            elif (row[0], row[1]) in ports:
                self._attribute(*_spooled_cell(row))
        self._spool.close()
        self._spool = None

    def _attribute_entries(self, text: str, ports: AbstractSet[Tuple[str, str]]) -> None:
        for entry in text.split(ENTRY_SEPARATOR):
            src, port, _ = entry.split(" ", 2)
            if (src, port) in ports:
                self._attribute(*entry_cell(entry, self.span))

    def _attribute(self, key: Key, cell: Cell) -> None:
        if key in self.cells or self._is_live_near(key):
            self._merge(key, cell)


def _spooled_cell(row: List[str]) -> Tuple[Key, Cell]:
    """The key and candidate Cell of a spool row written by Aggregator.spool."""
    src, port, bucket, packets, octets, flows, dests = row
    cell = Cell()
    cell.packets, cell.bytes, cell.flows = int(packets), int(octets), int(flows)
    cell.evidence = ev.CLIENT_PORT
    cell.dests = _dest_packets(dests)
    return (src, port, int(bucket)), cell


class Candidates(NamedTuple):
    """What add_chunk could not attribute: candidate Cells (records read into Cells, e.g. from a
    live port but not next to a live bucket), and entries (plain candidates, one per record)."""

    cells: Dict[Key, Cell]
    entries: List[str]


def entry_cell(entry: str, span: int) -> Tuple[Key, Cell]:
    """The key and candidate Cell of one entry (ENTRY_FIELDS), read as _add_rows reads a record."""
    src, port, time, dest, count, packets, octets = entry.split(" ")
    cell = Cell()
    cell.flows = _number(count, 1)
    cell.packets = _number(packets, cell.flows)
    cell.bytes = _number(octets, 0)
    cell.evidence = ev.CLIENT_PORT
    cell.dests = {sys.intern(dest): cell.packets}
    return (sys.intern(src), sys.intern(port), int(float(time)) // span * span), cell


def _entry_layout(c: Columns) -> Tuple[str, Callable[[List[str]], Tuple[str, ...]]]:
    """How a record's cells become an entry: a %-format and the getter of the cells it takes
    (a count field the chunk lacks is left empty)."""
    counts = (c.count, c.packets, c.bytes)
    fields = ["%s"] * 4 + ["" if at is None else "%s" for at in counts]
    return " ".join(fields), itemgetter(c.src, c.src_port, c.time, c.dest,
                                        *[at for at in counts if at is not None])


def _packed(entries: Sequence[str]) -> List[str]:
    """Entries joined ENTRIES_PER_ROW at a time: the `candidates` cells of their rows."""
    return [ENTRY_SEPARATOR.join(entries[start:start + ENTRIES_PER_ROW])
            for start in range(0, len(entries), ENTRIES_PER_ROW)]


def _readable_entries(entries: List[str]) -> bool:
    """True when every entry has its ENTRY_FIELDS fields (no cell held a space or the separator)
    and counts and a time as _add_rows reads them without a skip: counts of decimal digits or
    empty (the default), a finite number for the time. Otherwise _add_rows reads the records."""
    if not entries:
        return True
    text = " ".join(entries)
    fields = text.split(" ")
    if len(fields) != ENTRY_FIELDS * len(entries) or ENTRY_SEPARATOR in text:
        return False
    counts = "".join(fields[4::ENTRY_FIELDS] + fields[5::ENTRY_FIELDS] + fields[6::ENTRY_FIELDS])
    if counts and not counts.isdecimal():
        return False
    try:
        return math.isfinite(sum(map(float, fields[2::ENTRY_FIELDS])))
    except ValueError:
        return False


class PartialTable(NamedTuple):
    """Map-phase output rows: `text` holds `text_rows` rows already written as CSV lines (rows of
    entries, and the common cell whose cells need no quoting); `rows` the others as wire cells."""

    text: str
    text_rows: int
    rows: List[List[str]]


# One plain row (bucket, src, port, packets, bytes, flows, evidence, its one destination and its
# packets, its server if any; no mapped address) as a CSV line in splunklib's dialect: 28 cells,
# `\r\n`.
_PLAIN_ROW = ",".join(["1", "", "%d", "", "%s", "", "%s", "", "%d", "", "%d", "", "%d", "",
                       "%d", "", "%s=%d", "", "%s"] + [""] * 9) + "\r\n"
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
            servers_mv, mapped, mapped_mv, "", "", "", "", "", ""]


def _entries_wire_row(text: str) -> List[str]:
    """A row of candidate entries (ENTRY_SEPARATOR-joined) in wire cells."""
    row = [""] * (2 * len(PARTIAL_FIELDS))
    row[0] = "1"
    row[2 * PARTIAL_FIELDS.index("candidates")] = text
    return row


# The same as a CSV line: entries hold no comma, quote or line break (cells of Chunk.lines()).
_ENTRIES_ROW = ",".join(_entries_wire_row("%s")) + "\r\n"


class _TransportSuffixes(dict):
    """The last `characters` of a line -> can its record be UDP: True or False, or None when the
    transport cell is not whole in them (a long value, or cells after it that are not empty).

    splunkd writes the fields in name order and all the `__mv_` columns after them, so few cells
    follow `transport`, and nearly always empty ones: a line's last few characters then hold the
    transport cell whole, and take few distinct values over millions of lines. One slice and one
    lookup per line instead of splitting it."""

    def __init__(self, transport_at: int, width: int) -> None:
        super().__init__()
        self.transport_at = transport_at
        self.after = width - 1 - transport_at  # cells after the transport cell
        self.characters = self.after + 5  # its comma, up to four characters, the empty cells

    def __missing__(self, suffix: str) -> Optional[bool]:
        cells = suffix.split(",")
        whole = len(cells) > self.after + 1  # the comma before the transport cell is there
        verdict = self[suffix] = _can_be_udp(cells[-1 - self.after]) if whole else None
        return verdict

    def whole_line(self, line: str) -> bool:
        return _can_be_udp(line.split(",")[self.transport_at])


def _can_be_udp(cell: str) -> bool:
    """Can a record with this transport cell (quotes still in) be UDP? Empty means absent: it
    can. The value is read without quotes, as fields.unquoted reads it; if the cell held an
    escaped quote its real value is no UDP spelling, and a line kept on it makes unquoted()
    refuse the chunk."""
    value = cell.replace('"', "")
    return not value or value in UDP_VALUES or value.lower() in UDP_VALUES


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


class _TeredoHints(dict):
    """A record's label and inner-address cells (`cells(row)`; None when the chunk has no such
    field) -> may the record be Teredo: a label names Teredo or an inner IPv6 address is there.
    Such a record goes to _add_rows, where evidence.record_evidence decides."""

    def __init__(self, c: Columns, teredo_label: _TeredoLabels) -> None:
        super().__init__()
        at = list(c.labels) + [i for i in (c.inner_src, c.inner_dest) if i is not None]
        self.cells = itemgetter(*at) if at else None
        self.single = len(at) == 1  # itemgetter of one position returns the cell, not a tuple
        self.labels = len(c.labels)
        self.teredo_label = teredo_label

    def __missing__(self, key: Union[str, Tuple[str, ...]]) -> bool:
        values = (key,) if self.single else key
        verdict = self[key] = (any(self.teredo_label[v] for v in values[:self.labels])
                               or any(values[self.labels:]))
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
