"""Deterministic scenario generator: an enterprise's outbound UDP flows as a `tstats` search delivers them.

One CSV row per (10-minute bucket, src_ip, src_port, dest_ip, dest_port, app), the way

    | tstats sum(All_Traffic.bytes_out) AS bytes_out sum(All_Traffic.packets_out) AS packets_out count
        FROM datamodel=Network_Traffic WHERE All_Traffic.transport=udp
        BY _time span=10m All_Traffic.src_ip All_Traffic.src_port All_Traffic.dest_ip
           All_Traffic.dest_port All_Traffic.app

returns them, plus a ground-truth JSON: the injected tunnels, the host classes, the storm, NAT bursts,
client ports reused by ordinary traffic, and the parameters.

What is in it (see docs/detection-quality.md for why each part is there):
- office workstations whose Windows Teredo client idles (re-qualification every 20-30 s: 20-30 flows and
  packets per bucket, ~11-18 kB/h outbound), workstations with Teredo off, laptops that come and go,
  servers, legitimate heavy Teredo users (games through relays, peer-to-peer), hosts that join late;
- NAT retry bursts (a host re-qualifies a few times faster for a few buckets) and one fleet-wide
  re-qualification storm (every idle host bursts in the same hour);
- ordinary UDP (QUIC to 443, DNS to internal resolvers or 8.8.8.8, NTP) from ephemeral ports, some of
  them a Teredo client port the host gave up days earlier;
- injected tunnels over a grid of magnitudes and durations, relay-style (1-3 relays on high ports) or
  peer-style (tens of destinations), all from the host's Teredo client port, some repeated days later.

Each behavioural assumption is a named option (`Behaviour`, a docstring per option that argues for its
realistic range); `FAMILY_CHANGES` names the families tools/evaluate.py runs (`--family` here). The
default behaviour draws exactly what the generator drew before it had options: same rows, same truth.

Determinism: every random draw comes from `random.Random` seeded with a string built from the scenario
seed and what is being drawn, so the same parameters give the same bytes (gzip with mtime 0).

Usage:
    python tools/scenario.py --seed 1 --hosts 1000 --days 14 --out build/s1.csv.gz --truth build/s1.json
    python tools/scenario.py --preset sample     # regenerates samples/enterprise_week.*
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import random
import sys
import time
from array import array
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

SPAN = 600  # seconds per bucket: tstats span=10m
PER_DAY = 86400 // SPAN
HEADER = [
    "_time", "All_Traffic.src_ip", "All_Traffic.src_port", "All_Traffic.dest_ip", "All_Traffic.dest_port",
    "All_Traffic.app", "bytes_out", "packets_out", "count",
]
DURATION = "duration"  # Behaviour.record_durations: the column after HEADER
# Behaviour.record_durations: a flow's last packet this long before its last bucket ends (Zeek
# ends a UDP flow after a minute without packets).
LAST_PACKET_GAP = 60
TEREDO_PORT = 3544
# Public Teredo servers (primary address, secondary address used for the cone test when there is one).
TEREDO_SERVERS = [
    ("65.55.158.80", "65.55.158.81"),  # teredo.ipv6.microsoft.com (Windows default)
    ("194.136.28.76", None),           # teredo.trex.fi
    ("83.170.6.76", None),             # teredo.remlab.net
]
SERVER_WEIGHTS = [0.85, 0.10, 0.05]
INTERNAL_RESOLVERS = ["10.0.0.53", "10.0.1.53"]
INTERNAL_NTP = "10.0.0.123"
PUBLIC_DNS = "8.8.8.8"
# First octets used to draw public addresses of each kind (none of them internal or Teredo servers).
QUIC_PREFIXES = ["142.250", "172.217", "104.16", "157.240", "151.101", "13.107"]
RELAY_OCTETS = [37, 46, 78, 82, 85, 88, 94, 95, 176, 185, 188, 212, 213, 217]
PEER_OCTETS = [24, 67, 68, 71, 73, 76, 86, 90, 98, 109, 174, 178, 187, 189, 201]
NTP_POOL = ["162.159.200.1", "162.159.200.123", "185.125.190.56", "91.189.94.4"]

MAGNITUDES = (30, 100, 300, 1000, 3000, 10000)  # extra packets per 10 minutes
DURATIONS = (1, 3, 6, 18, 36, 72)                # buckets (72 = half a day)
# Host classes and their share of the fleet (idle takes the rest).
CLASS_SHARES = {"server": 0.08, "heavy": 0.03, "new": 0.05, "laptop": 0.15, "off": 0.27}
TEREDO_CLASSES = {"idle", "laptop", "heavy", "new"}
# Tunnel host classes in rotation (cold = the host never used Teredo before) and tunnel kinds.
TUNNEL_CLASS_CYCLE = ["cold", "idle", "new", "idle", "heavy", "idle", "cold", "idle", "heavy", "new"]
TUNNEL_KIND_CYCLE = ["relay", "relay", "relay", "peer", "relay", "peer"]


@dataclass(frozen=True)
class Behaviour:
    """The behavioural assumptions of a scenario, one field each. The defaults are the scenario this
    generator made before it had options (the bundled sample, and the scenario the command's constants
    were tuned on); each docstring argues for the realistic range, and `FAMILIES` in tools/evaluate.py
    pushes each to its realistic extreme."""

    heavy_destinations: str = "fixed"
    """Where a heavy Teredo user's sessions go. "fixed": 2-5 relays and one pool of 300 peers for the
    whole scenario; "partly": each session keeps half of them and adds fresh ones; "fresh": every
    session reaches relays and peers it never reached before. Peer-to-peer peers and game opponents
    are other people, different every session, and the relay a client uses depends on the IPv6 peer:
    "fresh" is what real heavy use looks like, "fixed" the kindest case for a detector."""

    relay_pool: str = "private"
    """Where relays come from. "private": each heavy user and each injected tunnel has relays of its
    own; "shared": all draw from one fleet-wide pool of `RELAY_POOL_SIZE` relays. A Teredo relay is
    chosen by the IPv6 peer's network (the relay nearest it), so hosts of one site talking to the same
    popular services share relays, and a tunnel to an IPv6 host goes through the same relays a gamer's
    session does: "shared" is realistic, and a relay new to a host is no evidence of a tunnel."""

    heavy_rhythm: str = "random"
    """When and how much a heavy user tunnels. "random": on 85% of days one session at lunch or in the
    evening, picked afresh each day, with one fleet-wide level (median 1,500 packets per 10 minutes);
    "habitual": each host has its own hours (a preferred start, +-40 minutes), its own session length
    and level (median 300-5,000 packets per 10 minutes, bucket-to-bucket spread 0.4 on the log scale),
    and comes on 60-95% of days; "mixed": each heavy host is habitual with probability
    `MIXED_HABITUAL_SHARE` (0.5), random otherwise (its own random stream decides, so each host draws
    exactly what it draws in the pure rhythm). People game or share files at their own habitual hours
    and volume: "habitual" is realistic, and it is what lets a detector learn a routine from
    recurrence. A real fleet holds both: a gamer with a fixed evening slot next to someone whose
    peer-to-peer client runs whenever they have a break. Neither pure value is the hard case, the
    mixture is: 0.5 has both kinds in every fleet of a few heavy users, and any share from ~0.3 to
    ~0.7 keeps both kinds present at 300+ hosts (0 and 1 are the pure rhythms).
    "anytime": on 85% of days 1-3 sessions (1 on half of those days, 2 on a third, 3 on a sixth),
    each starting at any time of day, with the fleet-wide level of "random": a peer-to-peer client
    left running whenever the machine is on, a gamer who plays at night and at weekends, a shared or
    shift-worker's machine. Both other rhythms keep a heavy user to two slots of the day, so that a
    few days teach a detector every hour the host uses; this one keeps finding hours it never used."""

    session_volume: str = "steady"
    """How a heavy user's packets per bucket move within and between its sessions. "steady": each
    bucket drawn on its own around the host's level (lognormal, spread 0.8 on the log scale; 0.4
    for habitual users), capped at 9,000 packets (15 a second). "phased": each session at its own
    level (the host's x e^N(0, 0.5): one evening's download or a match with voice at twice another
    session's rate), buckets that follow each other (on the log scale an AR(1) with correlation
    0.7 from one 10-minute bucket to the next, the same spread: a download or a swarm's phase lasts
    tens of minutes) and a cap of 45,000 (75 packets a second, an upload to a swarm or a video
    call). Real peer-to-peer and game traffic moves in phases, with the swarm or the match, not
    bucket by bucket: "phased" is the realistic extreme, where a heavy user's swings above its
    routine last more than one bucket."""

    bubbles_per_hour: float = 0.0
    """Bubble bursts per online hour of each Teredo client (idle ones too): 1-3 new peers, 1-4 bubble
    packets of ~60 bytes each from the client port, plus an indirect bubble through the server. A client
    bubbles every new peer it contacts (RFC 4380 5.2.4) and any application opening an IPv6 socket to
    a Teredo peer triggers it; 0 (none) to ~2 per hour on a desktop with a P2P-aware application."""

    startup_packets: int = 0
    """Extra packets to the server in the first bucket each time the client starts (qualification with
    retries, the secondary-address cone test): 0 to ~60 on real clients."""

    swarm_contacts: int = 0
    """New peers a heavy peer-to-peer user's client contacts per bucket in a session (the median;
    each bucket drawn around it, spread `SWARM_SPREAD` on the log scale), on top of the peers its
    data goes to. Each is opened as RFC 4380 opens a path, from the client port: a Teredo peer
    (`TEREDO_PEER_SHARE` of them) gets 1-2 direct bubbles and 1-4 packets of its own (a DHT query,
    a handshake) at its NAT mapping, a random high port, and an indirect bubble through the peer's
    Teredo server on 3544; a native IPv6 peer gets an ICMPv6 echo test through the client's server,
    and its packets go through a relay (of the fleet's pool with `relay_pool` "shared", else of the
    host's own relays). 0: peers come only from the session's peer set, a bubble per four of them
    through the server (the generator before this option); ~30 to ~300 in a BitTorrent swarm with
    DHT on, where peers join all session long and a lookup reaches tens of nodes. Heavy users who
    game through relays are not changed: a match's few peers are in their relay traffic."""

    swarm_idle_contacts: int = 0
    """The same contacts outside sessions, whenever the machine is on: a peer-to-peer client left
    running in the tray keeps its DHT table fresh and answers other nodes. 0 (the client is closed
    between sessions) to ~20 per bucket. It gives such a host relay packets at every hour, where an
    idle Teredo client sends none."""

    dormant_share: float = 0.0
    """Share of Teredo clients that go dormant when nothing uses them, as Windows' does by default
    (`netsh interface teredo show state` says "dormant"; the policy "Set Teredo Default Qualified"
    exists to keep it qualified): the client talks to its server only from a use (a heavy user's
    session, a tunnel, an application's wake: `wakes_per_hour`) until `DORMANT_AFTER` after it,
    qualifying again at each wake from a new client port; between uses the host sends no Teredo at
    all. 0: every client stays qualified and refreshes every 20-30 s while the machine is on (the
    generator before this option; Default Qualified set by policy, or an application that keeps
    Teredo in use, such as a peer-to-peer client in the tray, which `swarm_idle_contacts` keeps
    awake whatever this says); 1: every client as Windows leaves it."""

    wakes_per_hour: float = 0.0
    """Per online hour of a dormant client (`dormant_share`), the chance that an application asks for
    Teredo and wakes it: it qualifies, bubbles 1-3 peers, and refreshes until `DORMANT_AFTER` later.
    The Xbox app's and games' connectivity checks, Remote Assistance, an IPv6-only peer of a chat or
    meeting client: 0 (nothing on the machine uses Teredo) to ~0.5 (a gaming or peer-to-peer
    application that checks every couple of hours)."""

    update_share: float = 0.0
    """Share of Teredo clients that fetch a monthly update in part from peers through Teredo:
    Windows Delivery Optimization in its Group or Internet download mode "uses Teredo to connect to
    peer devices across NATs". The update is released on a Tuesday at `UPDATE_HOUR` (Patch Tuesday,
    10:00 in Redmond; `update_release`); each such client starts when its machine is on after the
    release (up to `UPDATE_DELAY` buckets later: Delivery Optimization's own scan), and exchanges
    pieces with fresh peers for `UPDATE_BUCKETS` buckets while the machine stays on, at a level
    drawn around `UPDATE_LEVEL` packets per bucket. Always-on machines start together in the
    evening, the others the next morning as they come on, laptops through the day: many hosts at
    once with data through the tunnel, each at a level its history has never shown, on a day none
    of them chose. 0 (Delivery Optimization in LAN or HTTP-only mode, or Teredo disabled by policy:
    most managed fleets) to ~0.5 (machines left in Group or Internet mode: unmanaged, BYOD or
    multi-site fleets using Group mode)."""

    nat_burst_rate: float = 0.05
    """NAT retry bursts per Teredo host-day: the client re-qualifies several times faster for a while
    (`nat_burst_buckets`: 1-3 buckets after its NAT mapping expires). 0.05 (one host in 20 a day) to
    ~0.5 behind aggressive carrier-grade or consumer NATs that time out UDP mappings in 30 s."""

    nat_burst_factor: Tuple[int, int] = (3, 6)
    """The burst's multiple of the host's usual re-qualification chatter, low and high: 3-6 to 3-10
    (Router Solicitation retransmits every 4 s against one every 20-30 s)."""

    nat_burst_buckets: Tuple[int, int] = (1, 3)
    """How long a burst lasts, in buckets, shortest and longest: 1-3 (a NAT mapping renewed) to 6-72
    (one to twelve hours: a client that keeps failing to qualify, behind a symmetric NAT or a
    firewall that drops most of the server's replies, retransmits its Router Solicitation every few
    seconds until it gives up or the network changes). Signalling to the server only, as a burst."""

    label_share: Optional[float] = None
    """Share of the client's Teredo flows (server, relays, peers, bubbles) that a sensor labels
    app=teredo. None: `Params.label_mode` decides for server flows and tunnel data is never labelled
    (a firewall that names Teredo only on UDP 3544). 0 (NetFlow, no application field) to ~1 (Zeek
    with DPD names the data flows too); in between, flows that cross a labelling sensor and flows
    that do not."""

    shared_machines: float = 0.0
    """Share of heavy users' hosts that several people use, each with sessions of their own through
    the one address and the one Teredo client: 2-4 users (`SHARED_USERS`), each drawing the rhythm's
    sessions from a random stream of its own (under "mixed" each user has a rhythm of its own), their
    packets summed where sessions overlap. A lab or library machine, a family PC or a terminal
    server behind an internal NAT, a VDI host: 0 (one person per address, an office) to ~0.3 on a
    campus. To the routine rule such a host has more than two slots a day, and twice its level
    where two people's sessions overlap."""

    heavy_absence: float = 0.0
    """Share of heavy users who are away once in the scenario, for `ABSENCE_DAYS` (3-16) days from a
    day drawn over it: no heavy session then (the machine's schedule and its idle Teredo client are
    as they were). Holidays, travel, exams: 0 to ~0.2 of heavy users in any two weeks (five to ten
    weeks off a year, school holidays on a campus). Back after `ROUTINE_WINDOW` (14 days) or more, a
    heavy user has no routine left in the search; back sooner, a few of its sessions are."""

    heavy_share: float = 0.03
    """Share of the fleet that uses Teredo heavily (games, peer-to-peer), taken from the idle
    workstations: 0.03 in an office to ~0.15 on a campus or a developer network."""

    port_reuse_share: float = 0.5
    """Share of Teredo hosts whose ordinary UDP (QUIC) later sends from a client port they gave up.
    Windows draws ephemeral ports from 16,384; a busy host opens thousands of UDP sockets a day, so
    over days most hosts reuse some old client port: 0.5 to 1."""

    port_reuse_times: int = 1
    """Retired client ports each such host reuses: 1 to ~3 over a week (laptops change port often)."""

    port_reuse_gap: int = 2 * PER_DAY
    """Earliest reuse after the port's last Teredo bucket, in buckets: 2 days (288) down to 2 buckets;
    the port is free the moment the client moves, so 20 minutes later is realistic."""

    address_churn: float = 0.0
    """Chance that a host starts a day on a new IPv4 address (`CHURN_NET`, never used before), for
    every workstation and laptop (servers keep theirs) and day, unless a tunnel or a heavy user's
    session runs across midnight. The detection knows a host by its address, so a new one starts
    with no history. 0 (addresses reserved or leases renewed, most desktops) to ~0.3 (laptops moving
    between dock, Wi-Fi and VPN pools each day, short DHCP leases); flow records carry the address,
    not the machine, unless a site joins them to DHCP or asset data."""

    heavy_onset: float = 0.0
    """Share of heavy users who become heavy users during the scenario: from a day drawn between
    `Params.warmup_days` and two days before its end (`Host.heavy_from`), before which the host is an
    idle Teredo client. A game or a peer-to-peer client is installed, a machine changes hands, a
    student arrives: 0 (every heavy user was one all along, the kindest case) to ~0.3 over two
    weeks on a campus or a developer network (a term's start, a new game's release). Such a host's
    first sessions are a cold host's heavy use, which the detection must page (it cannot know the
    use is benign): they measure what a site pays while its new heavy users settle."""

    heavy_week: str = "daily"
    """Which days of the week a heavy user tunnels on. "daily": any day, weekends alike (the rhythm's
    attendance decides); "weekly": each heavy user has days of its own, and its sessions on other
    days are dropped: half of them the weekend only (Saturday and Sunday: a gamer at home), half 2-4
    weekdays of their own (a club night, a peer-to-peer client on the work machine). Real use
    follows the week; "weekly" is the realistic extreme, where a routine recurs only every few days
    and a host's first day of the week comes after days without Teredo use."""

    flow_sampling: int = 1
    """Packet sampling at the flow exporter: each packet is seen with chance 1/N, and a flow none of
    whose packets was seen is not exported. 1: every packet (firewall and proxy logs, Zeek, Splunk
    Stream on a tap or span port); 1:10 to 1:1,000 on routers exporting sampled NetFlow or IPFIX,
    1:1,000 and beyond with sFlow on switches. What reaches Splunk is said by `sampling_scaled`.
    Sampling thins an idle client's chatter (20-30 packets per bucket) to none or a few buckets'
    worth, and makes a tunnel's volume jump from bucket to bucket: 1:100 is the realistic extreme
    for this detection (a tunnel of 300 packets per 10 minutes leaves about 3 sampled packets)."""

    sampling_scaled: bool = True
    """Whether the collector multiplies sampled packets and bytes by N before they reach Splunk
    (nfdump does, as do many collectors, when the exporter reports its sampling interval; others,
    vflow among them, pass the raw sampled counts on). Scaled, volume is right on average and every
    count is a multiple of N; raw, volume is N times smaller and the command's floors (`min_packets`,
    `min_bytes`) are N times higher in effect."""

    duplicate_share: float = 0.0
    """Share of hosts whose flows are exported twice for a while: from a bucket drawn over the
    scenario, for 1 hour to 3 days, every row of the host counts double (packets, bytes, flows), as
    when a route change sends its traffic through a second exporter, or two sensors see one path
    and Splunk sums both records. 0 (one exporter per path, or records deduplicated) to ~0.2 where
    several routers export the same traffic."""

    flow_timeout: int = 1
    """How many buckets one flow record may cover, all its packets, bytes and itself counted at its
    first bucket (the record's start time, as Zeek's conn.log `ts` and NetFlow's first-switched time
    put it in Splunk's `_time`). 1: records of 10 minutes at most (an exporter's active timeout of a
    minute or so, as security monitoring asks for; every row is one bucket's traffic); 3: NetFlow's
    default active timeout of 30 minutes; 0: no active timeout, a flow lasts until it is idle for a
    bucket (Zeek, whose UDP flows end after a minute without packets: a Teredo client that refreshes
    its server every 30 s is one flow for as long as it runs)."""

    record_durations: bool = False
    """Whether each row carries `duration`, the seconds its flow lasted (the base search's
    `max(All_Traffic.duration)`), from which the command spreads a record over the buckets it
    lasted. Zeek's conn.log, firewall session logs and NetFlow (last minus first switched) all give
    it, and CIM maps it; a source or mapping without it leaves the command a long record's time
    only. A flow's last packet is taken to be `LAST_PACKET_GAP` before the end of its last bucket.
    Off, the rows are those of the bundled sample."""

    record_time: str = "start"
    """What a row's `_time` marks: "start", the record's first bucket (Zeek's `ts`, NetFlow's
    first-switched time); "end", the bucket of its last packet (firewall session logs written when a
    session closes), floored to the bucket as `tstats ... BY _time span=10m` leaves it. With
    `record_durations` the command is told which (`command_args`: `record_time=end`, as a site with
    such a source sets it) and spreads the record back from there; the floor then starts the
    spread up to a bucket early. A record of one bucket is where it was either way."""


RELAY_POOL_SIZE = 40
STEADY_CAP = 9000             # session_volume "steady": packets per bucket at most
PHASE_SESSION_SIGMA = 0.5     # session_volume "phased": a session's level, sigma on the log scale
PHASE_CORRELATION = 0.7       # ... bucket-to-bucket correlation of the log rate inside a session
PHASE_CAP = 45000             # ... packets per bucket at most
MIXED_HABITUAL_SHARE = 0.5  # heavy_rhythm "mixed": share of heavy hosts with the habitual rhythm
CHURN_NET = 40                # address_churn: new addresses are 10.40.x.y, in order of use
SHARED_USERS = (2, 4)         # shared_machines: users of a shared heavy host, fewest and most
ABSENCE_DAYS = (3, 16)        # heavy_absence: days away, shortest and longest
DORMANT_AFTER = 6             # dormant_share: buckets a client stays qualified after its last use
                              # (Windows: an hour without Teredo traffic)
SWARM_SPREAD = 0.7            # swarm_contacts: bucket-to-bucket sigma of new contacts, log scale
TEREDO_PEER_SHARE = 0.7       # ... share of them that are Teredo clients (direct, with bubbles)
UPDATE_HOUR = 18              # update_share: the release, hour of the day (UTC) of its Tuesday
UPDATE_WITHIN = 2 * PER_DAY   # ... a client not on within this many buckets of it takes no part
UPDATE_DELAY = 5              # ... buckets from release or boot to Delivery Optimization's scan
UPDATE_BUCKETS = (2, 9)       # ... buckets it exchanges pieces for, fewest and most
UPDATE_LEVEL = 2000           # ... median packets per bucket a client sends its peers...
UPDATE_SPREAD = 0.8           # ... and the sigma of that level from client to client (log scale)
UPDATE_CAP = 20000            # ... packets per bucket at most
UPDATE_PEERS = 40             # ... the fresh peers each client exchanges with
DEFAULT_BEHAVIOUR = Behaviour()
# Scenario families: the default, each assumption at its realistic extreme, and all of them at once.
FAMILY_CHANGES: Dict[str, Dict[str, object]] = {
    "default": {},
    "fresh-destinations": {"heavy_destinations": "fresh"},
    "shared-relays": {"relay_pool": "shared"},
    "habitual-heavy": {"heavy_rhythm": "habitual"},
    "bubbles": {"bubbles_per_hour": 2.0, "startup_packets": 60},
    "nat-bursts": {"nat_burst_rate": 0.5, "nat_burst_factor": (3, 10)},
    "labels-all": {"label_share": 1.0},
    "labels-half": {"label_share": 0.5},
    "heavy-share": {"heavy_share": 0.15},
    "port-reuse": {"port_reuse_share": 1.0, "port_reuse_times": 3, "port_reuse_gap": 2},
    "anytime-heavy": {"heavy_rhythm": "anytime"},
    "address-churn": {"address_churn": 0.3},
}
# hard: every change at once, but heavy users of both rhythms (a habitual rhythm only would hide the
# random-rhythm users' sessions from tuning on it, as it did before issue 13's "mixed").
FAMILY_CHANGES["hard"] = {k: v for name, change in FAMILY_CHANGES.items()
                          if name not in ("labels-all", "address-churn") for k, v in change.items()}
FAMILY_CHANGES["hard"]["heavy_rhythm"] = "mixed"
# hard-anytime: hard with every heavy user at any hour (the rhythm the two-slot ones cannot show).
FAMILY_CHANGES["hard-anytime"] = dict(FAMILY_CHANGES["hard"], heavy_rhythm="anytime")
# Added after hard was fixed as the tuning family (hard keeps its definition, so address-churn and
# heavy-onset stay out of it): session volume in phases, alone and with hard; new heavy users.
FAMILY_CHANGES["phased-heavy"] = {"session_volume": "phased"}
FAMILY_CHANGES["hard-phased"] = dict(FAMILY_CHANGES["hard"], session_volume="phased")
FAMILY_CHANGES["heavy-onset"] = {"heavy_onset": 0.3}
# Flow records as exporters make them (added from issue 13's list of what the generator could still
# be missing: docs/detection-quality.md): sampled 1:100 and scaled by the collector, exported twice
# for a while, or a long flow reported once at its start. Raw sampled counts are not a family: they
# break the input's contract (packets and bytes sent), and the README says to scale them in the base
# search, which makes them sampled-flows.
FAMILY_CHANGES["sampled-flows"] = {"flow_sampling": 100}
FAMILY_CHANGES["duplicate-exports"] = {"duplicate_share": 0.2}
FAMILY_CHANGES["long-flows"] = {"flow_timeout": 0, "record_durations": True}
# The same records stamped at their end (item 7 of the list, in part; added in the eighth session).
FAMILY_CHANGES["end-stamped-flows"] = dict(FAMILY_CHANGES["long-flows"], record_time="end")
FAMILY_CHANGES["weekly-heavy"] = {"heavy_week": "weekly"}
# Added from the same list (items 2, 6 and 8): heavy users away for days, clients that keep
# failing to qualify for hours, several heavy users behind one address.
FAMILY_CHANGES["absences"] = {"heavy_absence": 0.2}
FAMILY_CHANGES["failing-clients"] = {"nat_burst_rate": 0.2, "nat_burst_factor": (3, 10),
                                     "nat_burst_buckets": (6, 72)}
FAMILY_CHANGES["shared-machines"] = {"shared_machines": 0.3, "heavy_rhythm": "mixed"}
# Added from the same list (item 5, in the tenth session): peer-to-peer users in a swarm, whose
# client contacts new Teredo and native peers all session long and, left running, between sessions
# too; alone and with hard.
FAMILY_CHANGES["swarms"] = {"swarm_contacts": 200, "swarm_idle_contacts": 20}
FAMILY_CHANGES["hard-swarms"] = dict(FAMILY_CHANGES["hard"], **FAMILY_CHANGES["swarms"])
# Added in the eleventh session: Teredo clients dormant between uses, as Windows leaves them, woken
# by an application a couple of times a working day; alone and with hard.
FAMILY_CHANGES["dormant-clients"] = {"dormant_share": 1.0, "wakes_per_hour": 0.25}
FAMILY_CHANGES["hard-dormant"] = dict(FAMILY_CHANGES["hard"], **FAMILY_CHANGES["dormant-clients"])
# Added in the twelfth session: half the Teredo clients fetch a Patch Tuesday update from Teredo
# peers (Delivery Optimization in Group or Internet mode); alone and with hard.
FAMILY_CHANGES["update-peers"] = {"update_share": 0.5}
FAMILY_CHANGES["hard-updates"] = dict(FAMILY_CHANGES["hard"], **FAMILY_CHANGES["update-peers"])
FAMILIES: Dict[str, Behaviour] = {name: Behaviour(**change) for name, change in FAMILY_CHANGES.items()}


@dataclass
class Params:
    seed: int = 1
    hosts: int = 300
    days: int = 8
    start: int = 1793577600  # 2026-11-02 00:00 UTC, a Monday
    tunnels: Optional[int] = None  # None: one per 8 hosts (at least 6)
    repeat_share: float = 0.25     # share of tunnels repeated 2-4 days later
    magnitudes: Tuple[int, ...] = MAGNITUDES
    durations: Tuple[int, ...] = DURATIONS
    label_mode: str = "teredo"     # teredo: server flows app=teredo, ordinary apps named; none: no labels
    unlabelled_app: str = "unknown"  # what a source logs for a flow it cannot identify ("", "udp", ...)
    warmup_days: int = 2           # no tunnel starts before this day (hosts need some history)
    behaviour: Behaviour = DEFAULT_BEHAVIOUR
    # Extra tunnels on heavy users' hosts, sized on the host's own routine: extra packets per bucket
    # heavy_tunnel_factor (low, high) x its median session level. The grid's tunnels are sized for
    # idle hosts and mostly vanish inside a heavy user's session; these measure whether a tunnel well
    # above a heavy user's routine still pages (tools/evaluate.py's heavy recall).
    heavy_tunnels: int = 0
    heavy_tunnel_factor: Tuple[float, float] = (5.0, 20.0)

    def tunnel_count(self) -> int:
        return self.tunnels if self.tunnels is not None else max(6, self.hosts // 8)


PRESETS = {
    # The bundled sample: samples/enterprise_week.csv.gz + .truth.json (tests/test_scenario.py).
    "sample": dict(seed=7, hosts=250, days=8, tunnels=6, repeat_share=0.2,
                   magnitudes=(300, 1000, 3000, 10000), durations=(3, 6, 18, 36)),
}
PRESET_PATHS = {"sample": ("samples/enterprise_week.csv.gz", "samples/enterprise_week.truth.json")}


@dataclass
class Host:
    ip: str
    cls: str
    online: bytearray
    join: int = 0
    teredo: bool = False
    server: Tuple[str, Optional[str]] = TEREDO_SERVERS[0]
    interval: float = 25.0          # re-qualification interval, seconds
    ports: array = field(default_factory=lambda: array("i"))  # client port per bucket, 0 = none
    frozen: bytearray = field(default_factory=bytearray)       # buckets where the port must not change
    sessions: List[Tuple[int, int]] = field(default_factory=list)  # a heavy user's Teredo sessions
    level: float = 1500.0           # a heavy user's median packets per 10 minutes in a session
    spread: float = 0.8             # ... and their bucket-to-bucket sigma on the log scale
    heavy_from: int = 0             # a heavy user's first bucket of heavy use (Behaviour.heavy_onset)
    users: int = 1                  # the people who use a heavy host (Behaviour.shared_machines)...
    users_on: bytearray = field(default_factory=bytearray)  # ...and how many are in a session, per
                                                            # bucket (empty for one user)
    absent: Optional[Tuple[int, int]] = None  # a heavy user's days away, [first, end) buckets
    peer_to_peer: bool = False      # a heavy user whose sessions go to peers, not relays
    dormant: bool = False           # its Teredo client is dormant between uses (Behaviour.dormant_share)
    wakes: bytearray = field(default_factory=bytearray)  # ...and the buckets an application woke it
    update: Optional[Tuple[int, int]] = None  # its update from Teredo peers, [first, end) buckets


def header(behaviour: "Behaviour") -> List[str]:
    """The rows' columns: HEADER, and DURATION where the records carry it."""
    return HEADER + [DURATION] if behaviour.record_durations else list(HEADER)


def command_args(behaviour: "Behaviour") -> List[str]:
    """The `teredospike` options a site would set for such records: `record_time=end` where
    `_time` is a record's end and the records carry their duration."""
    return ["record_time=end"] if behaviour.record_time == "end" and behaviour.record_durations else []


class Flows:
    """One host's rows, merged per (bucket, src_port, dest_ip, dest_port, app) as tstats groups them."""

    def __init__(self) -> None:
        self.rows: Dict[Tuple[int, int, str, int, str], List[int]] = {}
        # buckets each row's flow lasted, where more than one (Behaviour.flow_timeout)
        self.lengths: Dict[Tuple[int, int, str, int, str], int] = {}

    def add(self, bucket: int, sport: int, dest: str, dport: int, app: str,
            bytes_out: int, packets: int, count: int) -> None:
        row = self.rows.get((bucket, sport, dest, dport, app))
        if row is None:
            self.rows[(bucket, sport, dest, dport, app)] = [bytes_out, packets, count]
        else:
            row[0] += bytes_out
            row[1] += packets
            row[2] += count


def _rng(params: Params, *what: object) -> random.Random:
    return random.Random(":".join(str(w) for w in (params.seed,) + what))


def _public_ip(rng: random.Random, octets: Sequence[int]) -> str:
    return "%d.%d.%d.%d" % (rng.choice(octets), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))


def _ip_key(ip: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))


