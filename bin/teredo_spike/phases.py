"""The two phases of `| teredospike`, as the command, tools/verdicts.py and bench/ drive them.

    map (indexers):      chunk -> fastpath.read_chunk -> cells, candidates -> partials tables
    reduce (search head): partial rows (or raw chunks) -> cells + spool -> attribution at the end
                          -> hostbuckets -> scoring (then output.result_rows)
"""

from collections import Counter
from typing import Dict, List, Optional

from .addresses import Networks
from .attribution import Spool
from .cells import Cell, Key, attribute, merge_into
from .fastpath import read_chunk
from .fields import Chunk
from .hostbuckets import HostBucket, host_buckets
from .partials import (CELL_ROW, COUNTS_ROW, ENTRIES_ROW, SKIP_FOREIGN_PARTIAL, Candidates,
                       PartialTable, counts_table, is_partial, partial_table, read_rows)
from .records import RecordReader
from .scoring import Settings, score_all


class TooManyHostBuckets(Exception):
    """More (host, client port, bucket) cells than the search may hold (option max_host_buckets)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            "teredospike: more than {:,} host-buckets (host, client port, bucket) with Teredo "
            "traffic, about 1 KB each in memory. Narrow the search (fewer hosts or days, a larger "
            "span, or the summary stage: see the README, Tune) or raise max_host_buckets."
            .format(limit))


def _check_size(cells: Dict[Key, Cell], limit: Optional[int]) -> None:
    """Once a chunk: stop before memory grows past what a search head or indexer should give."""
    if limit is not None and len(cells) > limit:
        raise TooManyHostBuckets(limit)


class MapPhase:
    """Flow records -> partial rows. Candidates that cannot be tied to a live client port here are
    passed on with their chunk; the cells when the input is finished."""

    def __init__(self, span: int, internal: Networks, max_cells: Optional[int] = None) -> None:
        self.reader = RecordReader(span, internal)
        self.max_cells = max_cells

    @property
    def cells(self) -> Dict[Key, Cell]:
        return self.reader.cells

    def read(self, chunk: Chunk) -> Candidates:
        return read_chunk(self.reader, chunk)

    def tables(self, chunk: Chunk, finished: bool) -> List[PartialTable]:
        """The partial rows to write in reply to this chunk."""
        candidates = self.read(chunk)
        _check_size(self.reader.cells, self.max_cells)
        tables = [partial_table(candidates.cells, candidates.entries)]
        if finished:
            reader = self.reader
            tables += [partial_table(reader.cells), counts_table(reader.records, reader.skipped)]
        return tables


class ReducePhase:
    """Partial rows (or raw flow records, when no map phase ran) -> attributed cells -> results."""

    def __init__(self, span: int, internal: Networks, max_cells: Optional[int] = None) -> None:
        # Reads raw records (when no map phase ran); holds the phase's cells and record counts.
        self.reader = RecordReader(span, internal)
        self.spool = Spool(self.reader.cells, span)
        self.max_cells = max_cells

    @property
    def cells(self) -> Dict[Key, Cell]:
        return self.reader.cells

    @property
    def records(self) -> int:
        """Records read, here and by the map phases."""
        return self.reader.records

    @property
    def skipped(self) -> Counter:
        return self.reader.skipped

    def read(self, chunk: Chunk) -> None:
        if is_partial(chunk.header):
            self.read_partials(chunk)
        else:
            self.spool.add_candidates(read_chunk(self.reader, chunk))
        _check_size(self.cells, self.max_cells)

    def read_partials(self, chunk: Chunk) -> None:
        reader, spool = self.reader, self.spool
        cells, span = reader.cells, reader.span
        for row in read_rows(chunk.header, chunk.rows()):
            kind = row[0]
            if kind is CELL_ROW:
                _, key, cell = row
                if cell.is_live:
                    merge_into(cells, key, cell)
                elif not attribute(cells, key, cell, span):
                    spool.add_cell(key, cell)
            elif kind is COUNTS_ROW:
                reader.records += row[1]
                reader.skipped.update(row[2])
            elif kind is ENTRIES_ROW:
                spool.add_entries(row[1])
            else:
                reader.records += 1
                reader.skipped[SKIP_FOREIGN_PARTIAL] += 1

    def scored(self, settings: Settings) -> Dict[str, List[HostBucket]]:
        """At end of input: attribute the spool; each host's buckets, scored (empties `cells`)."""
        self.spool.resolve()
        _check_size(self.cells, self.max_cells)
        if self.spool.foreign:
            self.reader.skipped[SKIP_FOREIGN_PARTIAL] += self.spool.foreign
        hosts = host_buckets(self.cells)
        score_all(hosts, settings)
        return hosts

