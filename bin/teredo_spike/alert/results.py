"""The search results splunkd hands to an alert: a gzipped CSV where every field F has a __mv_F twin.

A multivalue cell is encoded in __mv_F as $v1$;$v2$ (a literal $ doubled); an empty cell means absent.
"""
import csv
import gzip
import io
import os
import zlib
from typing import Dict, List, Union

from .. import multivalue

# Alert results are small (one row per spike episode); these bound memory against a wrong file.
MAX_RESULTS_FILE_BYTES = 64 * 1024 * 1024
MAX_RESULTS_CSV_BYTES = 256 * 1024 * 1024
MAX_CELL_BYTES = 1024 * 1024

Value = Union[str, List[str]]
Row = Dict[str, Value]


class ResultsError(Exception):
    """The results file cannot be read; the message says why."""


def dispatch_directory() -> str:
    """$SPLUNK_HOME/var/run/splunk/dispatch, where splunkd keeps each search's results."""
    splunk_home = os.environ.get("SPLUNK_HOME")
    if not splunk_home:
        raise ResultsError("SPLUNK_HOME is not set: the dispatch directory that results_file must be "
                           "in is unknown")
    return os.path.join(splunk_home, "var", "run", "splunk", "dispatch")


def confined(path: str) -> str:
    """path with its symbolic links and '..' resolved, when that is inside the dispatch directory.

    The payload names the file to read; confined to the searches' results, an edited payload cannot
    make the action read (and deliver) another file.
    """
    dispatch = os.path.realpath(dispatch_directory())
    real = os.path.realpath(path)
    if os.path.commonpath([dispatch, real]) != dispatch or real == dispatch:
        raise ResultsError("results_file {} is outside the dispatch directory {}: refused".format(
            path, dispatch))
    return real


def read_results(path: str) -> List[Row]:
    """Rows as dicts: single values as str, multivalues as lists; absent fields left out. Only a
    file inside the dispatch directory is read."""
    path = confined(path)
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ResultsError("results_file {} cannot be read: {}".format(path, e.strerror or e))
    if size > MAX_RESULTS_FILE_BYTES:
        raise ResultsError("results_file {} is {} bytes, more than the {} an alert reads".format(
            path, size, MAX_RESULTS_FILE_BYTES))
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_RESULTS_CSV_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise ResultsError("results_file {} is not a readable gzip file: {}".format(path, e))
    if len(data) > MAX_RESULTS_CSV_BYTES:
        raise ResultsError("results_file {} holds more than {} bytes of CSV".format(
            path, MAX_RESULTS_CSV_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultsError("results_file {} is not UTF-8 CSV: {}".format(path, e))
    return _parse_csv(path, text)


def _parse_csv(path: str, text: str) -> List[Row]:
    csv.field_size_limit(MAX_CELL_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            return []  # a search with no results
        mv_columns = {name[len("__mv_"):]: i for i, name in enumerate(header) if name.startswith("__mv_")}
        plain_columns = [(name, i) for i, name in enumerate(header) if not name.startswith("__mv_")]
        rows = []
        for values in reader:
            if len(values) != len(header):
                raise ResultsError("results_file {} line {}: {} cells under a header of {}".format(
                    path, reader.line_num, len(values), len(header)))
            row: Row = {}
            for name, i in plain_columns:
                mv_index = mv_columns.get(name)
                if mv_index is not None and values[mv_index]:
                    row[name] = _multivalue(values[mv_index], values[i])
                elif values[i]:
                    row[name] = values[i]
            rows.append(row)
        return rows
    except csv.Error as e:
        raise ResultsError("results_file {} line {}: {}".format(path, reader.line_num, e))


def _multivalue(mv_cell: str, plain_cell: str) -> List[str]:
    """A multivalue field's values; when its `__mv_` cell is not in splunkd's encoding, the plain
    cell's newline-joined values (the same values, as splunkd writes both)."""
    try:
        return multivalue.decode(mv_cell)
    except ValueError:
        return plain_cell.split("\n")
