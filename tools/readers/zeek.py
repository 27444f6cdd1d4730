"""Zeek `conn.log`, as TSV (the `#fields` header) or JSON lines, mapped to CIM Network_Traffic as
Splunk's add-on for Zeek does:

    id.orig_h -> src_ip      id.orig_p -> src_port    id.resp_h -> dest_ip    id.resp_p -> dest_port
    proto -> transport       service -> app (service kept)                    ts -> _time
    orig_bytes -> bytes_out  orig_pkts -> packets_out resp_bytes -> bytes_in  resp_pkts -> packets_in

Tunnels. Zeek logs the connection inside a tunnel (e.g. IPv6 inside Teredo) as its own row whose
`tunnel_parents` names the outer connection's `uid`. The Teredo addresses (2001:0000::/32) of such an
inner connection are put into its UDP parent's `inner_src_ip` / `inner_dest_ip`, so that the outer
flow carries them as a capture's flow would. If a `tunnel.log` lies beside the conn.log (same name
with `conn` replaced by `tunnel`), an outer connection it lists as `Tunnel::TEREDO` gets
`tunnel_type=Tunnel::TEREDO`: Zeek withholds `service=teredo` until it has seen Teredo both ways,
but it still decapsulates (and logs the tunnel of) a server's lone answer.

Unset (`-`) and empty (`(empty)`) fields are left out. `ts` is epoch seconds or ISO 8601 (JSON
logs may have either); any other `ts` is an error naming the file and line, unless the caller passes
`masked_time_ok=True` (Zeek's test baselines print `XXXXXXXXXX.XXXXXX`): then the record has no
`_time` and the caller supplies one.
"""

import gzip
import os
from datetime import datetime
from typing import Dict, Iterator, List, Optional

from tools.readers.errors import InputError, Record, json_object, open_text

CIM_NAMES = {
    "id.orig_h": "src_ip", "id.orig_p": "src_port", "id.resp_h": "dest_ip",
    "id.resp_p": "dest_port", "proto": "transport", "orig_bytes": "bytes_out",
    "orig_pkts": "packets_out", "resp_bytes": "bytes_in", "resp_pkts": "packets_in",
}
KEPT = ("uid", "service", "duration", "conn_state", "orig_ip_bytes", "resp_ip_bytes")
TEREDO_TUNNEL = "Tunnel::TEREDO"


def _is_teredo(address: str) -> bool:
    # 2001:0000::/32; Zeek prints addresses compressed ("2001:0:4137:...").
    parts = address.lower().split(":")
    return len(parts) > 2 and parts[0] == "2001" and parts[1] in ("0", "0000")


