"""Reading one chunk of flow records, with line-level shortcuts where they give the same result.

splunkd's bodies are nearly always simple enough to read as lines of text: most records are TCP
and are dropped on the last characters of their line; most of the rest are plain outbound UDP
(DNS, QUIC from random ports) and are passed on as candidate entries (partials.ENTRY_FIELDS)
without a Cell. Only the records that may be Teredo, come from a port live here, or are unreadable
go to the exact reader (records.RecordReader.read_rows). Every shortcut asks the rule's own
function, through the reader's memo tables; tests/test_aggregation.py holds the shortcuts to the
exact reader (same records, skips and cells, whatever the values).
"""

from typing import Iterable, Iterator, List, Optional, Tuple

from . import evidence as ev
from .cells import keep_resolvable
from .fields import Chunk, Columns, columns_of, unquoted
from .partials import Candidates, entry_layout, readable_entries
from .records import (DIRECTIONS, NOT_IP, OUTBOUND, SKIP_NO_NETWORK_FIELDS, RecordReader,
                      TeredoHints, can_be_udp, plain_ports)


def read_chunk(reader: RecordReader, chunk: Chunk) -> Candidates:
    """Read one chunk of raw flow records into `reader`. Cells with own evidence, and candidates
    next to a live port already seen, go into `reader.cells`; the other candidates are returned,
    for the caller to pass on (map) or spool (reduce)."""
    reader.bound_memos()
    columns = columns_of(chunk.header)
    lines = chunk.lines()
    if not columns.has_network_fields:
        count = len(lines) if lines is not None else sum(1 for _ in chunk.rows())
        reader.records += count
        if count:
            reader.skipped[SKIP_NO_NETWORK_FIELDS] += count
        return Candidates({}, [])
    candidates = {}
    entries: List[str] = []
    # A chunk with src_host (fields.HOST_FIELD) goes to the exact reader: the shortcuts pass
    # candidates on keyed by their address, and a host is then known by its src_host.
    udp_lines = (None if lines is None or columns.host is not None
                 else _udp_lines(columns, lines, len(chunk.header)))
    if udp_lines is None:
        reader.records += reader.read_rows(
            columns, _padded(chunk.rows(), len(chunk.header)), candidates)
    else:
        reader.records += len(lines)
        rows, entries = _split_candidates(reader, columns, udp_lines)
        reader.read_rows(columns, rows, candidates)  # counted above, with the lines dropped
    return Candidates(keep_resolvable(reader.cells, candidates, reader.span), entries)


def _udp_lines(c: Columns, lines: List[str], width: int) -> Optional[List[str]]:
    """The lines whose record can be UDP, without quotes (fields.unquoted); None when the chunk
    needs csv.reader. Most records are TCP: they are dropped on the last characters of their line
    (TransportSuffixes), without splitting it."""
    if c.transport is not None:
        judge = TransportSuffixes(c.transport, width)
        last = judge.characters
        lines = [line for line in lines
                 if (verdict := judge[line[-last:]])
                 or (verdict is None and judge.whole_line(line))]
    return unquoted(lines)


def _split_candidates(reader: RecordReader, c: Columns, lines: List[str]
                      ) -> Tuple[List[List[str]], List[str]]:
    """UDP lines -> the cells of the records the exact reader must read (they may be Teredo, come
    from a client port live here, or are unreadable), and an entry for each other outbound
    record. The rest (internal or inbound) are dropped. The tests are the exact reader's, through
    the same memo tables; entries are checked at once (partials.readable_entries)."""
    if c.time is None or c.src_port is None or c.dest_port is None:
        return [line.split(",") for line in lines], []
    inside = reader.inside
    directions = DIRECTIONS
    live_ports = reader.live_ports
    hints = TeredoHints(c)
    hint_cells = hints.cells
    entry_format, entry_cells = entry_layout(c)
    src_at, dest_at, port_at, dest_port_at = c.src, c.dest, c.src_port, c.dest_port
    rows: List[List[str]] = []
    entries: List[str] = []
    entry_dest_ports: List[str] = []  # checked with the entries, as the exact reader would
    for line in lines:
        cells = line.split(",")
        way = directions[inside[cells[src_at]], inside[cells[dest_at]]]
        if way is OUTBOUND:
            if (cells[dest_port_at] == ev.SERVER_PORT_TEXT
                    or (hint_cells is not None and hints[hint_cells(cells)])
                    or (cells[src_at], cells[port_at]) in live_ports):
                rows.append(cells)
            else:
                entries.append(entry_format % entry_cells(cells))
                entry_dest_ports.append(cells[dest_port_at])
        elif way is NOT_IP:
            rows.append(cells)  # the exact reader counts the skip
    if not (readable_entries(entries) and plain_ports(entry_dest_ports)):
        return [line.split(",") for line in lines], []
    return rows, entries


class TransportSuffixes(dict):
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
        verdict = self[suffix] = _cell_can_be_udp(cells[-1 - self.after]) if whole else None
        return verdict

    def whole_line(self, line: str) -> bool:
        return _cell_can_be_udp(line.split(",")[self.transport_at])


def _cell_can_be_udp(cell: str) -> bool:
    """records.can_be_udp of a transport cell with its quotes still in, read without them as
    fields.unquoted reads it; if the cell held an escaped quote its real value is no UDP
    spelling, and a line kept on it makes unquoted() refuse the chunk."""
    return can_be_udp(cell.replace('"', ""))


def _padded(rows: Iterable[List[str]], width: int) -> Iterator[List[str]]:
    """Rows with at least `width` cells: a short row's missing cells read as empty (absent)."""
    for row in rows:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        yield row
