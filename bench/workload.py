"""Deterministic benchmark inputs, written once as ready-to-send chunk bodies.

Raw records are firewall-like traffic events with 10 CIM fields (the ones a Palo Alto traffic log
carries that `| teredospike` asks for). The mix, per record:

- 72% TCP (web to the internet, SMB/LDAP/Kerberos between internal zones);
- 27.5% UDP without Teredo: DNS to internal resolvers (internal), and outbound QUIC, NTP and public
  DNS from ephemeral ports (these are the candidates the map phase must pass on);
- 0.5% Teredo from 2% of the hosts: refreshes to a Teredo server on UDP 3544 (`app=teredo`), and
  unlabelled relay traffic from the same client port.

Bodies are written as splunkd writes them, by the protocol client's encoder (tools/scpv2.py
`BodyEncoder`): every field with its `__mv_` companion, `_chunked_idx`, `\\n` line ends. They are
encoded here once, so that a driver only copies bytes.
"""

import dataclasses
import itertools
import json
import os
import random
from typing import Iterator, List, Sequence, Tuple

from tools import scpv2

RAW_FIELDS = ("_time", "src_ip", "src_port", "dest_ip", "dest_port", "transport", "app", "bytes",
              "bytes_out", "packets_out")
AGGREGATED_FIELDS = ("_time", "All_Traffic.src_ip", "All_Traffic.src_port", "All_Traffic.dest_ip",
                     "All_Traffic.dest_port", "All_Traffic.app", "bytes_out", "packets_out",
                     "count")

T0 = 1_700_006_400       # a bucket boundary (2023-11-15 00:00 UTC)
RECORDS_PER_HOUR = 1_000_000
TEREDO_SHARE = 0.005
TEREDO_HOST_SHARE = 0.02
QUIC_SHARE = 0.10        # outbound QUIC; public DNS and NTP add 3% more outbound UDP
TEREDO_SERVER = "65.55.158.80"
RELAYS = ("83.170.1.38", "195.140.195.140", "88.198.87.130")
WEEK_BUCKETS = 7 * 144


@dataclasses.dataclass(frozen=True)
class BodySet:
    """Chunk bodies of `fields` in one file: (offset, length, records) per chunk. Iterating reads
    the bodies in order."""

    path: str
    fields: Sequence[str]
    chunks: List[Tuple[int, int, int]]

    @property
    def records(self) -> int:
        return sum(count for _, _, count in self.chunks)

    @property
    def final_body(self) -> bytes:
        """The header-only body of the `finished` chunk."""
        return scpv2.BodyEncoder(self.fields).encode([])

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            for offset, length, _ in self.chunks:
                f.seek(offset)
                yield f.read(length)

    def save_index(self) -> None:
        with open(self.path + ".json", "w") as f:
            json.dump(self.chunks, f)

    @classmethod
    def load(cls, path: str, fields: Sequence[str] = ()) -> "BodySet":
        """The bodies that write_bodies stored at `path` (their fields are in the bodies)."""
        with open(path + ".json") as f:
            return cls(path, fields, [tuple(chunk) for chunk in json.load(f)])


