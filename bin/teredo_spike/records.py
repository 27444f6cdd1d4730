"""The exact per-record reader: which flow records count, and how each field is read.

Each kind of value is judged in one function here, and every reader (this exact one, the fast
path's line-level shortcuts, the candidate-entry decoder) goes through it or through a memo table
it fills: numbers `read_count`, times `read_bucket`, durations `read_duration` (and `spread`, which
lays a record over the buckets it lasts), ports `read_port`, addresses
`addresses.Networks.contains` (via `Inside`), transports `can_be_udp`, direction `direction`,
evidence `evidence.names_teredo` (with the server port) / `record_evidence`. Tightening one of
them (which values are unusable) is a change to that one function; a record it refuses is counted
in `skipped`. The fast path tests many records at once with the chunk-level forms beside them
(`entries_readable`, `plain_ports`): they accept only what the per-record functions accept.

No record content may fail the search: anyone who can put one event into an index must not be able
to switch the detection off (tests/test_hostile_records.py).
"""

import math
import re
from collections import Counter
from operator import itemgetter
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Set, Tuple

from . import evidence as ev
from .addresses import Networks, TeredoAddress
from .cells import OWN_EVIDENCE, Cell, Key
from .fields import UDP_VALUES, Columns, first_value

# Skip reasons, as the user reads them in the search's warning.
SKIP_NO_TIME = "no or unreadable _time"
SKIP_MILLISECONDS = ("_time in milliseconds (make it seconds before teredospike, "
                     "e.g. | eval _time=_time/1000)")
SKIP_IMPLAUSIBLE_TIME = "_time not in the years 2000-2099"
SKIP_NO_SOURCE = "no source address"
SKIP_NOT_IP = "source or destination is not an IP address"
SKIP_BAD_NUMBER = "count, bytes or packets not a whole number from 0 to 2^53"
SKIP_BAD_PORT = "src_port or dest_port not a number from 0 to 65535"
SKIP_NO_NETWORK_FIELDS = "no network fields (src_ip or src, dest_ip or dest)"
SKIP_BAD_HOST = "src_host not a host name (letters, digits and . _ : - only, up to 255)"

# Notes: records counted with something the search says about them (beside the skips).
NOTE_UNREAD_DURATION = "duration not a number of seconds"  # counted at their _time
NOTE_LONG_TEREDO = "Teredo records longer than a bucket"    # the summary stage misses part of them

# Times: Teredo dates from 2006 and Splunk indexes nothing far in the future; a value outside these
# years is a unit mistake (milliseconds, microseconds) or garbage, and would put a host's traffic
# into a bucket thousands of years away.
MIN_TIME = 946684800.0    # 2000-01-01 00:00 UTC
MAX_TIME = 4102444800.0   # 2100-01-01 00:00 UTC

# Counts (flows, packets, bytes) of one record: whole numbers up to 2^53 (exact as a double). Sums
# of such values over any number of records stay far from a double's overflow, so the scoring's
# logarithms never see a value they cannot take.
MAX_COUNT = 2 ** 53
MAX_COUNT_DIGITS = len(str(MAX_COUNT)) - 1  # this many digits are always below MAX_COUNT
MAX_COUNT_TEXT = 30  # no usable count is longer; int() of 4,300+ digits raises anyway

MAX_PORT_TEXT = "65535"

# A record that lasts longer than this many buckets is laid over this many (all its traffic still
# counted): 31 days of 10-minute buckets, the longest search README advises (a baseline of 14-30
# days). Zeek reports a flow once, when it ends, and a Teredo client that refreshes its server every
# 30 s is one flow for as long as it runs (days, on an always-on host): a bound shorter than the
# search cuts its flow to the server short, and relay traffic after the cut is tied to no client
# (a week cut off 4 of 182 tunnels in a 14-day search: docs/detection-quality.md, eighth session).
# The bound keeps one record of a garbage duration from making a cell per bucket of it.
MAX_SPREAD_BUCKETS = 31 * 144

