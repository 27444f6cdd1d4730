"""A host known by its machine (src_host, a site's DHCP or asset lookup) rather than by its address:
over a scenario whose hosts start days on new addresses (scenario.Behaviour.address_churn), the
command's results equal its results over the same flows on fixed addresses once each flow names its
machine, through the real protocol (map processes and a reduce process) and under Splunk's Pythons;
both stages of the two-stage path keep the name. Without src_host the moves show as new hosts."""

from typing import List, Tuple

import pytest

from tests.pythons import SPLUNK_PYTHONS, splunk_python
from teredo_spike.fields import HOST_FIELD
from tools import scenario
from tools.runner import run_search
from tools.scpv2 import Record

SRC = "All_Traffic.src_ip"


def flows(behaviour: scenario.Behaviour, name_machines: bool) -> Tuple[List[Record], dict]:
    params = scenario.Params(seed=4, hosts=60, days=5, warmup_days=2, behaviour=behaviour)
    rows, truth = scenario.generate(params)
    records = []
    for row in rows:
        record = dict(zip(scenario.HEADER, map(str, row)))
        if name_machines:
            record[HOST_FIELD] = truth["hosts"][record[SRC]].get("address_of", record[SRC])
        records.append(record)
    return records, truth


@pytest.fixture(scope="module")
def fixed():
    records, _ = flows(scenario.Behaviour(), name_machines=False)
    return run_search(records, ["output=all"], python=splunk_python(SPLUNK_PYTHONS[0])).rows


@pytest.fixture(scope="module")
def moving():
    records, truth = flows(scenario.Behaviour(address_churn=0.3), name_machines=True)
    moved = {ip for ip, host in truth["hosts"].items() if "address_of" in host}
    assert moved & {record[SRC] for record in records}, "some hosts send from a new address"
    return records


@pytest.mark.parametrize("version, partitions", [(SPLUNK_PYTHONS[0], 3), (SPLUNK_PYTHONS[-1], 1)])
def test_hosts_named_by_src_host_give_the_results_of_fixed_addresses(fixed, moving, version, partitions):
    result = run_search(moving, ["output=all"], partitions=partitions, python=splunk_python(version))
    assert not any(result.exit_codes) and result.rows == fixed


def test_the_summary_stage_keeps_the_machine_as_the_host(fixed, moving):
    python = splunk_python(SPLUNK_PYTHONS[0])
    summary = run_search(moving, ["output=buckets"], partitions=2, python=python).rows
    assert {row["src"] for row in summary} <= {row["src"] for row in fixed}
    assert run_search(summary, ["output=all"], python=python).rows == fixed


def test_without_src_host_a_new_address_is_a_new_host(fixed, moving):
    plain = [{k: v for k, v in record.items() if k != HOST_FIELD} for record in moving]
    rows = run_search(plain, ["output=all"], python=splunk_python(SPLUNK_PYTHONS[0])).rows
    assert {row["src"] for row in rows} - {row["src"] for row in fixed}


def test_an_unusable_src_host_skips_its_record_with_a_reason_and_an_empty_one_keeps_the_address(moving):
    bad = [dict(record, **{HOST_FIELD: "=cmd|' /C calc'!A0"}) if i % 50 == 0 else record
           for i, record in enumerate(moving)]
    result = run_search(bad, ["output=all"], python=splunk_python(SPLUNK_PYTHONS[0]))
    assert not any(result.exit_codes)
    warnings = " ".join(text for kind, text in result.messages if kind == "WARN")
    assert "src_host not a host name" in warnings
    assert not any(row["src"].startswith("=") for row in result.rows)
    empty = [dict(record, **{HOST_FIELD: ""}) for record in moving[:5000]]
    rows = run_search(empty, ["output=all"], python=splunk_python(SPLUNK_PYTHONS[0])).rows
    assert rows and {row["src"] for row in rows} <= {record[SRC] for record in empty}
