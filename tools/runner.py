#!/usr/bin/env python3
"""Run `| teredospike` over exported data exactly as splunkd does, and print what it found.

    python tools/runner.py samples/enterprise_week.csv.gz
    python tools/runner.py flows.jsonl --partitions 3 --output csv -- span=1h output=all

The command answers getinfo with its map phase (`streaming_preop`); the runner runs that phase over
`--partitions` slices of the input, as that many indexers would, and feeds their outputs to the
reduce phase, every process spoken to in lock-step through the chunked protocol.
"""

import argparse
import csv
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools import scpv2  # noqa: E402
from tools.readers import FORMATS, InputError, read_records  # noqa: E402

SCRIPT = os.path.join(ROOT, "bin", "teredospike.py")


class RunResult(NamedTuple):
    rows: List[scpv2.Record]
    messages: List[Tuple[str, str]]
    map_rows: int       # rows the map phase(s) passed to the reduce phase
    exit_codes: List[int]


def _drive(process: scpv2.CommandProcess, records: Sequence[scpv2.Record], chunk_size: int,
           fields: Sequence[str], chunk_index: bool = True) -> List[scpv2.Record]:
    """Send records in execute chunks, then a finished chunk holding only the header row;
    `chunk_index` numbers the records (splunkd does for a first phase, not for the reduce)."""
    encoder = scpv2.BodyEncoder(fields, chunk_index)
    rows = [[record.get(name, "") for name in fields] for record in records]
    replies = process.execute_all(encoder.chunks(rows, chunk_size), encoder.encode([]))
    return [record for reply in replies for record in scpv2.decode_body(reply)]


def run_search(records: Iterable[scpv2.Record], args: Sequence[str] = (), chunk_size: int = 2500,
               partitions: int = 1, python: Optional[str] = None,
               script: str = SCRIPT, earliest: float = 0, latest: float = 0) -> RunResult:
    """Run the command over `records` as a distributed search with `partitions` indexers, the
    records dealt round-robin to them. `earliest`/`latest` (epoch seconds, 0: unbounded) are the
    search's time range as getinfo's searchinfo gives it; the records are not filtered by it."""
    records = list(records)
    return run_partitioned([records[i::partitions] for i in range(partitions)], args, chunk_size,
                           python, script, earliest, latest)


def run_partitioned(parts: Sequence[Sequence[scpv2.Record]], args: Sequence[str] = (),
                    chunk_size: int = 2500, python: Optional[str] = None,
                    script: str = SCRIPT, earliest: float = 0, latest: float = 0) -> RunResult:
    """Run the command with one map-phase process per element of `parts` (as indexers holding
    those records), their outputs fed to one reduce-phase process (the search head)."""
    python = python or sys.executable
    fields = scpv2.field_order(record for part in parts for record in part)
    workdir = tempfile.mkdtemp(prefix="teredospike-dispatch-")
    messages: List[Tuple[str, str]] = []
    codes: List[int] = []
    try:
        reduce = scpv2.CommandProcess(script, python, workdir)
        info = reduce.getinfo(list(args), earliest, latest)
        if reduce.finished or reduce.errors:  # refused at getinfo: its messages say why
            codes.append(reduce.close())
            return RunResult([], reduce.messages, 0, codes)
        preop = info.get("streaming_preop")
        if preop:
            map_args = shlex.split(preop)[1:]
            reduce_input: List[scpv2.Record] = []
            for part in parts:
                mapper = scpv2.CommandProcess(script, python, workdir)
                mapper.getinfo(map_args, earliest, latest)
                reduce_input += _drive(mapper, part, chunk_size, fields)
                codes.append(mapper.close())
                messages += mapper.messages
            map_rows = len(reduce_input)
            reduce_fields = scpv2.field_order(reduce_input)
        else:
            reduce_input = [record for part in parts for record in part]
            map_rows, reduce_fields = 0, fields
        rows = _drive(reduce, reduce_input, chunk_size, reduce_fields, chunk_index=not preop)
        codes.append(reduce.close())
        messages += reduce.messages
        return RunResult(rows, messages, map_rows, codes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---- printing ------------------------------------------------------------------------------

TABLE_FIELDS = ("_time", "src", "severity", "score", "packets", "bytes", "dests", "evidence",
                "client_ports", "reason")
UNSAFE_CSV_START = ("=", "+", "-", "@")


TIME_FIELDS = ("_time", "episode_end")


def _cell(field: str, value: scpv2.Value) -> str:
    if isinstance(value, list):
        return " ".join(value)
    if field in TIME_FIELDS and value.isdigit():
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(value)))
    return value


