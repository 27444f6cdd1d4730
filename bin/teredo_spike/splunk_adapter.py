"""Every touch of splunklib's private internals, in one place (docs/splunk-protocol-notes.md).

splunklib would read each record into a dict and write each result from one (~10 µs a row); the
command reads a chunk's body as text (fields.Chunk) and writes rows already in wire form
(partials.PartialTable) into the record writer's buffer, as its _write_record does. Its results
(the reply to the last chunk, which SCP v2 cannot split) go to a file in the dispatch directory
and from there to splunkd, instead of through splunklib's in-memory buffer: `output=all` over a
week of a large fleet is hundreds of megabytes of CSV, and the buffer held it about six times over
(a str per row, the buffer, its value, its UTF-8 bytes). Both rely on
names splunklib does not publish: PRIVATE_API says, at import, whether they are all there. When
one is missing (another splunklib), the command takes the public way: splunklib's own chunk
handling, its records (dicts) re-encoded into a Chunk, and rows written with write_records;
slower, with the same results (tests/test_splunk_adapter.py).
"""

import csv
import io
import tempfile
from typing import BinaryIO, Iterable, Iterator, List, Mapping, Sequence, Tuple, Union

from splunklib.searchcommands import internals, search_command

from .fields import Chunk, wire_header
from .multivalue import decode as multivalue_values
from .multivalue import encode as multivalue_cell
from .partials import PartialTable

# The record writer's: its header (None until the first row), its row writer, the buffer and csv
# writer behind it, and the count of rows in the buffer.
WRITER_ATTRIBUTES = ("_fieldnames", "_writerow", "_buffer", "_writer", "_pending_record_count",
                     "_write_chunk", "_iterencode_json", "_ofile", "_flushed", "write")
# The command's: the method that hands a chunk's body to map/reduce (replaced by
# execute_chunk_v2), what that reads (the empty-input switch, the record writer), and whether the
# chunk being processed is the last.
COMMAND_ATTRIBUTES = ("_execute_chunk_v2", "_allow_empty_input", "_record_writer", "_finished")


def private_api_present() -> bool:
    """Are all the private names the fast ways use there, in this splunklib?"""
    writer = internals.RecordWriterV2(io.BytesIO())
    command = search_command.SearchCommand()
    return (all(hasattr(writer, name) for name in WRITER_ATTRIBUTES)
            and all(hasattr(command, name) for name in COMMAND_ATTRIBUTES))


PRIVATE_API = private_api_present()


def execute_chunk_v2(command, process, chunk) -> None:
    """The command's _execute_chunk_v2 when PRIVATE_API: splunklib's own wraps the body in a
    StringIO and reads a dict per record; this hands map() and reduce() the body as a Chunk."""
    metadata, body = chunk
    if not body and not command._allow_empty_input:
        raise ValueError("No records found to process.")
    command._record_writer.write_records(process(Chunk(body)))


def is_last_chunk(command) -> bool:
    """Is the chunk being processed the last of the input?"""
    if PRIVATE_API:
        return bool(command._finished)
    return bool(getattr(command.metadata, "finished", False))


def as_chunk(records: Union[Chunk, Iterable[dict]]) -> Chunk:
    """What map() and reduce() are given, as a Chunk: the Chunk itself (execute_chunk_v2), or
    splunklib's records (dicts, multivalues as lists) re-encoded as a body."""
    if isinstance(records, Chunk):
        return records
    records = list(records)
    header = list(records[0]) if records else []
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for record in records:
        writer.writerow(["\n".join(v) if isinstance(v, list) else v
                         for v in (record.get(name, "") for name in header)])
    return Chunk(text.getvalue())


