"""The fast path (teredo_spike.fastpath) reads a chunk as lines of text and passes plain outbound UDP on as
candidate entries. It must count exactly what the general path counts, where every record goes
through the exact reader (records.RecordReader.read_rows) and into a Cell: the same records, skips and cells, whatever the values
(quoted, escaped, empty, not numbers, not addresses, odd transports and ports).

Each case is sent twice, as splunkd writes bodies and with `\\r\\n` line ends, which only the
csv.reader path reads (Chunk.lines refuses them)."""

from collections import Counter

from hypothesis import given, settings, strategies as st

from teredo_spike import evidence as ev
from teredo_spike.addresses import DEFAULT_INTERNAL, Networks
from teredo_spike.attribution import Spool
from teredo_spike.fastpath import read_chunk
from teredo_spike.fields import Chunk
from teredo_spike.partials import entry_cells
from teredo_spike.records import RecordReader
from tools import scpv2

SPAN = 600
TEREDO_ADDRESS = "2001:0:4136:e378:8000:63bf:3fff:fdd2"

# Odd values sit beside ordinary ones, so that most records are outbound UDP and the odd ones
# land among them.
SOURCES = ["10.0.0.1", "10.0.0.2", "10.0.0.1", "192.168.1.9", "8.8.8.8", "", "not-an-ip",
           " 10.0.0.3", "fe80::1"]
DESTINATIONS = ["65.55.158.80", "83.170.1.38", "8.8.8.8", "10.0.0.9", "", "999.1.1.1",
                "2001:db8::1"]
TIMES = ["1700006400.250", "1700006999", "1700007000.5", "1700008200", "1700006401", "",
         "yesterday", "1e9", " 1700006401", "nan", "inf", "1_700_006_400"]
PORTS = ["4000", "4001", "53000", "4000", "", "a b", "x;y", '5"6', "٣٥"]
DEST_PORTS = ["3544", "53", "443", "32900", "", " 3544"]
TRANSPORTS = ["udp", "udp", "UDP", "uDp", "17", "", "tcp", "6", "icmp", "ipv6-icmp", 'u"dp',
              '"udp"', "udp "]
LABELS = ["", "", "teredo", "Teredo-x", "dns", 'te"redo', "t e r"]
COUNTS = ["12", "12", "0", "", "1.5", "x", "٣", " 7", "1e3", "007"]
FIELDS = {"_time": TIMES, "src_ip": SOURCES, "dest_ip": DESTINATIONS, "src_port": PORTS,
          "dest_port": DEST_PORTS, "transport": TRANSPORTS, "app": LABELS, "bytes_out": COUNTS,
          "packets_out": COUNTS}
# Durations that keep a record in its bucket, carry it over one or many, or cannot be read.
DURATIONS = ["", "0", "0.25", "599.5", "1200", "86400.000001", "-1", "nan", "1e400", "x", "1e308"]
OPTIONAL_FIELDS = {"count": COUNTS, "tunnel_type": ["", "", "teredo", "6to4"],
                   "inner_src_ip": ["", "", "", TEREDO_ADDRESS], "duration": DURATIONS}


@st.composite
def records_and_chunk_size(draw):
    fields = dict(FIELDS)
    fields.update((name, values) for name, values in OPTIONAL_FIELDS.items() if draw(st.booleans()))
    record = st.fixed_dictionaries({name: st.sampled_from(values)
                                    for name, values in fields.items()})
    records = draw(st.lists(record, min_size=1, max_size=60))
    return records, list(fields), draw(st.integers(1, 40))


def summary(items):
    """Cells merged per key, as comparable tuples (packets per destination summed)."""
    merged = {}
    for key, cell in items:
        packets, octets, flows, evidence, dests, servers, mapped = merged.get(
            key, (0, 0, 0, 0, {}, frozenset(), frozenset()))
        dests = dict(dests)
        for dest, dest_packets in cell.dests.items():
            dests[dest] = dests.get(dest, 0) + dest_packets
        merged[key] = (packets + cell.packets, octets + cell.bytes, flows + cell.flows,
                       evidence | cell.evidence, dests, servers | cell.servers,
                       mapped | cell.mapped)
    return merged


