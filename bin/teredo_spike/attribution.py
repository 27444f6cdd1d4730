"""Candidates the reduce phase cannot attribute yet: kept on disk until the input is finished.

Whether a candidate's client port is live may only be known after every indexer has reported.
Nearly every outbound UDP record is a candidate, so they wait in a spool file rather than memory
(the reduce phase's memory stays bounded by the Teredo clients, not by the ordinary UDP), and are
attributed once every live port is known (cells.attribute).

The spool's own format (one csv row each): a candidate Cell as (src, src_port, bucket, packets,
bytes, flows, dests), or a row of candidate entries as its one `candidates` cell.
"""

import csv
import tempfile
from typing import AbstractSet, Dict, List, Tuple

from . import evidence as ev
from .cells import Cell, Key, attribute
from .partials import (Candidates, dest_packets, dest_values, entries_of, entry_cells, entry_ports,
                       packed)
from .records import RECORD_START


class Spool:
    """The reduce phase's waiting candidates, attributed into `cells` by `resolve`."""

    def __init__(self, cells: Dict[Key, Cell], span: int, record_time: str = RECORD_START) -> None:
        self.cells = cells
        self.span = span
        self.record_time = record_time  # how an entry with a duration is spread (records.spread)
        self._file = None
        self._csv = None
        self.foreign = 0  # entries that no map phase wrote, skipped (partials.SKIP_FOREIGN_PARTIAL)

    def add_cell(self, key: Key, cell: Cell) -> None:
        src, port, bucket = key
        self._writer().writerow((src, port, bucket, cell.packets, cell.bytes, cell.flows,
                                 "\n".join(dest_values(cell.dests.items()))))

    def add_entries(self, text: str) -> None:
        """Keep a `candidates` cell (entries joined by partials.ENTRY_SEPARATOR) as it came."""
        self._writer().writerow((text,))

    def add_candidates(self, candidates: Candidates) -> None:
        for key, cell in candidates.cells.items():
            self.add_cell(key, cell)
        for text in packed(candidates.entries):
            self.add_entries(text)

    def _writer(self):
        """The spool file's csv writer; the file is made on first use."""
        if self._file is None:
            # splunklib points tempfile at the search's dispatch directory.
            self._file = tempfile.TemporaryFile("w+", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
        return self._csv

    def resolve(self) -> None:
        """At end of input: attribute spooled candidates whose port was live nearby; drop the rest."""
        if self._file is None:
            return
        self._file.seek(0)
        cells, span = self.cells, self.span
        # A candidate can only be attributed to a (src, src_port) that has cells by now.
        ports = {(src, port) for src, port, _ in cells}
        for row in csv.reader(self._file):
            if len(row) == 1:
                self._attribute_entries(row[0], ports)
            elif (row[0], row[1]) in ports:
                attribute(cells, *_spooled_cell(row), span)
        self._file.close()
        self._file = None

    def _attribute_entries(self, text: str, ports: AbstractSet[Tuple[str, str]]) -> None:
        cells, span, record_time = self.cells, self.span, self.record_time
        for entry in entries_of(text):
            try:
                if entry_ports(entry) in ports:
                    for key, cell in entry_cells(entry, span, record_time):
                        attribute(cells, key, cell, span)
            except ValueError:  # not written by a map phase (read_rows let a foreign row in)
                self.foreign += 1


def _spooled_cell(row: List[str]) -> Tuple[Key, Cell]:
    """The key and candidate Cell of a spool row written by Spool.add_cell."""
    src, port, bucket, packets, octets, flows, dests = row
    cell = Cell()
    cell.packets, cell.bytes, cell.flows = int(packets), int(octets), int(flows)
    cell.evidence = ev.CLIENT_PORT
    cell.dests = dest_packets(dests)
    return (src, port, int(bucket)), cell
