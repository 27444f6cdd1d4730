"""Which column of a chunk holds which CIM Network_Traffic field.

Raw events carry `src_ip`, a `tstats ... by All_Traffic.src_ip` row carries `All_Traffic.src_ip`,
other sources carry `src`; the command accepts each, so one lookup per chunk header replaces a
per-record dictionary.
"""

import csv
from itertools import chain, repeat
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

DATAMODEL_PREFIX = "All_Traffic."

# Canonical field -> accepted names, most specific first ("bytes_out, else bytes"; README.md's
# input fields).
ALIASES: Dict[str, Sequence[str]] = {
    "time": ("_time",),
    "src": ("src_ip", "src"),
    "dest": ("dest_ip", "dest"),
    "src_port": ("src_port",),
    "dest_port": ("dest_port",),
    "transport": ("transport",),
    "bytes": ("bytes_out", "bytes"),
    "packets": ("packets_out", "packets"),
    "count": ("count",),
    # How long the flow lasted, in seconds (records.spread lays its traffic over those buckets).
    "duration": ("duration",),
}
LABEL_FIELDS = ("app", "service", "app_proto", "tunnel_type")
# Teredo addresses seen inside the flow: the host's own (inner source) and its peers' (inner dest).
INNER_SRC_FIELD = "inner_src_ip"
INNER_DEST_FIELD = "inner_dest_ip"
IPV6_FIELDS = (INNER_SRC_FIELD, INNER_DEST_FIELD)
# The machine a flow came from, where the site knows it (a DHCP or asset lookup after tstats): a
# host is then known by it rather than by its address, which changes with DHCP leases and VPN pools
# (docs/detection-quality.md, family address-churn). The address still decides what is outbound.
HOST_FIELD = "src_host"

# What the command asks splunkd to send (`required_fields`): every accepted name, both spellings.
REQUIRED_FIELDS: List[str] = sorted(
    {
        prefix + name
        for names in list(ALIASES.values()) + [LABEL_FIELDS, IPV6_FIELDS, (HOST_FIELD,)]
        for name in names
        for prefix in ("", DATAMODEL_PREFIX)
        if not (prefix and name == "_time") and not (prefix and name == "count")
    }
)

UDP_VALUES = frozenset(("udp", "17", "UDP", "Udp"))


class Columns(NamedTuple):
    """Column positions of one chunk; None where the chunk lacks the field."""

    time: Optional[int]
    src: Optional[int]
    dest: Optional[int]
    src_port: Optional[int]
    dest_port: Optional[int]
    transport: Optional[int]
    bytes: Optional[int]
    packets: Optional[int]
    count: Optional[int]
    duration: Optional[int]
    labels: Sequence[int]
    inner_src: Optional[int]
    inner_dest: Optional[int]
    host: Optional[int]

    @property
    def has_network_fields(self) -> bool:
        return self.src is not None and self.dest is not None


def columns_of(header: Sequence[str]) -> Columns:
    """Map a chunk's header row to column positions (the `__mv_` companions are not used:
    a multivalue cell's plain column holds its values newline-joined)."""
    position = {}
    for index, name in enumerate(header):
        if name.startswith("__mv_"):
            continue
        plain = name[len(DATAMODEL_PREFIX):] if name.startswith(DATAMODEL_PREFIX) else name
        # A plain name wins over its All_Traffic. twin when both are present.
        if plain not in position or name == plain:
            position[plain] = index

    def first(names: Sequence[str]) -> Optional[int]:
        for name in names:
            if name in position:
                return position[name]
        return None

    found = {key: first(names) for key, names in ALIASES.items()}
    return Columns(
        labels=tuple(position[n] for n in LABEL_FIELDS if n in position),
        inner_src=position.get(INNER_SRC_FIELD),
        inner_dest=position.get(INNER_DEST_FIELD),
        host=position.get(HOST_FIELD),
        **found
    )


def first_value(cell: str) -> str:
    """A multivalue cell's first value (its values are newline-joined)."""
    newline = cell.find("\n")
    return cell if newline < 0 else cell[:newline]


def wire_header(fields: Sequence[str]) -> List[str]:
    """A header row with each field followed by its __mv_ companion."""
    return [name for field in fields for name in (field, "__mv_" + field)]


class Chunk:
    """One execute chunk's body: its header row, and its records read without a dict per record.

    splunklib would build a dict per record; at millions of records that costs more than the
    detection itself (~8.7 µs vs ~1.4 µs a record; docs/splunk-protocol-notes.md)."""

    def __init__(self, body: str) -> None:
        self._body = body
        end = body.find("\n")
        start = len(body) if end < 0 else end + 1  # where the records begin
        self.header: List[str] = next(csv.reader([body[:start]]), [])
        self._start = start

    def has_rows(self) -> bool:
        """Does the body hold a record (not only its header row)?"""
        return self._start < len(self._body)

    @property
    def body(self) -> str:
        """The body as it came: its header row and its records."""
        return self._body

    def rows(self) -> Iterator[List[str]]:
        """Every record's cells, read with csv.reader from the body's lines, each with its "\\n":
        what iterating io.StringIO(body) gives, without the 4 bytes a character of its buffer
        (the search head's chunks can be tens of megabytes)."""
        lines = self._body.split("\n")
        last = lines.pop()  # "" when the body ends with a line break
        rows = csv.reader(chain(map(str.__add__, lines, repeat("\n")), [last] if last else []))
        next(rows, None)
        return rows

    def lines(self) -> Optional[List[str]]:
        """Every record as one line of text whose cells are `line.split(",")`, quoted cells still
        in their quotes (see `unquoted`), or None when the body needs csv.reader.

        splunkd quotes every value that is not purely alphanumeric ("10.1.2.3", "1700000000.000")
        but such values rarely hold a comma or a newline: when every line has exactly the header's
        number of cells and an even number of quotes, each line is one record and no quoted value
        holds a comma. (A line that ends inside a quoted value, among a multivalue cell's
        newline-joined values, has an odd number; the commas of such a value could give each of
        its lines the header's count.) The quotes stay for now: most lines are dropped on a cell
        that needs none."""
        text = self._body  # no copy without the header line: split() drops it below
        if "\r" in text:
            return None
        lines = text.split("\n")
        del lines[0]
        if lines and lines[-1] == "":
            lines.pop()
        commas = len(self.header) - 1
        if lines and set(map(str.count, lines, repeat(","))) != {commas}:
            return None
        if any(quotes % 2 for quotes in set(map(str.count, lines, repeat('"')))):
            return None
        return lines


def unquoted(lines: List[str]) -> Optional[List[str]]:
    """`Chunk.lines()` without the quotes around quoted cells, so that a line's cells are what
    csv.reader returns; None when a cell holds an escaped quote (or is an empty quoted value):
    such a body needs csv.reader."""
    text = "\n".join(lines)
    if '"' not in text:
        return lines
    if '""' in text:
        return None
    return text.replace('"', "").split("\n")
