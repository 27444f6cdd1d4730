"""Which flow records `| teredospike` counts as Teredo, one verdict per record.

The command reports per host and bucket; to hold its decisions against another tool's per-flow
verdicts (Zeek's `service=teredo`), this module runs the command's own code over the records — the
same phases (evidence.py for label/prefix/port, the live-client-port rule of cells.py for the
rest), fed the same chunk body splunkd would send, with the command's option defaults
(options.OPTIONS) — and asks, per record:

- does the command count it at all (outbound UDP, readable), and with what evidence of its own;
- is the (host, client port, bucket) cell it lands in kept once every record is in (a cell with
  evidence of its own, or plain UDP from a port that is a live Teredo client port nearby)?

A record is Teredo when both hold. Nothing here re-implements a rule: a change to the command's
rules changes these verdicts.
"""

import os
import sys
from typing import List, NamedTuple, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin")
for _path in (os.path.join(BIN, "lib"), BIN):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from teredo_spike import evidence as ev  # noqa: E402
from teredo_spike import options as opts  # noqa: E402
from teredo_spike.fields import Chunk  # noqa: E402
from teredo_spike.partials import entry_cells  # noqa: E402
from teredo_spike.phases import MapPhase, ReducePhase  # noqa: E402

from tools import scpv2  # noqa: E402


class Verdict(NamedTuple):
    counted: bool  # outbound UDP the command reads (not skipped, not filtered out)
    teredo: bool
    evidence: List[str]  # the record's own evidence kinds, or ["client_port"] when attributed


def _settings(args: Sequence[str]) -> opts.Options:
    values = {}
    for arg in args:
        name, _, value = arg.partition("=")
        if name not in opts.DEFAULTS:
            raise ValueError("unknown option %r" % arg)
        values[name] = value
    return opts.parse(**values)


def _chunk(records: Sequence[scpv2.Record], fields: Sequence[str]) -> Chunk:
    """The records as the command reads an execute chunk's body."""
    return Chunk(scpv2.encode_body(records, fields).decode("utf-8"))


def flow_verdicts(records: Sequence[scpv2.Record], args: Sequence[str] = ()) -> List[Verdict]:
    settings = _settings(args)
    span, internal, record_time = settings.scoring.span, settings.internal, settings.record_time
    fields = scpv2.field_order(records)

    whole = ReducePhase(span, internal, record_time=record_time)  # given every raw record
    whole.read(_chunk(records, fields))
    whole.spool.resolve()

    verdicts = []
    for record in records:
        alone = MapPhase(span, internal, record_time=record_time)
        candidates = alone.read(_chunk([record], fields))
        cells = dict(alone.cells)
        cells.update(candidates.cells)
        for entry in candidates.entries:
            cells.update(entry_cells(entry, span, record_time))
        if not cells:  # not outbound UDP, or unreadable: the command does not count it
            verdicts.append(Verdict(False, False, []))
            continue
        # A record with a duration has a key per bucket it lasted over: Teredo if any is kept.
        own = next((alone.cells[key].evidence for key in cells if key in alone.cells), 0)
        kept = any(key in whole.cells for key in cells)
        kinds = ev.names(own) if own else (["client_port"] if kept else [])
        verdicts.append(Verdict(True, kept, kinds))
    return verdicts
