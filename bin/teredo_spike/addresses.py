"""Internal networks, and Teredo addresses (RFC 4380 section 4).

A Teredo address is ``2001:0000:SSSS:SSSS:FFFF:PPPP:CCCC:CCCC``:

- ``S`` the Teredo server's IPv4 address,
- ``F`` flags (bit 0x8000 was "cone"; RFC 5991 randomises most of the others),
- ``P`` the client's public (mapped) UDP port, bit-inverted,
- ``C`` the client's public (mapped) IPv4 address, bit-inverted.

Only 2001:0000::/32 is Teredo; the rest of 2001::/16 is ordinary global unicast. Python's
``ipaddress`` calls parts of 2001::/23 "private", so ``is_private`` is never used here.
"""

import ipaddress
from typing import Iterable, List, NamedTuple, Optional, Union

TEREDO_PREFIX = ipaddress.IPv6Network("2001::/32")
TEREDO_SERVER_PORT = 3544

DEFAULT_INTERNAL = (
    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,169.254.0.0/16,fc00::/7,fe80::/10"
)

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class TeredoAddress(NamedTuple):
    server: str
    flags: int
    mapped_ip: str
    mapped_port: int

    @property
    def mapped(self) -> str:
        return "%s:%d" % (self.mapped_ip, self.mapped_port)


def decode_teredo(address: str) -> Optional[TeredoAddress]:
    """Decode a Teredo address; None for anything that is not inside 2001:0000::/32."""
    # Cheap text test first: this runs on every IPv6 value a chunk carries.
    if not address or not address[:5].lower() == "2001:":
        return None
    try:
        ip = ipaddress.IPv6Address(address.strip())
    except ValueError:
        return None
    if ip not in TEREDO_PREFIX:
        return None
    value = int(ip)
    server = ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF)
    flags = (value >> 48) & 0xFFFF
    port = ((value >> 32) & 0xFFFF) ^ 0xFFFF
    client = ipaddress.IPv4Address((value & 0xFFFFFFFF) ^ 0xFFFFFFFF)
    return TeredoAddress(str(server), flags, str(client), port)


def encode_teredo(server: str, flags: int, mapped_ip: str, mapped_port: int) -> str:
    """The Teredo address for a server, flags and mapped address (the inverse of decode_teredo)."""
    value = (0x20010000 << 96)
    value |= int(ipaddress.IPv4Address(server)) << 64
    value |= (flags & 0xFFFF) << 48
    value |= ((mapped_port & 0xFFFF) ^ 0xFFFF) << 32
    value |= int(ipaddress.IPv4Address(mapped_ip)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address(value))


class Networks:
    """A list of CIDR networks and its membership test. The test is not cached here: the
    aggregator memoises it per address, bounded, where millions of records repeat few hosts."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks: List[IPNetwork] = list(networks)
        self._v4 = [n for n in self.networks if n.version == 4]
        self._v6 = [n for n in self.networks if n.version == 6]
        self._v4_ranges = [(int(n.network_address), int(n.broadcast_address)) for n in self._v4]

    @classmethod
    def parse(cls, text: str) -> "Networks":
        """Parse a comma-separated CIDR list; raises ValueError naming the bad entry."""
        networks = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError("%r is not an IPv4 or IPv6 network in CIDR notation" % part)
        if not networks:
            raise ValueError("the list of internal networks is empty")
        return cls(networks)

    def contains(self, address: str) -> Optional[bool]:
        """True if inside, False if outside, None if `address` is not an IP address."""
        value = _ipv4_value(address)
        if value is not None:
            return any(low <= value <= high for low, high in self._v4_ranges)
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return None
        networks = self._v4 if ip.version == 4 else self._v6
        return any(ip in network for network in networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)


def _ipv4_value(address: str) -> Optional[int]:
    """A plain dotted quad's value, read without `ipaddress` (several times faster, and most
    addresses in flow records are such); None for anything else, which `ipaddress` then judges."""
    parts = address.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isdigit() and part.isascii()) or len(part) > 3 or (
                part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value
