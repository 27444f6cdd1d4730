"""Readers of exported flow data, each yielding records: dicts of CIM Network_Traffic field names to
strings (a list of strings for a multivalue field), as Splunk would hand them to a search command.

One module per format; FORMATS maps a format name to its reader, `read_records` picks one by name or
by the file's name. A file that cannot be read raises InputError naming the file and line.
"""

import json
import os
import sys
from typing import Callable, Dict, Iterator, List

from tools.readers import jsonl, pcap, splunk_csv, suricata, zeek
from tools.readers.errors import InputError, Record, open_text

Reader = Callable[[str], Iterator[Record]]

FORMATS: Dict[str, Reader] = {
    "csv": splunk_csv.read,
    "jsonl": jsonl.read,
    "zeek": zeek.read,
    "eve": suricata.read,
    "pcap": pcap.read,
}

# File name endings (after any .gz) -> format. JSON is told apart by its first object.
SUFFIXES = {".csv": "csv", ".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl", ".log": "zeek",
            ".pcap": "pcap", ".pcapng": "pcap", ".cap": "pcap"}
# First bytes of pcap (both byte orders, micro- and nanosecond) and pcapng files.
CAPTURE_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                 b"\x0a\x0d\x0d\x0a")

__all__ = ["FORMATS", "InputError", "Record", "detect_format", "read_records"]


def _json_kind(path: str) -> str:
    """eve (Suricata), zeek (conn.log as JSON) or jsonl, from the first JSON object."""
    try:
        with open_text(path) as handle:
            for line in handle:
                if line.strip():
                    item = json.loads(line)
                    if isinstance(item, dict) and "event_type" in item:
                        return "eve"
                    if isinstance(item, dict) and "id.orig_h" in item:
                        return "zeek"
                    break
    except (OSError, ValueError):
        pass  # the reader reports what is wrong with the file, with its line
    return "jsonl"


def detect_format(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            if handle.read(4) in CAPTURE_MAGIC:
                return "pcap"
    except OSError:
        pass
    name = path[:-3] if path.endswith(".gz") else path
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUFFIXES:
        raise InputError(path, 0, "cannot tell the format from the name; pass --format (%s)"
                         % ", ".join(sorted(FORMATS)))
    if SUFFIXES[suffix] == "jsonl":
        return _json_kind(path)
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
