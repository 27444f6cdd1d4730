"""Hand-made flow records for protocol and attribution tests (raw events, CIM field names)."""

import random
from collections import defaultdict
from typing import Dict, List

DAY = 86400
BUCKET = 600
T0 = 1_700_006_400  # a bucket boundary (2023-11-15 00:00 UTC)

Record = Dict[str, object]


def flow(t: float, src: str, sport: int, dest: str, dport: int, packets: int, octets: int,
         app: str = "", transport: str = "udp") -> Record:
    record = {"_time": "%.3f" % t, "src_ip": src, "src_port": str(sport), "dest_ip": dest,
              "dest_port": str(dport), "transport": transport, "packets_out": str(packets),
              "bytes_out": str(octets)}
    if app:
        record["app"] = app
    return record


def idle_client(src: str, port: int, start: float, buckets: int, rng: random.Random,
                server: str = "65.55.158.80", app: str = "") -> List[Record]:
    """Windows re-qualification: a Router Solicitation to the server about every 20-30 s."""
    records, t = [], start + rng.uniform(0, 20)
    while t < start + buckets * BUCKET:
        records.append(flow(t, src, port, server, 3544, 1, 61 + rng.randint(0, 30), app))
        t += rng.uniform(20, 30)
    return records


def relay_tunnel(src: str, port: int, start: float, buckets: int, relays: List[str],
                 packets_per_bucket: int, rng: random.Random) -> List[Record]:
    """Tunnel traffic to relays on high ports, from the client port, without any label."""
    records = []
    for b in range(buckets):
        for relay in relays:
            n = packets_per_bucket // len(relays)
            records.append(flow(start + b * BUCKET + rng.uniform(0, 500), src, port, relay,
                                32900 + relays.index(relay), n, n * 1100))
    return records


def ordinary_udp(src: str, start: float, buckets: int, rng: random.Random,
                 port: int = 0) -> List[Record]:
    """DNS and QUIC from ephemeral ports (or from `port`, to mimic reuse of an old client port)."""
    records = []
    for b in range(buckets):
        for _ in range(3):
            p = port or rng.randint(49152, 65535)
            if rng.random() < 0.5:
                records.append(flow(start + b * BUCKET + rng.uniform(0, 590), src, p, "8.8.8.8",
                                    53, 1, 70))
            else:
                records.append(flow(start + b * BUCKET + rng.uniform(0, 590), src, p,
                                    "142.250.74.%d" % rng.randint(1, 254), 443, 400, 400_000))
    return records


def small_enterprise(seed: int = 7, hosts: int = 40, days: int = 3) -> List[Record]:
    """Idle Teredo clients with ordinary UDP, one host that starts tunnelling to relays on day 3,
    and one whose old client port is reused by QUIC a day after its client moved on."""
    rng = random.Random(seed)
    records: List[Record] = []
    buckets = days * DAY // BUCKET
    for h in range(hosts):
        src = "10.1.%d.%d" % (h // 200, 10 + h % 200)
        port = rng.randint(1025, 65000)
        records += idle_client(src, port, T0, buckets, rng)
        records += ordinary_udp(src, T0, buckets // 12, rng)
    tunnel_start = T0 + 2 * DAY + 60 * BUCKET
    records += relay_tunnel("10.1.0.10", _port_of(records, "10.1.0.10"), tunnel_start, 4,
                            ["83.170.1.38", "195.140.195.140"], 3000, rng)
    # Host 10.1.0.11: Teredo on day 1 only; its client port is reused by QUIC on day 3.
    old_port = 41000
    records = [r for r in records if r["src_ip"] != "10.1.0.11"]
    records += idle_client("10.1.0.11", old_port, T0, DAY // BUCKET, rng)
    records += ordinary_udp("10.1.0.11", T0 + 2 * DAY + 60 * BUCKET, 6, rng, port=old_port)
    records.sort(key=lambda r: float(r["_time"]))
    return records


def _port_of(records: List[Record], src: str) -> int:
    return int(next(r["src_port"] for r in records if r["src_ip"] == src and r["dest_port"] == "3544"))


def as_tstats(records: List[Record], span: int = BUCKET) -> List[Record]:
    """The rows `| tstats sum(All_Traffic.bytes_out) as bytes_out sum(All_Traffic.packets_out) as
    packets_out count from datamodel=Network_Traffic.All_Traffic where All_Traffic.transport=udp
    by _time span=10m All_Traffic.src_ip All_Traffic.src_port All_Traffic.dest_ip
    All_Traffic.dest_port All_Traffic.app` returns for these events (with `max(All_Traffic.duration)
    AS duration` where they have durations)."""
    sums = defaultdict(lambda: [0, 0, 0, 0.0])
    durations = any("duration" in r for r in records)
    for r in records:
        if r.get("transport", "udp") != "udp":
            continue
        key = (int(float(r["_time"])) // span * span, r["src_ip"], r["src_port"], r["dest_ip"],
               r["dest_port"], r.get("app", ""))
        total = sums[key]
        total[0] += int(r["bytes_out"])
        total[1] += int(r["packets_out"])
        total[2] += 1
        total[3] = max(total[3], float(r.get("duration") or 0))
    rows = []
    for key, (octets, packets, count, duration) in sorted(sums.items()):
        t, src, sport, dest, dport, app = key
        rows.append({"_time": str(t), "All_Traffic.src_ip": src, "All_Traffic.src_port": sport,
                     "All_Traffic.dest_ip": dest, "All_Traffic.dest_port": dport,
                     "All_Traffic.app": app, "bytes_out": str(octets),
                     "packets_out": str(packets), "count": str(count)})
        if durations:
            rows[-1]["duration"] = "%.6f" % duration
    return rows
