"""The map phase's output, read back by the reduce phase: one codec per wire format.

- Partial rows (PARTIAL_FIELDS, the first field marks them): each row is one kind, told by which
  fields it fills. A *cell row* carries one Cell; an *entries row* carries candidate entries; a
  *counts row* the map phase's record counts. A new kind is a new field of PARTIAL_FIELDS, an
  encoder and a branch in `read_rows`.
- Candidate entries (ENTRY_FIELDS): one outbound UDP record that may belong to a live client port
  seen on another indexer, as space-separated text, many to a row. One row per record would cost
  the map phase more than reading the record did; a row about as long as a raw event (~280 bytes)
  keeps the search head's chunks (up to 50,000 rows) as large as before.

Both layouts are stated once, as field tuples; every template, getter and offset is built from
them. Rows are written in wire form (each field's cell followed by its `__mv_` cell).
"""

import sys
from operator import itemgetter
from typing import (Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set,
                    Tuple)

from . import evidence as ev
from .cells import Cell, Key
from .fields import Columns
from .multivalue import multivalue_cells
from .records import (MAX_COUNT_DIGITS, RECORD_START, entries_readable, read_count, read_duration,
                      read_time, split, spread)

PARTIAL_MARKER = "teredospike_partial"
PARTIAL_FIELDS = (PARTIAL_MARKER, "_time", "src", "src_port", "packets", "bytes", "flows",
                  "evidence", "dests", "servers", "mapped", "records", "skipped", "notes",
                  "candidates")
_WIRE_AT = {name: 2 * i for i, name in enumerate(PARTIAL_FIELDS)}  # a field's cell in a wire row

# A candidate entry: the record's cells as it had them (a count field empty or absent takes its
# default, as the exact reader's read_count does).
ENTRY_FIELDS = ("src", "src_port", "_time", "dest", "count", "packets", "bytes", "duration")
ENTRY_SEPARATOR = ";"
ENTRIES_PER_ROW = 5
_ENTRY_AT = {name: i for i, name in enumerate(ENTRY_FIELDS)}
# Columns attribute of each entry field
_ENTRY_COLUMN = {"src": "src", "src_port": "src_port", "_time": "time", "dest": "dest",
                 "count": "count", "packets": "packets", "bytes": "bytes", "duration": "duration"}
_COUNT_FIELDS = ("count", "packets", "bytes")
# May be absent from a chunk: left empty.
_OPTIONAL_ENTRY_FIELDS = frozenset(_COUNT_FIELDS + ("duration",))
# A summary row's lists (dests, servers, mapped), each in one cell: single values survive `collect`
# and the summary index's key=value extraction (summary.py).
VALUE_SEPARATOR = " "


def is_partial(header: Sequence[str]) -> bool:
    """True for the map phase's output (every partial field), False for flow records."""
    return PARTIAL_MARKER in header and all(name in header for name in PARTIAL_FIELDS)


class PartialTable(NamedTuple):
    """Map-phase output rows: `text` holds `text_rows` rows already written as CSV lines (rows of
    entries, and the common cell whose cells need no quoting); `rows` the others as wire cells."""

    text: str
    text_rows: int
    rows: List[List[str]]


class Candidates(NamedTuple):
    """What a chunk's reader could not attribute: candidate Cells (records read into Cells, e.g.
    from a live port but not next to a live bucket), and entries (plain candidates, one per
    record)."""

    cells: Dict[Key, Cell]
    entries: List[str]


# ---- candidate entries ----------------------------------------------------------------------

def entry_layout(c: Columns) -> Tuple[str, Callable[[List[str]], Tuple[str, ...]]]:
    """How a record's cells become an entry: a %-format and the getter of the cells it takes
    (a count field the chunk lacks is left empty)."""
    positions = [getattr(c, _ENTRY_COLUMN[name]) for name in ENTRY_FIELDS]
    formats = ["" if at is None and name in _OPTIONAL_ENTRY_FIELDS else "%s"
               for name, at in zip(ENTRY_FIELDS, positions)]
    return " ".join(formats), itemgetter(*[at for at in positions if at is not None])


def entry_cells(entry: str, span: int, record_time: str = RECORD_START) -> List[Tuple[Key, Cell]]:
    """The keys and candidate Cells of one entry, read as the exact reader reads a record: one per
    bucket the record lasts over (records.spread)."""
    src, port, time, dest, count, packets, octets, duration = entry.split(" ")
    flows = read_count(count, 1)
    total_packets = read_count(packets, flows)
    total_bytes = read_count(octets, 0)
    seconds = read_time(time)
    src, port, dest = sys.intern(src), sys.intern(port), sys.intern(dest)
    shares = spread(seconds, read_duration(duration), span, record_time)
    out = []
    for (bucket, _), part_packets, part_bytes in zip(shares, split(total_packets, shares),
                                                     split(total_bytes, shares)):
        cell = Cell()
        cell.flows, cell.packets, cell.bytes = flows, part_packets, part_bytes
        cell.evidence = ev.CLIENT_PORT
        cell.dests = {dest: part_packets}
        out.append(((src, port, bucket), cell))
    return out


