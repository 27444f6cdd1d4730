"""JSON lines: one object per line, e.g. `splunk search ... -output json` or a SIEM export.
Values are turned into strings as Splunk would hold them; a list is a multivalue field. A Splunk
export line `{"result": {...}}` is unwrapped."""

import gzip
import json
from typing import Iterator

from tools.readers.errors import InputError, Record, json_object, open_text


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read(path: str) -> Iterator[Record]:
    number = 0
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if not line:
                    continue
                item = json_object(path, number, line)
                if isinstance(item.get("result"), dict):
                    item = item["result"]
                record: Record = {}
                for key, value in item.items():
                    if value is None:
                        continue
                    if isinstance(value, list):
                        record[key] = [_text(v) for v in value]
                    elif isinstance(value, dict):
                        record[key] = json.dumps(value, sort_keys=True)
                    else:
                        record[key] = _text(value)
                yield record
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(path, number, "cannot read (%s)" % error)