# The `record_time` option: what a record's _time marks (spread).
RECORD_START = "start"  # the flow's first packet: Zeek conn.log `ts`, NetFlow first-switched
RECORD_END = "end"      # its last: firewall session logs, written when the session closes

# Entries of the per-process memo tables before they are cleared: hosts and servers repeat across
# millions of records, but memory must not grow with the records.
MAX_MEMO = 100_000

# direction(): what an (internal?, internal?) pair of addresses makes of a record.
OUTBOUND = "outbound"        # internal source, external destination: the command counts it
NOT_OUTBOUND = "other"       # internal or inbound traffic: dropped, not a skip
NOT_IP = "not an IP address"  # a source or destination that is no address: a skip


class UnusableTime(ValueError):
    """A `_time` that reads as a number but cannot be a flow's time; `reason` is its skip reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_count(cell: str, default: int) -> int:
    """A count field: empty means absent; a float text ("12.0", as tstats sums print) is accepted.
    ValueError when unusable: negative, not finite, above MAX_COUNT, or not a number."""
    if not cell:
        return default
    if len(cell) > MAX_COUNT_TEXT:
        raise ValueError(cell[:MAX_COUNT_TEXT])
    try:
        value = int(cell)
    except ValueError:
        value = float(cell)  # ValueError propagates: the record is unreadable
        if not 0 <= value <= MAX_COUNT:  # also NaN and the infinities
            raise ValueError(cell)
        return int(value)
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(cell)
    return value


def read_bucket(cell: str, span: int) -> int:
    """The start of the bucket of a `_time` cell (epoch seconds). UnusableTime (a ValueError with
    its skip reason) when it is not a number, or not a time from MIN_TIME to MAX_TIME."""
    return bucket_of(read_time(cell), span)


def read_time(cell: str) -> float:
    """A `_time` cell in epoch seconds; UnusableTime as read_bucket."""
    try:
        seconds = float(cell)
    except ValueError:
        raise UnusableTime(SKIP_NO_TIME) from None
    if not MIN_TIME <= seconds < MAX_TIME:  # also NaN and the infinities
        raise UnusableTime(time_skip_reason(seconds))
    return seconds


def read_duration(cell: str) -> float:
    """A `duration` cell in seconds: empty means none (0.0). ValueError unless it is a finite
    number from 0 up."""
    if not cell:
        return 0.0
    if len(cell) > MAX_COUNT_TEXT:
        raise ValueError(cell[:MAX_COUNT_TEXT])
    seconds = float(cell)  # ValueError propagates: the record is unreadable
    if not 0.0 <= seconds < math.inf:  # also NaN
        raise ValueError(cell)
    return seconds


def spread(seconds: float, duration: float, span: int, record_time: str = RECORD_START
           ) -> List[Tuple[int, float]]:
    """The buckets a record lasts over, in time order, each with the share of its traffic sent up
    to the bucket's end (the last share is 1.0). `seconds` is its _time, which marks the flow's
    start (`RECORD_START`: the record lasts over [seconds, seconds + duration)) or its end
    (`RECORD_END`: (seconds - duration, seconds]); the bucket of `seconds` is always one of them.
    Traffic is taken to be even over the record's time: a flow record says how much, not when. At
    most MAX_SPREAD_BUCKETS buckets, from the marked end.

    A record that lasted a bucket or less is its _time's bucket alone, as a record without a
    duration is: exporters cut flows at a minute or a few (NetFlow's active timeout, a firewall's
    interim logs), and such a record is counted where its _time puts it, as before durations were
    read; the summary stage then sees all of it (summary.py)."""
    mark = bucket_of(seconds, span)
    if duration <= span:
        return [(mark, 1.0)]
    if record_time == RECORD_END:
        start, end = max(seconds - duration, mark - (MAX_SPREAD_BUCKETS - 1) * span), seconds
        first, last = bucket_of(start, span), mark
    else:
        start, end = seconds, min(seconds + duration, mark + MAX_SPREAD_BUCKETS * span)
        first, last = mark, bucket_of(end, span)
        if last > first and end == last:  # the record ends as that bucket begins
            last -= span
    if first == last:
        return [(mark, 1.0)]
    lasted = end - start  # after the bound
    shares = [(bucket, (bucket + span - start) / lasted) for bucket in range(first, last, span)]
    shares.append((last, 1.0))
    return shares


def split(total: int, shares: Sequence[Tuple[int, float]]) -> List[int]:
    """`total` split over spread()'s buckets by their shares: whole numbers that add up to it."""
    parts = []
    sent = 0
    for _, share in shares:
        upto = total if share >= 1.0 else min(total, max(sent, int(total * share)))
        parts.append(upto - sent)
        sent = upto
    return parts