def neutralise(text: str) -> str:
    """Spreadsheet-safe CSV cell: a leading = + - @ would start a formula."""
    return "'" + text if text.startswith(UNSAFE_CSV_START) else text


def print_table(rows: Sequence[scpv2.Record], out) -> None:
    if not rows:
        out.write("(no results)\n")
        return
    fields = [f for f in TABLE_FIELDS if f in rows[0]]
    cells = [[_cell(f, row.get(f, "")) for f in fields] for row in rows]
    widths = [min(max([len(f)] + [len(c[i]) for c in cells]), 60 if f != "reason" else 200)
              for i, f in enumerate(fields)]
    out.write("  ".join(f.ljust(w) for f, w in zip(fields, widths)).rstrip() + "\n")
    for c in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip() + "\n")


def print_csv(rows: Sequence[scpv2.Record], out) -> None:
    fields = scpv2.field_order(rows)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([neutralise("\n".join(v) if isinstance(v, list) else v)
                         for v in (row.get(f, "") for f in fields)])


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command_args: List[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command_args = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- go to teredospike, e.g. -- span=1h")
    parser.add_argument("inputs", nargs="+", help="exported flow records")
    parser.add_argument("--format", default="auto", choices=["auto"] + sorted(FORMATS))
    parser.add_argument("--chunk-size", type=int, default=2500,
                        help="records per execute chunk (splunkd: 2,500 on indexers; default 2500)")
    parser.add_argument("--partitions", type=int, default=1,
                        help="map-phase processes, as indexers in a distributed search (default 1)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run the command")
    parser.add_argument("--output", default="table", choices=("table", "csv", "json"))
    parser.add_argument("--earliest", type=float, default=0,
                        help="the search's earliest time, epoch seconds, as getinfo's searchinfo "
                             "gives it (output=buckets owns buckets by it; default 0: unbounded)")
    parser.add_argument("--latest", type=float, default=0,
                        help="the search's latest time, epoch seconds (default 0: unbounded)")
    options = parser.parse_args(argv)
    if options.chunk_size < 1 or options.partitions < 1:
        parser.error("--chunk-size and --partitions must be at least 1")

    records: List[scpv2.Record] = []
    try:
        for path in options.inputs:
            records += read_records(path, options.format, progress=sys.stderr.isatty())
    except InputError as error:
        sys.stderr.write("error: %s\n" % error)
        return 2
    try:
        result = run_search(records, command_args, options.chunk_size, options.partitions,
                            options.python, earliest=options.earliest, latest=options.latest)
    except scpv2.ProtocolError as error:
        sys.stderr.write("error: the command broke the protocol: %s\n" % error)
        return 3
    for level, text in result.messages:
        sys.stderr.write("%s: %s\n" % (level, text))
    if options.output == "json":
        for row in result.rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
    elif options.output == "csv":
        print_csv(result.rows, sys.stdout)
    else:
        print_table(result.rows, sys.stdout)
        sys.stderr.write("%d result rows from %d records (%d map-phase rows).\n"
                         % (len(result.rows), len(records), result.map_rows))
    return 0 if all(code == 0 for code in result.exit_codes) else 1


if __name__ == "__main__":
    sys.exit(main())
