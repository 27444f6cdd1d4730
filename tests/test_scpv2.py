"""The protocol client's chunk encoder and decoder (tools/scpv2.py), which every test, the runner
and the benchmark use to speak to the command: what it writes, csv.reader and the decoder read
back, multivalue cells and quoting included."""

import csv
import io

import pytest

from tools import scpv2

AWKWARD = ["", "plain", "10.1.2.3", 'say "hi"', "a,b", "two\nlines", "$dollar$", "ünï"]


def test_rows_round_trip_through_the_decoder():
    fields = ["b", "a", "c"]
    rows = [[value, "x", [value, "second"]] for value in AWKWARD]
    rows.append(["only", ["one"], []])
    body = scpv2.BodyEncoder(fields).encode(rows, 40)
    decoded_fields, decoded = scpv2.decode_rows(body)
    assert decoded_fields == ["_chunked_idx", "a", "b", "c"]
    expected = [[str(40 + n), row[1], row[0], row[2]] for n, row in enumerate(rows)]
    expected[-1][1:] = ["one", "only", ""]  # one value is a plain cell, none an empty one
    assert decoded == expected


def test_cells_are_written_as_splunkd_writes_them():
    body = scpv2.BodyEncoder(["src", "count"], chunk_index=False).encode(
        [["10.1.2.3", "7"], [["a", "b"], "x"]])
    assert body == (b'count,src,"__mv_count","__mv_src"\n'
                    b'7,"10.1.2.3",,\n'
                    b'x,"a\nb",,"$a$;$b$"\n')
    lines = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert lines[2] == ["x", "a\nb", "", "$a$;$b$"]


@pytest.mark.parametrize("chunk_index", [None, 0, 9])
def test_records_and_rows_encode_alike(chunk_index):
    records = [{"z": value, "_chunked_idx": "carried", "m": [value, "v"]} for value in AWKWARD]
    fields = ["z", "_chunked_idx", "m"]
    body = scpv2.encode_body(records, chunk_index=chunk_index)
    rows = [[record[name] for name in fields] for record in records]
    assert body == scpv2.BodyEncoder(fields, chunk_index is not None).encode(rows, chunk_index or 0)
    numbers = [record["_chunked_idx"] for record in scpv2.decode_body(body)]
    assert numbers == (["carried"] * len(records) if chunk_index is None
                       else [str(chunk_index + n) for n in range(len(records))])


def test_chunks_number_on_and_the_final_body_is_the_header():
    encoder = scpv2.BodyEncoder(["f"])
    bodies = list(encoder.chunks([[str(n)] for n in range(5)], 2))
    assert [scpv2.decode_rows(body)[1] for body in bodies] == [
        [["0", "0"], ["1", "1"]], [["2", "2"], ["3", "3"]], [["4", "4"]]]
    assert encoder.encode([]) == b'"_chunked_idx",f,"__mv__chunked_idx","__mv_f"\n'
    assert scpv2.encode_body([]) == b""


def test_frames_are_read_back_and_a_bad_header_is_a_protocol_error():
    stream = io.BytesIO(scpv2.frame({"action": "execute"}, b"a\n1\n") + scpv2.frame({}))
    assert scpv2.read_frame(stream) == ({"action": "execute"}, b"a\n1\n")
    assert scpv2.read_frame(stream) == ({}, b"")
    assert scpv2.read_frame(stream) is None
    with pytest.raises(scpv2.ProtocolError, match="expected a 'chunked 1.0"):
        scpv2.read_frame(io.BytesIO(b"Traceback (most recent call last):\n"))
    with pytest.raises(scpv2.ProtocolError, match="shorter"):
        scpv2.read_frame(io.BytesIO(b"chunked 1.0,10,0\n{}"))
