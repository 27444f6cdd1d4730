"""What every reader shares: the record type and the error that names file and line."""

import gzip
import io
import json
from typing import Dict, Iterator, List, Tuple, Union

Record = Dict[str, Union[str, List[str]]]


class InputError(ValueError):
    def __init__(self, path: str, line: int, message: str) -> None:
        where = "%s, line %d" % (path, line) if line else path
        super().__init__("%s: %s" % (where, message))
        self.path = path
        self.line = line


def open_text(path: str) -> io.TextIOBase:
    """Open a text file, gunzipping `.gz`; bad bytes become U+FFFD rather than a crash."""
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace",
                                newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def json_lines(path: str) -> Iterator[Tuple[int, dict]]:
    """(line number, object) for each non-empty line of a JSON-lines file (gzipped or not)."""
    number = 0
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if line:
                    yield number, json_object(path, number, line)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(path, number, "cannot read (%s)" % error)


def json_object(path: str, number: int, line: str) -> dict:
    """One line of a JSON-lines file, which must hold an object."""
    try:
        item = json.loads(line)
    except ValueError as error:
        raise InputError(path, number, "not JSON (%s)" % error)
    if not isinstance(item, dict):
        raise InputError(path, number, "expected a JSON object")
    return item
