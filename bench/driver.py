"""Drive one command process through the chunked protocol and measure it from outside.

The driver plays splunkd (tools/scpv2.py frames and getinfo): spawn with argv = [script] only,
getinfo, execute chunks in lock-step, a final `finished` chunk holding only the header row. Chunk
bodies come pre-encoded (bench/workload.py), so the driver only copies bytes. What it measures:

- CPU seconds of the command process: user + system from its rusage (os.wait4), whole life;
- wall seconds from spawn to exit;
- seconds from spawn to the getinfo reply;
- peak RSS: VmHWM from /proc/<pid>/status, read after the final reply while the process still
  waits for input (so it includes the end-of-input work).
"""

import csv
import io
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

from tools import scpv2


class Measurement(NamedTuple):
    cpu: float                # user + system seconds of the command process
    wall: float               # spawn to exit
    getinfo: float            # spawn to getinfo reply
    vm_hwm_kb: int            # peak resident set (VmHWM) read while the process lived
    replies: List[bytes]      # execute reply bodies
    messages: List[Tuple[str, str]]
    exit_code: int


def vm_hwm_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


class Process:
    """One command process, spoken to in lock-step."""

    def __init__(self, python: str, script: str, dispatch_dir: str) -> None:
        self.started = time.perf_counter()
        self._stderr = tempfile.TemporaryFile()
        self.popen = subprocess.Popen([python, os.path.abspath(script)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr,
                                      cwd=dispatch_dir)
        self.dispatch_dir = dispatch_dir
        self.messages: List[Tuple[str, str]] = []

    def request(self, metadata: dict, body: bytes = b"") -> Tuple[dict, bytes]:
        self.popen.stdin.write(scpv2.frame(metadata, body))
        self.popen.stdin.flush()
        stdout = self.popen.stdout
        line = stdout.readline()
        match = scpv2.FRAME_HEADER.match(line)
        if not match:
            raise scpv2.ProtocolError("expected a chunk header, got %r; stderr:\n%s"
                                      % (line[:200], self.stderr_tail()))
        meta = json.loads(stdout.read(int(match.group(1))).decode("utf-8"))
        reply = stdout.read(int(match.group(2)))
        self.messages += [tuple(m) for m in meta.get("inspector", {}).get("messages", [])]
        return meta, reply

    def getinfo(self, args: Sequence[str]) -> dict:
        meta, _ = self.request({"action": "getinfo", "preview": False,
                                "streaming_command_will_restart": False,
                                "searchinfo": scpv2.searchinfo(args, self.dispatch_dir)})
        return meta

    def finish(self) -> Tuple[int, float]:
        """Close stdin and reap: (exit code, CPU seconds from the child's rusage)."""
        self.popen.stdin.close()
        rest = self.popen.stdout.read()
        _, status, usage = os.wait4(self.popen.pid, 0)
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        if rest.strip():
            raise scpv2.ProtocolError("the command wrote after its last reply: %r" % rest[:200])
        return self.popen.returncode, usage.ru_utime + usage.ru_stime

    def stderr_tail(self, limit: int = 3000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-limit:]


def preop_args(python: str, script: str, args: Sequence[str]) -> Tuple[List[str], float]:
    """Ask a search-head process for its map phase (getinfo `streaming_preop`): the map phase's
    arguments, and the seconds from spawn to the getinfo reply."""
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as dispatch:
        process = Process(python, script, dispatch)
        info = process.getinfo(args)
        latency = time.perf_counter() - process.started
        process.finish()
    preop = info.get("streaming_preop")
    return (shlex.split(preop)[1:] if preop else []), latency


def run(python: str, script: str, args: Sequence[str], bodies: Iterable[bytes],
        final_body: bytes) -> Measurement:
    """Spawn, getinfo, every body as an execute chunk, then `final_body` as the finished chunk."""
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as dispatch:
        process = Process(python, script, dispatch)
        info = process.getinfo(args)
        getinfo = time.perf_counter() - process.started
        if info.get("finished"):
            raise scpv2.ProtocolError("refused at getinfo: %r" % process.messages)
        replies = []
        for body in bodies:
            meta, reply = process.request({"action": "execute", "finished": False}, body)
            replies.append(reply)
            if meta.get("finished"):
                raise scpv2.ProtocolError("finished early: %s" % process.stderr_tail())
        _, reply = process.request({"action": "execute", "finished": True}, final_body)
        replies.append(reply)
        hwm = vm_hwm_kb(process.popen.pid)
        code, cpu = process.finish()
        wall = time.perf_counter() - process.started
        if code != 0:
            raise scpv2.ProtocolError("exit %d: %s" % (code, process.stderr_tail()))
    return Measurement(cpu, wall, getinfo, hwm, replies, process.messages, code)


def reply_rows(replies: Sequence[bytes]) -> Tuple[Optional[List[str]], List[List[str]]]:
    """Header and rows of a phase's replies (every reply with rows starts with the same header)."""
    header: Optional[List[str]] = None
    rows: List[List[str]] = []
    for body in replies:
        if not body:
            continue
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        this = next(reader)
        if header is None:
            header = this
        elif this != header:
            raise scpv2.ProtocolError("reply headers differ: %r vs %r" % (header, this))
        rows.extend(reader)
    return header, rows


def encode_chunks(header: Sequence[str], rows: Sequence[Sequence[str]],
                  chunk_size: int) -> List[bytes]:
    """Rows re-chunked as splunkd feeds one phase's output to the next (`\\n` line ends)."""
    bodies = []
    for start in range(0, len(rows), chunk_size):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[start:start + chunk_size])
        bodies.append(out.getvalue().encode("utf-8"))
    return bodies
