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
from typing import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)

from splunklib.searchcommands import Configuration, Option, ReportingCommand, dispatch  # noqa: E402

from teredo_spike import options as opts  # noqa: E402
from teredo_spike.addresses import DEFAULT_INTERNAL  # noqa: E402
from teredo_spike.aggregation import PARTIAL_FIELDS, Aggregator, is_partial  # noqa: E402
from teredo_spike.fields import REQUIRED_FIELDS, Chunk, wire_header  # noqa: E402
from teredo_spike.output import FIELDS, result_rows  # noqa: E402
from teredo_spike.scoring import host_buckets, score_all  # noqa: E402


@Configuration(requires_preop=True, run_in_preview=False,
               required_fields=sorted(set(REQUIRED_FIELDS) | set(PARTIAL_FIELDS)))
class TeredoSpikeCommand(ReportingCommand):
    """Counts each internal host's outbound Teredo traffic per bucket and returns explained spikes."""

    span = Option(doc="Bucket width, e.g. 10m, 1h, 600 (seconds). Default 10m.", default="10m")
    threshold = Option(doc="Score at or above which a bucket is a spike. Default 6.0.", default="6.0")
    min_packets = Option(doc="Per-bucket packet floor; below it and min_bytes, no spike. Default 50.",
                         default="50")
    min_bytes = Option(doc="Per-bucket byte floor; below it and min_packets, no spike. Default 16000.",
                       default="16000")
    internal = Option(doc="Comma-separated CIDRs of internal networks. Default: RFC 1918, CGNAT, "
                          "link-local, fc00::/7, fe80::/10.", default=DEFAULT_INTERNAL)
    output = Option(doc="spikes (one row per episode) or all (every host-bucket with Teredo).",
                    default="spikes")

    def prepare(self):
        try:
            if self.fieldnames:
                raise opts.OptionError(
                    "teredospike takes no field names (got %s); its options are %s"
                    % (" ".join(self.fieldnames), opts.OPTION_NAMES))
            self.settings = opts.parse(span=self.span, threshold=self.threshold,
                                       min_packets=self.min_packets, min_bytes=self.min_bytes,
                                       internal=self.internal, output=self.output)
        except opts.OptionError as error:
            self.write_error(str(error))
            sys.exit(1)
        self.aggregator = Aggregator(self.settings.scoring.span, self.settings.internal)
        super().prepare()

    def _execute_chunk_v2(self, process, chunk):
        # splunklib's own version wraps the body in a StringIO and reads a dict per record;
        # map() and reduce() read the body as a Chunk instead (rows as lists, never a dict).
        metadata, body = chunk
        if not body and not self._allow_empty_input:
            raise ValueError("No records found to process.")
        self._record_writer.write_records(process(Chunk(body)))

    @Configuration(required_fields=REQUIRED_FIELDS)
    def map(self, chunk):
        """Indexers: flow records -> partial aggregates. Candidates that cannot be tied to a live
        client port here are passed on at once; the rest when the input is finished."""
        aggregator = self.aggregator
        with collector_paused():
            candidates = aggregator.add_chunk(chunk)
            tables = [aggregator.partial_table(candidates.cells, candidates.entries)]
            if self._finished:
                tables += [aggregator.partial_table(aggregator.cells), aggregator.counts_table()]
        for table in tables:
            self._write_table(PARTIAL_FIELDS, table)
        return iter(())

    def _write_table(self, fields, table):
        """Write map-phase rows already in wire form (PartialTable) into this chunk's reply.
        splunklib's write_records would take a dict per row and re-encode every cell (~10 µs a
        row); at the end of input the map phase passes on a row per cell, hundreds of thousands
        on a busy indexer, so it writes them into the record writer's buffer itself, in the
        writer's dialect, as its _write_record does."""
        writer = self._record_writer
        if writer._fieldnames is None:
            writer._fieldnames = list(fields)
            writer._writerow(wire_header(fields))
        elif writer._fieldnames != list(fields):
            raise RuntimeError("teredospike: one reply with two tables")
        writer._buffer.write(table.text)
        writer._writer.writerows(table.rows)
        writer._pending_record_count += table.text_rows + len(table.rows)

    def reduce(self, chunk):
        """Search head: merge partial aggregates (or raw records, if no map phase ran); score and
        emit when the input is finished. splunklib calls this once per chunk."""
        aggregator = self.aggregator
        with collector_paused():
            if is_partial(chunk.header):
                aggregator.add_partial_rows(chunk.header, chunk.rows())
            else:
                aggregator.spool_candidates(aggregator.add_chunk(chunk))
            if not self._finished:
                return
            aggregator.resolve_spool()
            self._report_counts()
            hosts = host_buckets(aggregator.cells)
            score_all(hosts, self.settings.scoring)
            rows = result_rows(hosts, self.settings.scoring, self.settings.output)
        for row in rows:
            yield {name: row[name] for name in FIELDS}

    def _report_counts(self):
        aggregator = self.aggregator
        message = opts.skipped_message(aggregator.records, aggregator.skipped)
        if message:
            self.write_warning(message)
        if aggregator.records and not aggregator.cells:
            self.write_info("teredospike: no outbound Teredo traffic in %s records."
                            % "{:,}".format(aggregator.records))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is read: the records make millions of
    short-lived lists but no cycles, and each collection would walk every cell kept so far.
    Collection resumes between chunks."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def main() -> None:
    dispatch(TeredoSpikeCommand, sys.argv, sys.stdin, sys.stdout, __name__)
    # splunklib has written and flushed its last reply. Leave without the interpreter's final
    # collection and teardown of every cell (~0.5 s at millions of objects, FIELD-NOTES 9).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
