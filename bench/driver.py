"""Drive one command process through the chunked protocol and measure it from outside.

The driver plays splunkd with the protocol client of tools/scpv2.py (`CommandProcess`): spawn
with argv = [script] only, getinfo, execute chunks in lock-step, a final `finished` chunk holding
only the header row. Chunk bodies come pre-encoded (bench/workload.py), so the driver only copies
bytes. What it measures:

- CPU seconds of the command process: user + system from its rusage (os.wait4), whole life;
- wall seconds from spawn to exit;
- seconds from spawn to the getinfo reply;
- peak RSS: VmHWM from /proc/<pid>/status, read after the final reply while the process still
  waits for input (so it includes the end-of-input work).
"""

import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Collection, Dict, List, NamedTuple, Optional, Sequence, Tuple

from tools import scpv2


class Measurement(NamedTuple):
    cpu: float                # user + system seconds of the command process
    wall: float               # spawn to exit
    getinfo: float            # spawn to getinfo reply
    vm_hwm_kb: int            # peak resident set (VmHWM) read while the process lived
    replies: List[bytes]      # execute reply bodies
    messages: List[Tuple[str, str]]
    exit_code: int


def pyenv_python(version: str) -> str:
    """The interpreter of a pyenv version (Splunk's Pythons are on these machines through pyenv)."""
    prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True,
                            check=True).stdout.strip()
    return os.path.join(prefix, "bin", "python3")


def python_version(python: str) -> str:
    """The version of the interpreter `python`, e.g. 3.9.18."""
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()

def log(text: str) -> None:
    """A progress line on stderr (stdout may be a report)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def preop_args(python: str, script: str, args: Sequence[str]) -> Tuple[List[str], float]:
    """Ask a search-head process for its map phase (getinfo `streaming_preop`): the map phase's
    arguments, and the seconds from spawn to the getinfo reply."""
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as dispatch:
        process = scpv2.CommandProcess(script, python, dispatch)
        info = process.getinfo(args)
        latency = time.perf_counter() - process.started
        process.close()
    preop = info.get("streaming_preop")
    return (shlex.split(preop)[1:] if preop else []), latency


def run(python: str, script: str, args: Sequence[str], bodies: Collection[bytes],
        final_body: bytes, times: Optional[Tuple[int, int]] = None,
        env: Optional[Dict[str, str]] = None) -> Measurement:
    """Spawn, getinfo, every body as an execute chunk, then `final_body` as the finished chunk.
    `times`: the search's (earliest, latest) in getinfo; `env`: the process's environment."""
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as dispatch:
        process = scpv2.CommandProcess(script, python, dispatch, env)
        if times is None:
            process.getinfo(args)
        else:
            process.getinfo(args, earliest=times[0], latest=times[1])
        getinfo = time.perf_counter() - process.started
        if process.finished:
            raise scpv2.ProtocolError("refused at getinfo: %r" % process.messages)
        replies = process.execute_all(bodies, final_body)
        if len(replies) != len(bodies) + 1:
            raise scpv2.ProtocolError("finished early: %s" % process.stderr_tail())
        hwm = process.peak_rss_kb()
        code = process.close()
        wall = time.perf_counter() - process.started
        if code != 0:
            raise scpv2.ProtocolError("exit %d: %s" % (code, process.stderr_tail()))
    return Measurement(process.cpu_seconds, wall, getinfo, hwm, replies, process.messages, code)


def reply_rows(replies: Sequence[bytes]) -> Tuple[List[str], List[List[scpv2.Value]]]:
    """Fields and rows of a phase's replies (every reply with a body has the same fields)."""
    fields: Optional[List[str]] = None
    rows: List[List[scpv2.Value]] = []
    for body in replies:
        if not body:
            continue
        these, more = scpv2.decode_rows(body)
        if fields is None:
            fields = these
        elif these != fields:
            raise scpv2.ProtocolError("reply fields differ: %r vs %r" % (fields, these))
        rows.extend(more)
    return fields or [], rows


def next_phase_bodies(replies: Sequence[bytes], chunk_size: int
                      ) -> Tuple[List[bytes], bytes, int]:
    """A phase's output re-chunked as splunkd feeds it to the next phase (no `_chunked_idx`, as in
    the recorded sum.reduce.input): the bodies, the final header-only body, the rows."""
    fields, rows = reply_rows(replies)
    encoder = scpv2.BodyEncoder(fields, chunk_index=False)
    return list(encoder.chunks(rows, chunk_size)), encoder.encode([]), len(rows)
