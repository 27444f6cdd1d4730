"""Packet captures, turned into flow records the way a flow log would: one record per connection
(outer 5-tuple) with bytes and packets each way, first time and duration.

Packets are decoded by `tshark` (Debian package `tshark`), which decodes Teredo on UDP 3544 and, with
its `teredo` heuristic enabled here, on any UDP port (relay traffic uses arbitrary ports).

- Flows. Each IP header that is not inside Teredo becomes a flow of its own, as Zeek does with tunnels:
  a GTP-U packet gives the GTP flow and the flow of the IPv4 packet it carries. IP headers quoted
  inside ICMP errors are not flows. A flow ends after the inactivity timeouts Zeek uses (UDP and
  ICMP 1 minute, TCP 5 minutes).
- Direction. The originator is the sender of the first packet, unless that packet comes from a server
  port (below 1024, or 3544 where Teredo servers listen) to a port that is not one: then, as Zeek
  does, the receiver is the originator. A server's answer seen before the client's request (the
  capture started late) is thus still logged as client -> server.
- Bytes count IP headers and payload (IPv4 total length, IPv6 payload length + 40), as NetFlow does.
- Teredo addresses. Where tshark decodes an IPv6 header inside Teredo carried by IPv4 UDP (RFC 4380:
  Teredo is IPv6 over UDP over IPv4), its addresses inside 2001:0000::/32 are kept in
  `inner_src_ip` / `inner_dest_ip`, seen from the flow's originator. Teredo "decoded" inside
  IPv6 UDP is a heuristic false positive and is ignored.
- No application label: a flow log does not name applications, and deciding "Teredo" from the
  addresses is the command's job (prefix evidence), not the reader's.
"""

import ipaddress
import shutil
import subprocess
from typing import Dict, Iterator, List, Optional, Tuple

from tools.readers.errors import InputError, Record

TEREDO_PREFIX = ipaddress.IPv6Network("2001::/32")
TEREDO_SERVER_PORT = 3544
INACTIVITY_TIMEOUT = {"tcp": 300.0, "udp": 60.0}
OTHER_TIMEOUT = 60.0

FIELDS = ("frame.number", "frame.time_epoch", "frame.protocols", "ip.src", "ip.dst", "ip.len",
          "ipv6.src", "ipv6.dst", "ipv6.plen", "udp.srcport", "udp.dstport", "tcp.srcport",
          "tcp.dstport")
TRANSPORTS = {"udp": "udp", "tcp": "tcp", "icmp": "icmp", "icmpv6": "icmp"}
QUOTING = ("icmp", "icmpv6")  # an IP header after these is a quoted original, not a packet


