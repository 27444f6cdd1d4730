"""Teredo evidence of one flow record (docs/splunk-protocol-notes.md lists the fields it reads).

Evidence kinds are bit flags so that aggregates merge them with `|`:

- LABEL        an application/service field names Teredo (`app=teredo`, Zeek `service=teredo`,
               `Tunnel::TEREDO`)
- PREFIX       a Teredo address (2001:0000::/32) in the record's IPv6 address fields
- PORT         UDP to destination port 3544, where Teredo servers listen
- CLIENT_PORT  traffic from a live Teredo client port; decided when buckets are merged
               (cells.py), never from one record
"""

from typing import List, Sequence

from .addresses import TEREDO_SERVER_PORT, TeredoAddress, decode_teredo

LABEL = 1
PREFIX = 2
PORT = 4
CLIENT_PORT = 8

NAMES = ((LABEL, "label"), (PREFIX, "prefix"), (PORT, "port"), (CLIENT_PORT, "client_port"))

SERVER_PORT_TEXT = str(TEREDO_SERVER_PORT)


def names(mask: int) -> List[str]:
    """The evidence kinds in `mask`, strongest first."""
    return [name for bit, name in NAMES if mask & bit]


def is_teredo_label(value: str) -> bool:
    return "teredo" in value.lower()


def names_teredo(label_cells: Sequence[str], inner_cells: Sequence[str]) -> bool:
    """May a record carry evidence of its own? Only if it goes to SERVER_PORT_TEXT or this holds
    of its label and inner-address cells: a label naming Teredo, or an inner IPv6 address
    (record_evidence decides). The readers test the port, then this through a memo table
    (records.TeredoHints); tests/test_evidence.py holds it to record_evidence."""
    return any(cell and is_teredo_label(cell) for cell in label_cells) or any(inner_cells)


def record_evidence(labels: Sequence[str], dest_port: str, own_addresses: Sequence[str],
                    peer_addresses: Sequence[str], teredo_addresses: List[TeredoAddress]) -> int:
    """Evidence mask of one outbound UDP record. `own_addresses` are the IPv6 sources inside the
    flow (the host's own Teredo address, decoded into `teredo_addresses`: its server and its public
    address); `peer_addresses` the IPv6 destinations (a Teredo peer's address is evidence too, but
    its server and mapped address are the peer's, not the host's)."""
    mask = 0
    for label in labels:
        if label and is_teredo_label(label):
            mask |= LABEL
            break
    if dest_port == SERVER_PORT_TEXT:
        mask |= PORT
    for value in own_addresses:
        decoded = decode_teredo(value)
        if decoded is not None:
            mask |= PREFIX
            teredo_addresses.append(decoded)
    if not mask & PREFIX:
        for value in peer_addresses:
            if decode_teredo(value) is not None:
                mask |= PREFIX
                break
    return mask
