"""Where the action may send: a well-formed http(s) URL with a valid port, and, for the webhook, a
host that is not a link-local, loopback or metadata address unless the configuration allows it.

The webhook is configured by whoever can edit an alert: without this rule it could reach splunkd's
own management port or a cloud instance's metadata service (server-side request forgery). The rule
(private_kind) is applied twice:
- before anything is sent (check_webhook_host), so that a bad setting ends the run with one ERROR
  line and no event half-delivered;
- on every connection to the webhook (public_addresses, from delivery's webhook session), on the
  addresses actually connected to. A name is resolved again when it is connected to, and the answer
  can differ from the first (DNS rebinding: public when checked, 127.0.0.1 when connected); a name
  that did not resolve when checked is checked here once it does. A refusal then fails that delivery
  and its events are spooled, like any delivery that fails.
"""
import ipaddress
import socket
from typing import List, Optional, Tuple, Union
from urllib.parse import urlsplit

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# AWS's IPv6 metadata service (its IPv4 one, 169.254.169.254, is link-local).
METADATA_ADDRESSES = (ipaddress.ip_address("fd00:ec2::254"),)
LOCALHOST_NAMES = ("localhost", "localhost.localdomain")
# The setting a webhook refusal names, before sending and when connecting.
WEBHOOK_SETTING = "configuration.webhook_url"


class DestinationError(Exception):
    """The URL cannot or may not be used; the message names the setting, never the URL's path."""


def check_url(setting: str, url: str) -> None:
    """An http(s) URL with a host and, if given, a port in 1-65535."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for "99999" or "80a"
    except ValueError as e:
        raise DestinationError("{}: not a usable URL ({})".format(setting, e))
    if parts.scheme not in ("http", "https"):
        raise DestinationError("{}: must start with https:// (or http://)".format(setting))
    if not parts.hostname:
        raise DestinationError("{}: no host name in the URL".format(setting))
    if port == 0:
        raise DestinationError("{}: port 0 is not a port a server listens on".format(setting))


def check_webhook_host(setting: str, url: str) -> None:
    """Refuse a host that is, or resolves to, a link-local, loopback, unspecified or metadata address.

    Every address the name resolves to is checked. A name that does not resolve now is let through,
    so that a DNS outage spools the events for a later run rather than loses them; the webhook's
    session checks it when it connects (public_addresses), as it does every name.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    name = host.rstrip(".").lower()
    if name in LOCALHOST_NAMES or name.endswith(".localhost"):
        raise DestinationError(_refusal(setting, host, "a loopback name"))
    if _is_literal(host):
        # Checked as written: the resolver does not take every literal ipaddress does ("fe80::1%25x").
        _refuse_private(setting, host, [host])
        return
    try:
        public_addresses(setting, host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        pass  # does not resolve now: checked again when delivery connects


def public_addresses(setting: str, host: str, port: int,
                     family: int = socket.AF_UNSPEC) -> List[Tuple[int, int, int, str, tuple]]:
    """The resolver's answers for host (getaddrinfo's tuples, in its order), or DestinationError if
    any of them is an address private_kind refuses.

    A name with one refused address among others is refused whole, as before sending: the same
    answer gets the same verdict whenever it is checked. OSError (socket.gaierror) or UnicodeError
    when the name does not resolve.
    """
    found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    _refuse_private(setting, host, [info[4][0] for info in found])
    return found


def private_kind(address: Address) -> Optional[str]:
    """What makes an address one the webhook may not reach by default, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES or str(address) == "169.254.169.254":
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "the unspecified address (this host)"
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _refuse_private(setting: str, host: str, addresses: List[str]) -> None:
    for text in addresses:
        # A zone ("fe80::1%eth0") says which interface, not what kind of address.
        address = ipaddress.ip_address(text.split("%")[0])
        kind = private_kind(address)
        if kind:
            shown = host if host == str(address) else "{} ({})".format(host, address)
            raise DestinationError(_refusal(setting, shown, kind))


def _refusal(setting: str, host: str, kind: str) -> str:
    return ("{}: {} is {}; the webhook may not reach it unless param.webhook_allow_private = 1".format(
        setting, host, kind))