def entry_ports(entry: str) -> Tuple[str, str]:
    """(src, src_port) of an entry, without decoding the rest."""
    src, port, _ = entry.split(" ", 2)
    return src, port


def entries_of(text: str) -> List[str]:
    """The entries of one entries row's cell."""
    return text.split(ENTRY_SEPARATOR)


def packed(entries: Sequence[str]) -> List[str]:
    """Entries joined ENTRIES_PER_ROW at a time: the `candidates` cells of their rows."""
    return [ENTRY_SEPARATOR.join(entries[start:start + ENTRIES_PER_ROW])
            for start in range(0, len(entries), ENTRIES_PER_ROW)]


def readable_entries(entries: List[str]) -> bool:
    """True when every entry has its ENTRY_FIELDS fields (no cell held a space or the separator)
    and entry_cells reads each as the exact reader reads its record, without a skip
    (records.entries_readable). Otherwise the exact reader reads the records."""
    if not entries:
        return True
    text = " ".join(entries)
    fields = text.split(" ")
    width = len(ENTRY_FIELDS)
    if len(fields) != width * len(entries) or ENTRY_SEPARATOR in text:
        return False
    counts = [value for name in _COUNT_FIELDS for value in fields[_ENTRY_AT[name]::width]]
    return entries_readable(counts, fields[_ENTRY_AT["_time"]::width],
                            fields[_ENTRY_AT["src_port"]::width],
                            fields[_ENTRY_AT["duration"]::width])


# ---- partial rows ---------------------------------------------------------------------------

def _wire_row(values: Dict[str, str]) -> List[str]:
    """A wire row (marker set) with these fields' cells; every other cell empty."""
    row = [""] * (2 * len(PARTIAL_FIELDS))
    row[0] = "1"
    for name, value in values.items():
        row[_WIRE_AT[name]] = value
    return row


# A plain cell row (one destination, at most one server, no mapped address) as a CSV line in
# splunklib's dialect; its %-arguments in PARTIAL_FIELDS order: bucket, src, port, packets, bytes,
# flows, evidence, the destination and its packets, the server or "".
_PLAIN_ROW = ",".join(_wire_row({
    "_time": "%d", "src": "%s", "src_port": "%s", "packets": "%d", "bytes": "%d", "flows": "%d",
    "evidence": "%d", "dests": "%s=%d", "servers": "%s"})) + "\r\n"
_PLAIN_COMMAS = 2 * len(PARTIAL_FIELDS) - 1
# An entries row as a CSV line: entries hold no comma, quote or line break (cells of
# Chunk.lines()).
_ENTRIES_ROW = ",".join(_wire_row({"candidates": "%s"})) + "\r\n"


def _is_plain(text: str, rows: int) -> bool:
    """True when no cell of these rows holds a comma, quote or line break (then csv.writer
    would have written exactly this text)."""
    return (text.count(",") == rows * _PLAIN_COMMAS and text.count("\n") == rows
            and text.count("\r") == rows and '"' not in text)


def _cell_wire_row(src: str, port: str, bucket: int, cell: Cell) -> List[str]:
    row = _wire_row({"_time": str(bucket), "src": src, "src_port": port,
                     "packets": str(cell.packets), "bytes": str(cell.bytes),
                     "flows": str(cell.flows), "evidence": str(cell.evidence)})
    for name, values in (("dests", dest_values(cell.dests.items())), ("servers", cell.servers),
                         ("mapped", cell.mapped)):
        at = _WIRE_AT[name]
        row[at], row[at + 1] = multivalue_cells(values)
    return row


def partial_table(cells: Dict[Key, Cell], entries: Sequence[str] = ()) -> PartialTable:
    """Wire rows for `cells` and candidate `entries` (ENTRIES_PER_ROW to a row)."""
    plain = []
    rows = []
    for (src, port, bucket), cell in cells.items():
        if len(cell.dests) == 1 and len(cell.servers) <= 1 and not cell.mapped:
            (dest,) = cell.dests
            server = next(iter(cell.servers), "")
            plain.append(_PLAIN_ROW % (bucket, src, port, cell.packets, cell.bytes, cell.flows,
                                       cell.evidence, dest, cell.packets, server))
        else:
            rows.append(_cell_wire_row(src, port, bucket, cell))
    texts = packed(entries)
    plain += [_ENTRIES_ROW % text for text in texts]
    text = "".join(plain)
    if not _is_plain(text, len(plain)):  # a cell needs quoting after all
        return PartialTable("", 0, [_cell_wire_row(s, p, b, cell)
                                    for (s, p, b), cell in cells.items()]
                            + [_wire_row({"candidates": joined}) for joined in texts])
    return PartialTable(text, len(plain), rows)


