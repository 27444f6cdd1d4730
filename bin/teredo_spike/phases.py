"""The two phases of `| teredospike`, as the command, tools/verdicts.py and bench/ drive them.

    map (indexers):      chunk -> fastpath.read_chunk -> cells, candidates -> partials tables
    reduce (search head): partial rows (or raw chunks) -> cells + spool -> attribution at the end
                          -> hostbuckets -> scoring (then output.result_rows)
                          or, for output=buckets, the owned cells (summary.bucket_rows)

Summary rows (summary.py) take a shorter way: the map phase passes their chunks on as they came,
and the reduce phase reads them straight into attributed cells (the newest stamp per key).
"""

from collections import Counter
from typing import Dict, Iterable, List, Optional

from .addresses import Networks
from .attribution import Spool
from .cells import Cell, Key, attribute, merge_into
from .fastpath import read_chunk
from .fields import Chunk
from .hostbuckets import HostSeries, host_buckets
from .partials import (CELL_ROW, COUNTS_ROW, ENTRIES_ROW, SKIP_FOREIGN_PARTIAL, Candidates,
                       PartialTable, counts_table, is_partial, partial_table, read_rows)
from .records import RECORD_START, RecordReader
from .scoring import Settings, score_all
from .summary import MixedInput, SummaryReader, holds_summary_rows, is_summary

# What a phase has been given so far (flow records and summary rows are never mixed).
FLOWS = "flows"
SUMMARY = "summary"


