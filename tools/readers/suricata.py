"""Suricata `eve.json` flow events (`event_type: flow`; other events are passed over), mapped to CIM
Network_Traffic as Splunk's add-on for Suricata does:

    src_ip, src_port, dest_ip, dest_port as they are     proto -> transport (lower case)
    app_proto -> app (app_proto kept)                    flow.start -> _time (epoch seconds)
    flow.bytes_toserver -> bytes_out   flow.pkts_toserver -> packets_out
    flow.bytes_toclient -> bytes_in    flow.pkts_toclient -> packets_in

Suricata keeps the direction of the first packet it saw (a Teredo server's lone answer is logged as
server -> client) and counts bytes of whole frames; both are left as Suricata logged them.

Teredo. Suricata decodes Teredo on `decoder.teredo.ports` (default 3544) and logs the IPv6 inside as
flows of their own, with nothing in the event that names the outer flow. This reader maps them back:
for each Teredo address (2001:0000::/32) of an inner IPv6 flow, the outer flow is the IPv4 UDP flow
that overlaps it in time and runs between the address's Teredo server on port 3544 and a client
port equal to the address's mapped port (a NAT that keeps ports, as in the reference captures); if
no flow has that client port but exactly one overlapping flow reaches that server, that one. The
address then goes into the outer flow's `inner_src_ip` / `inner_dest_ip`. Addresses that match no
outer flow, or several, are left unmapped (the inner flows are still yielded, as Splunk holds them).
"""

import ipaddress
from datetime import datetime
from typing import Dict, Iterator, List, Optional

from tools.readers.errors import InputError, Record, json_lines

TEREDO_PREFIX = ipaddress.IPv6Network("2001::/32")
TEREDO_SERVER_PORT = "3544"


def epoch(text: str) -> float:
    """Suricata's "2008-05-16T15:50:58.577231+0000" as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def teredo_parts(address: str) -> Optional[tuple]:
    """(server IPv4, mapped port) of a Teredo address, else None."""
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return None
    if ip not in TEREDO_PREFIX:
        return None
    value = int(ip)
    return str(ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF)), ((value >> 32) & 0xFFFF) ^ 0xFFFF


def _flow_record(path: str, number: int, event: dict) -> Record:
    flow = event.get("flow")
    if not isinstance(flow, dict) or "start" not in flow:
        raise InputError(path, number, "flow event without flow.start")
    try:
        start, end = epoch(flow["start"]), epoch(flow.get("end", flow["start"]))
    except (TypeError, ValueError):
        raise InputError(path, number, "flow.start %r is not a Suricata time" % (flow["start"],))
    record: Record = {"_time": "%.6f" % start, "duration": "%.6f" % (end - start)}
    for name in ("src_ip", "src_port", "dest_ip", "dest_port", "app_proto", "flow_id"):
        if event.get(name) not in (None, ""):
            record[name] = str(event[name])
    if event.get("proto"):
        record["transport"] = str(event["proto"]).lower()
    if "app_proto" in record:
        record["app"] = record["app_proto"]
    for source, target in (("bytes_toserver", "bytes_out"), ("pkts_toserver", "packets_out"),
                           ("bytes_toclient", "bytes_in"), ("pkts_toclient", "packets_in")):
        if flow.get(source) is not None:
            record[target] = str(flow[source])
    return record


def _outer_flow(candidates: List[Record], server: str, port: int, start: float,
                end: float) -> Optional[Record]:
    near = []
    for outer in candidates:
        o_start = float(outer["_time"])  # type: ignore[arg-type]
        o_end = o_start + float(outer["duration"])  # type: ignore[arg-type]
        if o_end < start or o_start > end:
            continue
        ends = {(outer.get("src_ip"), outer.get("src_port")),
                (outer.get("dest_ip"), outer.get("dest_port"))}
        if (server, TEREDO_SERVER_PORT) in ends:
            near.append((outer, ends))
    by_port = [outer for outer, ends in near if any(p == str(port) for _, p in ends)]
    if len(by_port) == 1:
        return by_port[0]
    if not by_port and len(near) == 1:
        return near[0][0]
    return None


def read(path: str) -> Iterator[Record]:
    records = [_flow_record(path, number, event) for number, event in json_lines(path)
               if event.get("event_type") == "flow"]

    outers = [r for r in records if r.get("transport") == "udp" and "." in str(r.get("src_ip", ""))]
    for record in records:
        src, dest = str(record.get("src_ip", "")), str(record.get("dest_ip", ""))
        if ":" not in src:
            continue
        start = float(record["_time"])  # type: ignore[arg-type]
        end = start + float(record["duration"])  # type: ignore[arg-type]
        for address, field in ((src, "inner_src_ip"), (dest, "inner_dest_ip")):
            parts = teredo_parts(address)
            if parts is None:
                continue
            outer = _outer_flow(outers, parts[0], parts[1], start, end)
            if outer is None:
                continue
            # Seen from the outer flow's originator: its own Teredo address is a source.
            values: Dict[str, List[str]] = outer  # type: ignore[assignment]
            values.setdefault(field, [])
            if address not in values[field]:
                values[field].append(address)
    return iter(records)
