"""Scoring rate measured directly on the scoring functions (run under the Python being measured).

Reads aggregated (tstats) or summary-row chunk bodies written by bench/workload.py, aggregates them
as the command does (phases.ReducePhase), then times, separately, what it does at the end of input
(ReducePhase.scored: attribution, host_buckets, score_all; then result_rows). Prints JSON.
"""

import gc
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bin"))

from teredo_spike import options  # noqa: E402
from teredo_spike.fields import Chunk  # noqa: E402
from teredo_spike.output import result_rows  # noqa: E402
from teredo_spike.phases import ReducePhase  # noqa: E402


def main(path: str) -> None:
    with open(path + ".json") as f:
        chunks = json.load(f)
    chosen = options.parse(span="600")
    settings = chosen.scoring
    phase = ReducePhase(settings.span, chosen.internal)
    gc.disable()  # as the command does while it reads
    start = time.process_time()
    with open(path, "rb") as f:
        for offset, length, _ in chunks:
            f.seek(offset)
            phase.read(Chunk(f.read(length).decode("utf-8")))
    aggregate_cpu = time.process_time() - start
    start = time.process_time()
    hosts = phase.scored(settings)
    rows = list(result_rows(hosts, settings, "spikes"))
    score_cpu = time.process_time() - start
    sys.stdout.write(json.dumps({
        "rows": phase.records,
        "host_buckets": sum(len(series) for series in hosts.values()),
        "hosts": len(hosts),
        "results": len(rows),
        "aggregate_cpu": aggregate_cpu,
        "score_cpu": score_cpu,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip tearing down millions of objects; nothing is measured after this


if __name__ == "__main__":
    main(sys.argv[1])
