"""The benchmark's pieces run and produce well-formed output on a tiny size (no timing asserted)."""

import json
import os
import subprocess
import sys

from bench import report as report_module
from bench import workload
from tests.conftest import ROOT
from tests.pythons import SPLUNK_PYTHONS, splunk_python
from tools import scpv2


def test_bodies_are_what_splunkd_would_send(tmp_path):
    """The benchmark's bodies carry its records through csv.reader, in splunkd's column order and
    quoting, numbered on from one chunk to the next."""
    rows = list(workload.raw_records(5000, hosts=20))
    bodies = workload.write_bodies(str(tmp_path / "raw.body"), workload.RAW_FIELDS, iter(rows),
                                   2000)
    assert [count for _, _, count in bodies.chunks] == [2000, 2000, 1000] and len(bodies) == 3
    decoded = [scpv2.decode_rows(body) for body in bodies]
    fields = list(workload.RAW_FIELDS) + ["_chunked_idx"]
    assert all(these == sorted(fields) for these, _ in decoded)
    records = [dict(zip(these, row)) for these, more in decoded for row in more]
    assert records == [dict(zip(fields, row + [str(n)])) for n, row in enumerate(rows)]
    header = next(iter(bodies)).split(b"\n", 1)[0].decode()
    assert header.startswith('"_chunked_idx","_time",app,') and '"__mv_src_ip"' in header
    assert b'"10.16.' in next(iter(bodies))  # addresses quoted as splunkd quotes them
    assert bodies.final_body == (header + "\n").encode()
    teredo = [r for r in rows if r[4] == "3544"]
    assert teredo and all(r[6] == "teredo" for r in teredo)


def test_aggregated_rows_cover_the_week():
    rows = list(workload.aggregated_rows(hosts=5, active_buckets=30))
    assert {row[1] for row in rows} == {workload._internal_host(h) for h in range(5)}
    assert len([r for r in rows if r[4] == "3544"]) == 5 * 30


def test_quick_benchmark_writes_a_table_and_json(tmp_path, python):
    out = tmp_path / "docs"
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick",
                    "--out", str(out), "--python", python], check=True, capture_output=True,
                   timeout=600)
    report = json.loads((out / "performance.json").read_text())
    [entry] = report["pythons"].values()
    for size, raw in entry["raw"].items():
        assert raw["records"] == int(size.split("-")[0]) and raw["label"]
        for phase in ("reference", "teredospike_map", "teredospike_reduce"):
            assert raw[phase]["cpu_s"] > 0 and raw[phase]["vm_hwm_mb"] > 0
        assert raw["floor"]["cpu_s"] > 0 and raw["ratio_to_floor"] > 0
        assert raw["teredospike_reduce"]["rows_in"] > 0
    assert entry["many_hosts"]["teredospike_map"]["vm_hwm_mb"] > 0
    scoring = entry["scoring"]
    assert scoring["rows"] > 0 and scoring["host_buckets"] > 0
    assert scoring["direct"]["rows_per_cpu_s"] > 0 and scoring["protocol"]["rows_per_cpu_s"] > 0
    assert 0 < entry["getinfo"]["median_s"] < 60
    table = [line for line in (out / "performance.md").read_text().splitlines()
             if line.startswith("|")]
    assert len(table) > 10
    assert len({line.count("|") for line in table}) == 1  # every row has every column
    assert any("teredospike" in line and "map, end to end" in line for line in table)


def test_reference_command_counts_per_host(python):
    """The per-record reference really reads every record (its counts add up)."""
    from tools.runner import run_search
    records = [{"_time": str(1_700_000_000 + i), "src_ip": "10.0.0.%d" % (i % 3)}
               for i in range(30)]
    result = run_search(records, chunk_size=7, python=python,
                        script=os.path.join(ROOT, "bench", "reference_command.py"))
    assert {(r["src_ip"], r["count"]) for r in result.rows} == {
        ("10.0.0.0", "10"), ("10.0.0.1", "10"), ("10.0.0.2", "10")}


def test_two_stage_quick_measures_every_stage(tmp_path):
    """bench/two_stage.py --quick: the three measures, the checks on the summary rows and the
    section of performance.md, which bench/run.py keeps when it rewrites the page. One run covers
    both of Splunk's Pythons: the bench runs the command on 3.9, and (c) on 3.13 as well (its
    results asserted equal)."""
    python = splunk_python(SPLUNK_PYTHONS[0])
    out = tmp_path / "docs"
    out.mkdir()
    (out / "performance.md").write_text("# Performance\n\nthe page bench/run.py writes\n")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "two_stage.py"), "--quick",
                    "--out", str(out), "--python", python], check=True,
                   capture_output=True, timeout=600)
    report = json.loads((out / "performance-two-stage.json").read_text())
    result = report["result"]
    for density in ("1000", "5000"):
        assert all(p["cpu_s"] > 0 and p["peak_kb"] > 0 for p in result["one_pass"][density])
        assert all(p["rows_out"] > 0 for p in result["window"][density])  # it owns Teredo rows
    # The week's summary rows are the same whatever the ordinary UDP beside the Teredo traffic
    # and however the flows are chunked, and a 10-minute run writes what the week run wrote for
    # its bucket (stamps aside).
    checks = result["summary_checks"]
    assert all(check["identical"] for check in checks.values()), checks
    assert result["doubling"]["output_all_identical"] and result["doubling"]["one_pass_identical"]
    assert all(p["host_buckets"] > 0 for p in result["detection"].values())
    profile = result["profile"]["reduce"]
    assert profile["total_s"] > 0 and profile["top"]
    assert set(profile["stages"]) == {"read the summary rows", "host_buckets", "score_all",
                                      "result rows written"}
    analysis = report["analysis"]
    assert set(analysis["projections"]) == {"10000", "50000"}
    page = (out / "performance.md").read_text()
    assert page.startswith("# Performance\n\nthe page bench/run.py writes\n\n## Two-stage path")
    table = [line for line in page.split("## Two-stage path")[1].splitlines()
             if line.startswith("|")]
    assert len(table) >= 10 and len({line.count("|") for line in table}) == 1
    # (c)'s rate on Splunk's other Python, on the same rows (its results are asserted equal).
    assert set(result["detection_other_python"]["sizes"]) == {"10", "40"}
    assert any("Python 3.13.0" in line for line in table)
    # (c) on a scenario family's rows too: its heavy users name more destinations a row.
    assert [p["hosts"] for p in result["scenario"]] == [10, 20]
    assert all(p["host_buckets"] > 0 and p["cpu_s"] > 0 for p in result["scenario"])
    assert len([line for line in table if "`hard` scenario family" in line]) == 2

    # bench/run.py rewrites the page above the section and keeps the section.
    assert report_module.two_stage_section(page).startswith("\n## Two-stage path")
    assert report_module.two_stage_section("# Performance\n") == ""
