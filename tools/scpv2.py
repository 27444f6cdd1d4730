"""The splunkd side of the chunked custom search command protocol (SCP v2), for local runs and tests.

It speaks to a command exactly as splunkd does: spawn the script with argv = [script] only, send a
`getinfo` chunk, then `execute` chunks in lock-step (one reply per request), the last one marked
`finished`. Each frame is ``chunked 1.0,<metadata bytes>,<body bytes>\\n`` + JSON + CSV, lengths in
UTF-8 bytes. Every field F travels with a ``__mv_F`` companion column; a multivalue cell is
``$v1$;$v2$`` there (``$`` doubled) and the values newline-joined in F.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

_BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
if _BIN not in sys.path:
    sys.path.insert(0, _BIN)

from teredo_spike import multivalue  # noqa: E402  (the app's codec: one owner of the encoding)

Value = Union[str, List[str]]
Record = Dict[str, Value]

# splunkd puts no limit on a cell; neither does splunklib (internals.py raises csv's limit).
csv.field_size_limit(2**31 - 1)

FRAME_HEADER = re.compile(rb"^chunked\s+1\.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\r?\n$")


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


def encode_body(records: Sequence[Record], fields: Optional[Sequence[str]] = None,
                chunk_index: Optional[int] = None) -> bytes:
    """A chunk body as splunkd writes it: the fields sorted by name, then every field's `__mv_`
    companion in the same order; cells quoted unless alphanumeric; `\n` line ends."""
    fields = list(fields) if fields is not None else field_order(records)
    if chunk_index is not None and "_chunked_idx" not in fields:
        fields.append("_chunked_idx")
    if not fields:
        return b""
    fields.sort()
    lines = [",".join(_wire(name) for name in fields + ["__mv_" + name for name in fields])]
    for number, record in enumerate(records):
        cells, mv_cells = [], []
        for name in fields:
            if name == "_chunked_idx" and chunk_index is not None:
                value: Value = str(chunk_index + number)
            else:
                value = record.get(name, "")
            if isinstance(value, list):
                cells.append(_wire("\n".join(value)))
                mv_cells.append(_wire(multivalue.encode(value)) if len(value) > 1 else "")
            else:
                cells.append(_wire(value))
                mv_cells.append("")
        lines.append(",".join(cells + mv_cells))
    return ("\n".join(lines) + "\n").encode("utf-8")


def decode_body(body: bytes) -> List[Record]:
    """Rows of a reply body; multivalue fields become lists, __mv_ columns disappear."""
    if not body:
        return []
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    header = next(reader, [])
    records = []
    for row in reader:
        if len(row) != len(header):
            raise ProtocolError("row has %d cells, header %d" % (len(row), len(header)))
        record: Record = {}
        mv = {}
        for name, cell in zip(header, row):
            if name.startswith("__mv_"):
                if cell:
                    mv[name[5:]] = decode_mv(cell)
            else:
                record[name] = cell
        record.update(mv)
        records.append(record)
    return records


def frame(metadata: dict, body: bytes = b"") -> bytes:
    meta = json.dumps(metadata).encode("utf-8")
    return b"chunked 1.0,%d,%d\n" % (len(meta), len(body)) + meta + body


# ---- a command process ---------------------------------------------------------------------

def searchinfo(args: Sequence[str], dispatch_dir: str, command: str = "teredospike") -> dict:
    """The getinfo `searchinfo` of a modern splunkd (FIELD-NOTES)."""
    search = "| %s %s" % (command, " ".join(args))
    return {
        "args": list(args), "raw_args": list(args), "dispatch_dir": dispatch_dir,
        "sid": "local_%s" % uuid.uuid4().hex[:12], "app": "teredo_spike", "owner": "admin",
        "username": "admin", "session_key": "local-runner-has-no-session-key",
        "splunkd_uri": "https://127.0.0.1:8089", "splunk_version": "9.3.0",
        "search": urllib.parse.quote(search), "command": command, "maxresultrows": 50000,
        "earliest_time": "0", "latest_time": "0",
    }


class CommandProcess:
    """One run of the command: spawn, getinfo, execute... in lock-step."""

    def __init__(self, script: str, python: str, dispatch_dir: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.dispatch_dir = dispatch_dir
        self.process = subprocess.Popen(
            [python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, cwd=dispatch_dir, env=env if env is not None else dict(os.environ))
        self.messages: List[Tuple[str, str]] = []
        self.finished = False

    @property
    def errors(self) -> List[str]:
        """ERROR and FATAL messages so far: after getinfo, splunkd stops the search on them."""
        return [text for level, text in self.messages if level in ("ERROR", "FATAL")]

    def stderr_tail(self, limit: int = 4000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]

    def request(self, metadata: dict, body: bytes = b"") -> Tuple[dict, bytes]:
        """Send one chunk and read its one reply."""
        try:
            self.process.stdin.write(frame(metadata, body))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ProtocolError("the command closed its input early; stderr:\n" + self.stderr_tail())
        reply = self._read_reply()
        messages = reply[0].get("inspector", {}).get("messages", [])
        self.messages += [(level, text) for level, text in messages]
        self.finished = bool(reply[0].get("finished"))
        return reply

    def _read_reply(self) -> Tuple[dict, bytes]:
        stdout = self.process.stdout
        line = stdout.readline()
        match = FRAME_HEADER.match(line)
        if not match:
            rest = stdout.read(2000) if line else b""
            raise ProtocolError("expected a 'chunked 1.0,...' header, got %r; stderr:\n%s"
                                % ((line + rest)[:300], self.stderr_tail()))
        meta_len, body_len = int(match.group(1)), int(match.group(2))
        meta = stdout.read(meta_len)
        body = stdout.read(body_len)
        if len(meta) != meta_len or len(body) != body_len:
            raise ProtocolError("reply shorter than its header says; stderr:\n" + self.stderr_tail())
        try:
            return json.loads(meta.decode("utf-8")), body
        except ValueError as error:
            raise ProtocolError("reply metadata is not JSON (%s): %r" % (error, meta[:300]))

    def getinfo(self, args: Sequence[str]) -> dict:
        metadata, body = self.request({
            "action": "getinfo", "preview": False, "streaming_command_will_restart": False,
            "searchinfo": searchinfo(args, self.dispatch_dir)})
        if body:
            raise ProtocolError("getinfo reply carries a body")
        return metadata

    def execute(self, body: bytes, finished: bool) -> List[Record]:
        metadata, reply = self.request({"action": "execute", "finished": finished}, body)
        return decode_body(reply)

    def close(self, timeout: float = 60.0) -> int:
        """Close stdin and wait; the exit status."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        extra = self.process.stdout.read()
        code = self.process.wait(timeout=timeout)
        self.process.stdout.close()
        if extra.strip():
            raise ProtocolError("the command wrote after its last reply: %r" % extra[:300])
        return code