def time_skip_reason(seconds: float) -> str:
    """Why a number outside MIN_TIME..MAX_TIME is no `_time`: milliseconds, or not at all."""
    if math.isfinite(seconds) and MIN_TIME <= seconds / 1000.0 < MAX_TIME:
        return SKIP_MILLISECONDS
    return SKIP_IMPLAUSIBLE_TIME


def bucket_of(seconds: float, span: int) -> int:
    return int(seconds) // span * span


def read_port(cell: str) -> str:
    """A port field as the cells keep it: a multivalue cell's first value, empty when absent.
    ValueError unless it is plain ASCII digits from 0 to 65535 (`<b>x</b>`, `=HYPERLINK(1)` or
    70000 must never reach a result's client_ports). The fast path passes single-value port cells
    on as they are after the same test (plain_ports)."""
    port = first_value(cell)
    if port and not plain_ports([port]):
        raise ValueError(port[:10])
    return port


def plain_ports(cells: Sequence[str]) -> bool:
    """True when every cell is empty or a port as read_port accepts it, tested a chunk at a time
    (two string scans and a look at the five-digit cells)."""
    joined = "".join(cells)
    if joined and not (joined.isdigit() and joined.isascii()):
        return False
    width = len(MAX_PORT_TEXT)
    longest = max(map(len, cells), default=0)
    if longest != width:
        return longest < width
    return max([cell for cell in cells if len(cell) == width]) <= MAX_PORT_TEXT


# A src_host value (fields.HOST_FIELD) the results can carry as the host: a name, an FQDN, an
# address or a MAC. It goes into space-separated wire rows and CSV cells, so no space, comma or
# quote, and it starts with a letter or digit (never =, +, - or @: a spreadsheet formula).
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,254}\Z")


def is_host_name(value: str) -> bool:
    """Whether a src_host value can name a host (see _HOST_NAME)."""
    return _HOST_NAME.match(value) is not None


def can_be_udp(transport: str) -> bool:
    """Can a record with this transport value be UDP? Empty means absent: it can."""
    return not transport or transport in UDP_VALUES or transport.lower() in UDP_VALUES


def direction(src_internal: Optional[bool], dest_internal: Optional[bool]) -> str:
    """OUTBOUND, NOT_OUTBOUND or NOT_IP for a record whose addresses are internal (True),
    external (False) or not IP addresses (None)."""
    if src_internal is None or dest_internal is None:
        return NOT_IP
    return OUTBOUND if src_internal and not dest_internal else NOT_OUTBOUND


# direction() for every pair of verdicts: the readers look it up rather than call it per record.
DIRECTIONS: Dict[Tuple[Optional[bool], Optional[bool]], str] = {
    (s, d): direction(s, d) for s in (True, False, None) for d in (True, False, None)}


