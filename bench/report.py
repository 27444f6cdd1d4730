"""docs/performance.md (a markdown table) and docs/performance.json from one benchmark run."""

import json
import os
import platform
import time
from typing import List

# The heading of bench/two_stage.py's section of performance.md (its one owner is two_stage.py).
TWO_STAGE_SECTION = "## Two-stage path: per-run cost at a realistic density (issue 15)"

TARGETS = {
    "floor": 0.8, "reference": 2.5, "rss_growth": 0.10, "rss_many_hosts_mb": 150.0,
    "scoring_rows_per_s": 100_000, "getinfo_s": 0.25,
}


def _rate(value: float) -> str:
    return "{:,.0f}/s".format(value)


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table_rows(report: dict) -> List[List[str]]:
    """[measure, phase, one cell per Python, target] rows."""
    versions = list(report["pythons"])
    entries = [report["pythons"][v] for v in versions]
    rows: List[List[str]] = []

    def row(measure: str, phase: str, cell, target: str = "") -> None:
        rows.append([measure, phase] + [cell(e) for e in entries] + [target])

    keys = list(entries[0]["raw"])
    for size in keys:
        label = entries[0]["raw"][size]["label"]
        row("csv.reader floor, %s" % label, "parse only",
            lambda e: "%s (%.2f CPU-s)" % (_rate(e["raw"][size]["floor"]["records_per_cpu_s"]),
                                          e["raw"][size]["floor"]["cpu_s"]))
        row("splunklib per-record reference, %s" % label, "map, end to end",
            lambda e: "%s (%.2f CPU-s, %.2f s wall)" % (
                _rate(e["raw"][size]["reference"]["records_per_cpu_s"]),
                e["raw"][size]["reference"]["cpu_s"], e["raw"][size]["reference"]["wall_s"]))
        row("**teredospike, %s**" % label, "map, end to end",
            lambda e: "%s (%.2f CPU-s, %.2f s wall)" % (
                _rate(e["raw"][size]["teredospike_map"]["records_per_cpu_s"]),
                e["raw"][size]["teredospike_map"]["cpu_s"],
                e["raw"][size]["teredospike_map"]["wall_s"]))
        row("teredospike ÷ floor, %s" % label, "map",
            lambda e: "%.2f× (%s)" % (e["raw"][size]["ratio_to_floor"],
                                      _mark(e["raw"][size]["ratio_to_floor"] >= TARGETS["floor"])),
            "≥ 0.8×")
        row("teredospike ÷ reference, %s" % label, "map",
            lambda e: "%.2f× (%s)" % (
                e["raw"][size]["ratio_to_reference"],
                _mark(e["raw"][size]["ratio_to_reference"] >= TARGETS["reference"])), "≥ 2.5×")
        row("teredospike on the map output of %s" % label, "reduce, end to end",
            lambda e: "{:,} rows in, {:,} results: {} ({:.2f} CPU-s)".format(
                e["raw"][size]["teredospike_reduce"]["rows_in"],
                e["raw"][size]["teredospike_reduce"]["rows_out"],
                _rate(e["raw"][size]["teredospike_reduce"]["records_per_cpu_s"]),
                e["raw"][size]["teredospike_reduce"]["cpu_s"]))
        row("peak RSS (VmHWM), %s" % label, "map / reduce",
            lambda e: "%.0f MB / %.0f MB" % (e["raw"][size]["teredospike_map"]["vm_hwm_mb"],
                                             e["raw"][size]["teredospike_reduce"]["vm_hwm_mb"]))
    sizes = [str(size) for size in report["config"]["sizes"]]
    if len(sizes) >= 2:
        first, last = sizes[0], sizes[-1]

        def growth(e, phase):
            a = e["raw"][first][phase]["vm_hwm_mb"]
            return (e["raw"][last][phase]["vm_hwm_mb"] - a) / a

        row("peak RSS growth, %s → %s records" % ("{:,}".format(int(first)),
                                                  "{:,}".format(int(last))), "map / reduce",
            lambda e: "%+.1f%% (%s) / %+.1f%%" % (
                100 * growth(e, "teredospike_map"),
                _mark(growth(e, "teredospike_map") < TARGETS["rss_growth"]),
                100 * growth(e, "teredospike_reduce")), "< +10% (map)")
    row("peak RSS at {:,} distinct hosts ({:,} records)".format(
        entries[0]["many_hosts"]["hosts"], entries[0]["many_hosts"]["records"]), "map / reduce",
        lambda e: "%.0f MB (%s) / %.0f MB" % (
            e["many_hosts"]["teredospike_map"]["vm_hwm_mb"],
            _mark(e["many_hosts"]["teredospike_map"]["vm_hwm_mb"] < TARGETS["rss_many_hosts_mb"]),
            e["many_hosts"]["teredospike_reduce"]["vm_hwm_mb"]), "< 150 MB")
    s = entries[0]["scoring"]
    row("scoring, scoring functions directly ({:,} aggregated rows: {:,} hosts × {:,} "
        "buckets)".format(s["rows"], s["hosts"], s["active_buckets"]),
        "reduce (end of input)",
        lambda e: "%s (%.2f CPU-s; %s with aggregation) %s" % (
            _rate(e["scoring"]["direct"]["rows_per_cpu_s"]), e["scoring"]["direct"]["score_cpu_s"],
            _rate(e["scoring"]["direct"]["rows_per_cpu_s_with_aggregation"]),
            _mark(e["scoring"]["direct"]["rows_per_cpu_s"] >= TARGETS["scoring_rows_per_s"])),
        "≥ 100,000/s")
    row("scoring through the protocol (same rows)", "map + reduce, end to end",
        lambda e: "%s (map %.2f + reduce %.2f CPU-s; reduce alone %s)" % (
            _rate(e["scoring"]["protocol"]["rows_per_cpu_s"]),
            e["scoring"]["protocol"]["map_cpu_s"], e["scoring"]["protocol"]["reduce_cpu_s"],
            _rate(e["scoring"]["protocol"]["reduce_rows_per_cpu_s"])))
    row("peak RSS, scoring through the protocol", "map / reduce",
        lambda e: "%.0f MB / %.0f MB" % (e["scoring"]["protocol"]["map_vm_hwm_mb"],
                                         e["scoring"]["protocol"]["reduce_vm_hwm_mb"]))
    row("spawn → getinfo reply", "search head",
        lambda e: "%.3f s median, %.3f s max (%s)" % (
            e["getinfo"]["median_s"], e["getinfo"]["max_s"],
            _mark(e["getinfo"]["median_s"] <= TARGETS["getinfo_s"])), "≤ 0.25 s")
    return rows


