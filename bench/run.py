#!/usr/bin/env python3
"""Rerun the whole performance benchmark of `| teredospike` and write docs/performance.md + .json.

    python bench/run.py                 # full run (~10-15 minutes on 2 cores)
    python bench/run.py --quick --out /tmp/bench   # tiny sizes, one run: checks the pieces work

For each Python Splunk bundles (3.9, 3.13), on the same pre-encoded chunk bodies:

- raw records (1M and 4M, 50,000 per chunk), map phase (where raw records go: the indexers), end to
  end through the chunked protocol: teredospike, the splunklib per-record reference command
  (bench/reference_command.py) and the csv.reader floor (bench/floor.py), runs interleaved;
- the reduce phase (search head) on the map phase's output, through the protocol;
- peak RSS (VmHWM while the process lives) at each size and at 50,000 distinct hosts;
- scoring rate on aggregated (tstats) rows, directly through the scoring functions and through
  the protocol (map + reduce);
- seconds from spawn to the getinfo reply.

Every figure is the median of --runs runs. CPU seconds come from the command's rusage.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import driver, workload  # noqa: E402
from bench.report import run_facts, write_reports  # noqa: E402

COMMAND = os.path.join(ROOT, "bin", "teredospike.py")
REFERENCE = os.path.join(ROOT, "bench", "reference_command.py")
FLOOR = os.path.join(ROOT, "bench", "floor.py")
SCORING = os.path.join(ROOT, "bench", "scoring.py")
PYTHONS = ("3.9.18", "3.13.0")

FULL = {"sizes": [1_000_000, 4_000_000], "hosts": 5_000, "many_hosts": 50_000,
        "many_hosts_records": 1_000_000, "chunk": 50_000, "runs": 3,
        "scoring_hosts": 400, "scoring_buckets": workload.WEEK_BUCKETS}
QUICK = {"sizes": [20_000, 40_000], "hosts": 200, "many_hosts": 2_000,
         "many_hosts_records": 20_000, "chunk": 5_000, "runs": 1,
         "scoring_hosts": 20, "scoring_buckets": 30}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _floor(python: str, bodies: workload.BodySet) -> float:
    out = subprocess.run([python, FLOOR, bodies.path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["cpu"]


def _summary(measurements: Sequence[driver.Measurement], records: int) -> Dict[str, float]:
    cpu = median([m.cpu for m in measurements])
    return {"cpu_s": cpu, "wall_s": median([m.wall for m in measurements]),
            "records_per_cpu_s": records / cpu,
            "records_per_wall_s": records / median([m.wall for m in measurements]),
            "vm_hwm_mb": median([m.vm_hwm_kb for m in measurements]) / 1024.0,
            "runs": len(measurements)}


def raw_records(python: str, bodies: workload.BodySet, config: dict) -> dict:
    """Map phase on raw records: teredospike, reference, floor; then the reduce phase."""
    map_args, _ = driver.preop_args(python, COMMAND, [])
    reference_args, _ = driver.preop_args(python, REFERENCE, [])
    ours, reference, floors = [], [], []
    for run in range(config["runs"]):
        floors.append(_floor(python, bodies))
        reference.append(driver.run(python, REFERENCE, reference_args, bodies,
                                    bodies.final_body))
        ours.append(driver.run(python, COMMAND, map_args, bodies, bodies.final_body))
        driver.log("    run %d: floor %.2fs, reference %.2fs, teredospike %.2fs CPU"
            % (run + 1, floors[-1], reference[-1].cpu, ours[-1].cpu))
    records = bodies.records
    result = {
        "records": records,
        "floor": {"cpu_s": median(floors), "records_per_cpu_s": records / median(floors)},
        "reference": _summary(reference, records),
        "teredospike_map": _summary(ours, records),
    }
    result["ratio_to_floor"] = result["floor"]["cpu_s"] / result["teredospike_map"]["cpu_s"]
    result["ratio_to_reference"] = (result["reference"]["cpu_s"]
                                    / result["teredospike_map"]["cpu_s"])

    # Reduce phase (search head) on the map phase's output, re-chunked as splunkd feeds it.
    reduce_bodies, final_reduce, rows_in = driver.next_phase_bodies(ours[0].replies,
                                                                    config["chunk"])
    reduces = []
    for _ in range(config["runs"]):
        reduces.append(driver.run(python, COMMAND, [], reduce_bodies, final_reduce))
    _, results = driver.reply_rows(reduces[0].replies)
    # Rates per raw record behind the map output: a row may carry one cell or several entries.
    summary = _summary(reduces, records)
    summary["rows_in"] = rows_in
    summary["rows_out"] = len(results)
    result["teredospike_reduce"] = summary
    return result


def many_hosts(python: str, bodies: workload.BodySet, config: dict) -> dict:
    map_args, _ = driver.preop_args(python, COMMAND, [])
    runs = [driver.run(python, COMMAND, map_args, bodies, bodies.final_body)
            for _ in range(config["runs"])]
    reduce_bodies, final_reduce, rows_in = driver.next_phase_bodies(runs[0].replies,
                                                                    config["chunk"])
    reduces = [driver.run(python, COMMAND, [], reduce_bodies, final_reduce)
               for _ in range(config["runs"])]
    return {"hosts": config["many_hosts"], "records": bodies.records,
            "teredospike_map": _summary(runs, bodies.records),
            "teredospike_reduce": dict(_summary(reduces, bodies.records), rows_in=rows_in)}


def scoring(python: str, bodies: workload.BodySet, config: dict) -> dict:
    direct = []
    for _ in range(config["runs"]):
        out = subprocess.run([python, SCORING, bodies.path], capture_output=True, text=True,
                             check=True)
        direct.append(json.loads(out.stdout))
    rows = direct[0]["rows"]
    score_cpu = median([d["score_cpu"] for d in direct])
    aggregate_cpu = median([d["aggregate_cpu"] for d in direct])
    map_args, _ = driver.preop_args(python, COMMAND, [])
    maps, reduces = [], []
    for _ in range(config["runs"]):
        mapped = driver.run(python, COMMAND, map_args, bodies, bodies.final_body)
        reduce_bodies, final_reduce, _ = driver.next_phase_bodies(mapped.replies, config["chunk"])
        maps.append(mapped)
        reduces.append(driver.run(python, COMMAND, [], reduce_bodies, final_reduce))
    map_cpu = median([m.cpu for m in maps])
    reduce_cpu = median([m.cpu for m in reduces])
    return {
        "hosts": config["scoring_hosts"], "active_buckets": config["scoring_buckets"],
        "rows": rows, "host_buckets": direct[0]["host_buckets"],
        "results": direct[0]["results"],
        "direct": {"score_cpu_s": score_cpu, "rows_per_cpu_s": rows / score_cpu,
                   "aggregate_cpu_s": aggregate_cpu,
                   "rows_per_cpu_s_with_aggregation": rows / (score_cpu + aggregate_cpu),
                   "max_rss_mb": median([d["max_rss_kb"] for d in direct]) / 1024.0},
        "protocol": {"map_cpu_s": map_cpu, "reduce_cpu_s": reduce_cpu,
                     "rows_per_cpu_s": rows / (map_cpu + reduce_cpu),
                     "reduce_rows_per_cpu_s": rows / reduce_cpu,
                     "map_vm_hwm_mb": median([m.vm_hwm_kb for m in maps]) / 1024.0,
                     "reduce_vm_hwm_mb": median([m.vm_hwm_kb for m in reduces]) / 1024.0},
    }


def getinfo_latency(python: str, runs: int) -> dict:
    times = [driver.preop_args(python, COMMAND, [])[1] for _ in range(max(runs, 7))]
    return {"median_s": median(times), "max_s": max(times), "runs": len(times)}


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"),
                        help="where performance.md and performance.json go (default docs/)")
    parser.add_argument("--python", action="append",
                        help="interpreter to measure (repeatable; default: pyenv 3.9.18, 3.13.0)")
    parser.add_argument("--runs", type=int, help="runs per measurement (median; default 3)")
    options = parser.parse_args(list(argv))
    config = dict(QUICK if options.quick else FULL)
    if options.runs:
        config["runs"] = options.runs
    pythons = options.python or [driver.pyenv_python(v) for v in PYTHONS]

    started = time.time()
    work = tempfile.mkdtemp(prefix="teredospike-bench-")
    try:
        driver.log("encoding chunk bodies in %s" % work)
        raw = {str(size): workload.raw_bodies(work, size, config["hosts"], config["chunk"])
               for size in config["sizes"]}
        # The same at the first size with outbound QUIC blocked (as firewall vendors advise):
        # outbound UDP falls from 13% to 3% of the records, and so do the candidates.
        raw["%d-no-quic" % config["sizes"][0]] = workload.raw_bodies(
            work, config["sizes"][0], config["hosts"], config["chunk"], quic=0.0)
        many = workload.raw_bodies(work, config["many_hosts_records"], config["many_hosts"],
                                   config["chunk"])
        aggregated = workload.aggregated_bodies(work, config["scoring_hosts"],
                                                config["scoring_buckets"], config["chunk"])
        results = {}
        for python in pythons:
            version = driver.python_version(python)
            driver.log("Python %s" % version)
            entry: dict = {"getinfo": getinfo_latency(python, config["runs"]), "raw": {}}
            for key, bodies in raw.items():
                driver.log("  %s raw records" % key)
                entry["raw"][key] = raw_records(python, bodies, config)
                entry["raw"][key]["label"] = "{:,} raw records{}".format(
                    bodies.records, ", QUIC blocked" if key.endswith("no-quic") else "")
            driver.log("  %d hosts" % config["many_hosts"])
            entry["many_hosts"] = many_hosts(python, many, config)
            driver.log("  scoring")
            entry["scoring"] = scoring(python, aggregated, config)
            results[version] = entry
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = dict(run_facts(started), config=config, pythons=results)
    write_reports(report, options.out)
    driver.log("wrote %s in %.0f s" % (os.path.join(options.out, "performance.md"),
                                report["duration_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