def tshark_command(path: str) -> List[str]:
    command = ["tshark", "-r", path, "-n", "--enable-heuristic", "teredo_udp", "-T", "fields",
               "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for field in FIELDS:
        command += ["-e", field]
    return command


class Layer:
    """One IP header of a packet, with its transport."""

    __slots__ = ("src", "dst", "length", "after", "transport", "sport", "dport", "inner")

    def __init__(self, src: str, dst: str, length: int, after: str) -> None:
        self.src, self.dst, self.length, self.after = src, dst, length, after
        self.transport = ""
        self.sport = self.dport = ""
        self.inner: List[Tuple[str, str]] = []  # Teredo-carried IPv6 (src, dst)


def layers_of(values: Dict[str, List[str]]) -> List[Layer]:
    """The packet's IP headers in order, each given its transport; Teredo-carried IPv6 headers are
    attached to the IPv4/UDP header that carries them instead of being layers of their own."""
    taken = {"ip": 0, "ipv6": 0, "udp": 0, "tcp": 0}

    def take(family: str, *names: str) -> Optional[List[str]]:
        index = taken[family]
        taken[family] += 1
        found = [values.get(name, []) for name in names]
        if any(index >= len(v) for v in found):
            return None
        return [v[index] for v in found]

    layers: List[Layer] = []
    previous = ""
    for token in values.get("frame.protocols", [""])[0].split(":"):
        if token == "ip":
            got = take("ip", "ip.src", "ip.dst", "ip.len")
            if got:
                layers.append(Layer(got[0], got[1], int(got[2] or 0), previous))
        elif token == "ipv6":
            got = take("ipv6", "ipv6.src", "ipv6.dst", "ipv6.plen")
            if got:
                layer = Layer(got[0], got[1], int(got[2] or 0) + 40, previous)
                carrier = layers[-1] if layers else None
                if previous == "teredo":
                    if carrier is not None and ":" not in carrier.src and carrier.transport == "udp":
                        carrier.inner.append((layer.src, layer.dst))
                    # else: "Teredo" in IPv6 UDP is a misdecode; either way not a flow
                else:
                    layers.append(layer)
        elif token in ("udp", "tcp"):
            got = take(token, token + ".srcport", token + ".dstport")
            if got and layers and not layers[-1].transport:
                layers[-1].transport, layers[-1].sport, layers[-1].dport = token, got[0], got[1]
        elif token in TRANSPORTS and layers and not layers[-1].transport:
            layers[-1].transport = TRANSPORTS[token]
        previous = token
    return [layer for layer in layers if layer.after not in QUOTING]


def _is_server_port(port: str) -> bool:
    return port.isdigit() and (int(port) < 1024 or int(port) == TEREDO_SERVER_PORT)


def _is_teredo(address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in TEREDO_PREFIX
    except ValueError:
        return False


class Flow:
    __slots__ = ("first", "last", "orig", "resp", "transport", "packets", "octets", "inner_src",
                 "inner_dest")

    def __init__(self, time: float, layer: Layer) -> None:
        self.first = self.last = time
        self.transport = layer.transport or "ip"
        orig, resp = (layer.src, layer.sport), (layer.dst, layer.dport)
        if _is_server_port(layer.sport) and not _is_server_port(layer.dport):
            orig, resp = resp, orig
        self.orig, self.resp = orig, resp
        self.packets = [0, 0]  # from originator, from responder
        self.octets = [0, 0]
        self.inner_src: List[str] = []
        self.inner_dest: List[str] = []

    def add(self, time: float, layer: Layer) -> None:
        from_orig = (layer.src, layer.sport) == self.orig
        side = 0 if from_orig else 1
        self.last = max(self.last, time)
        self.packets[side] += 1
        self.octets[side] += layer.length
        for src, dst in layer.inner:
            for address, own in ((src, from_orig), (dst, not from_orig)):
                if _is_teredo(address):
                    target = self.inner_src if own else self.inner_dest
                    if address not in target:
                        target.append(address)

    def record(self) -> Record:
        record: Record = {
            "_time": "%.6f" % self.first, "duration": "%.6f" % (self.last - self.first),
            "src_ip": self.orig[0], "dest_ip": self.resp[0], "transport": self.transport,
            "bytes_out": str(self.octets[0]), "packets_out": str(self.packets[0]),
            "bytes_in": str(self.octets[1]), "packets_in": str(self.packets[1]),
            "bytes": str(sum(self.octets)), "packets": str(sum(self.packets)),
        }
        if self.orig[1]:
            record["src_port"] = self.orig[1]
        if self.resp[1]:
            record["dest_port"] = self.resp[1]
        if self.inner_src:
            record["inner_src_ip"] = list(self.inner_src)
        if self.inner_dest:
            record["inner_dest_ip"] = list(self.inner_dest)
        return record


def _flow_key(layer: Layer) -> tuple:
    ends = sorted(((layer.src, layer.sport), (layer.dst, layer.dport)))
    return (layer.transport,) + tuple(ends)


def read(path: str) -> Iterator[Record]:
    """Flow records of a capture, in order of their first packet."""
    if shutil.which("tshark") is None:
        raise InputError(path, 0, "reading a capture needs tshark (Debian: apt-get install tshark;"
                                  " ./tools/setup.sh installs it)")
    process = subprocess.Popen(tshark_command(path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True)
    flows: Dict[tuple, Flow] = {}
    done: List[Flow] = []
    packet = 0
    try:
        for line in process.stdout:
            cells = line.rstrip("\n").split("\t")
            values = {name: cell.split(",") if cell else []
                      for name, cell in zip(FIELDS, cells)}
            packet = int(values["frame.number"][0]) if values.get("frame.number") else packet + 1
            if not values.get("frame.time_epoch"):
                raise InputError(path, packet, "packet %d has no time: not a packet capture?"
                                 % packet)
            time = float(values["frame.time_epoch"][0])
            for layer in layers_of(values):
                key = _flow_key(layer)
                flow = flows.get(key)
                timeout = INACTIVITY_TIMEOUT.get(layer.transport, OTHER_TIMEOUT)
                if flow is not None and time - flow.last > timeout:
                    done.append(flows.pop(key))
                    flow = None
                if flow is None:
                    flow = flows[key] = Flow(time, layer)
                flow.add(time, layer)
    except (ValueError, IndexError) as error:
        process.kill()
        raise InputError(path, packet, "unexpected tshark output (%s)" % error)
    except InputError:
        process.kill()
        raise
    finally:
        process.stdout.close()
        error_text = process.stderr.read()
        process.stderr.close()
        code = process.wait()
    if code != 0:
        lines = [text.strip() for text in error_text.splitlines() if text.startswith("tshark:")]
        raise InputError(path, 0, "tshark cannot read it: %s"
                         % (lines[0][len("tshark:"):].strip() if lines else "exit code %d" % code))
    done.extend(flows.values())
    done.sort(key=lambda flow: flow.first)
    for flow in done:
        yield flow.record()
