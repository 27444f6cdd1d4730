"""JSON lines: one object per line, e.g. `splunk search ... -output json` or a SIEM export.
Values are turned into strings as Splunk would hold them; a list is a multivalue field. A Splunk
export line `{"result": {...}}` is unwrapped."""

import json
from typing import Iterator

from tools.readers.errors import Record, json_lines


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read(path: str) -> Iterator[Record]:
    for _, item in json_lines(path):
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