def counts_table(records: int, skipped: Dict[str, int],
                 notes: Optional[Dict[str, int]] = None) -> PartialTable:
    """The map phase's record counts as one counts row (RecordReader's records, skipped and
    notes)."""
    row = _wire_row({"records": str(records)})
    for name, counts in (("skipped", skipped), ("notes", notes or {})):
        at = _WIRE_AT[name]
        row[at], row[at + 1] = multivalue_cells(["%s=%d" % item for item in sorted(counts.items())])
    return PartialTable("", 0, [row])


def _counts(cell: str) -> Dict[str, int]:
    """A counts row's `skipped` or `notes` cell: reason -> count."""
    counts: Dict[str, int] = {}
    for entry in cell.split("\n") if cell else ():
        reason, _, count = entry.rpartition("=")
        counts[reason] = read_count(count, 0)
    return counts


# read_rows yields (kind, ...) per row:
CELL_ROW = "cell"        # (CELL_ROW, key, cell)
ENTRIES_ROW = "entries"  # (ENTRIES_ROW, the `candidates` cell: entries joined by ENTRY_SEPARATOR)
COUNTS_ROW = "counts"    # (COUNTS_ROW, records, {reason: skipped}, {note: records})
FOREIGN_ROW = "foreign"  # (FOREIGN_ROW,): a row with the marker that no map phase wrote

# A record that carries every partial field but was not written by a map phase (an event made to
# look like one, when no map phase runs before the command) is skipped with this reason.
SKIP_FOREIGN_PARTIAL = "teredospike_partial rows not written by teredospike's map phase"


def read_rows(header: Sequence[str], rows: Iterable[List[str]]) -> Iterator[tuple]:
    """Partial rows (csv.reader cells under `header`) -> one tuple per row (see CELL_ROW)."""
    at = {name: header.index(name) for name in PARTIAL_FIELDS if name in header}
    missing = [name for name in PARTIAL_FIELDS if name not in at]
    if missing:
        raise ValueError("partial results lack fields: %s" % ", ".join(missing))
    (time_at, src_at, port_at, packets_at, bytes_at, flows_at, evidence_at, dests_at,
     servers_at, mapped_at, records_at, skipped_at, notes_at, entries_at) = (
         at[name] for name in PARTIAL_FIELDS[1:])
    intern = sys.intern  # the same host, port and addresses arrive in thousands of rows
    for row in rows:
        if row[entries_at]:
            yield ENTRIES_ROW, row[entries_at]
            continue
        src = row[src_at]
        try:
            if not src:
                yield (COUNTS_ROW, read_count(row[records_at], 0), _counts(row[skipped_at]),
                       _counts(row[notes_at]))
                continue
            cell = Cell()
            cell.packets = read_count(row[packets_at], 0)
            cell.bytes = read_count(row[bytes_at], 0)
            cell.flows = read_count(row[flows_at], 0)
            cell.evidence = int(row[evidence_at])
            cell.dests = dest_packets(row[dests_at])
            if row[servers_at]:
                cell.servers = address_values(row[servers_at])
            if row[mapped_at]:
                cell.mapped = address_values(row[mapped_at])
            key = (intern(src), intern(row[port_at]), int(row[time_at]))
        except ValueError:
            yield (FOREIGN_ROW,)
            continue
        yield CELL_ROW, key, cell


def address_values(cell: str) -> Set[str]:
    """The addresses of a multivalue cell (newline-joined) or of a summary row's cell
    (space-joined; summary.py), interned: the reduce phase keeps them for every host and bucket,
    and the same servers and relays come back in thousands of rows."""
    return set(map(sys.intern, cell.split())) if cell else set()


def dest_values(dests: Iterable[Tuple[str, int]]) -> List[str]:
    """(address, packets) pairs as multivalue values, `address=packets` (an address holds no
    `=`)."""
    return ["%s=%d" % item for item in dests]


def dest_packets(cell: str, share: Optional[Callable[[str], str]] = sys.intern
                 ) -> Dict[str, int]:
    """The inverse of dest_values, newline-joined (cell rows) or space-joined (summary rows and
    dest_text); each address through `share`: interned where the phase keeps them (see
    address_values), or as it is (None) for a parse that is not kept."""
    dests: Dict[str, int] = {}
    if cell:
        for value in cell.split():
            dest, _, packets = value.rpartition("=")
            # Plain short digits are what read_count would accept as they are (one call saved a
            # destination: the detection stage reads one per row).
            dests[dest if share is None else share(dest)] = (
                int(packets) if packets.isdigit() and len(packets) <= MAX_COUNT_DIGITS
                else read_count(packets, 0))
    return dests


def dest_text(dests: Iterable[Tuple[str, int]]) -> str:
    """(address, packets) pairs as one cell of text: their dest_values sorted (an order that does
    not depend on the order the records came in), space-separated (VALUE_SEPARATOR). A summary
    row's `dests`, and how the search head keeps a bucket's destinations (HostSeries.dests:
    a short string a bucket, where tuples of interned addresses and counts took several times
    that for hosts that reach new peers in every session)."""
    return VALUE_SEPARATOR.join(sorted(dest_values(dests)))
