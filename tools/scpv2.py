"""The splunkd side of the chunked custom search command protocol (SCP v2), for local runs, tests
and the benchmark: the one protocol client and the one chunk encoder of tools/, bench/ and tests/.

It speaks to a command exactly as splunkd does: spawn the script with argv = [script] only, send a
`getinfo` chunk, then `execute` chunks in lock-step (one reply per request), the last one marked
`finished`. Each frame is ``chunked 1.0,<metadata bytes>,<body bytes>\\n`` + JSON + CSV, lengths in
UTF-8 bytes. Every field F travels with a ``__mv_F`` companion column; a multivalue cell is
``$v1$;$v2$`` there (``$`` doubled) and the values newline-joined in F. The facts behind this are in
docs/splunk-protocol-notes.md.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from typing import BinaryIO, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

_BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
if _BIN not in sys.path:
    sys.path.insert(0, _BIN)

from teredo_spike import multivalue  # noqa: E402  (the app's codec: one owner of the encoding)

Value = Union[str, List[str]]
Record = Dict[str, Value]

# splunkd puts no limit on a cell; neither does splunklib (internals.py raises csv's limit).
csv.field_size_limit(2**31 - 1)

FRAME_HEADER = re.compile(rb"^chunked\s+1\.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\r?\n$")
CHUNK_INDEX = "_chunked_idx"


class ProtocolError(RuntimeError):
    """The command broke the protocol (or died); carries the tail of its stderr."""


# ---- encoding ------------------------------------------------------------------------------

def decode_mv(cell: str) -> List[str]:
    try:
        return multivalue.decode(cell)
    except ValueError as error:
        raise ProtocolError(str(error))


def field_order(records: Iterable[Record]) -> List[str]:
    seen: Dict[str, None] = {}
    for record in records:
        for name in record:
            seen.setdefault(name)
    return list(seen)


def _wire(value: str) -> str:
    """A cell as splunkd writes it: quoted unless purely alphanumeric (the recorded streams in
    ../shared/data/scpv2-recordings quote "10.1.2.3", "1700000000.000" and "_time")."""
    if not value or (value.isalnum() and value.isascii()):
        return value
    return '"%s"' % value.replace('"', '""')


class BodyEncoder:
    """Chunk bodies as splunkd writes them for one list of fields: the fields sorted by name, then
    every field's `__mv_` companion in the same order; cells quoted unless alphanumeric; `\\n` line
    ends. Rows are sequences of values in `fields` order (a list value is a multivalue cell). With
    `chunk_index`, a `_chunked_idx` column numbers the rows (splunkd sends it to a command's first
    phase, not to the reduce phase: see the recorded sum.reduce.input)."""

    def __init__(self, fields: Sequence[str], chunk_index: bool = True) -> None:
        names = list(fields) + ([CHUNK_INDEX] if chunk_index else [])
        # With chunk_index, the numbering replaces a `_chunked_idx` the rows may carry.
        positions = [i for i, name in enumerate(names)
                     if not (chunk_index and name == CHUNK_INDEX and i < len(fields))]
        self._order = sorted(positions, key=names.__getitem__)
        self._chunk_index = chunk_index
        self._empty_mv = "," * len(self._order)
        ordered = [names[i] for i in self._order]
        self.header = ",".join(_wire(name) for name in ordered + ["__mv_" + n for n in ordered])

    def encode(self, rows: Iterable[Sequence[Value]], first_index: int = 0) -> bytes:
        """One body: the header line, then a line per row (no rows: the header alone, as in the
        final `finished` chunk). A body without fields is empty."""
        if not self._order:
            return b""
        order, wire, empty_mv = self._order, _wire, self._empty_mv
        lines = [self.header]
        for number, row in enumerate(rows, first_index):
            cells = [*row, str(number)] if self._chunk_index else row
            try:
                lines.append(",".join([wire(cells[i]) for i in order]) + empty_mv)
            except (AttributeError, TypeError):  # a multivalue cell: a list, not a str
                lines.append(self._multivalue_line(cells))
        lines.append("")
        return "\n".join(lines).encode("utf-8")

    def _multivalue_line(self, cells: Sequence[Value]) -> str:
        values, companions = [], []
        for value in (cells[i] for i in self._order):
            if isinstance(value, list):
                values.append(_wire("\n".join(value)))
                companions.append(_wire(multivalue.encode(value)) if len(value) > 1 else "")
            else:
                values.append(_wire(value))
                companions.append("")
        return ",".join(values + companions)

    def chunks(self, rows: Sequence[Sequence[Value]], size: int) -> Iterator[bytes]:
        """`rows` as bodies of `size` rows each, numbered on from one body to the next."""
        for start in range(0, len(rows), size):
            yield self.encode(rows[start:start + size], start)


def encode_body(records: Sequence[Record], fields: Optional[Sequence[str]] = None,
                chunk_index: Optional[int] = None) -> bytes:
    """A chunk body of records (dicts) as splunkd writes it (BodyEncoder); `chunk_index` is the
    `_chunked_idx` of the first record, None for no `_chunked_idx` column."""
    fields = list(fields) if fields is not None else field_order(records)
    encoder = BodyEncoder(fields, chunk_index is not None)
    return encoder.encode(([record.get(name, "") for name in fields] for record in records),
                          chunk_index or 0)


def decode_rows(body: bytes) -> Tuple[List[str], List[List[Value]]]:
    """The fields and rows of a body; multivalue cells become lists, __mv_ columns disappear."""
    if not body:
        return [], []
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    header = next(reader, [])
    fields = [name for name in header if not name.startswith("__mv_")]
    values = [i for i, name in enumerate(header) if not name.startswith("__mv_")]
    for name in header:  # a companion without its field still names a field
        if name.startswith("__mv_") and name[5:] not in fields:
            fields.append(name[5:])
    companions = [(i, fields.index(name[5:])) for i, name in enumerate(header)
                  if name.startswith("__mv_")]
    missing = [""] * (len(fields) - len(values))
    rows: List[List[Value]] = []
    for line in reader:
        if len(line) != len(header):
            raise ProtocolError("row has %d cells, header %d" % (len(line), len(header)))
        row: List[Value] = [line[i] for i in values] + missing
        for column, position in companions:
            if line[column]:
                row[position] = decode_mv(line[column])
        rows.append(row)
    return fields, rows


def decode_body(body: bytes) -> List[Record]:
    """Records (dicts) of a reply body, as decode_rows reads it."""
    fields, rows = decode_rows(body)
    return [dict(zip(fields, row)) for row in rows]


def frame(metadata: dict, body: bytes = b"") -> bytes:
    meta = json.dumps(metadata).encode("utf-8")
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


def read_frame(stream: BinaryIO) -> Optional[Tuple[dict, bytes]]:
    """The next frame on `stream`: (metadata, body); None at the end of the stream."""
    line = stream.readline()
    if not line:
        return None
    match = FRAME_HEADER.match(line)
    if not match:
        raise ProtocolError("expected a 'chunked 1.0,...' header, got %r"
                            % (line + stream.read(2000))[:300])
    meta_len, body_len = int(match.group(1)), int(match.group(2))
    meta = stream.read(meta_len)
    body = stream.read(body_len)
    if len(meta) != meta_len or len(body) != body_len:
        raise ProtocolError("frame shorter than its header says")
    try:
        return json.loads(meta.decode("utf-8")), body
    except ValueError as error:
        raise ProtocolError("frame metadata is not JSON (%s): %r" % (error, meta[:300]))


# ---- a command process ---------------------------------------------------------------------

def searchinfo(args: Sequence[str], dispatch_dir: str, command: str = "teredospike",
               earliest: float = 0, latest: float = 0) -> dict:
    """The getinfo `searchinfo` of a modern splunkd (docs/splunk-protocol-notes.md); the search's
    time range in epoch seconds, 0 for unbounded (splunkd sends "0" for all time)."""
    search = "| %s %s" % (command, " ".join(args))
    return {
        "args": list(args), "raw_args": list(args), "dispatch_dir": dispatch_dir,
        "sid": "local_%s" % uuid.uuid4().hex[:12], "app": "teredo_spike", "owner": "admin",
        "username": "admin", "session_key": "local-runner-has-no-session-key",
        "splunkd_uri": "https://127.0.0.1:8089", "splunk_version": "9.3.0",
        "search": urllib.parse.quote(search), "command": command, "maxresultrows": 50000,
        "earliest_time": _epoch_text(earliest), "latest_time": _epoch_text(latest),
    }


def _epoch_text(seconds: float) -> str:
    return "%.6f" % seconds if seconds else "0"


class CommandProcess:
    """One run of the command: spawn, getinfo, execute... in lock-step. It keeps what the benchmark
    measures from outside: `started` (perf_counter at spawn), `peak_rss_kb()` while the process
    lives, and `cpu_seconds` (user + system, from its rusage) once closed."""

    def __init__(self, script: str, python: str, dispatch_dir: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.dispatch_dir = dispatch_dir
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, cwd=dispatch_dir, env=env if env is not None else dict(os.environ))
        self.messages: List[Tuple[str, str]] = []
        self.finished = False
        self.cpu_seconds = 0.0

    @property
    def errors(self) -> List[str]:
        """ERROR and FATAL messages so far: after getinfo, splunkd stops the search on them."""
        return [text for level, text in self.messages if level in ("ERROR", "FATAL")]

    def stderr_tail(self, limit: int = 4000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]

    def peak_rss_kb(self) -> int:
        """The process's peak resident set so far (VmHWM), in kB."""
        with open("/proc/%d/status" % self.process.pid) as f:
            match = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
        return int(match.group(1)) if match else 0

    def request(self, metadata: dict, body: bytes = b"") -> Tuple[dict, bytes]:
        """Send one chunk and read its one reply."""
        try:
            self.process.stdin.write(frame(metadata, body))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ProtocolError("the command closed its input early; stderr:\n" + self.stderr_tail())
        try:
            reply = read_frame(self.process.stdout)
        except ProtocolError as error:
            raise ProtocolError("%s; stderr:\n%s" % (error, self.stderr_tail()))
        if reply is None:
            raise ProtocolError("the command closed its output; stderr:\n" + self.stderr_tail())
        messages = reply[0].get("inspector", {}).get("messages", [])
        self.messages += [(level, text) for level, text in messages]
        self.finished = bool(reply[0].get("finished"))
        return reply

    def getinfo(self, args: Sequence[str], earliest: float = 0, latest: float = 0) -> dict:
        """getinfo, with the search's time range (epoch seconds; 0: unbounded)."""
        metadata, body = self.request({
            "action": "getinfo", "preview": False, "streaming_command_will_restart": False,
            "searchinfo": searchinfo(args, self.dispatch_dir, earliest=earliest,
                                     latest=latest)})
        if body:
            raise ProtocolError("getinfo reply carries a body")
        return metadata

    def execute(self, body: bytes, finished: bool) -> List[Record]:
        metadata, reply = self.request({"action": "execute", "finished": finished}, body)
        return decode_body(reply)

    def execute_all(self, bodies: Iterable[bytes], final_body: bytes) -> List[bytes]:
        """Each body as an execute chunk, then `final_body` as the `finished` one, as splunkd
        feeds a phase; the reply bodies. Stops, as splunkd does, once the command says finished."""
        replies = []
        for body in bodies:
            if self.finished:
                return replies
            replies.append(self.request({"action": "execute", "finished": False}, body)[1])
        if not self.finished:
            replies.append(self.request({"action": "execute", "finished": True}, final_body)[1])
        return replies

    def close(self) -> int:
        """Close stdin, read to the end of output and reap the process; the exit status."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        extra = self.process.stdout.read()
        self.process.stdout.close()
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        if extra.strip():
            raise ProtocolError("the command wrote after its last reply: %r" % extra[:300])
        return self.process.returncode
