"""The two wire formats between the phases (teredo_spike.partials) read back what was written:
partial rows (cell, entries and counts rows, through the CSV text splunklib would carry) and
candidate entries (a record's cells -> entry -> the Cell the exact reader makes of it)."""

import csv
import io
from collections import Counter

from hypothesis import given, strategies as st

from teredo_spike import evidence as ev
from teredo_spike.addresses import DEFAULT_INTERNAL, Networks
from teredo_spike.cells import Cell
from teredo_spike.fields import Chunk, columns_of, wire_header
from teredo_spike.partials import (CELL_ROW, COUNTS_ROW, ENTRIES_ROW, ENTRY_FIELDS,
                                   PARTIAL_FIELDS, counts_table, dest_packets, dest_text,
                                   entries_of, entry_cells, entry_layout, packed, partial_table,
                                   read_rows)
from teredo_spike.records import NOTE_LONG_TEREDO, NOTE_UNREAD_DURATION, RecordReader
from teredo_spike.options import RECORD_TIMES

SPAN = 600
ADDRESSES = st.sampled_from(["10.0.0.1", "83.170.1.38", "65.55.158.80", "2001:db8::1",
                             "a,b", 'q"uote'])
COUNTS = st.integers(0, 10 ** 12)


@st.composite
def cells(draw):
    cell = Cell()
    cell.bytes, cell.flows = draw(COUNTS), draw(COUNTS)
    cell.evidence = draw(st.integers(0, 15))
    cell.dests = draw(st.dictionaries(ADDRESSES, COUNTS, min_size=1, max_size=3))
    cell.packets = sum(cell.dests.values())  # as the readers count them
    for server in draw(st.sets(ADDRESSES, max_size=2)):
        cell.add_server(server)
    for mapped in draw(st.sets(ADDRESSES, max_size=2)):
        cell.add_mapped(mapped)
    return cell


KEYS = st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2"]), st.sampled_from(["3797", "", "4,5"]),
                 st.integers(0, 10).map(lambda n: 1_700_006_400 + n * SPAN))


def as_chunk(tables) -> Chunk:
    """The tables as the reduce phase reads them: splunklib's CSV text, header first."""
    out = io.StringIO()
    out.write(",".join(wire_header(PARTIAL_FIELDS)) + "\r\n")
    for table in tables:
        out.write(table.text)
        csv.writer(out, lineterminator="\r\n").writerows(table.rows)
    return Chunk(out.getvalue())


def state(cell: Cell) -> tuple:
    return (cell.packets, cell.bytes, cell.flows, cell.evidence, cell.dests, set(cell.servers),
            set(cell.mapped))


@given(st.dictionaries(KEYS, cells(), max_size=6),
       st.lists(st.sampled_from(["10.0.0.1 3797 1700006400.5 8.8.8.8  1 70 ",
                                 "10.0.0.2 53000 1700007000 1.1.1.1 2 3 4 1800.5"]), max_size=12),
       st.dictionaries(st.sampled_from(["no source address", "bad = number"]),
                       st.integers(1, 99)), st.integers(0, 10 ** 6),
       st.dictionaries(st.sampled_from([NOTE_UNREAD_DURATION, NOTE_LONG_TEREDO]),
                       st.integers(1, 99)))
def test_partial_rows_read_back_what_was_written(written, entries, skipped, records, notes):
    chunk = as_chunk([partial_table(written, entries),
                      counts_table(records, Counter(skipped), Counter(notes))])
    read_cells, read_entries, counts = {}, [], []
    for row in read_rows(chunk.header, chunk.rows()):
        if row[0] is CELL_ROW:
            read_cells[row[1]] = state(row[2])
        elif row[0] is ENTRIES_ROW:
            read_entries += entries_of(row[1])
        else:
            assert row[0] is COUNTS_ROW
            counts.append(row[1:])
    assert read_cells == {key: state(cell) for key, cell in written.items()}
    assert read_entries == entries
    assert counts == [(records, skipped, notes)]


def test_plain_rows_are_the_text_csv_writer_would_write():
    """The common cell's template (built from PARTIAL_FIELDS) against csv.writer on its cells."""
    cell = Cell()
    cell.packets, cell.bytes, cell.flows, cell.evidence = 3, 210, 2, ev.PORT
    cell.dests = {"65.55.158.80": 3}
    cell.add_server("65.55.158.80")
    plain = partial_table({("10.0.0.1", "3797", 1_700_006_400): cell})
    assert plain.text_rows == 1 and plain.rows == []
    cell.add_mapped("198.51.100.7")  # no longer plain: written as wire cells
    general = partial_table({("10.0.0.1", "3797", 1_700_006_400): cell})
    assert general.text == "" and len(general.rows) == 1
    general.rows[0][2 * PARTIAL_FIELDS.index("mapped")] = ""
    general.rows[0][2 * PARTIAL_FIELDS.index("mapped") + 1] = ""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(general.rows)
    assert plain.text == out.getvalue()


def test_entries_are_packed_and_unpacked_whole():
    entries = ["e%d" % n for n in range(12)]
    rows = packed(entries)
    assert len(rows) == 3 and [e for row in rows for e in entries_of(row)] == entries


@given(st.sampled_from(["", "12", "0", "007"]), st.sampled_from(["", "5", "7001"]),
       st.sampled_from(["", "900"]), st.booleans(),
       st.sampled_from([None, "", "0", "0.4", "1800", "7200.5"]),
       st.sampled_from(RECORD_TIMES))
def test_an_entry_reads_as_the_exact_reader_reads_its_record(count, packets, octets, has_count,
                                                             duration, record_time):
    header = ["_time", "src_ip", "src_port", "dest_ip", "dest_port", "packets_out", "bytes_out"]
    record = ["1700006999.5", "10.0.0.1", "50000", "8.8.8.8", "53", packets, octets]
    if has_count:
        header.append("count")
        record.append(count)
    if duration is not None:
        header.append("duration")
        record.append(duration)
    columns = columns_of(header)
    entry_format, cells_of = entry_layout(columns)
    entry = entry_format % cells_of(record)
    assert len(entry.split(" ")) == len(ENTRY_FIELDS)
    read = entry_cells(entry, SPAN, record_time)

    reader = RecordReader(SPAN, Networks.parse(DEFAULT_INTERNAL), record_time)
    candidates = {}
    assert reader.read_rows(columns, [record], candidates) == 1
    assert list(candidates) == [key for key, _ in read]
    assert [state(candidates[key]) for key, _ in read] == [state(cell) for _, cell in read]


SUMMARY_ADDRESSES = st.sampled_from(["10.0.0.1", "83.170.1.38", "65.55.158.80", "2001:db8::1",
                                     "2001:0:4136:e378:8000:63bf:3fff:fdd2"])


@given(st.dictionaries(SUMMARY_ADDRESSES, COUNTS, max_size=5))
def test_dest_text_reads_back_in_one_order_whatever_the_merge_order(dests):
    """A bucket's destinations kept as text (the summary row's cell, and what the search head
    holds) read back as they were, kept or not kept (interned or not), and the text does not
    depend on the order in which they were merged into the cell."""
    text = dest_text(dests.items())
    assert dest_packets(text) == dests and dest_packets(text, None) == dests
    assert dest_text(reversed(list(dests.items()))) == text
    assert text == " ".join(sorted(text.split()))