def markdown(report: dict) -> str:
    versions = list(report["pythons"])
    config = report["config"]
    head = ["Measure", "Phase"] + ["Python %s" % v for v in versions] + ["Target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    return "\n".join([
        "# Performance of `| teredospike`",
        "",
        "Generated by `python bench/run.py` on %s (%d CPUs, %s; load average at the end %s; "
        "the run took %.0f s). Every figure is the median of %d runs. Rates are records (or rows) "
        "per CPU-second of the command process (user + system from its rusage, start-up and exit "
        "included); wall seconds are spawn to exit on a shared machine."
        % (report["generated"], report["machine"]["cpus"], report["machine"]["platform"],
           ", ".join("%.1f" % x for x in report["machine"]["load_average_at_end"]),
           report["duration_s"], config["runs"]),
        "",
    ] + lines + [
        "",
        "## What was measured",
        "",
        "- **Input**: firewall-like raw records from `bench/workload.py` (10 CIM fields, %s hosts, "
        "72%% TCP, 27.5%% UDP of which 13%% of all records outbound, 0.5%% Teredo; *QUIC blocked*: "
        "82%% TCP, 3%% outbound UDP), %s per chunk, encoded "
        "once as splunkd writes them (fields sorted, then the `__mv_` columns, non-alphanumeric "
        "values quoted, `_chunked_idx`)." % ("{:,}".format(config["hosts"]),
                                             "{:,}".format(config["chunk"])),
        "- **Map phase** (indexers, where raw records go): each command is driven end to end "
        "through the chunked protocol by `bench/driver.py`: spawn, getinfo, execute chunks in "
        "lock-step, a final header-only `finished` chunk. `teredospike` passes on an entry per "
        "outbound UDP record it cannot yet tie to a Teredo client port, 5 to a row, so its map "
        "output grows with outbound UDP, not with Teredo.",
        "- **Reduce phase** (search head): `teredospike` fed the map phase's output, re-chunked "
        "and encoded as splunkd sends it (fields sorted, non-alphanumeric cells quoted, no "
        "`_chunked_idx`); its rate is per raw record behind that output.",
        "- **Floor**: `csv.reader` over the same bodies in the same Python, parse only "
        "(`bench/floor.py`). **Reference**: a splunklib ReportingCommand counting records per "
        "host with splunklib's dict per record (`bench/reference_command.py`), its map phase.",
        "- **Peak RSS**: VmHWM from /proc/<pid>/status after the final reply, while the process "
        "still waits for input.",
        "- **Scoring**: tstats-style aggregated rows (`bench/workload.py aggregated_rows`: a week "
        "of 10-minute buckets; each host Teredo-active in %s of them, one server row per "
        "host-bucket, a relay row in a tenth). *Directly*: host_buckets + score_all + "
        "result_rows timed in-process (`bench/scoring.py`), aggregation timed apart. *Through "
        "the protocol*: map phase then reduce phase, CPU of both processes." % (
            "{:,}".format(config["scoring_buckets"])),
        "- **getinfo**: wall seconds from spawn to the getinfo reply of a search-head process.",
        "",
        "Rerun: `python bench/run.py` (about 10-15 minutes; `--quick` for a smoke run, "
        "`--python PATH` to pick interpreters, `--out DIR` to write elsewhere). Raw numbers: "
        "`performance.json` beside this file.",
        "",
    ])


def run_facts(started: float) -> dict:
    """When and on what a run was made, and how long it took (the page's first line)."""
    return {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "load_average_at_end": os.getloadavg()},
            "duration_s": time.time() - started}


def write_json(report: dict, directory: str, name: str) -> None:
    """A run's figures as JSON beside the page (docs/performance*.json)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
        f.write("\n")


def read_page(directory: str) -> str:
    """performance.md as it is, or empty: bench/run.py and bench/two_stage.py each rewrite their
    own part of it and keep the other's."""
    path = os.path.join(directory, "performance.md")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def write_reports(report: dict, directory: str) -> None:
    write_json(report, directory, "performance.json")
    kept = two_stage_section(read_page(directory))
    with open(os.path.join(directory, "performance.md"), "w") as f:
        f.write(markdown(report) + kept)


def two_stage_section(page: str) -> str:
    """The section of performance.md that bench/two_stage.py owns (from its heading to the end),
    with the blank line before it; empty if the page has none."""
    if TWO_STAGE_SECTION not in page:
        return ""
    return "\n" + TWO_STAGE_SECTION + page.split(TWO_STAGE_SECTION, 1)[1]