def entries_readable(counts: Sequence[str], times: Sequence[str], ports: Sequence[str],
                     durations: Sequence[str] = ()) -> bool:
    """A cheap test over many records at once, for the fast path: True only when read_count
    accepts every count (plain digits, fewer than MAX_COUNT_DIGITS + 1, or empty: the default),
    read_bucket every time (finite numbers; the earliest and the latest in MIN_TIME..MAX_TIME),
    read_port every port and read_duration every duration (empty, or finite from 0 up)."""
    text = "".join(counts)
    if text and not (text.isdigit() and text.isascii()
                     and max(map(len, counts)) <= MAX_COUNT_DIGITS):
        return False
    try:
        seconds = list(map(float, times))
    except ValueError:
        return False
    if seconds and not (math.isfinite(sum(seconds))
                        and MIN_TIME <= min(seconds) and max(seconds) < MAX_TIME):
        return False
    if not durations_readable(durations):
        return False
    return plain_ports(ports)


def durations_readable(durations: Sequence[str]) -> bool:
    """True when read_duration accepts every cell (tested many at once)."""
    present = [cell for cell in durations if cell]
    if not present:
        return True
    if max(map(len, present)) > MAX_COUNT_TEXT:
        return False
    try:
        seconds = list(map(float, present))
    except ValueError:
        return False
    return math.isfinite(sum(seconds)) and min(seconds) >= 0.0


class Memo(dict):
    """value -> function(value), computed once per distinct value."""

    def __init__(self, function: Callable[[Hashable], object]) -> None:
        super().__init__()
        self.function = function

    def __missing__(self, value: Hashable) -> object:
        verdict = self[value] = self.function(value)
        return verdict

    def bound(self) -> None:
        """Clear the table once it has grown past MAX_MEMO (hostile input: many distinct cells)."""
        if len(self) > MAX_MEMO:
            self.clear()


class TeredoHints(dict):
    """A record's label and inner-address cells (`cells(row)`; None when the chunk has no such
    field) -> evidence.names_teredo of them."""

    def __init__(self, c: Columns) -> None:
        super().__init__()
        at = list(c.labels) + [i for i in (c.inner_src, c.inner_dest) if i is not None]
        self.cells = itemgetter(*at) if at else None
        self.single = len(at) == 1  # itemgetter of one position returns the cell, not a tuple
        self.labels = len(c.labels)

    def __missing__(self, key) -> bool:
        values = (key,) if self.single else key
        verdict = self[key] = ev.names_teredo(values[:self.labels], values[self.labels:])
        return verdict


