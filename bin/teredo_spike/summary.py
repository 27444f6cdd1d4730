"""The summary stage's rows (`output=buckets`): their one layout, which buckets a run owns, and
how the detection stage reads them back.

Two-stage detection (README, Tune): a summary search every 10 minutes runs
`| teredospike output=buckets` over the newest window of flows and `collect`s one row per
(src, client port src_port, bucket) with the Teredo traffic already attributed (relay traffic
tied to live client ports, cells.NEIGHBOURS). The detection search reads those rows instead of
every UDP flow: `| teredospike` over them scores exactly what one pass over the flows scores.

Ownership (a bucket is never counted twice, whatever runs overlap or repeat):
    E = the search's earliest time snapped UP to a span boundary,
    L = the search's latest time snapped DOWN to a span boundary;
    a run owns bucket b (writes its rows) when  b - span >= E  and  b + 2*span <= L.
An earliest or latest time of 0 (or none) leaves that side unbounded. A run reads one bucket more
on each side of those it owns only to decide whether a client port is live (cells.NEIGHBOURS), so
the attribution of an owned bucket equals one pass over all the flows. The scheduled summary
search (earliest -40m@m, latest -10m@m, every 10 minutes) owns exactly one bucket a run.

A record that lasted longer than a bucket is spread over the buckets it lasted (records.spread)
and read only by the runs whose window holds its _time: its traffic in buckets that those runs do
not own is in no run's rows, nor is the relay traffic it makes a live client port for there. A run
that reads such a Teredo record says so (long_records_message); one pass over the flows counts it
whole. Records of a bucket or less are counted at their _time, and the equivalence holds.

Every row carries `summary_written`, the run's wall time in microseconds. The detection stage
keeps, per (src, src_port, bucket), only the rows of the newest stamp: a rerun of a window
replaces what an earlier run wrote, never adds to it. Late events (indexed after the run that
owns their bucket): rerun the windows whose read range holds their bucket, i.e. a backfill with
earliest = first late bucket - 2*span and latest = last late bucket + 3*span. A missed run leaves
its buckets' Teredo traffic out of the detection until the window is backfilled.

Flow records and summary rows in one search are refused (MixedInput, an ERROR that ends the
search) rather than one kind skipped: either kind alone is a complete input, so a mix means a
search that would count the summarised windows twice or drop half its data, and a warning in a
scheduled alert goes unread. The shipped searches cannot mix by event content: the one-pass base is
`tstats` over data-model fields, and the summary base reads only `teredospike_summary=1` rows of
the summary index, which only `collect` writes.

Values: `dests` as `address=packets`, `servers` and `mapped` as addresses, each list in one
space-separated cell (single values survive `collect` and the summary index's key=value
extraction); partials.dest_text / dest_packets own the `address=packets` cell.
"""

import math
import sys
import time
from array import array
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from typing import (AbstractSet, Callable, Counter, Dict, Hashable, Iterable, Iterator, List,
                    Sequence, Tuple)

from .cells import Cell, Key
from .hostbuckets import (Context, HostSeries, Traffic, context_of, relay_packets, series_of,
                          series_of_rows, traffic_of)
from .partials import VALUE_SEPARATOR, address_values, dest_packets, dest_text
from .records import (NOTE_LONG_TEREDO, SKIP_BAD_NUMBER, SKIP_BAD_PORT, Memo, UnusableTime,
                      read_bucket, read_count, read_port)

SUMMARY_MARKER = "teredospike_summary"
STAMP_FIELD = "summary_written"
SUMMARY_FIELDS = (SUMMARY_MARKER, "_time", "src", "src_port", "packets", "bytes", "flows",
                  "evidence", "dests", "servers", "mapped", STAMP_FIELD)

# Skip reasons of summary rows (the others are the flow records' own: records.SKIP_*).
SKIP_BAD_SUMMARY = "teredospike_summary rows with an unreadable src, evidence, dests or stamp"
SKIP_OTHER_SPAN = ("teredospike_summary rows whose _time is not on a bucket boundary of this "
                   "span (written with another span)")
SKIP_NO_STAMP = "teredospike_summary rows without summary_written"


class MixedInput(Exception):
    """Flow records and summary rows in one search: refused (README, Tune)."""

    def __init__(self) -> None:
        super().__init__(
            "teredospike: this search gives the command both flow records and summary rows "
            "(teredospike_summary=1, written by output=buckets). It reads one or the other: "
            "flows alone for one pass, or `teredo_spike_base_summary` alone for the detection "
            "stage; mixing them would count the summarised windows twice (README, Tune).")


