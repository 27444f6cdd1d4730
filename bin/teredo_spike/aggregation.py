"""Mergeable per (host, client port, bucket) aggregates, and client-port attribution.

Both phases of `| teredospike` build the same `Cell`s:

- the map phase (indexers) reads flow records and keeps one Cell per (src, src_port, bucket);
- the reduce phase (search head) merges the map phases' Cells by adding counts and uniting sets.

A Cell with evidence of its own (label, prefix, port) makes its (src, src_port) a *live* Teredo client
port in its bucket and the neighbouring ones. A Cell without — plain UDP from that port, e.g. relay
traffic on an arbitrary port — counts only where the port is live. Whether it is live may only be known
after every indexer has reported, so such "candidate" Cells travel to the reduce phase unless the map
already saw the port live nearby. The reduce phase keeps candidates in a spool file rather than memory
(DNS from random ports makes many of them) and attributes them once the input is finished. Sums and
unions commute, so the result does not depend on how the input was split into chunks or indexers.
"""

import csv
import tempfile
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from . import evidence as ev
from .addresses import Networks, TeredoAddress
from .fields import UDP_VALUES, Columns, columns_of, first_value

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


class Cell:
    """Outbound UDP from one (src, src_port) in one bucket."""

    __slots__ = ("packets", "bytes", "flows", "evidence", "dests", "servers", "mapped")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.flows = 0
        self.evidence = 0
        self.dests = set()  # type: set
        self.servers = set()  # type: set
        self.mapped = set()  # type: set

    @property
    def is_live(self) -> bool:
        """Evidence of its own: this port is a Teredo client port in this bucket."""
        return bool(self.evidence & OWN_EVIDENCE)

    def merge(self, other: "Cell") -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.flows += other.flows
        self.evidence |= other.evidence
        self.dests |= other.dests
        self.servers |= other.servers
        self.mapped |= other.mapped


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

    # ---- reading flow records (map phase) -------------------------------------------------

    def add_records(self, header: Sequence[str], rows: Iterable[List[str]]) -> Dict[Key, Cell]:
        """Aggregate raw flow records. Cells with own evidence, and candidates next to a live port
        already seen here, go into `self.cells`; the other candidates are returned, for the caller
        to emit (map) or spool (reduce)."""
        columns = columns_of(header)
        if not columns.has_network_fields:
            count = sum(1 for _ in rows)
            self.records += count
            if count:
                self.skipped[SKIP_NO_NETWORK_FIELDS] += count
            return {}
        candidates: Dict[Key, Cell] = {}
        for row in rows:
            self.records += 1
            self._add_record(columns, row, candidates)
        return self._keep_resolvable(candidates)

    def _add_record(self, c: Columns, row: List[str], candidates: Dict[Key, Cell]) -> None:
        if c.transport is not None:
            transport = row[c.transport]
            if transport and transport not in UDP_VALUES and transport.lower() not in UDP_VALUES:
                return
        src = first_value(row[c.src]) if c.src < len(row) else ""
        if not src:
            self.skipped[SKIP_NO_SOURCE] += 1
            return
        dest = first_value(row[c.dest]) if c.dest < len(row) else ""
        src_inside = self.internal.contains(src)
        dest_inside = self.internal.contains(dest) if dest else None
        if src_inside is None or dest_inside is None:
            self.skipped[SKIP_NOT_IP] += 1
            return
        if not src_inside or dest_inside:
            return  # not outbound
        try:
            bucket = int(float(row[c.time])) // self.span * self.span
        except (TypeError, ValueError, IndexError, OverflowError):
            self.skipped[SKIP_NO_TIME] += 1
            return
        try:
            flows = _number(row[c.count], 1) if c.count is not None else 1
            packets = _number(row[c.packets], flows) if c.packets is not None else flows
            octets = _number(row[c.bytes], 0) if c.bytes is not None else 0
        except (ValueError, OverflowError):
            self.skipped[SKIP_BAD_NUMBER] += 1
            return
        src_port = first_value(row[c.src_port]) if c.src_port is not None else ""
        dest_port = first_value(row[c.dest_port]) if c.dest_port is not None else ""
        teredo: List[TeredoAddress] = []
        own = row[c.inner_src].split("\n") if c.inner_src is not None and row[c.inner_src] else ()
        peers = row[c.inner_dest].split("\n") if c.inner_dest is not None and row[c.inner_dest] else ()
        mask = ev.record_evidence([row[i] for i in c.labels], dest_port, own, peers, teredo)
        key = (src, src_port, bucket)
        if mask:
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = candidates.pop(key, None) or Cell()
        else:
            mask = ev.CLIENT_PORT
            cell = self.cells.get(key)
            if cell is None:
                cell = candidates.get(key)
                if cell is None:
                    cell = candidates[key] = Cell()
        cell.packets += packets
        cell.bytes += octets
        cell.flows += flows
        cell.evidence |= mask
        cell.dests.add(dest)
        if mask & ev.PORT:
            cell.servers.add(dest)
        for address in teredo:
            cell.servers.add(address.server)
            cell.mapped.add(address.mapped)

    def _is_live_near(self, key: Key) -> bool:
        src, port, bucket = key
        cells = self.cells
        for step in NEIGHBOURS:
            cell = cells.get((src, port, bucket + step * self.span))
            if cell is not None and cell.is_live:
                return True
        return False

    def _keep_resolvable(self, candidates: Dict[Key, Cell]) -> Dict[Key, Cell]:
        unresolved = {}
        for key, cell in candidates.items():
            if key in self.cells or self._is_live_near(key):
                self._merge(key, cell)
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

    def partial_rows(self, cells: Dict[Key, Cell]) -> Iterator[dict]:
        """Map-phase output rows for `cells` (sets travel as multivalue fields)."""
        for (src, port, bucket), cell in sorted(cells.items()):
            yield {
                PARTIAL_MARKER: "1", "_time": bucket, "src": src, "src_port": port,
                "packets": cell.packets, "bytes": cell.bytes, "flows": cell.flows,
                "evidence": cell.evidence, "dests": sorted(cell.dests),
                "servers": sorted(cell.servers), "mapped": sorted(cell.mapped),
                "records": "", "skipped": "",
            }

    def counts_row(self) -> dict:
        """The map phase's record counts, so that the search head can report skipped records."""
        row = dict.fromkeys(PARTIAL_FIELDS, "")
        row.update({PARTIAL_MARKER: "1", "records": self.records,
                    "skipped": ["%s=%d" % item for item in sorted(self.skipped.items())]})
        return row

    def add_partial_rows(self, header: Sequence[str], rows: Iterable[List[str]]) -> None:
        """Merge map-phase output rows (reduce phase). Candidates not yet resolvable are spooled."""
        at = {name: header.index(name) for name in PARTIAL_FIELDS if name in header}
        missing = [name for name in PARTIAL_FIELDS if name not in at]
        if missing:
            raise ValueError("partial results lack fields: %s" % ", ".join(missing))
        for row in rows:
            if not row[at["src"]]:
                self._add_counts(row[at["records"]], row[at["skipped"]])
                continue
            cell = Cell()
            cell.packets = int(row[at["packets"]])
            cell.bytes = int(row[at["bytes"]])
            cell.flows = int(row[at["flows"]])
            cell.evidence = int(row[at["evidence"]])
            cell.dests = _values(row[at["dests"]])
            cell.servers = _values(row[at["servers"]])
            cell.mapped = _values(row[at["mapped"]])
            key = (row[at["src"]], row[at["src_port"]], int(row[at["_time"]]))
            if cell.is_live or key in self.cells or self._is_live_near(key):
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
                                     "\n".join(cell.dests)))

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
                cell.dests = set(dests.split("\n")) if dests else set()
                self._merge(key, cell)
        self._spool.close()
        self._spool = None

def _values(cell: str) -> set:
    return set(cell.split("\n")) if cell else set()


def is_partial(header: Sequence[str]) -> bool:
    """True for the map phase's output, False for flow records."""
    return PARTIAL_MARKER in header