def _ephemeral(rng: random.Random) -> int:
    return rng.randint(49152, 65535)


# ---------------------------------------------------------------------------------------------- hosts
def _class_counts(params: Params) -> Dict[str, int]:
    shares = dict(CLASS_SHARES, heavy=params.behaviour.heavy_share)
    counts = {cls: max(1, round(share * params.hosts)) for cls, share in shares.items()}
    counts["idle"] = params.hosts - sum(counts.values())
    if counts["idle"] < 1:
        raise ValueError("--hosts must be at least 20")
    return counts


def _workstation_schedule(rng: random.Random, buckets: int, days: int, always_on: bool) -> bytearray:
    online = bytearray(buckets)
    if always_on:
        return bytearray(b"\x01" * buckets)
    for day in range(days):
        weekend = day % 7 >= 5
        if weekend and rng.random() > 0.1:
            continue
        begin = day * PER_DAY + rng.randint(42, 54)   # 07:00-09:00
        end = day * PER_DAY + rng.randint(102, 114)   # 17:00-19:00
        online[begin:end] = b"\x01" * (end - begin)
    return online


def _laptop_schedule(rng: random.Random, buckets: int, days: int) -> bytearray:
    online = bytearray(buckets)
    for day in range(days):
        if rng.random() > 0.6:
            continue
        begin = day * PER_DAY + rng.randint(48, 72)   # 08:00-12:00
        end = min(buckets, begin + rng.randint(12, 54))  # 2-9 hours
        online[begin:end] = b"\x01" * (end - begin)
    return online


