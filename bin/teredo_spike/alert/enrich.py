"""One enriched event per result row: the row, ATT&CK context, decoded Teredo details, what to check."""
import hashlib
import math
import time
from typing import Dict, List, NamedTuple, Optional, Union

from .attack import Technique
from .results import Row

DEFAULT_TECHNIQUE_ID = "T1572"
NUMERIC_FIELDS = ("score", "risk_score", "packets", "bytes", "flows", "dests", "relay_packets",
                  "baseline_packets", "baseline_bytes", "episode_end", "episode_buckets")
MULTIVALUE_FIELDS = ("evidence", "client_ports", "teredo_servers", "relays", "mapped")
# Keys the enrichment owns; a result field of the same name does not override them.
OWN_KEYS = ("time", "event_id", "alert", "teredo", "analyst_checks")


class AlertInfo(NamedTuple):
    search_name: str
    sid: str
    app: str
    owner: str
    results_link: str


def event_id(sid: str, row_number: int, row: Row) -> str:
    """Stable across reruns of delivery: the same alert row always has the same id."""
    key = "\0".join([sid, str(row_number), _text(row.get("src")), _text(row.get("_time"))])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def enrich(row: Row, row_number: int, alert: AlertInfo, technique: Technique) -> dict:
    event = {"time": _epoch(row.get("_time")), "event_id": event_id(alert.sid, row_number, row)}
    for name, value in row.items():
        if name.startswith("_") or name in OWN_KEYS:
            continue
        if name in MULTIVALUE_FIELDS:
            value = _as_list(value)
        elif name in NUMERIC_FIELDS:
            value = _number(value)
        event[name] = value
    event.update({
        "mitre_technique_id": technique.technique_id,
        "mitre_technique": technique.name,
        "mitre_tactic": technique.tactics,
        "mitre_tactic_id": technique.tactic_ids,
        "mitre_tactic_name": technique.tactic_names,
        "mitre_url": technique.url,
        "mitre_description": technique.description,
        "mitre_mitigations": technique.mitigations,
        "mitre_data_components": technique.data_components,
        "mitre_detection_strategy": technique.detection_strategies,
        "attack_version": technique.attack_version,
    })
    event["teredo"] = teredo_details(row)
    event["analyst_checks"] = analyst_checks(row, event["teredo"])
    event["alert"] = {"search_name": alert.search_name, "sid": alert.sid, "app": alert.app,
                      "owner": alert.owner, "results_link": alert.results_link, "row": row_number}
    return event


def technique_id_of(row: Row) -> str:
    value = row.get("mitre_technique_id")
    return _as_list(value)[0] if value else DEFAULT_TECHNIQUE_ID


def teredo_details(row: Row) -> Dict[str, list]:
    """The Teredo client's port(s), servers, relays and the public address:port its Teredo address decodes to."""
    return {
        "client_ports": [_int(p) for p in _as_list(row.get("client_ports"))],
        "servers": _as_list(row.get("teredo_servers")),
        "relays": _as_list(row.get("relays")),
        "mapped": [_mapped(m) for m in _as_list(row.get("mapped"))],
    }


def analyst_checks(row: Row, teredo: Dict[str, list]) -> List[str]:
    """What an analyst should check next, following the detection's own guidance."""
    src = _text(row.get("src")) or "the source host"
    ports = ", ".join(str(p) for p in teredo["client_ports"]) or "its Teredo client port"
    checks = [
        "Source: on {} find the process that owns UDP port {} (Sysmon EventCode 3, EDR network "
        "telemetry, or netstat -ano -p udp); the Windows Teredo client runs in svchost (iphlpsvc), "
        "anything else tunnelling over Teredo is suspect.".format(src, ports),
        "Expected? Is Teredo expected for {}: check the app's Teredo allowlist and the asset owner; "
        "'netsh interface teredo show state' on the host shows whether its client is enabled.".format(src),
    ]
    if teredo["servers"]:
        checks.append("Destinations: Teredo server(s) {} on UDP 3544; are they well-known public "
                      "servers or unknown ones?".format(", ".join(teredo["servers"])))
    if teredo["relays"]:
        checks.append("Destinations: relays and peers {} carry the tunnel's volume; look them up in "
                      "threat intelligence and in proxy and firewall logs for the same window.".format(
                          ", ".join(teredo["relays"])))
    if teredo["mapped"]:
        checks.append("Public mapping decoded from the Teredo address: {}; it tells which NAT egress "
                      "the tunnel used.".format(", ".join(
                          "{}:{}".format(m["address"], m["port"]) for m in teredo["mapped"])))
    if row.get("reason"):
        checks.append("Volume against baseline: {}.".format(_text(row.get("reason")).rstrip(".")))
    checks.append("If Teredo is not expected: block outbound UDP 3544 and Teredo relays at the egress "
                  "(ATT&CK M1037) or disable the client by policy "
                  "('netsh interface teredo set state disabled').")
    return checks


def _mapped(value: str) -> Dict[str, Union[str, int]]:
    address, _, port = value.rpartition(":")
    return {"address": address, "port": _int(port)}


def _as_list(value: Union[None, str, List[str]]) -> List[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value: Union[None, str, List[str]]) -> str:
    return " ".join(_as_list(value))


def _int(value: str) -> Union[int, str]:
    try:
        return int(value)
    except ValueError:
        return value  # left as text: the event schema names the bad value


def _number(value: Union[str, List[str]]) -> Union[int, float, str, List[str]]:
    if isinstance(value, list):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value  # left as text: JSON has no NaN or infinity, and the schema names the value
    return int(number) if number.is_integer() and "." not in value else number


def _epoch(value: Optional[Union[str, List[str]]]) -> int:
    try:
        return int(float(_text(value)))
    except ValueError:
        return int(time.time())