class TooManyHostBuckets(Exception):
    """More (host, client port, bucket) cells than the search may hold (option max_host_buckets)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            "teredospike: more than {:,} host-buckets (host, client port, bucket) with Teredo "
            "traffic, about 1 KB each in memory. Narrow the search (fewer hosts or days, a larger "
            "span, or the summary stage: see the README, Tune) or raise max_host_buckets."
            .format(limit))


def _check_size(cells: Dict[Key, Cell], limit: Optional[int], summarised: int = 0) -> None:
    """Once a chunk: stop before memory grows past what a search head or indexer should give
    (`summarised`: the (host, client port, bucket)s read from summary rows, held apart)."""
    if limit is not None and len(cells) + summarised > limit:
        raise TooManyHostBuckets(limit)


class MapPhase:
    """Flow records -> partial rows. Candidates that cannot be tied to a live client port here are
    passed on with their chunk; the cells when the input is finished."""

    def __init__(self, span: int, internal: Networks, max_cells: Optional[int] = None,
                 record_time: str = RECORD_START) -> None:
        self.reader = RecordReader(span, internal, record_time)
        self.max_cells = max_cells
        self.kind: Optional[str] = None  # FLOWS or SUMMARY, from the first chunk with records

    @property
    def cells(self) -> Dict[Key, Cell]:
        return self.reader.cells

    def passes_on(self, chunk: Chunk) -> bool:
        """True for a chunk of summary rows: the caller writes it on as it came (the reduce phase
        reads summary rows; nothing here would make them smaller). MixedInput when this phase
        has had flow records and summary rows."""
        if not chunk.has_rows():
            return self.kind is SUMMARY
        kind = SUMMARY if holds_summary_rows(chunk.header, chunk.rows()) else FLOWS
        if self.kind is None:
            self.kind = kind
        elif self.kind is not kind:
            raise MixedInput()
        return kind is SUMMARY

    def read(self, chunk: Chunk) -> Candidates:
        return read_chunk(self.reader, chunk)

    def tables(self, chunk: Chunk, finished: bool) -> List[PartialTable]:
        """The partial rows to write in reply to this chunk."""
        candidates = self.read(chunk)
        _check_size(self.reader.cells, self.max_cells)
        tables = [partial_table(candidates.cells, candidates.entries)]
        if finished:
            reader = self.reader
            tables += [partial_table(reader.cells),
                       counts_table(reader.records, reader.skipped, reader.notes)]
        return tables


class ReducePhase:
    """Partial rows (or raw flow records, when no map phase ran) -> attributed cells -> results."""

    def __init__(self, span: int, internal: Networks, max_cells: Optional[int] = None,
                 record_time: str = RECORD_START) -> None:
        # Reads raw records (when no map phase ran); holds the phase's cells and record counts.
        self.reader = RecordReader(span, internal, record_time)
        self.spool = Spool(self.reader.cells, span, record_time)
        self.summary = SummaryReader(span, self.reader.skipped)
        self.max_cells = max_cells
        self.flows_seen = False  # flow records here or in a map phase (not only empty counts)

    @property
    def cells(self) -> Dict[Key, Cell]:
        return self.reader.cells

    @property
    def records(self) -> int:
        """Records read, here and by the map phases, and summary rows."""
        return self.reader.records + self.summary.rows

    @property
    def skipped(self) -> Counter:
        return self.reader.skipped

    @property
    def notes(self) -> Counter:
        """Records counted with a note (records.NOTE_*), here and by the map phases."""
        return self.reader.notes

    def read(self, chunk: Chunk) -> None:
        header = chunk.header
        if is_summary(header):
            # A map phase passes summary chunks on as they came: their rows can share a chunk
            # with partial rows (other indexers) or, in a mixed search, with flow records.
            summary_rows = self.summary.rows
            others = list(self.summary.read(header, chunk.rows()))
            if others and is_partial(header):
                self.read_partials(header, others)
            elif others and self.summary.rows == summary_rows:  # flows with an empty marker field
                records = self.reader.records
                self.spool.add_candidates(read_chunk(self.reader, chunk))
                self.flows_seen = self.flows_seen or self.reader.records > records
            elif others:
                self.flows_seen = True
        elif is_partial(header):
            self.read_partials(header, chunk.rows())
        else:
            records = self.reader.records
            self.spool.add_candidates(read_chunk(self.reader, chunk))
            self.flows_seen = self.flows_seen or self.reader.records > records
        if self.flows_seen and self.summary.rows:
            raise MixedInput()
        _check_size(self.cells, self.max_cells, self.summary.held)

    def read_partials(self, header: List[str], rows: Iterable[List[str]]) -> None:
        reader, spool = self.reader, self.spool
        cells, span = reader.cells, reader.span
        for row in read_rows(header, rows):
            kind = row[0]
            if kind is CELL_ROW:
                self.flows_seen = True
                _, key, cell = row
                if cell.is_live:
                    merge_into(cells, key, cell)
                elif not attribute(cells, key, cell, span):
                    spool.add_cell(key, cell)
            elif kind is COUNTS_ROW:
                reader.records += row[1]
                reader.skipped.update(row[2])
                reader.notes.update(row[3])
                self.flows_seen = self.flows_seen or row[1] > 0
            elif kind is ENTRIES_ROW:
                self.flows_seen = True
                spool.add_entries(row[1])
            else:
                reader.records += 1
                reader.skipped[SKIP_FOREIGN_PARTIAL] += 1

    def attributed(self) -> Dict[Key, Cell]:
        """At end of input: attribute the spool; every (host, client port, bucket) cell, those of
        summary rows too (output=buckets)."""
        self._resolve()
        self.summary.into_cells(self.cells)
        return self.cells

    def _resolve(self) -> None:
        self.spool.resolve()
        _check_size(self.cells, self.max_cells, self.summary.held)
        if self.spool.foreign:
            self.reader.skipped[SKIP_FOREIGN_PARTIAL] += self.spool.foreign

    def scored(self, settings: Settings) -> Dict[str, HostSeries]:
        """At end of input: the attributed cells and summary rows, each host's buckets, scored
        (empties `cells` and the summary reader)."""
        self._resolve()
        hosts = host_buckets(self.cells, self.summary.by_host())
        score_all(hosts, settings)
        return hosts

