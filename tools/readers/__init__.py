"""Readers of exported flow data, each yielding records: dicts of CIM Network_Traffic field names to
strings (a list of strings for a multivalue field), as Splunk would hand them to a search command.

One module per format; FORMATS maps a format name to its reader, `read_records` picks one by name or
by the file's name. A file that cannot be read raises InputError naming the file and line.
"""

import os
import sys
from typing import Callable, Dict, Iterator, List

from tools.readers import jsonl, splunk_csv
from tools.readers.errors import InputError, Record

Reader = Callable[[str], Iterator[Record]]

FORMATS: Dict[str, Reader] = {
    "csv": splunk_csv.read,
    "jsonl": jsonl.read,
}

# File name endings (after any .gz) -> format.
SUFFIXES = {".csv": "csv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl"}

__all__ = ["FORMATS", "InputError", "Record", "detect_format", "read_records"]


def detect_format(path: str) -> str:
    name = path[:-3] if path.endswith(".gz") else path
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUFFIXES:
        raise InputError(path, 0, "cannot tell the format from the name; pass --format (%s)"
                         % ", ".join(sorted(FORMATS)))
    return SUFFIXES[suffix]


def read_records(path: str, fmt: str = "auto", progress: bool = False) -> List[Record]:
    """All records of one file. With `progress`, a running count goes to stderr."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise InputError(path, 0, "unknown format %r (known: %s)" % (fmt, ", ".join(sorted(FORMATS))))
    if not os.path.exists(path):
        raise InputError(path, 0, "no such file")
    records = []
    for record in FORMATS[fmt](path):
        records.append(record)
        if progress and len(records) % 100000 == 0:
            sys.stderr.write("\r%s: %s records read" % (path, "{:,}".format(len(records))))
    if progress and len(records) >= 100000:
        sys.stderr.write("\r%s: %s records read\n" % (path, "{:,}".format(len(records))))
    return records
