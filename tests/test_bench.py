"""The benchmark's pieces run and produce well-formed output on a tiny size (no timing asserted)."""

import csv
import io
import json
import os
import subprocess
import sys

from bench import workload
from tests.conftest import ROOT
from tools import scpv2


def parsed(body: bytes):
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    header, rows = rows[0], rows[1:]
    return [{name: cell for name, cell in zip(header, row) if not name.startswith("__mv_")}
            for row in rows]


def test_bodies_are_what_splunkd_would_send():
    """The benchmark's hand-written bodies carry the same records as the protocol client's
    encoder (through csv.reader), in splunkd's column order and quoting."""
    rows = list(workload.raw_records(5000, hosts=20))
    body = workload.encode_rows(workload.RAW_FIELDS, rows, 7)
    records = [dict(zip(workload.RAW_FIELDS, row)) for row in rows]
    assert parsed(body) == parsed(scpv2.encode_body(records, workload.RAW_FIELDS, 7))
    header = body.split(b"\n", 1)[0].decode()
    assert header.startswith('"_chunked_idx","_time",app,') and '"__mv_src_ip"' in header
    assert b'"10.16.' in body  # addresses quoted as splunkd quotes them
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