class RecordReader:
    """Flow records -> Cells, with the counts of records skipped. The cells with evidence of their
    own (and candidates next to them) go into `cells`; the others into the caller's `candidates`.
    The memo tables and the live ports are shared with the fast path (fastpath.read_chunk)."""

    def __init__(self, span: int, internal: Networks, record_time: str = RECORD_START) -> None:
        self.span = span
        self.record_time = record_time  # what _time marks, for records with a duration (spread)
        self.cells: Dict[Key, Cell] = {}
        self.records = 0
        self.skipped: Counter = Counter()
        # Records counted with a note (NOTE_*): a duration not read, a Teredo record that lasted
        # longer than a bucket (the summary stage misses part of it: summary.long_records_message).
        self.notes: Counter = Counter()
        self.inside = Memo(internal.contains)  # address -> internal (True), external, not IP (None)
        self.udp = Memo(can_be_udp)             # transport value -> can_be_udp
        self.ports = Memo(read_port)            # port cell -> read_port
        self.host_names = Memo(is_host_name)    # src_host value -> is_host_name
        # (src, src_port) with evidence of its own here, in any bucket: its other records are
        # read into Cells (and attributed here if they can be), not passed on as entries.
        self.live_ports: Set[Tuple[str, str]] = set()

    def bound_memos(self) -> None:
        """Clear the memo tables when they have grown large (once per chunk)."""
        for memo in (self.inside, self.udp, self.ports, self.host_names):
            memo.bound()

    def read_rows(self, c: Columns, rows: Iterable[List[str]], candidates: Dict[Key, Cell]) -> int:
        """Read every row (its cells as csv.reader gives them); return how many were read.
        The per-record hot path: plain locals, memo tables, no call per record except where a
        record may be Teredo, or has a number or time to read."""
        span = self.span
        cells = self.cells
        skipped = self.skipped
        inside, udp, ports = self.inside, self.udp, self.ports
        directions = DIRECTIONS
        live_ports = self.live_ports
        hints = TeredoHints(c)
        hint_cells = hints.cells
        transport_at, src_at, dest_at, time_at = c.transport, c.src, c.dest, c.time
        count_at, packets_at, bytes_at = c.count, c.packets, c.bytes
        src_port_at, dest_port_at, labels = c.src_port, c.dest_port, c.labels
        host_at, host_names = c.host, self.host_names
        duration_at, record_time, notes = c.duration, self.record_time, self.notes
        records = 0
        for row in rows:
            records += 1
            if transport_at is not None and not udp[row[transport_at]]:
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
            way = directions[inside[src], inside[dest] if dest else None]
            if way is not OUTBOUND:
                if way is NOT_IP:
                    skipped[SKIP_NOT_IP] += 1
                continue
            if host_at is not None and row[host_at]:
                # The machine, where the site knows it: the host's name from here on (the address
                # decided the direction above); an empty cell leaves the address.
                machine = first_value(row[host_at])
                if not host_names[machine]:
                    skipped[SKIP_BAD_HOST] += 1
                    continue
                src = machine
            try:
                seconds = read_time(row[time_at])
            except UnusableTime as unusable:
                skipped[unusable.reason] += 1
                continue
            try:
                flows = read_count(row[count_at], 1) if count_at is not None else 1
                packets = read_count(row[packets_at], flows) if packets_at is not None else flows
                octets = read_count(row[bytes_at], 0) if bytes_at is not None else 0
            except (ValueError, OverflowError):
                skipped[SKIP_BAD_NUMBER] += 1
                continue
            try:
                src_port = ports[row[src_port_at]] if src_port_at is not None else ""
                dest_port = ports[row[dest_port_at]] if dest_port_at is not None else ""
            except ValueError:
                skipped[SKIP_BAD_PORT] += 1
                continue
            try:
                duration = read_duration(row[duration_at]) if duration_at is not None else 0.0
            except ValueError:
                # Counted as a record without a duration, and said: a source that writes
                # durations as "0:01:23" or in milliseconds must not lose its flows.
                notes[NOTE_UNREAD_DURATION] += 1
                duration = 0.0
            # May be Teredo (evidence.names_teredo): most outbound UDP has no evidence and
            # becomes a candidate cell.
            if (dest_port == ev.SERVER_PORT_TEXT
                    or (hint_cells is not None and hints[hint_cells(row)])):
                teredo: List[TeredoAddress] = []
                own = _split_cell(row, c.inner_src)
                peers = _split_cell(row, c.inner_dest)
                mask = ev.record_evidence([row[i] for i in labels], dest_port, own, peers, teredo)
            else:
                mask = 0
            if mask:
                live_ports.add((src, src_port))
            else:
                mask = ev.CLIENT_PORT
            if duration <= span:  # spread() would give the bucket of _time alone
                pieces: Iterable[Tuple[int, int, int]] = (
                    (bucket_of(seconds, span), packets, octets),)
            else:
                shares = spread(seconds, duration, span, record_time)
                if mask & OWN_EVIDENCE:
                    notes[NOTE_LONG_TEREDO] += 1
                pieces = zip([bucket for bucket, _ in shares], split(packets, shares),
                             split(octets, shares))
            for bucket, packets, octets in pieces:
                key = (src, src_port, bucket)
                cell = cells.get(key)
                if cell is None:
                    if mask & OWN_EVIDENCE:
                        cell = cells[key] = candidates.pop(key, None) or Cell()
                    else:
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
        return records


def _split_cell(row: List[str], at: Optional[int]) -> Sequence[str]:
    """The values of a (multivalue) cell; none when the chunk lacks the field."""
    if at is None or not row[at]:
        return ()
    return row[at].split("\n")