def read(records, fields, chunk_size, line_end):
    """The reader fed the records in chunks, as a search head given raw records: what it read
    (every cell kept or passed on), the cells attributed at the end, and its counts."""
    reader = RecordReader(SPAN, Networks.parse(DEFAULT_INTERNAL))
    spool = Spool(reader.cells, SPAN)
    passed = []
    for start in range(0, len(records), chunk_size):
        body = scpv2.encode_body(records[start:start + chunk_size], fields, start).decode()
        candidates = read_chunk(reader, Chunk(body.replace("\n", line_end)))
        passed += list(candidates.cells.items())
        passed += [item for entry in candidates.entries for item in entry_cells(entry, SPAN)]
        spool.add_candidates(candidates)
    read_cells = summary(list(reader.cells.items()) + passed)
    spool.resolve()
    return read_cells, summary(reader.cells.items()), reader.records, reader.skipped, reader.notes


@settings(max_examples=400, deadline=None)
@given(records_and_chunk_size())
def test_fast_path_reads_what_csv_reader_reads(case):
    records, fields, chunk_size = case
    assert read(records, fields, chunk_size, "\n") == read(records, fields, chunk_size, "\r\n")


def dns(t: float, src: str, port: int) -> dict:
    return {"_time": "%.3f" % t, "src_ip": src, "src_port": str(port), "dest_ip": "8.8.8.8",
            "dest_port": "53", "transport": "udp", "app": "dns", "bytes_out": "70",
            "packets_out": "1"}


def test_plain_outbound_udp_passes_on_as_entries_and_teredo_as_cells():
    """The fast path is taken for what splunkd sends: one entry per plain record, no Cell; the
    Teredo refresh and the relay flow from its now live client port become Cells."""
    t0 = 1_700_006_400
    plain = [dns(t0 + i, "10.0.0.%d" % (1 + i % 5), 50000 + i) for i in range(200)]
    refresh = dict(dns(t0, "10.0.0.7", 3797), dest_ip="65.55.158.80", dest_port="3544",
                   app="teredo")
    relay = dict(dns(t0 + 30, "10.0.0.7", 3797), dest_ip="83.170.1.38", dest_port="32900",
                 app="")
    reader = RecordReader(SPAN, Networks.parse(DEFAULT_INTERNAL))
    candidates = read_chunk(reader, Chunk(scpv2.encode_body([refresh] + plain).decode()))
    assert len(candidates.entries) == 200 and candidates.cells == {}
    assert candidates.entries[0] == "10.0.0.1 50000 1700006400.000 8.8.8.8  1 70 "
    key = ("10.0.0.7", "3797", t0)
    assert list(reader.cells) == [key]
    assert read_chunk(reader, Chunk(scpv2.encode_body([relay]).decode())) == ({}, [])
    cell = reader.cells[key]
    assert (cell.flows, cell.evidence, cell.dests) == (
        2, ev.LABEL | ev.PORT | ev.CLIENT_PORT, {"65.55.158.80": 1, "83.170.1.38": 1})
    assert reader.records == 202 and reader.skipped == Counter()


@given(st.sampled_from(sorted(FIELDS)), st.integers(0, 3))
def test_a_quoted_cell_across_lines_is_one_record_whatever_its_commas(field, extra):
    """A multivalue cell (its values newline-joined, in quotes) whose commas give each of its lines
    the header's number of commas: still one record, read as csv.reader reads it."""
    record = dns(1_700_006_400, "10.0.0.7", 3797)
    record.update(dest_ip="65.55.158.80", dest_port="3544", app="teredo")
    fields = list(FIELDS)
    header = next(iter(scpv2.encode_body([record], fields, 0).decode().splitlines()))  # as read() sends
    names = header.replace('"', "").split(",")
    before, after = names.index(field), len(names) - 1 - names.index(field)
    record[field] = record[field] + "," * after + "\n" * (1 + extra) + "," * before
    assert read([record], fields, 1, "\n") == read([record], fields, 1, "\r\n")
    assert read([record], fields, 1, "\n")[2] == 1