def plan_hosts(params: Params) -> List[Host]:
    buckets = params.days * PER_DAY
    counts = _class_counts(params)
    subnets = {"server": 10, "idle": 20, "off": 20, "heavy": 20, "new": 20, "laptop": 30}
    used: Dict[int, int] = {}
    hosts: List[Host] = []
    for cls in ["server", "idle", "off", "heavy", "new", "laptop"]:
        for _ in range(counts[cls]):
            index = len(hosts)
            net = subnets[cls]
            n = used.get(net, 0)
            used[net] = n + 1
            ip = "10.%d.%d.%d" % (net, n // 250, n % 250 + 1)
            rng = _rng(params, "host", index)
            if cls == "server":
                online = bytearray(b"\x01" * buckets)
            elif cls == "laptop":
                online = _laptop_schedule(rng, buckets, params.days)
            else:
                online = _workstation_schedule(rng, buckets, params.days, always_on=rng.random() < 0.3)
            host = Host(ip=ip, cls=cls, online=online, teredo=cls in TEREDO_CLASSES,
                        frozen=bytearray(buckets), peer_to_peer=cls == "heavy" and index % 2 == 1)
            if cls == "new":
                host.join = rng.randint(params.warmup_days, max(params.warmup_days, params.days - 2)) * PER_DAY
                host.online[:host.join] = bytes(host.join)
            host.server = rng.choices(TEREDO_SERVERS, weights=SERVER_WEIGHTS)[0]
            host.interval = rng.uniform(20.0, 30.0)
            if cls == "heavy":
                host.heavy_from = _heavy_onset(params, index)
                host.absent = _heavy_absence(params, index)
                days = _heavy_days(params, index)

                def kept(sessions: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
                    return [s for s in sessions if s[0] >= host.heavy_from and (s[0] // PER_DAY) % 7 in days
                            and not (host.absent and host.absent[0] <= s[0] < host.absent[1])]
                host.sessions = kept(_heavy_sessions(params, host, index))
                _share_machine(params, host, index, kept)
                for begin, end in host.sessions:
                    host.online[begin:end] = b"\x01" * (end - begin)
            hosts.append(host)
    return hosts


def assign_ports(params: Params, hosts: List[Host]) -> None:
    """The Teredo client port per bucket: kept for hours to days, changed at reboots."""
    for index, host in enumerate(hosts):
        rng = _rng(params, "ports", index)
        ports = array("i", bytes(4 * len(host.online)))
        host.ports = ports
        if not host.teredo:
            continue
        port = 0
        previous_online = False
        for b, on in enumerate(host.online):
            if not on:
                previous_online = False
                continue
            if not host.frozen[b]:
                session_start = not previous_online
                reboot = (session_start and (host.cls == "laptop" and rng.random() < 0.6
                                             or rng.random() < 0.3)) \
                    or rng.random() < 0.2 / PER_DAY  # patch reboot of an always-on host
                if port == 0 or reboot:
                    port = rng.randint(1025, 65535)
            ports[b] = port
            previous_online = True


def update_release(params: Params) -> int:
    """`Behaviour.update_share`: the update's release, a bucket: `UPDATE_HOUR` on the first Tuesday
    from `Params.warmup_days` (the middle day where the scenario has none)."""
    days = [d for d in range(params.warmup_days, params.days)
            if time.gmtime(params.start + d * 86400).tm_wday == 1] or [params.days // 2]
    return days[0] * PER_DAY + UPDATE_HOUR * PER_DAY // 24


def plan_updates(params: Params, hosts: List[Host]) -> None:
    """`Behaviour.update_share`: each drawn Teredo client's update (`Host.update`), from a random
    stream of its own per host (the other draws stay those of a scenario without it)."""
    share = params.behaviour.update_share
    if not share:
        return
    release = update_release(params)
    for index, host in enumerate(hosts):
        rng = _rng(params, "update", index)
        if not host.teredo or rng.random() >= share:
            continue
        last = min(len(host.online), release + UPDATE_WITHIN)
        on = next((b for b in range(release, last) if host.online[b]), None)
        if on is None:
            continue
        first = next((b for b in range(on + rng.randint(0, UPDATE_DELAY), last) if host.online[b]), None)
        if first is None:
            continue
        end, stop = first, min(len(host.online), first + rng.randint(*UPDATE_BUCKETS))
        while end < stop and host.online[end]:
            end += 1
        host.update = (first, end)


class _Update:
    """A client's update traffic (`Host.update`), from a random stream of its own."""

    def __init__(self, params: Params, index: int, host: Host) -> None:
        self.params = params
        self.rng = rng = _rng(params, "update flows", index)
        self.level = min(UPDATE_CAP, rng.lognormvariate(math.log(UPDATE_LEVEL), UPDATE_SPREAD))
        self.peers = [(_public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535)) for _ in range(UPDATE_PEERS)]
        self.server = host.server[0]

    def exchange(self, flows: Flows, b: int, port: int) -> None:
        """The bucket's pieces to and from its peers, direct between Teredo clients, with bubbles."""
        rng = self.rng
        packets = int(min(UPDATE_CAP, self.level * math.exp(rng.gauss(0.0, 0.3))))
        _tunnel_traffic(flows, self.params, rng, b, port, "peer", packets, rng.uniform(200, 1000), [],
                        self.peers, self.server)


def make_dormant(params: Params, hosts: List[Host], tunnels: List[dict]) -> None:
    """`Behaviour.dormant_share`: each drawn Teredo client keeps its port only while awake, from a
    use (a heavy session, a tunnel, a wake) to `DORMANT_AFTER` after it; a new port at each wake.
    From a random stream of its own per host (the other hosts' draws stay those without it)."""
    behaviour = params.behaviour
    if not behaviour.dormant_share:
        return
    wake_chance = behaviour.wakes_per_hour * SPAN / 3600.0
    for index, host in enumerate(hosts):
        rng = _rng(params, "dormant", index)
        if not host.teredo or rng.random() >= behaviour.dormant_share:
            continue
        if host.peer_to_peer and behaviour.swarm_idle_contacts:
            continue  # a peer-to-peer client in the tray keeps Teredo in use whenever the machine is on
        host.dormant = True
        buckets = len(host.online)
        in_use = bytearray(buckets)
        for begin, end in host.sessions:
            in_use[begin:end] = b"\x01" * (end - begin)
        for tunnel in tunnels:
            if tunnel["src"] == host.ip:
                first, last = tunnel["start_index"], tunnel["end_index"]
                in_use[first:last + 1] = b"\x01" * (last - first + 1)
        if host.update:
            first, end = host.update
            in_use[first:end] = b"\x01" * (end - first)
        host.wakes = bytearray(buckets)
        for b in range(buckets):
            if host.online[b] and rng.random() < wake_chance:
                host.wakes[b] = in_use[b] = 1
        awake_until, port = -1, 0
        for b in range(buckets):
            if not host.online[b]:
                awake_until, port = -1, 0
            elif in_use[b]:
                awake_until = b + DORMANT_AFTER
            if host.online[b] and b < awake_until:
                if not port:  # a wake: the client qualifies from a new socket
                    port = rng.randint(1025, 65535)
                host.ports[b] = port
            else:
                host.ports[b], port = 0, 0


# ---------------------------------------------------------------------------------------------- plan
def _storm(params: Params) -> Tuple[int, int]:
    rng = _rng(params, "storm")
    weekdays = [d for d in range(params.warmup_days, params.days - 1) if d % 7 < 5] or [params.days // 2]
    day = rng.choice(weekdays)
    begin = day * PER_DAY + rng.randint(60, 90)  # 10:00-15:00
    return begin, begin + 5


def _pick_window(rng: random.Random, host: Host, duration: int, earliest: int, latest: int,
                 busy: bytearray, storm: Tuple[int, int]) -> Optional[int]:
    """A start bucket where the host is online (or could be: it is forced online) and nothing else runs."""
    for _ in range(200):
        if latest < earliest:
            return None
        start = rng.randint(earliest, latest)
        end = start + duration - 1
        if end >= len(host.online) or any(busy[start - 3:end + 4]):
            continue
        if start <= storm[1] + 6 and end >= storm[0] - 6:
            continue
        # Start inside a working session where there is one, so that the tunnel looks like use of the host.
        if host.cls in ("server",) or host.online[start] or rng.random() < 0.2:
            return start
    return None


def plan_tunnels(params: Params, hosts: List[Host], storm: Tuple[int, int]) -> List[dict]:
    rng = _rng(params, "tunnels")
    buckets = params.days * PER_DAY
    pools = {
        "cold": [h for h in hosts if h.cls in ("off", "server")],
        "idle": [h for h in hosts if h.cls in ("idle", "laptop")],
        "heavy": [h for h in hosts if h.cls == "heavy"],
        "new": [h for h in hosts if h.cls == "new"],
    }
    for pool in pools.values():
        rng.shuffle(pool)
    grid = [(m, d) for m in params.magnitudes for d in params.durations]
    rng.shuffle(grid)
    busy = {h.ip: bytearray(buckets) for h in hosts}
    tunnels: List[dict] = []
    wanted_repeats: List[dict] = []
    wanted = params.tunnel_count()
    attempt = 0
    while len(tunnels) < wanted and attempt < wanted * 4:
        cls = TUNNEL_CLASS_CYCLE[attempt % len(TUNNEL_CLASS_CYCLE)]
        kind = TUNNEL_KIND_CYCLE[attempt % len(TUNNEL_KIND_CYCLE)]
        magnitude, duration = grid[len(tunnels) % len(grid)]
        attempt += 1
        pool = pools[cls] or pools["idle"]
        if cls != "heavy" and cls != "idle" and not pools[cls]:
            continue
        # Hosts that already carry a tunnel are used last (a cold host is cold only once).
        host = next((h for h in pool if not any(busy[h.ip])), None)
        if host is None:
            if cls in ("cold", "new"):
                continue
            host = rng.choice(pool)
        earliest = params.warmup_days * PER_DAY
        repeat = rng.random() < params.repeat_share
        if cls == "new":
            earliest, latest = host.join + 1, min(buckets - duration, host.join + PER_DAY)
        else:
            latest = buckets - duration - (2 * PER_DAY if repeat else 0)
        start = _pick_window(rng, host, duration, earliest, latest, busy[host.ip], storm)
        if start is None:
            continue
        tunnels.append(_tunnel(len(tunnels), host, cls, kind, magnitude, start, duration, None))
        if repeat:
            wanted_repeats.append(tunnels[-1])
        busy[host.ip][start:start + duration] = b"\x01" * duration
    # Repeats: the same host, kind and size, 2-4 days later.
    for original in wanted_repeats:
        host = next(h for h in hosts if h.ip == original["src"])
        earliest = original["start_index"] + 2 * PER_DAY
        latest = min(buckets - original["buckets"], original["start_index"] + 4 * PER_DAY)
        start = _pick_window(rng, host, original["buckets"], earliest, latest, busy[host.ip], storm)
        if start is None:
            continue
        tunnels.append(_tunnel(len(tunnels), host, original["host_class"], original["kind"],
                               original["extra_packets"], start, original["buckets"], original["id"]))
        busy[host.ip][start:start + original["buckets"]] = b"\x01" * original["buckets"]
    _plan_heavy_tunnels(params, pools["heavy"], busy, storm, tunnels)
    for tunnel in tunnels:
        host = next(h for h in hosts if h.ip == tunnel["src"])
        first, last = tunnel["start_index"], tunnel["end_index"]
        host.online[first:last + 1] = b"\x01" * (last - first + 1)
        host.frozen[first:last + 1] = b"\x01" * (last - first + 1)
    return tunnels


HEAVY_TUNNEL_SPACING = 2 * PER_DAY  # buckets between a heavy-user tunnel and its host's other tunnels


def _plan_heavy_tunnels(params: Params, heavy: List[Host], busy: Dict[str, bytearray],
                        storm: Tuple[int, int], tunnels: List[dict]) -> None:
    """`Params.heavy_tunnels` tunnels on heavy users' hosts (in turn), each heavy_tunnel_factor x the
    host's session level, from its own random stream (the other tunnels are drawn as without them),
    each at least HEAVY_TUNNEL_SPACING from any other tunnel of its host: each is a first tunnel, not
    one repeated the next day (which a detector may well take for the host's new routine)."""
    if not heavy or not params.heavy_tunnels:
        return
    rng = _rng(params, "heavy tunnels")
    buckets = params.days * PER_DAY
    for number in range(params.heavy_tunnels):
        host = heavy[number % len(heavy)]
        duration = rng.choice(params.durations)
        magnitude = round(host.level * rng.uniform(*params.heavy_tunnel_factor))
        kind = TUNNEL_KIND_CYCLE[number % len(TUNNEL_KIND_CYCLE)]
        spaced = bytearray(busy[host.ip])
        for b in (b for b, used in enumerate(busy[host.ip]) if used):
            spaced[max(0, b - HEAVY_TUNNEL_SPACING):b + HEAVY_TUNNEL_SPACING] = \
                b"\x01" * (min(buckets, b + HEAVY_TUNNEL_SPACING) - max(0, b - HEAVY_TUNNEL_SPACING))
        start = _pick_window(rng, host, duration, params.warmup_days * PER_DAY, buckets - duration,
                             spaced, storm)
        if start is None:
            continue
        tunnels.append(_tunnel(len(tunnels), host, "heavy", kind, magnitude, start, duration, None))
        busy[host.ip][start:start + duration] = b"\x01" * duration


def _tunnel(number: int, host: Host, cls: str, kind: str, magnitude: int, start: int, duration: int,
            repeat_of: Optional[int]) -> dict:
    return {"id": number, "src": host.ip, "client_port": 0, "kind": kind, "extra_packets": magnitude,
            "buckets": duration, "start_index": start, "end_index": start + duration - 1,
            "repeat": repeat_of is not None, "repeat_of": repeat_of, "host_class": cls,
            "host_kind": host.cls}


# ---------------------------------------------------------------------------------------------- flows
def _app(params: Params, name: str) -> str:
    return name if params.label_mode == "teredo" else params.unlabelled_app


def _teredo_app(params: Params, rng: random.Random) -> str:
    """The app of a flow to a Teredo server: by `label_mode`, or labelled with `label_share`."""
    share = params.behaviour.label_share
    if share is None:
        return _app(params, "teredo")
    return "teredo" if rng.random() < share else params.unlabelled_app


def _data_app(params: Params, rng: random.Random) -> str:
    """The app of tunnel data (to relays and peers): unlabelled, unless a sensor names it (`label_share`)."""
    share = params.behaviour.label_share
    if share is None:
        return params.unlabelled_app
    return "teredo" if rng.random() < share else params.unlabelled_app


def _relay_pool(params: Params) -> List[Tuple[str, int]]:
    """The fleet-wide relays (`Behaviour.relay_pool` "shared"): an address and port each."""
    rng = _rng(params, "relay pool")
    return [(_public_ip(rng, RELAY_OCTETS), rng.randint(1025, 65535)) for _ in range(RELAY_POOL_SIZE)]


def _chatter(host: Host, flows: Flows, params: Params, rng: random.Random, b: int, port: int,
             factor: float) -> None:
    """Idle re-qualification: one Router Solicitation (plus the odd bubble) every 20-30 s."""
    n = max(1, round(SPAN / host.interval * factor + rng.uniform(-1.0, 1.0)))
    primary, secondary = host.server
    label = _teredo_app(params, rng)
    to_secondary = rng.randint(1, 2) if secondary and rng.random() < 0.25 * factor else 0
    packets = n + (1 if rng.random() < 0.2 else 0)
    flows.add(b, port, primary, TEREDO_PORT, label, int(packets * rng.uniform(85, 95)), packets, n)
    if to_secondary:
        flows.add(b, port, secondary, TEREDO_PORT, label, int(to_secondary * rng.uniform(85, 95)),
                  to_secondary, to_secondary)


def _ordinary(host: Host, flows: Flows, params: Params, rng: random.Random, b: int,
              avoid: Tuple[int, ...]) -> None:
    """QUIC, DNS and NTP from ephemeral ports (never the host's live Teredo client port)."""
    def port() -> int:
        while True:
            p = _ephemeral(rng)
            if p not in avoid:
                return p
    if host.cls != "server" and rng.random() < 0.25:
        for _ in range(rng.randint(1, 2)):
            packets = int(min(4000, rng.lognormvariate(4.0, 1.3))) + 2
            dest = "%s.%d.%d" % (rng.choice(QUIC_PREFIXES), rng.randint(0, 255), rng.randint(1, 254))
            flows.add(b, port(), dest, 443, _app(params, "quic"), packets * rng.randint(60, 120), packets,
                      rng.randint(1, 3))
    if rng.random() < 0.3:
        count = rng.randint(3, 40)
        resolver = PUBLIC_DNS if _ip_key(host.ip)[3] % 23 == 0 else rng.choice(INTERNAL_RESOLVERS)
        flows.add(b, port(), resolver, 53, _app(params, "dns"), count * rng.randint(60, 80), count, count)
    if b % 6 == _ip_key(host.ip)[3] % 6 and rng.random() < 0.5:
        dest = rng.choice(NTP_POOL) if host.cls == "server" else INTERNAL_NTP
        sport = 123 if rng.random() < 0.6 else port()
        flows.add(b, sport, dest, 123, _app(params, "ntp"), 76, 1, 1)


def _heavy_sessions(params: Params, host: Host, index: Union[int, str]) -> List[Tuple[int, int]]:
    """A heavy user's daily Teredo sessions (games through relays, or peer-to-peer): [start, end).
    `index` keys its random streams: the host's index, or "index/userN" for the other users of a
    shared machine (`_share_machine`)."""
    rhythm = params.behaviour.heavy_rhythm
    if rhythm == "mixed":
        habitual = _rng(params, "rhythm", index).random() < MIXED_HABITUAL_SHARE
        rhythm = "habitual" if habitual else "random"
    if rhythm == "habitual":
        return _habitual_sessions(params, host, index)
    if rhythm == "anytime":
        return _anytime_sessions(params, host, index)
    rng = _rng(params, "heavy", index)
    sessions = []
    for day in range(host.join // PER_DAY, params.days):
        if rng.random() < 0.85:
            begin = day * PER_DAY + rng.choice([rng.randint(72, 80), rng.randint(108, 126)])  # lunch or evening
            sessions.append((begin, min(params.days * PER_DAY, begin + rng.randint(6, 24))))
    return sessions


WEEKEND = (5, 6)  # days of the week from Params.start, a Monday


def _heavy_days(params: Params, index: int) -> Tuple[int, ...]:
    """`Behaviour.heavy_week`: the days of the week (0 Monday) a heavy user tunnels on, from its
    own random stream (the sessions drawn are those of the rhythm; days off drop theirs)."""
    if params.behaviour.heavy_week == "daily":
        return tuple(range(7))
    rng = _rng(params, "week", index)
    if rng.random() < 0.5:
        return WEEKEND
    return tuple(sorted(rng.sample(range(5), rng.randint(2, 4))))


def _heavy_onset(params: Params, index: int) -> int:
    """`Behaviour.heavy_onset`: the bucket a heavy user's heavy use starts (0: from the start), from
    its own random stream (the other draws stay those of a scenario without it)."""
    rng = _rng(params, "onset", index)
    if rng.random() >= params.behaviour.heavy_onset:
        return 0
    return rng.randint(params.warmup_days, max(params.warmup_days, params.days - 2)) * PER_DAY


def _heavy_absence(params: Params, index: int) -> Optional[Tuple[int, int]]:
    """`Behaviour.heavy_absence`: the buckets [first, end) a heavy user is away, or None; from its
    own random stream (the other draws stay those of a scenario without it)."""
    if not params.behaviour.heavy_absence:
        return None
    rng = _rng(params, "absence", index)
    if rng.random() >= params.behaviour.heavy_absence:
        return None
    first = rng.randrange(params.days) * PER_DAY
    return first, min(params.days * PER_DAY, first + rng.randint(*ABSENCE_DAYS) * PER_DAY)


def _share_machine(params: Params, host: Host, index: int,
                   kept: Callable[[List[Tuple[int, int]]], List[Tuple[int, int]]]) -> None:
    """`Behaviour.shared_machines`: if the host is drawn, 1-3 more users' sessions (each its own
    random stream, the host's level, onset, days and absence), merged into `host.sessions` where
    they overlap or touch; `host.users_on` counts the users in a session per bucket."""
    if not params.behaviour.shared_machines:
        return
    rng = _rng(params, "shared", index)
    if rng.random() >= params.behaviour.shared_machines:
        return
    level, spread = host.level, host.spread  # a habitual user's draw sets them: the first user's stay
    everyone = list(host.sessions)
    users = rng.randint(*SHARED_USERS)
    for user in range(1, users):
        everyone += kept(_heavy_sessions(params, host, "%d/user%d" % (index, user)))
    host.level, host.spread = level, spread
    host.users = users
    host.users_on = bytearray(len(host.online))
    for begin, end in everyone:
        for b in range(begin, end):
            host.users_on[b] += 1
    host.sessions = _merged(everyone)


def _habitual_sessions(params: Params, host: Host, index: Union[int, str]) -> List[Tuple[int, int]]:
    """`Behaviour.heavy_rhythm` "habitual": the host's own start time, session length, level and
    attendance, the same each day up to jitter."""
    rng = _rng(params, "habit", index)
    start = rng.choice([rng.randint(66, 84), rng.randint(108, 132)])  # 11:00-14:00 or 18:00-22:00
    length = rng.randint(6, 24)
    attendance = rng.uniform(0.6, 0.95)
    host.level = math.exp(rng.uniform(math.log(300), math.log(5000)))
    host.spread = 0.4
    sessions = []
    for day in range(host.join // PER_DAY, params.days):
        if rng.random() < attendance:
            begin = day * PER_DAY + start + rng.randint(-4, 4)
            end = min(params.days * PER_DAY, begin + max(3, round(length * rng.uniform(0.7, 1.3))))
            sessions.append((begin, end))
    return sessions


def _anytime_sessions(params: Params, host: Host, index: Union[int, str]) -> List[Tuple[int, int]]:
    """`Behaviour.heavy_rhythm` "anytime": sessions at any time of day, 1-3 a day; sessions that
    overlap (or touch) are one."""
    rng = _rng(params, "anytime", index)
    sessions: List[Tuple[int, int]] = []
    for day in range(host.join // PER_DAY, params.days):
        if rng.random() >= 0.85:
            continue
        for start in sorted(rng.randrange(PER_DAY) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))):
            begin = day * PER_DAY + start
            sessions.append((begin, min(params.days * PER_DAY, begin + rng.randint(6, 24))))
    return _merged(sessions)


def _merged(sessions: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """Sessions [start, end) in time order, those that overlap or touch made one."""
    merged: List[Tuple[int, int]] = []
    for begin, end in sorted(sessions):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _session_destinations(params: Params, index: int, number: int, relays: List[Tuple[str, int]],
                          peers: List[Tuple[str, int]], pool: List[Tuple[str, int]]
                          ) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
    """A heavy user's relays and peers in its session `number` (`Behaviour.heavy_destinations`)."""
    mode = params.behaviour.heavy_destinations
    if mode == "fixed":
        return relays, peers
    rng = _rng(params, "session", index, number)
    count = rng.randint(2, 5)
    if pool:
        fresh_relays = rng.sample(pool, count)
    else:
        fresh_relays = [(_public_ip(rng, RELAY_OCTETS), rng.randint(1025, 65535)) for _ in range(count)]
    fresh_peers = [(_public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535)) for _ in range(300)]
    if mode == "fresh":
        return fresh_relays, fresh_peers
    kept = relays[:max(1, len(relays) // 2)]
    return kept + [r for r in fresh_relays if r not in kept][:max(1, count // 2)], \
        rng.sample(peers, 150) + fresh_peers[:150]


def _bubbles(flows: Flows, params: Params, rng: random.Random, b: int, port: int, server: str) -> None:
    """A client bubbles new peers: 1-4 packets to each of 1-3 peers, one indirect via the server."""
    for _ in range(rng.randint(1, 3)):
        packets = rng.randint(1, 4)
        flows.add(b, port, _public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535), _data_app(params, rng),
                  packets * rng.randint(56, 64), packets, 1)
        flows.add(b, port, server, TEREDO_PORT, _teredo_app(params, rng), 82, 1, 1)


def _tunnel_traffic(flows: Flows, params: Params, rng: random.Random, b: int, port: int, kind: str,
                    packets: int, bytes_per_packet: float, relays: List[Tuple[str, int]],
                    peers: List[Tuple[str, int]], server: str) -> None:
    """Volume from the client port: to 1-3 relays, or spread over tens of peers (plus bubbles via the
    server when talking to a new peer). Unlabelled: a firewall cannot name what is inside."""
    labelled = params.behaviour.label_share is not None
    label = params.unlabelled_app
    if kind == "relay":
        weights = [1.0 / (i + 1) for i in range(len(relays))]
        total = sum(weights)
        for (dest, dport), weight in zip(relays, weights):
            share = max(1, round(packets * weight / total))
            flows.add(b, port, dest, dport, _data_app(params, rng) if labelled else label,
                      int(share * bytes_per_packet), share, rng.randint(1, 2))
    else:
        chosen = rng.sample(peers, min(len(peers), rng.randint(10, 60)))
        weights = [rng.uniform(0.5, 1.5) for _ in chosen]
        total = sum(weights)
        for (dest, dport), weight in zip(chosen, weights):
            share = max(1, round(packets * weight / total))
            flows.add(b, port, dest, dport, _data_app(params, rng) if labelled else label,
                      int(share * bytes_per_packet), share, 1)
        bubbles = max(1, len(chosen) // 4)
        flows.add(b, port, server, TEREDO_PORT, _teredo_app(params, rng), bubbles * 82, bubbles, bubbles)


def generate_host(params: Params, index: int, host: Host, storm: Tuple[int, int],
                  tunnels: List[dict], reuse: List[dict], bursts: List[dict]) -> Flows:
    rng = _rng(params, "flows", index)
    behaviour = params.behaviour
    flows = Flows()
    buckets = len(host.online)
    burst_days = {}
    if host.teredo:
        for day in range(params.days):
            if rng.random() < behaviour.nat_burst_rate:
                begin = day * PER_DAY + rng.randint(0, PER_DAY - 3)
                burst_days[begin] = rng.randint(*behaviour.nat_burst_buckets)
    burst_factor = bytearray(buckets)
    for begin, length in burst_days.items():
        if host.online[begin]:
            factor = rng.randint(*behaviour.nat_burst_factor)
            burst_factor[begin:begin + length] = bytes([factor]) * len(burst_factor[begin:begin + length])
            bursts.append({"src": host.ip, "start_index": begin, "buckets": length, "factor": factor})
    storm_factor = rng.uniform(4.0, 10.0)
    sessions = host.sessions
    heavy_relays = [(_public_ip(rng, RELAY_OCTETS), rng.randint(1025, 65535)) for _ in range(rng.randint(2, 5))]
    heavy_peers = [(_public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535)) for _ in range(300)]
    pool = _relay_pool(params) if behaviour.relay_pool == "shared" else []
    if pool and host.cls == "heavy":
        heavy_relays = _rng(params, "heavy relays", index).sample(pool, len(heavy_relays))
    in_session = bytearray(buckets)
    phases = _Phases(params, index, host) if behaviour.session_volume == "phased" else None
    session_destinations = []
    for number, (begin, end) in enumerate(sessions):
        in_session[begin:end] = bytes([1 + min(number, 254)]) * (end - begin)
        session_destinations.append(_session_destinations(params, index, number, heavy_relays, heavy_peers, pool))
    swarming = host.peer_to_peer and (behaviour.swarm_contacts or behaviour.swarm_idle_contacts)
    swarm = _Swarm(params, index, host, heavy_relays, pool) if swarming else None
    update = _Update(params, index, host) if host.update else None
    bubble_chance = behaviour.bubbles_per_hour * SPAN / 3600.0
    shared_rng = _rng(params, "shared volume", index)
    for b in range(buckets):
        if not host.online[b]:
            continue
        port = host.ports[b] if host.teredo else 0
        if port:
            factor = 1.0
            if burst_factor[b]:
                factor = float(burst_factor[b])
            if storm[0] <= b <= storm[1]:
                factor = storm_factor
            _chatter(host, flows, params, rng, b, port, factor)
            if behaviour.startup_packets and (b == 0 or not host.online[b - 1]
                                              or host.dormant and not host.ports[b - 1]):
                extra = rng.randint(behaviour.startup_packets // 2, behaviour.startup_packets)
                flows.add(b, port, host.server[0], TEREDO_PORT, _teredo_app(params, rng), extra * 90, extra, extra)
            if bubble_chance and rng.random() < bubble_chance:
                _bubbles(flows, params, rng, b, port, host.server[0])
            if host.dormant and host.wakes[b]:  # the application that woke it reaches its peers
                _bubbles(flows, params, rng, b, port, host.server[0])
            if swarm is not None:
                swarm.contact(flows, b, port, bool(in_session[b]))
            if update is not None and host.update[0] <= b < host.update[1]:
                update.exchange(flows, b, port)
            if in_session[b]:
                relays, peers = session_destinations[min(in_session[b] - 1, len(sessions) - 1)]
                packets = int(min(STEADY_CAP, rng.lognormvariate(math.log(host.level), host.spread)))
                if phases is not None:  # its own stream: the other draws stay those of "steady"
                    packets = phases.packets(in_session[b])
                for _ in range(1, host.users_on[b] if host.users_on else 1):  # a shared host's others
                    packets += int(min(STEADY_CAP, shared_rng.lognormvariate(math.log(host.level), host.spread)))
                _tunnel_traffic(flows, params, rng, b, port, "peer" if host.peer_to_peer else "relay", packets,
                                rng.uniform(300, 1000), relays[:rng.randint(1, len(relays))],
                                peers, host.server[0])
        live = tuple(host.ports[c] for c in (b - 1, b, b + 1) if 0 <= c < buckets and host.ports[c])
        _ordinary(host, flows, params, rng, b, live)
    for tunnel in tunnels:
        _inject(params, host, flows, tunnel)
    if host.teredo or any(t["src"] == host.ip for t in tunnels):
        _reuse_old_port(params, index, host, flows, reuse)
    return flows


class _Swarm:
    """`Behaviour.swarm_contacts` and `swarm_idle_contacts`: the new peers a peer-to-peer user's
    client contacts, bucket by bucket, from a random stream of its own (the other draws stay those
    of a scenario without it)."""

    def __init__(self, params: Params, index: int, host: Host, relays: List[Tuple[str, int]],
                 pool: List[Tuple[str, int]]) -> None:
        self.params = params
        self.rng = _rng(params, "swarm", index)
        self.server = host.server[0]
        self.relays = pool or relays

    def contact(self, flows: Flows, b: int, port: int, in_session: bool) -> None:
        """The bucket's contacts from the client `port`: each Teredo peer its bubbles, packets and
        an indirect bubble through its server; each native peer an echo test through the client's
        server and packets through a relay."""
        behaviour, rng = self.params.behaviour, self.rng
        median = behaviour.swarm_contacts if in_session else behaviour.swarm_idle_contacts
        if not median:
            return
        for _ in range(round(median * math.exp(rng.gauss(0.0, SWARM_SPREAD)))):
            packets = rng.randint(1, 4)
            if rng.random() < TEREDO_PEER_SHARE:
                packets += rng.randint(1, 2)  # the direct bubbles before them
                flows.add(b, port, _public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535),
                          _data_app(self.params, rng), packets * rng.randint(60, 160), packets, 1)
                server = rng.choices(TEREDO_SERVERS, weights=SERVER_WEIGHTS)[0][0]
                flows.add(b, port, server, TEREDO_PORT, _teredo_app(self.params, rng), 82, 1, 1)
            else:
                flows.add(b, port, self.server, TEREDO_PORT, _teredo_app(self.params, rng), 106, 1, 1)
                relay, relay_port = rng.choice(self.relays)
                flows.add(b, port, relay, relay_port, _data_app(self.params, rng),
                          packets * rng.randint(60, 160), packets, 1)


class _Phases:
    """`Behaviour.session_volume` "phased": a heavy user's packets per bucket, session by session."""

    def __init__(self, params: Params, index: int, host: Host) -> None:
        self.rng = _rng(params, "phases", index)
        self.host = host
        self.session = 0
        self.level = 0.0
        self.log_rate = 0.0

    def packets(self, session: int) -> int:
        """The next bucket's packets of session number `session` (buckets come in time order)."""
        rng, spread = self.rng, self.host.spread
        if session != self.session:
            self.session = session
            self.level = self.host.level * math.exp(rng.gauss(0.0, PHASE_SESSION_SIGMA))
            self.log_rate = rng.gauss(0.0, spread)
        else:
            self.log_rate = (PHASE_CORRELATION * self.log_rate
                             + math.sqrt(1 - PHASE_CORRELATION ** 2) * rng.gauss(0.0, spread))
        return int(min(PHASE_CAP, self.level * math.exp(self.log_rate)))


def _inject(params: Params, host: Host, flows: Flows, tunnel: dict) -> None:
    rng = _rng(params, "tunnel", tunnel["id"])
    first, last = tunnel["start_index"], tunnel["end_index"]
    port = host.ports[first]
    if not port:  # a cold host: Teredo starts with the tunnel and goes quiet a little after it
        port = rng.randint(1025, 65535)
        for b in range(first, min(len(host.online), last + 4)):
            if b <= last or host.online[b]:
                host.ports[b] = port
                _chatter(host, flows, params, rng, b, port, 1.0)
    tunnel["client_port"] = port
    relays = [(_public_ip(rng, RELAY_OCTETS), rng.randint(1025, 65535)) for _ in range(rng.randint(1, 3))]
    peers = [(_public_ip(rng, PEER_OCTETS), rng.randint(1025, 65535)) for _ in range(rng.randint(20, 80))]
    if params.behaviour.relay_pool == "shared":
        relays = _rng(params, "tunnel relays", tunnel["id"]).sample(_relay_pool(params), len(relays))
    bytes_per_packet = rng.uniform(400, 1200)
    tunnel["destinations"] = len(relays) if tunnel["kind"] == "relay" else len(peers)
    tunnel["bytes_per_packet"] = round(bytes_per_packet)
    for b in range(first, last + 1):
        packets = max(1, round(tunnel["extra_packets"] * rng.uniform(0.8, 1.2)))
        _tunnel_traffic(flows, params, rng, b, port, tunnel["kind"], packets, bytes_per_packet, relays,
                        peers, host.server[0])


def _reuse_old_port(params: Params, index: int, host: Host, flows: Flows, reuse: List[dict]) -> None:
    """QUIC from a client port the host gave up at least two days earlier (an ephemeral port again)."""
    rng = _rng(params, "reuse", index)
    behaviour = params.behaviour
    if rng.random() > behaviour.port_reuse_share:
        return
    last_seen: Dict[int, int] = {}
    for b, port in enumerate(host.ports):
        if port:
            last_seen[port] = b
    buckets = len(host.online)
    candidates = sorted((b, p) for p, b in last_seen.items() if b + behaviour.port_reuse_gap < buckets)
    for _ in range(behaviour.port_reuse_times):
        if not candidates:
            return
        retired_at, port = rng.choice(candidates)
        candidates.remove((retired_at, port))
        _reuse_port(params, rng, host, flows, reuse, retired_at, port)


def _reuse_port(params: Params, rng: random.Random, host: Host, flows: Flows, reuse: List[dict],
                retired_at: int, port: int) -> None:
    """QUIC for 1-4 buckets from `port`, at least `port_reuse_gap` buckets after its last Teredo bucket."""
    gap = params.behaviour.port_reuse_gap
    buckets = len(host.online)
    online = [b for b in range(retired_at + gap, buckets - 3)
              if host.online[b] and port not in host.ports[max(0, b - 1):b + 5]]
    if not online:
        return
    first = rng.choice(online)
    length = rng.randint(1, 4)
    dest = "%s.%d.%d" % (rng.choice(QUIC_PREFIXES), rng.randint(0, 255), rng.randint(1, 254))
    for b in range(first, first + length):
        packets = rng.randint(300, 3000)
        flows.add(b, port, dest, 443, _app(params, "quic"), packets * rng.randint(80, 400), packets, 1)
    reuse.append({"src": host.ip, "port": port, "retired_index": retired_at, "start_index": first,
                  "buckets": length, "dest_port": 443})


# ---------------------------------------------------------------------------------------------- output
def generate(params: Params) -> Tuple[List[list], dict]:
    """All rows (sorted as tstats returns them) and the ground truth."""
    hosts = plan_hosts(params)
    storm = _storm(params)
    tunnels = plan_tunnels(params, hosts, storm)
    plan_updates(params, hosts)
    assign_ports(params, hosts)
    make_dormant(params, hosts, tunnels)
    by_host: Dict[str, List[dict]] = {}
    for tunnel in tunnels:
        by_host.setdefault(tunnel["src"], []).append(tunnel)
    reuse: List[dict] = []
    bursts: List[dict] = []
    rows: List[tuple] = []
    addresses: List[Tuple[Host, int, int, str]] = []  # (host, first bucket, end, address)
    end_stamped = params.behaviour.record_time == "end"
    for index, host in enumerate(hosts):
        flows = generate_host(params, index, host, storm, by_host.get(host.ip, []), reuse, bursts)
        if params.behaviour.duplicate_share:
            _duplicate(params, index, flows)
        if params.behaviour.flow_sampling > 1:
            _sample(params, index, flows)
        if params.behaviour.flow_timeout != 1:
            _join_long_flows(params.behaviour.flow_timeout, flows)
        spans = _address_spans(params, index, host, by_host.get(host.ip, []), len(addresses) - index)
        addresses += [(host, first, end, ip) for first, end, ip in spans]
        starts = [first for first, _, _ in spans]
        keys = [(_ip_key(ip), ip) for _, _, ip in spans]
        for group, (bytes_out, packets, count) in flows.rows.items():
            b, sport, dest, dport, app = group
            key, ip = keys[bisect_right(starts, b) - 1]
            length = flows.lengths.get(group, 1)
            stamped = b + length - 1 if end_stamped else b
            rows.append((stamped, key, sport, _ip_key(dest), dport, app, ip, dest, bytes_out, packets, count,
                         length * SPAN - LAST_PACKET_GAP))
    rows.sort(key=lambda r: r[:6])
    durations = params.behaviour.record_durations
    out = [[params.start + r[0] * SPAN, r[6], r[2], r[7], r[4], r[5], r[8], r[9], r[10]]
           + ([r[11]] if durations else []) for r in rows]
    return out, _truth(params, hosts, storm, tunnels, reuse, bursts, len(out), addresses)


DUPLICATE_BUCKETS = (6, 3 * PER_DAY)  # duplicate_share: how long a host's flows count double


def _duplicate(params: Params, index: int, flows: Flows) -> None:
    """`Behaviour.duplicate_share`: if the host is drawn, its rows in one window count double."""
    rng = _rng(params, "duplicates", index)
    if rng.random() >= params.behaviour.duplicate_share:
        return
    first = rng.randrange(params.days * PER_DAY)
    end = first + rng.randint(*DUPLICATE_BUCKETS)
    for key, row in flows.rows.items():
        if first <= key[0] < end:
            row[:] = [2 * value for value in row]


def _join_long_flows(timeout: int, flows: Flows) -> None:
    """`Behaviour.flow_timeout`: each run of consecutive buckets of one (src_port, dest, dest_port,
    app) is one flow, cut every `timeout` buckets (0: never); each piece is one record whose packets
    and bytes are counted at its first bucket, and whose length is kept in `flows.lengths`."""
    runs: Dict[Tuple[int, str, int, str], List[int]] = {}
    for bucket, *rest in sorted(flows.rows):
        runs.setdefault(tuple(rest), []).append(bucket)
    joined: Dict[Tuple[int, int, str, int, str], List[int]] = {}
    for rest, buckets in runs.items():
        start = previous = None
        for bucket in buckets:
            if previous is None or bucket != previous + 1 or (timeout and bucket - start >= timeout):
                start = bucket
                joined[(start,) + rest] = [0, 0, 1]
            record = joined[(start,) + rest]
            bytes_out, packets, _ = flows.rows[(bucket,) + rest]
            record[0] += bytes_out
            record[1] += packets
            if bucket > start:
                flows.lengths[(start,) + rest] = bucket - start + 1
            previous = bucket
    flows.rows = joined


def _sample(params: Params, index: int, flows: Flows) -> None:
    """`Behaviour.flow_sampling`: each row as a sampling exporter and its collector leave it. Its
    packets are seen with chance 1/N each (a row is the sum of its flows, and a sum of binomials is
    a binomial); a row none of whose packets was seen is gone, its flow count is at most the packets
    seen, its bytes follow its packets, and `sampling_scaled` multiplies both by N. From its own
    random stream: the rows drawn before sampling are those of the scenario without it."""
    rng = _rng(params, "sampling", index)
    n = params.behaviour.flow_sampling
    scale = n if params.behaviour.sampling_scaled else 1
    log_miss = math.log(1.0 - 1.0 / n)
    for key in sorted(flows.rows):  # a fixed order: the draws do not depend on dict order
        bytes_out, packets, count = flows.rows[key]
        seen, at = 0, 0
        while True:  # the gaps between sampled packets are geometric: O(packets seen) draws
            at += 1 + int(math.log(1.0 - rng.random()) / log_miss)
            if at > packets:
                break
            seen += 1
        if not seen:
            del flows.rows[key]
        else:
            flows.rows[key] = [round(bytes_out * seen / packets) * scale, seen * scale, min(count, seen)]


def _address_spans(params: Params, index: int, host: Host, tunnels: List[dict], churned: int
                   ) -> List[Tuple[int, int, str]]:
    """`Behaviour.address_churn`: the host's addresses, (first bucket, end, address) in time order;
    the first is host.ip. `churned`: new addresses handed out so far (this host's follow on)."""
    buckets = len(host.online)
    spans = [(0, buckets, host.ip)]
    chance = params.behaviour.address_churn
    if not chance or host.cls == "server":
        return spans
    rng = _rng(params, "address", index)
    busy = [(t["start_index"], t["end_index"] + 4) for t in tunnels] + list(host.sessions)
    for day in range(1, params.days):
        at = day * PER_DAY
        if rng.random() < chance and at > host.join and not any(a < at <= b for a, b in busy):
            n = churned + len(spans) - 1
            spans[-1] = (spans[-1][0], at, spans[-1][2])
            spans.append((at, buckets, "10.%d.%d.%d" % (CHURN_NET, n // 250, n % 250 + 1)))
    return spans


def _truth(params: Params, hosts: List[Host], storm: Tuple[int, int], tunnels: List[dict],
           reuse: List[dict], bursts: List[dict], rows: int,
           addresses: List[Tuple[Host, int, int, str]]) -> dict:
    def at(index: int) -> int:
        return params.start + index * SPAN
    spans: Dict[str, List[Tuple[int, int, str]]] = {}
    for host, first, end, ip in addresses:
        spans.setdefault(host.ip, []).append((first, end, ip))

    def address(src: str, bucket: int) -> str:
        return next(ip for first, end, ip in spans[src] if first <= bucket < end)
    for item in tunnels + reuse + bursts:
        item["start"] = at(item["start_index"])
        if "end_index" in item:
            item["end"] = at(item["end_index"])
        item["src"] = address(item["src"], item["start_index"])
    described = {}
    for host, first, end, ip in addresses:
        seen = next((b for b in range(first, end) if host.ports[b] and host.online[b]), None)
        described[ip] = {"class": host.cls, "teredo": host.teredo, "join": at(max(host.join, first)),
                         "teredo_first_seen": None if seen is None else at(seen),
                         "online_buckets": sum(host.online[first:end])}
        if ip != host.ip:
            described[ip]["address_of"] = host.ip
        if host.heavy_from:
            described[ip]["heavy_from"] = at(host.heavy_from)
        if host.absent:
            described[ip]["absent"] = [at(host.absent[0]), at(host.absent[1])]
        if host.users > 1:
            described[ip]["users"] = host.users
        if host.peer_to_peer and (params.behaviour.swarm_contacts or params.behaviour.swarm_idle_contacts):
            described[ip]["swarm"] = True
        if host.dormant:
            described[ip]["dormant"] = True
    extra = {}
    if params.behaviour.update_share:
        extra = {"update_release": at(update_release(params)),
                 "updates": [{"src": address(h.ip, h.update[0]), "start": at(h.update[0]),
                              "end": at(h.update[1] - 1), "start_index": h.update[0],
                              "buckets": h.update[1] - h.update[0]} for h in hosts if h.update]}
    return {
        "format": "teredo_spike scenario 1",
        "parameters": _parameters(params),
        "span": SPAN,
        "start": params.start,
        "end": at(params.days * PER_DAY - 1),
        "buckets": params.days * PER_DAY,
        "rows": rows,
        "hosts": described,
        "teredo_servers": [s for pair in TEREDO_SERVERS for s in pair if s],
        "storm": {"start": at(storm[0]), "end": at(storm[1]), "start_index": storm[0], "end_index": storm[1]},
        "nat_bursts": bursts,
        "heavy_sessions": [{"src": address(h.ip, begin), "start": at(begin), "end": at(end - 1)}
                           for h in hosts for begin, end in h.sessions],
        "port_reuse": reuse,
        "tunnels": tunnels,
        **extra,
    }


def _parameters(params: Params) -> dict:
    """The truth's parameters; the behaviour only when it is not the default (so that the default
    scenario's truth, the bundled sample's among them, reads as it did before the options)."""
    out = {**asdict(params), "tunnels": params.tunnel_count()}
    if params.behaviour == DEFAULT_BEHAVIOUR:
        del out["behaviour"]
    if not params.heavy_tunnels:
        del out["heavy_tunnels"], out["heavy_tunnel_factor"]
    return out


def write(params: Params, out: Path, truth_path: Optional[Path]) -> dict:
    rows, truth = generate(params)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header(params.behaviour))
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.getvalue().encode("ascii"))
    if truth_path is not None:
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        truth_path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n", encoding="ascii")
    return truth


def _ints(text: str) -> Tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named scenario (e.g. the bundled sample)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--hosts", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--tunnels", type=int, help="injected tunnels before repeats (default hosts/8)")
    parser.add_argument("--magnitudes", type=_ints, help="extra packets per 10m, comma-separated")
    parser.add_argument("--durations", type=_ints, help="tunnel durations in buckets, comma-separated")
    parser.add_argument("--label-mode", choices=["teredo", "none"],
                        help="teredo: server flows carry app=teredo; none: no app labels at all")
    parser.add_argument("--unlabelled-app", help='app value of unidentified flows (default "unknown")')
    parser.add_argument("--family", choices=sorted(FAMILY_CHANGES), default="default",
                        help="behavioural assumptions (tools/evaluate.py's matrix runs each)")
    parser.add_argument("--out", type=Path, help="CSV output (.csv.gz)")
    parser.add_argument("--truth", type=Path, help="ground truth JSON output")
    args = parser.parse_args(argv)
    values = dict(PRESETS[args.preset]) if args.preset else {}
    for name in ("seed", "hosts", "days", "tunnels", "magnitudes", "durations"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.label_mode:
        values["label_mode"] = args.label_mode
    if args.unlabelled_app is not None:
        values["unlabelled_app"] = args.unlabelled_app
    out, truth = args.out, args.truth
    if args.preset and out is None:
        root = Path(__file__).resolve().parents[1]
        out, truth = (root / p for p in PRESET_PATHS[args.preset])
    if out is None:
        parser.error("--out is required (or --preset)")
    params = Params(behaviour=FAMILIES[args.family], **values)
    if params.hosts < 20 or params.days < params.warmup_days + 2:
        parser.error("need --hosts >= 20 and --days >= %d" % (params.warmup_days + 2))
    result = write(params, out, truth)
    sys.stderr.write("%s: %d rows, %d hosts, %d days, %d tunnels\n"
                     % (out, result["rows"], params.hosts, params.days, len(result["tunnels"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
