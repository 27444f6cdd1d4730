#!/usr/bin/env python
"""| teredospike — outbound Teredo spikes per internal host (MITRE ATT&CK T1572).

A chunked (SCP v2) ReportingCommand. The map phase runs where the events are (indexers) and turns flow
records into per (host, client port, bucket) aggregates; the reduce phase (search head) merges them,
ties relay traffic to live Teredo client ports, scores and emits once the input is finished.
The logic lives in the `teredo_spike` package beside this file.
"""

import gc
import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)

from splunklib.searchcommands import Configuration, Option, ReportingCommand, dispatch  # noqa: E402

from teredo_spike import options as opts  # noqa: E402
from teredo_spike import splunk_adapter  # noqa: E402
from teredo_spike.fields import REQUIRED_FIELDS  # noqa: E402
from teredo_spike.output import FIELDS, result_rows  # noqa: E402
from teredo_spike.partials import PARTIAL_FIELDS  # noqa: E402
from teredo_spike.phases import MapPhase, ReducePhase, TooManyHostBuckets  # noqa: E402
from teredo_spike.summary import (SUMMARY_FIELDS, MixedInput, bucket_rows,  # noqa: E402
                                  long_records_message, stamp)

# Errors that end the search with their own message.
STOPS = (TooManyHostBuckets, MixedInput)


class TeredoSpikeCommand(ReportingCommand):
    """Counts each internal host's outbound Teredo traffic per bucket and returns explained spikes."""

    def prepare(self):
        try:
            if self.fieldnames:
                raise opts.OptionError(
                    "teredospike takes no field names (got %s); its options are %s"
                    % (" ".join(self.fieldnames), opts.OPTION_NAMES))
            self.settings = opts.parse(**{spec.name: getattr(self, spec.name)
                                          for spec in opts.OPTIONS})
        except opts.OptionError as error:
            self.write_error(str(error))
            sys.exit(1)
        span, internal = self.settings.scoring.span, self.settings.internal
        limit = self.settings.max_host_buckets
        # One of the two is used: this process runs either the map or the reduce phase.
        record_time = self.settings.record_time
        self.map_phase = MapPhase(span, internal, limit, record_time)
        self.reduce_phase = ReducePhase(span, internal, limit, record_time)
        super().prepare()

    @Configuration(required_fields=REQUIRED_FIELDS)
    def map(self, records):
        """Indexers: flow records -> partial aggregates (phases.MapPhase)."""
        chunk = splunk_adapter.as_chunk(records)
        with collector_paused(), stops_on(STOPS, self):
            if self.map_phase.passes_on(chunk):
                splunk_adapter.write_body(self, chunk)
                return iter(())
            tables = self.map_phase.tables(chunk, splunk_adapter.is_last_chunk(self))
        for table in tables:
            splunk_adapter.write_table(self, PARTIAL_FIELDS, table)
        return iter(())

    def reduce(self, records):
        """Search head: merge partial aggregates (or raw records, if no map phase ran); score and
        emit when the input is finished. splunklib calls this once per chunk."""
        phase = self.reduce_phase
        with collector_paused(), stops_on(STOPS, self):
            phase.read(splunk_adapter.as_chunk(records))
            if not splunk_adapter.is_last_chunk(self):
                return iter(())
            if self.settings.output == "buckets":
                self._write_buckets()
                return iter(())
            hosts = phase.scored(self.settings.scoring)
            self._report_counts(bool(hosts))
            rows = result_rows(hosts, self.settings.scoring, self.settings.output,
                               self.settings.hosts)
            splunk_adapter.write_results(self, FIELDS, rows)
        return iter(())

    def _write_buckets(self):
        """output=buckets: the summary stage's rows of the buckets this search owns (summary.py)."""
        cells = self.reduce_phase.attributed()
        self._report_counts(bool(cells))
        long_records = long_records_message(self.reduce_phase.notes, self.settings.scoring.span)
        if long_records:
            self.write_warning(long_records)
        searchinfo = self.metadata.searchinfo
        rows = bucket_rows(cells, self.settings.scoring.span,
                           float(getattr(searchinfo, "earliest_time", 0) or 0),
                           float(getattr(searchinfo, "latest_time", 0) or 0),
                           self.settings.hosts, stamp())
        splunk_adapter.write_results(self, SUMMARY_FIELDS, rows)

    def _report_counts(self, found: bool):
        phase = self.reduce_phase
        for message in (opts.skipped_message(phase.records, phase.skipped),
                        opts.unread_durations_message(phase.records, phase.notes)):
            if message:
                self.write_warning(message)
        if phase.records and not found:
            self.write_info("teredospike: no outbound Teredo traffic in %s records."
                            % "{:,}".format(phase.records))


# The command's options, one per options.OPTIONS entry (splunklib finds them as class attributes).
for _spec in opts.OPTIONS:
    setattr(TeredoSpikeCommand, _spec.name, Option(
        doc="%s. Default %s." % (_spec.help.replace("`", ""), _spec.default), default=_spec.default))
if splunk_adapter.PRIVATE_API:
    TeredoSpikeCommand._execute_chunk_v2 = splunk_adapter.execute_chunk_v2
TeredoSpikeCommand = Configuration(
    requires_preop=True, run_in_preview=False,
    required_fields=sorted(set(REQUIRED_FIELDS) | set(PARTIAL_FIELDS) | set(SUMMARY_FIELDS))
)(TeredoSpikeCommand)


@contextmanager
def stops_on(error_types: Tuple[type, ...], command: TeredoSpikeCommand) -> Iterator[None]:
    """End the search with the error's own message (an ERROR the user reads, not a traceback)."""
    try:
        yield
    except error_types as error:
        command.write_error(str(error))
        sys.exit(1)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is read: the records make millions of
    short-lived lists but no cycles, and each collection would walk every cell kept so far.
    Collection resumes between chunks, over what was made since: what the chunks left is
    frozen (gc.freeze), or a collection while splunklib reads the next chunk walks every row
    held (the detection stage holds a week of summary rows: at 2,000 hosts such collections
    took its reduce phase from 4.5 to 7.6 CPU-s in some runs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def main() -> None:
    """Run the command as splunkd starts it (also from tests/public_api_command.py)."""
    dispatch(TeredoSpikeCommand, sys.argv, sys.stdin, sys.stdout, "__main__")
    # splunklib has written and flushed its last reply. Leave without the interpreter's final
    # collection and teardown of every cell (~0.5 s at millions of objects; docs/splunk-protocol-notes.md).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