def long_records_message(notes: Counter, span: int) -> str:
    """The warning of a summary run that read Teredo records lasting longer than a bucket
    (records.NOTE_LONG_TEREDO: records.spread spreads them); empty when there were none."""
    long_records = notes[NOTE_LONG_TEREDO]
    if not long_records:
        return ""
    return ("teredospike output=buckets: {:,} Teredo flow {} longer than the {:d}-minute "
            "span (by duration). A summary run reads the records near the buckets it writes, so "
            "its rows miss the traffic of a longer record beyond them, and the relay traffic such "
            "a record makes a live client port for. With such a source (Zeek's conn.log, "
            "firewall session logs, NetFlow cut at 30 minutes) run the detection in one pass over "
            "the flows, or export records cut at {:d} minutes or less (README, Tune).".format(
                long_records, "record lasted" if long_records == 1 else "records lasted",
                span // 60, span // 60))


def is_summary(header: Sequence[str]) -> bool:
    """May this chunk hold summary rows (it has their marker field)?"""
    return SUMMARY_MARKER in header


def holds_summary_rows(header: Sequence[str], rows: Iterable[List[str]]) -> bool:
    """Does a row of this chunk carry the marker? (A chunk of flow records may name the field
    and leave it empty.)"""
    if SUMMARY_MARKER not in header:
        return False
    at = header.index(SUMMARY_MARKER)
    return any(len(row) > at and row[at] == "1" for row in rows)


def stamp() -> int:
    """This run's summary_written: wall time in microseconds (newer runs write larger stamps)."""
    return int(time.time() * 1_000_000)


def owned_range(earliest: float, latest: float, span: int) -> Tuple[float, float]:
    """(first, last) bucket start a run over [earliest, latest) owns (module docstring); 0 or a
    value that is not a finite positive number leaves its side unbounded (-inf, +inf)."""
    first, last = -math.inf, math.inf
    if earliest and math.isfinite(earliest) and earliest > 0:
        first = -(-int(math.ceil(earliest)) // span) * span + span   # E + span
    if latest and math.isfinite(latest) and latest > 0:
        last = int(latest) // span * span - 2 * span                 # L - 2*span
    return first, last


def bucket_rows(cells: Dict[Key, Cell], span: int, earliest: float, latest: float,
                hosts: AbstractSet[str], written: int) -> List[Dict[str, object]]:
    """The rows of the buckets this run owns (of `hosts`, or every host when empty), in order of
    bucket, host and port: the output of `output=buckets`. Every list is sorted, so that a row
    does not depend on the order in which the records arrived (chunk boundaries, indexers)."""
    first, last = owned_range(earliest, latest, span)
    join = VALUE_SEPARATOR.join
    rows = []
    for key in sorted(cells, key=lambda k: (k[2], k[0], k[1])):
        src, port, bucket = key
        if not first <= bucket <= last or (hosts and src not in hosts):
            continue
        cell = cells[key]
        rows.append({SUMMARY_MARKER: 1, "_time": bucket, "src": src, "src_port": port,
                     "packets": cell.packets, "bytes": cell.bytes, "flows": cell.flows,
                     "evidence": cell.evidence, "dests": dest_text(cell.dests.items()),
                     "servers": join(sorted(cell.servers)), "mapped": join(sorted(cell.mapped)),
                     STAMP_FIELD: written})
    return rows


def _dest_counts(servers: Tuple[str, ...], cell: str) -> Tuple[str, int, int]:
    """A dests cell (of a row whose servers are `servers`) -> (the cell, its destinations, its
    relay packets); ValueError if it is unreadable. The addresses are read, not kept (not
    interned): a fleet whose heavy users reach new peers every session has about one new
    address a row."""
    dests = dest_packets(cell, None)
    return cell, len(dests), relay_packets(tuple(dests), tuple(dests.values()), servers)


def _count(cell: str) -> int:
    """A packets, bytes or flows cell: read_count's value (empty is 0)."""
    return read_count(cell, 0)


_TEXT, _DEST_COUNT, _RELAY = itemgetter(0), itemgetter(1), itemgetter(2)  # of _dest_counts


def _stamp(cell: str) -> int:
    """summary_written as an integer, -1 when it is not one."""
    try:
        return int(cell)
    except ValueError:
        return -1


def _evidence(cell: str) -> int:
    """An evidence cell as its bits (evidence.py: 16 of them), -1 when it is not that."""
    try:
        bits = int(cell)
    except ValueError:
        return -1
    return bits if 0 <= bits < 1 << 16 else -1


class _HostRows:
    """One host's summary rows as read, in two columns of a few entries a row (a row is ~80 bytes
    held, where a tuple per row in a dict keyed by (src, src_port, bucket) took ~400; two calls a
    row to add it, where a column per field took nine): the detection stage holds a week of them
    before it scores.
    - `numbers`: per row its bucket, stamp and evidence (NUMBERS);
    - `cells`: per row its dests (the reader's (text, destinations, relay packets) of the cell:
      the text is read again only where a bucket's destinations are needed,
      HostSeries.destinations), its Context (port, servers and mapped), its packets, bytes and
      flows (CELLS), each shared with the other rows that repeat it: the counts become the
      host's HostSeries.values as they are (a list of shared ints, not an array that makes an
      int of a value each time it is read)."""

    NUMBERS = 3
    CELLS = 5

    __slots__ = ("numbers", "cells")

    def __init__(self) -> None:
        self.numbers = array("q")
        self.cells: List[object] = []

    def newest(self) -> Tuple[List[int], bool]:
        """The rows kept, in order of bucket and port: per (src_port, bucket), the first of the
        newest stamp (a rerun replaces what an earlier run wrote; a duplicate event of the same
        run counts once); and whether they hold one row a bucket (one client port in each)."""
        buckets, stamps = self.numbers[0::self.NUMBERS], self.numbers[1::self.NUMBERS]
        count = len(buckets)
        # Most hosts: one row a bucket, read in time order (or the summary index's newest first).
        if all(map(int.__lt__, buckets, islice(buckets, 1, None))):
            return list(range(count)), True
        if all(map(int.__gt__, buckets, islice(buckets, 1, None))):
            return list(range(count - 1, -1, -1)), True
        ports = [context.client_ports for context in self.cells[1::self.CELLS]]
        order = sorted(range(count), key=lambda i: (buckets[i], ports[i], -stamps[i]))
        kept = []
        last = None
        for i in order:
            key = (buckets[i], ports[i])
            if key != last:
                kept.append(i)
                last = key
        return kept, len({buckets[i] for i in kept}) == len(kept)

    def traffic(self, index: int, share: Callable[[Hashable, Hashable], Hashable]) -> Traffic:
        """Row `index`'s traffic."""
        # (the row's destination count and relay packets are derived again from its dests)
        bucket, _, evidence = self.numbers[index * self.NUMBERS:(index + 1) * self.NUMBERS]
        (text, _, _), context, packets, bytes_, flows = self.cells[
            index * self.CELLS:(index + 1) * self.CELLS]
        dests = dest_packets(text)
        port = context.client_ports[0] if context.client_ports else ""
        return traffic_of(port, bucket, packets, bytes_, flows, evidence, tuple(dests),
                          tuple(dests.values()), context.servers, context.mapped, share)

    def series(self, src: str, share: Callable[[Hashable, Hashable], Hashable]) -> HostSeries:
        """The host's series from the rows kept (newest)."""
        kept, one_per_bucket = self.newest()
        if not one_per_bucket:
            # Several client ports in a bucket (rare): their traffic is merged (series_of).
            return series_of(src, [self.traffic(i, share) for i in kept])
        numbers, cells, n, c = self.numbers, self.cells, self.NUMBERS, self.CELLS
        buckets = numbers[0::n]
        dests = cells[0::c]
        return series_of_rows(src, kept, buckets, cells[2::c], cells[3::c], cells[4::c],
                              list(map(_DEST_COUNT, dests)), list(map(_RELAY, dests)),
                              list(map(_TEXT, dests)), cells[1::c], numbers[2::n])


class SummaryReader:
    """Summary rows -> each (src, src_port, bucket)'s traffic, keeping per key only the row of the
    newest stamp (_HostRows.newest). Unreadable rows are skipped and counted in `skipped`, as
    unreadable flow records are."""

    def __init__(self, span: int, skipped: Counter) -> None:
        self.span = span
        self.skipped = skipped
        self.hosts: Dict[str, _HostRows] = {}
        self.rows = 0   # summary rows read
        self.held = 0   # of them, held (read and usable)
        # servers or mapped cell -> its addresses: a fleet's rows repeat a few (its Teredo servers)
        self.addresses = Memo(lambda cell: tuple(address_values(cell)))
        # (port, servers, mapped) cells -> their Context (ValueError for a port read_port refuses):
        # a host's rows repeat a few
        self.contexts = Memo(self._context)
        self.times = Memo(self._bucket)  # _time cell -> its bucket (a week has ~1,000)
        # servers cell -> {dests cell -> (the cell, shared: an idle client's repeat; how many
        # destinations; relay packets)}: a fleet has a few servers cells; on the bench, 47,005
        # distinct dests cells in 180,789 rows
        self.dests = Memo(lambda servers: Memo(partial(_dest_counts, self.addresses[servers])))
        self.stamps = Memo(_stamp)         # summary_written cell -> the run's stamp
        # packets, bytes or flows cell -> read_count (ValueError if unusable): one int per
        # distinct text, shared by the rows (and the series) that repeat it
        self.counts = Memo(_count)
        self.evidence = Memo(_evidence)    # evidence cell -> its bits
        self.memos = (self.contexts, self.addresses, self.times, self.dests, self.stamps,
                      self.evidence, self.counts)
        # Equal tuples are kept once (traffic_of).
        self.share = {}.setdefault

    def read(self, header: Sequence[str], rows: Iterable[List[str]]) -> Iterator[List[str]]:
        """Read the rows that carry the marker; yield the others (flow records or partial rows
        that share the chunk) for the caller."""
        # A field the chunk lacks reads as an empty cell (one past the header's end).
        width = len(header)
        at = [header.index(name) if name in header else width for name in SUMMARY_FIELDS]
        (marker_at, time_at, src_at, port_at, packets_at, bytes_at, flows_at, evidence_at,
         dests_at, servers_at, mapped_at, stamp_at) = at
        width = max(at) + 1
        for memo in chain(self.memos, self.dests.values()):
            memo.bound()
        contexts, times, stamps, counts = self.contexts, self.times, self.stamps, self.counts
        dests_of, evidence_of = self.dests, self.evidence
        hosts, skipped = self.hosts, self.skipped
        intern = sys.intern
        read = held = 0  # added to self.rows and self.held at the end (an attribute a row costs)
        for row in rows:
            if len(row) < width:
                row = row + [""] * (width - len(row))
            if row[marker_at] != "1":
                yield row
                continue
            read += 1
            try:
                bucket = times[row[time_at]]
            except UnusableTime as unusable:
                skipped[unusable.reason] += 1
                continue
            written = stamps[row[stamp_at]]
            if written < 0:
                skipped[SKIP_NO_STAMP] += 1
                continue
            try:
                packets = counts[row[packets_at]]
                bytes_, flows = counts[row[bytes_at]], counts[row[flows_at]]
            except ValueError:
                skipped[SKIP_BAD_NUMBER] += 1
                continue
            servers = row[servers_at]
            try:
                context = contexts[row[port_at], servers, row[mapped_at]]
            except ValueError:
                skipped[SKIP_BAD_PORT] += 1
                continue
            evidence = evidence_of[row[evidence_at]]
            try:
                dests = dests_of[servers][row[dests_at]]
            except ValueError:
                evidence = -1
            src = row[src_at]
            host = hosts.get(src)
            if host is None and evidence >= 0 and src and " " not in src and "\n" not in src:
                host = hosts[intern(src)] = _HostRows()  # a new host: its src checked once
            if host is None or evidence < 0:
                skipped[SKIP_BAD_SUMMARY] += 1
                continue
            host.numbers.extend((bucket, written, evidence))
            host.cells.extend((dests, context, packets, bytes_, flows))
            held += 1
        self.rows += read
        self.held += held

    def _context(self, cells: Tuple[str, str, str]) -> Context:
        """A row's (port, servers, mapped) cells as their Context; ValueError for an unusable
        port."""
        port, servers, mapped = cells
        addresses = self.addresses
        return context_of(sys.intern(read_port(port)), addresses[servers], addresses[mapped])

    def _bucket(self, cell: str) -> int:
        """A summary row's _time as its bucket: UnusableTime unless it is a bucket start of this
        span (a row written with another span would be counted in the wrong bucket)."""
        bucket = read_bucket(cell, self.span)
        if float(cell) != bucket:
            raise UnusableTime(SKIP_OTHER_SPAN)
        return bucket

    def by_host(self) -> Iterator[Tuple[str, HostSeries]]:
        """At end of input: each host's series (for hostbuckets.host_buckets)."""
        for src, rows in self._emptied():
            yield src, rows.series(src, self.share)

    def into_cells(self, cells: Dict[Key, Cell]) -> None:
        """At end of input, for output=buckets: the kept rows as Cells."""
        for src, rows in self._emptied():
            for i in rows.newest()[0]:
                copied = rows.traffic(i, self.share)
                cell = Cell()
                cell.packets, cell.bytes, cell.flows = copied.packets, copied.bytes, copied.flows
                cell.evidence = copied.evidence
                cell.dests = dict(zip(copied.dests, copied.dest_packets))
                if copied.servers:
                    cell.servers = set(copied.servers)
                if copied.mapped:
                    cell.mapped = set(copied.mapped)
                port = copied.client_ports[0] if copied.client_ports else ""
                cells[(src, port, copied.bucket)] = cell

    def _emptied(self) -> Iterator[Tuple[str, _HostRows]]:
        """Each host's rows, emptying this reader host by host, so that its memory is reused for
        what is made of them."""
        for memo in self.memos:
            memo.clear()
        hosts = self.hosts
        while hosts:
            yield hosts.popitem()
        self.share = {}.setdefault
        self.held = 0