def _internal_host(index: int) -> str:
    return "10.%d.%d.%d" % (16 + index // 65024, (index // 254) % 256, 1 + index % 254)


def raw_records(count: int, hosts: int, seed: int = 1, quic: float = QUIC_SHARE
                ) -> Iterator[List[str]]:
    """`count` firewall records from `hosts` internal hosts, time-ordered, RECORDS_PER_HOUR dense.
    `quic` is the share of outbound QUIC (0 where the firewall blocks it; TCP takes its place)."""
    tcp_share = 0.72 + QUIC_SHARE - quic
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randint
    sources = [_internal_host(i) for i in range(hosts)]
    teredo_hosts = max(1, int(hosts * TEREDO_HOST_SHARE))
    client_ports = [str(rng.randint(1025, 65000)) for _ in range(teredo_hosts)]
    web = ["%d.%d.%d.%d" % (rng.choice((13, 20, 23, 52, 104, 142, 151, 172, 185)),
                            randint(0, 255), randint(0, 255), randint(1, 254))
           for _ in range(20000)]
    step = 3600.0 / RECORDS_PER_HOUR
    for n in range(count):
        t = "%.3f" % (T0 + n * step)
        r = rand()
        if r < TEREDO_SHARE:
            h = randint(0, teredo_hosts - 1)
            src, port = sources[h], client_ports[h]
            if rand() < 0.6:
                octets = str(61 + randint(0, 30))
                yield [t, src, port, TEREDO_SERVER, "3544", "udp", "teredo", octets, octets, "1"]
            else:
                packets = randint(5, 400)
                octets = str(packets * randint(90, 1280))
                yield [t, src, port, RELAYS[h % 3], str(32900 + h % 7), "udp", "unknown-udp",
                       octets, octets, str(packets)]
            continue
        src = sources[randint(0, hosts - 1)]
        ephemeral = str(randint(49152, 65535))
        r = rand()
        if r < tcp_share:
            if r < 0.5:
                packets = randint(4, 200)
                octets = str(packets * randint(60, 1400))
                yield [t, src, ephemeral, web[randint(0, 19999)], "443", "tcp", "ssl", octets,
                       octets, str(packets)]
            else:
                octets = str(randint(200, 90000))
                yield [t, src, ephemeral, _internal_host(randint(0, 255)),
                       ("445", "389", "88", "135")[randint(0, 3)], "tcp",
                       "ms-ds-smb", octets, octets, str(randint(3, 80))]
        elif r < tcp_share + 0.15:
            yield [t, src, ephemeral, "10.16.0.53", "53", "udp", "dns", "74", "74", "1"]
        elif r < tcp_share + 0.15 + quic:
            packets = randint(5, 900)
            octets = str(packets * randint(60, 1350))
            yield [t, src, ephemeral, web[randint(0, 19999)], "443", "udp", "quic", octets,
                   octets, str(packets)]
        else:
            yield [t, src, ephemeral, ("8.8.8.8", "1.1.1.1", "162.159.200.1")[randint(0, 2)],
                   ("53", "53", "123")[randint(0, 2)], "udp", "dns", "76", "76", "1"]


def aggregated_rows(hosts: int, active_buckets: int, seed: int = 2) -> Iterator[List[str]]:
    """tstats rows (saved-search path) for `hosts` Teredo-active hosts, each with Teredo in
    `active_buckets` of a week's 10-minute buckets: one server row per host-bucket and, in a
    tenth of them, a relay row from the same client port."""
    rng = random.Random(seed)
    ports = [str(rng.randint(1025, 65000)) for _ in range(hosts)]
    first = [rng.randint(0, WEEK_BUCKETS - active_buckets) for _ in range(hosts)]
    for b in range(WEEK_BUCKETS):
        t = str(T0 + b * 600)
        for h in range(hosts):
            if not first[h] <= b < first[h] + active_buckets:
                continue
            src, port = _internal_host(h), ports[h]
            refreshes = rng.randint(20, 30)
            yield [t, src, port, TEREDO_SERVER, "3544", "teredo", str(refreshes * 75),
                   str(refreshes), str(refreshes)]
            if rng.random() < 0.1:
                packets = rng.randint(10, 3000)
                yield [t, src, port, RELAYS[h % 3], "32901", "", str(packets * 900),
                       str(packets), str(rng.randint(1, 30))]


def write_bodies(path: str, fields: Sequence[str], rows: Iterator[List[str]],
                 chunk_size: int) -> BodySet:
    """Encode `rows` into chunk bodies of `chunk_size` records, stored in one file."""
    encoder = scpv2.BodyEncoder(fields)
    chunks = []
    offset = 0
    index = 0
    with open(path, "wb") as f:
        while True:
            batch = list(itertools.islice(rows, chunk_size))
            if not batch:
                break
            body = encoder.encode(batch, index)
            f.write(body)
            chunks.append((offset, len(body), len(batch)))
            offset += len(body)
            index += len(batch)
    bodies = BodySet(path, fields, chunks)
    bodies.save_index()
    return bodies


def raw_bodies(directory: str, records: int, hosts: int, chunk_size: int,
               quic: float = QUIC_SHARE) -> BodySet:
    path = os.path.join(directory, "raw-%d-%d-%d-%g.body" % (records, hosts, chunk_size, quic))
    return write_bodies(path, RAW_FIELDS, raw_records(records, hosts, quic=quic), chunk_size)


def aggregated_bodies(directory: str, hosts: int, active_buckets: int, chunk_size: int) -> BodySet:
    path = os.path.join(directory, "agg-%d-%d-%d.body" % (hosts, active_buckets, chunk_size))
    return write_bodies(path, AGGREGATED_FIELDS, aggregated_rows(hosts, active_buckets),
                        chunk_size)


# ---- realistic density: every outbound-UDP tstats row of a fleet (bench/two_stage.py) ----------
#
# Rows as `tstats ... WHERE All_Traffic.transport=udp BY _time span=10m src_ip src_port dest_ip
# dest_port app` returns them: one per (host, source port, destination, port, app) and bucket.
# Each host-bucket draws from random generators of its own, seeded by (host, bucket, kind), so
# that any window can be generated alone (the summary stage's 30 minutes) and gives the same rows
# as the week, and ordinary UDP can be scaled with the Teredo rows left exactly as they are.

DAY_BUCKETS = 144
WORK_BUCKETS = range(48, 108)        # 08:00-18:00 UTC: three quarters of a workstation's UDP
WORK_SHARE = 0.75
TEREDO_FLEET_SHARE = 0.22            # hosts with a Teredo client (qualified, mostly idle)
RELAY_BUCKET_SHARE = 0.3             # a Teredo host's on-buckets with relay traffic
RESOLVERS = ("10.16.0.53", "10.16.0.54")
PUBLIC_DNS = ("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222")
NTP_SERVERS = ("162.159.200.1", "129.6.15.28", "17.253.34.125")


@dataclasses.dataclass(frozen=True)
class Fleet:
    """Who sends what, fixed by `seed` and the host count alone: each host's UDP volume (a factor
    around 1), and, for Teredo hosts, the client port its Teredo socket holds all week and its
    daily on-period (first bucket of the day, length)."""

    hosts: int
    seed: int = 3

    def volume(self, host: int) -> float:
        return random.Random("volume %d %d" % (self.seed, host)).uniform(0.5, 1.5)

    def teredo(self, host: int):
        """(client port, first on-bucket of the day, on-buckets a day), or None."""
        rng = random.Random("teredo %d %d" % (self.seed, host))
        if rng.random() >= TEREDO_FLEET_SHARE:
            return None
        return rng.randint(49152, 65535), rng.randint(42, 54), rng.randint(48, 72)


def _ordinary(rng: random.Random, t: str, src: str, count: int, taken: int
              ) -> Iterator[List[str]]:
    """`count` ordinary UDP rows of one host-bucket: DNS to the internal resolvers, QUIC to the
    web, public DNS and NTP, each from an ephemeral port. `taken` is the host's Teredo client port:
    the operating system never hands out a port a socket holds."""
    rand = rng.random  # random() scaled by hand: randint costs a microsecond a call
    for _ in range(count):
        port = 49152 + int(rand() * 16384)
        while port == taken:
            port = 49152 + int(rand() * 16384)
        r = rand()
        if r < 0.45:
            yield [t, src, str(port), RESOLVERS[r < 0.225], "53", "dns", "74", "1", "1"]
        elif r < 0.85:
            packets = 5 + int(rand() * 896)
            octets = packets * (60 + int(rand() * 1291))
            web = int(rand() * 2 ** 26)
            yield [t, src, str(port), "%d.%d.%d.%d" % (
                (142, 151, 172, 104)[web & 3], (web >> 2) & 255, (web >> 10) & 255,
                1 + (web >> 18) % 254), "443", "quic", str(octets), str(packets), "1"]
        elif r < 0.97:
            yield [t, src, str(port), PUBLIC_DNS[int(rand() * 4)], "53", "dns", "76", "1", "1"]
        else:
            yield [t, src, str(port), NTP_SERVERS[int(rand() * 3)], "123", "ntp", "76", "1", "1"]


def _teredo(rng: random.Random, t: str, src: str, port: int) -> Iterator[List[str]]:
    """A live client's host-bucket: its server refreshes every 20-30 s (one row: 20-30 flows of a
    packet each), and in some buckets relay traffic from the same port to relays' arbitrary
    ports."""
    refreshes = rng.randint(20, 30)
    yield [t, src, str(port), TEREDO_SERVER, "3544", "teredo", str(refreshes * rng.randint(61, 75)),
           str(refreshes), str(refreshes)]
    if rng.random() < RELAY_BUCKET_SHARE:
        for _ in range(rng.randint(1, 4)):
            packets = rng.randint(5, 400)
            yield [t, src, str(port), RELAYS[rng.randint(0, 2)], str(rng.randint(1024, 65535)),
                   "unknown-udp", str(packets * rng.randint(90, 1280)), str(packets),
                   str(rng.randint(1, 6))]


def fleet_rows(fleet: Fleet, rows_per_day: int, first: int, last: int, ordinary_scale: float = 1.0
               ) -> Iterator[List[str]]:
    """Rows (AGGREGATED_FIELDS) of buckets `first` <= b < `last` (numbered from T0; negative is
    before it), bucket by bucket, host by host. A host sends about `rows_per_day` ordinary UDP rows
    a day (times its volume and `ordinary_scale`), three quarters of them in working hours; a
    Teredo host adds a server row per on-bucket and relay rows (the same whatever
    `ordinary_scale`)."""
    volumes = [fleet.volume(h) for h in range(fleet.hosts)]
    teredo = [fleet.teredo(h) for h in range(fleet.hosts)]
    sources = [_internal_host(h) for h in range(fleet.hosts)]
    work = WORK_SHARE / len(WORK_BUCKETS)
    rest = (1 - WORK_SHARE) / (DAY_BUCKETS - len(WORK_BUCKETS))
    for b in range(first, last):
        t = str(T0 + b * 600)
        of_day = b % DAY_BUCKETS
        share = work if of_day in WORK_BUCKETS else rest
        for h in range(fleet.hosts):
            src, client = sources[h], teredo[h]
            if client is not None:
                port, start, length = client
                if 0 <= of_day - start < length:
                    yield from _teredo(random.Random("t %d %d %d" % (fleet.seed, h, b)), t, src,
                                       port)
            if not ordinary_scale:
                continue
            rng = random.Random("u %d %d %d" % (fleet.seed, h, b))
            expected = rows_per_day * volumes[h] * ordinary_scale * share
            count = int(expected) + (rng.random() < expected % 1)
            yield from _ordinary(rng, t, src, count, client[0] if client else 0)


def fleet_bodies(directory: str, fleet: Fleet, rows_per_day: int, first: int, last: int,
                 chunk_size: int, ordinary_scale: float = 1.0) -> BodySet:
    path = os.path.join(directory, "fleet-%d-%d-%g-%d-%d.body" % (
        fleet.hosts, rows_per_day, ordinary_scale, first, last))
    return write_bodies(path, AGGREGATED_FIELDS,
                        fleet_rows(fleet, rows_per_day, first, last, ordinary_scale), chunk_size)