def _unescape(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("unicode_escape")


def read_log(path: str) -> Iterator[tuple]:
    """(line number, dict of Zeek field -> str or list of str) for each entry of a Zeek log in
    TSV or JSON lines; unset and empty fields are left out."""
    separator, set_separator, empty, unset = "\t", ",", "(empty)", "-"
    fields: Optional[List[str]] = None
    types: Dict[str, str] = {}
    number = 0
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                if line.startswith("{"):
                    yield number, _json_entry(path, number, line)
                    continue
                if line.startswith("#"):
                    # "#separator \x09" is the one header line split by a space.
                    split_by = " " if line.startswith("#separator") else separator
                    key, _, value = line[1:].partition(split_by)
                    if key == "separator":
                        separator = _unescape(value)
                    elif key == "set_separator":
                        set_separator = value
                    elif key == "empty_field":
                        empty = value
                    elif key == "unset_field":
                        unset = value
                    elif key == "fields":
                        fields = value.split(separator)
                    elif key == "types" and fields:
                        types = dict(zip(fields, value.split(separator)))
                    continue
                if fields is None:
                    raise InputError(path, number, "not a Zeek log: data before the #fields header")
                cells = line.split(separator)
                if len(cells) != len(fields):
                    raise InputError(path, number, "%d fields where #fields names %d"
                                     % (len(cells), len(fields)))
                entry: Dict[str, object] = {}
                for name, cell in zip(fields, cells):
                    if cell in (unset, empty):
                        continue
                    kind = types.get(name, "")
                    if kind.startswith(("set[", "vector[")):
                        entry[name] = cell.split(set_separator)
                    else:
                        entry[name] = cell
                yield number, entry
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(path, number, "cannot read (%s)" % error)


def _json_entry(path: str, number: int, line: str) -> Dict[str, object]:
    item = json_object(path, number, line)
    entry: Dict[str, object] = {}
    for name, value in item.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            entry[name] = [str(v) for v in value]
        elif isinstance(value, float) and name != "ts" and value.is_integer():
            entry[name] = str(int(value))
        else:
            entry[name] = str(value)
    return entry


def epoch(ts: object) -> float:
    """Zeek's ts: epoch seconds, or ISO 8601 (JSON logs with JSON::TS_ISO8601)."""
    text = str(ts)
    try:
        return float(text)
    except ValueError:
        return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def tunnel_log_beside(path: str) -> Optional[str]:
    """`tunnel.log` (or `tunnel.<...>.log[.gz]`) in the conn.log's directory, if there is one."""
    folder, name = os.path.split(path)
    if "conn" not in name:
        return None
    candidate = os.path.join(folder, name.replace("conn", "tunnel", 1))
    return candidate if os.path.exists(candidate) else None


def teredo_tunnel_uids(path: str) -> set:
    return {str(entry.get("uid")) for _, entry in read_log(path)
            if entry.get("tunnel_type") == TEREDO_TUNNEL and entry.get("uid")}


def read(path: str, masked_time_ok: bool = False,
         tunnel_log: Optional[str] = "beside") -> Iterator[Record]:
    """CIM records of a conn.log. `tunnel_log`: "beside" (look next to the file), a path, or None."""
    if tunnel_log == "beside":
        tunnel_log = tunnel_log_beside(path)
    tunnels = teredo_tunnel_uids(tunnel_log) if tunnel_log else set()

    # Inner connections may be logged before or after their parents: two passes over memory.
    records: List[Record] = []
    by_uid: Dict[str, Record] = {}
    inner: List[tuple] = []  # (parent uids, orig_h, resp_h)
    for number, entry in read_log(path):
        if "id.orig_h" not in entry:
            raise InputError(path, number, "not a conn.log entry (no id.orig_h)")
        record: Record = {}
        ts = entry.get("ts")
        try:
            record["_time"] = "%.6f" % epoch(ts)
        except (TypeError, ValueError):
            if not masked_time_ok:
                raise InputError(path, number, "ts=%r is not a time in epoch seconds" % (ts,))
        for zeek_name, cim_name in CIM_NAMES.items():
            if zeek_name in entry:
                record[cim_name] = str(entry[zeek_name])
        for name in KEPT:
            if name in entry:
                record[name] = entry[name]  # type: ignore[assignment]
        if "service" in entry:
            record["app"] = entry["service"]  # type: ignore[assignment]
        uid = str(entry.get("uid", ""))
        if uid in tunnels:
            record["tunnel_type"] = TEREDO_TUNNEL
        parents = entry.get("tunnel_parents")
        if parents:
            parents = parents if isinstance(parents, list) else str(parents).split(",")
            inner.append((parents, str(entry["id.orig_h"]), str(entry.get("id.resp_h", ""))))
        if uid:
            by_uid[uid] = record
        records.append(record)

    for parents, orig_h, resp_h in inner:
        for uid in parents:
            outer = by_uid.get(uid)
            if outer is None or outer.get("transport") != "udp":
                continue
            for address, field in ((orig_h, "inner_src_ip"), (resp_h, "inner_dest_ip")):
                if _is_teredo(address):
                    values = outer.setdefault(field, [])
                    if address not in values:
                        values.append(address)  # type: ignore[union-attr]
    return iter(records)