def write_table(command, fields: Sequence[str], table: PartialTable) -> None:
    """Write rows already in wire form (PARTIAL_FIELDS order) into this chunk's reply."""
    writer = command._record_writer
    if not PRIVATE_API:
        writer.write_records(_records(fields, table))
        return
    if writer._fieldnames is None:
        writer._fieldnames = list(fields)
        writer._writerow(wire_header(fields))
    elif writer._fieldnames != list(fields):
        raise RuntimeError("teredospike: one reply with two tables")
    writer._buffer.write(table.text)
    writer._writer.writerows(table.rows)
    writer._pending_record_count += table.text_rows + len(table.rows)


def write_body(command, chunk: Chunk) -> None:
    """Write a chunk on as it came (its header and records) as this chunk's reply."""
    writer = command._record_writer
    if not chunk.has_rows():
        return
    if not PRIVATE_API:
        writer.write_records(dict(zip(chunk.header, row)) for row in chunk.rows())
        return
    if writer._fieldnames is not None:
        raise RuntimeError("teredospike: one reply with two tables")
    lines = chunk.lines()
    writer._fieldnames = list(chunk.header)
    body = chunk.body
    writer._buffer.write(body if body.endswith("\n") else body + "\n")
    writer._pending_record_count += (len(lines) if lines is not None
                                     else sum(1 for _ in chunk.rows()))


def _records(fields: Sequence[str], table: PartialTable) -> List[dict]:
    """The table's rows as the dicts write_records takes (multivalues as lists)."""
    rows = list(csv.reader(io.StringIO(table.text))) + table.rows
    records = []
    for row in rows:
        record = {}
        for i, name in enumerate(fields):
            value, encoded = row[2 * i], row[2 * i + 1]
            record[name] = multivalue_values(encoded) if encoded else value
        records.append(record)
    return records


def write_results(command, fields: Sequence[str], rows: Iterable[Mapping[str, object]]) -> None:
    """Write the search's results (dicts: str, int, float, bool or lists of them) as the reply to
    the last chunk: through a file when PRIVATE_API, else with splunklib's write_records. Cells
    are made as splunklib's _write_record makes them (tests/test_golden.py holds the two ways to
    the same rows)."""
    writer = command._record_writer
    if not PRIVATE_API:
        writer.write_records({name: row[name] for name in fields} for row in rows)
        return
    body = tempfile.TemporaryFile()  # splunklib points tempfile at the dispatch directory
    text = io.TextIOWrapper(body, encoding="utf-8", newline="")
    csv_writer = csv.writer(text, dialect=internals.CsvDialect)
    csv_writer.writerow(wire_header(fields))
    written = 0
    for row in rows:
        csv_writer.writerow([cell for name in fields for cell in _wire_cells(row[name])])
        written += 1
    text.flush()
    text.detach()
    if not written:
        body.close()
        return
    writer._fieldnames = list(fields)
    writer._pending_record_count += written
    # The last chunk's reply is written from the file (an instance attribute shadows the method).
    writer._write_chunk = lambda metadata, buffered: _write_chunk_from(writer, body, metadata,
                                                                       buffered)


def _wire_cells(value: object) -> Tuple[str, str]:
    """A field's cell and `__mv_` cell, as splunklib's _write_record makes them."""
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            values = [_text(v) for v in value]
            return "\n".join(values), multivalue_cell(values)
        value = value[0] if value else None
    return ("" if value is None else _text(value)), ""


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _write_chunk_from(writer, body: BinaryIO, metadata, buffered: str) -> None:
    """splunklib's _write_chunk, with the body read from `body` in blocks."""
    if buffered:
        raise RuntimeError("teredospike: results written both to the file and the buffer")
    encoded = b""
    if metadata:
        encoded = "".join(writer._iterencode_json(
            dict((name, value) for name, value in metadata if value is not None), 0)
        ).encode("utf-8")
    length = body.seek(0, io.SEEK_END)
    body.seek(0)
    writer.write("chunked 1.0,%d,%d\n" % (len(encoded), length))
    writer.write(encoded)
    for block in _blocks(body):
        writer.write(block)
    body.close()
    writer._ofile.flush()
    writer._flushed = True


def _blocks(body: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    block = body.read(size)
    while block:
        yield block
        block = body.read(size)
