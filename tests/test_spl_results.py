"""The SPL post-processing that answers the dashboard's searches in the browser test
(tests/spl_results.py): each command against rows whose answer is worked out by hand."""

import datetime

import pytest

from tests.spl_results import UnsupportedSpl, answer, apply, columns, split_search
from tests.splunk_conf import APP_ROOT, parse

MACROS = parse(APP_ROOT / "default" / "macros.conf")
NOW = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc).timestamp()
ROWS = [
    {"_time": "1793577600", "src": "10.0.0.2", "score": "9.5", "severity": "high", "packets": "10",
     "teredo_servers": "65.55.158.80", "relays": ["1.2.3.4", "5.6.7.8"], "reason": "first"},
    {"_time": "1793578200", "src": "10.0.0.2", "score": "12", "severity": "critical", "packets": "30",
     "teredo_servers": "", "relays": "5.6.7.8", "reason": "second"},
    {"_time": "1793577600", "src": "10.0.0.10", "score": "7", "severity": "high", "packets": "5",
     "teredo_servers": "65.55.158.81", "relays": "", "reason": "other"},
]


def run(command, args, rows=ROWS):
    return apply(command, args, [dict(r) for r in rows], NOW)


def test_split_search_resolves_the_macros_and_the_internal_networks():
    arguments, post = split_search(
        "`teredo_spike_base` | teredospike `teredo_spike_options` output=spikes | `teredo_spike_allowlist_filter` | head 3",
        MACROS)
    assert arguments[:4] == ["span=10m", "threshold=6.0", "min_packets=50", "min_bytes=16000"]
    assert arguments[4].startswith("internal=10.0.0.0/8,") and arguments[5] == "output=spikes"
    assert post == [("teredo_spike_allowlist_filter", ""), ("head", "3")]


def test_a_search_not_built_on_the_base_macro_is_refused():
    with pytest.raises(UnsupportedSpl):
        split_search("| tstats count | teredospike", MACROS)


def test_stats_groups_sorted_with_numeric_max_sum_values_latest_dc():
    out = run("stats", "max(score) AS peak count AS n sum(packets) AS packets values(severity) AS sev "
                       "latest(reason) AS last dc(relays) AS relays BY src")
    # Groups in lexicographic order of src; max numeric (12 > 9.5, not "9.5" > "12").
    assert [r["src"] for r in out] == ["10.0.0.10", "10.0.0.2"]
    assert out[1] == {"src": "10.0.0.2", "peak": "12", "n": "2", "packets": "40",
                      "sev": ["critical", "high"], "last": "second", "relays": "2"}
    assert out[0]["relays"] == "0"


def test_sort_each_sign_applies_to_its_field_and_head_limits():
    rows = [{"a": "1", "b": "2"}, {"a": "10", "b": "1"}, {"a": "10", "b": "3"}, {"b": "9"}]
    assert [(r.get("a"), r["b"]) for r in run("sort", "- a, - b", rows)] == \
        [("10", "3"), ("10", "1"), ("1", "2"), (None, "9")]
    assert [(r.get("a"), r["b"]) for r in run("sort", "- a, b", rows)][:2] == [("10", "1"), ("10", "3")]
    assert len(run("head", "2", rows)) == 2


def test_where_keeps_only_the_quoted_value_and_refuses_other_expressions():
    assert [r["score"] for r in run("where", 'src="10.0.0.2"')] == ["9.5", "12"]
    with pytest.raises(UnsupportedSpl):
        run("where", "score > 5")


def test_eval_mvappend_mvmap_and_mvexpand_rex():
    out = run("eval", 'peer=mvappend(mvmap(teredo_servers, "server " . teredo_servers), mvmap(relays, "relay " . relays))')
    assert out[0]["peer"] == ["server 65.55.158.80", "relay 1.2.3.4", "relay 5.6.7.8"]
    assert out[1]["peer"] == "relay 5.6.7.8"  # empty field: no value, nothing appended
    assert out[2]["peer"] == "server 65.55.158.81"
    expanded = apply("rex", r'field=peer "^(?<role>\S+) (?<peer_ip>\S+)$"', apply("mvexpand", "peer", out, NOW), NOW)
    assert [(r["role"], r["peer_ip"]) for r in expanded] == [
        ("server", "65.55.158.80"), ("relay", "1.2.3.4"), ("relay", "5.6.7.8"), ("relay", "5.6.7.8"),
        ("server", "65.55.158.81")]


def test_lookup_convert_table():
    out = run("lookup", "teredo_spike_servers server_ip AS teredo_servers OUTPUT server_name operator")
    assert (out[0]["server_name"], out[0]["operator"]) == ("teredo.ipv6.microsoft.com", "Microsoft")
    assert out[1]["server_name"] is None
    converted = run("convert", "ctime(_time)")
    assert converted[0]["_time"] == "11/02/2026 00:00:00"
    assert list(run("table", "src score")[0].items()) == [("src", "10.0.0.2"), ("score", "9.5")]


def test_timechart_buckets_fills_gaps_and_splits_by_field():
    rows = ROWS + [{"_time": str(1793577600 + 3 * 600), "src": "10.0.0.2", "severity": "high", "packets": "7"}]
    out = run("timechart", "span=10m max(packets) AS packets", rows)
    assert [(r["_time"], r["packets"]) for r in out] == [
        ("2026-11-02T00:00:00.000+00:00", "10"), ("2026-11-02T00:10:00.000+00:00", "30"),
        ("2026-11-02T00:20:00.000+00:00", None), ("2026-11-02T00:30:00.000+00:00", "7")]
    by = run("timechart", "span=1h count AS episodes BY severity", rows)
    assert by == [{"_time": "2026-11-02T00:00:00.000+00:00", "critical": "1", "high": "3", "_span": "3600"}]


def test_allowlist_filter_drops_hosts_of_unexpired_rows_only(monkeypatch):
    import tests.spl_results as spl_results

    table = [{"host_or_subnet": "10.0.0.0/30", "reason": "lab", "expires": "2026-11-25"},
             {"host_or_subnet": "10.0.0.10/32", "reason": "old", "expires": "2026-11-24"},
             {"host_or_subnet": "10.0.0.0/8", "reason": "no date", "expires": ""}]
    monkeypatch.setattr(spl_results, "_lookup_table",
                        lambda name: (table, {"match_type": "CIDR(host_or_subnet)"}))
    # 2026-11-25 is inclusive: still active at midnight on the 26th minus a second, not after.
    kept = apply("teredo_spike_allowlist_filter", "", [dict(r) for r in ROWS], NOW - 1)
    assert [r["src"] for r in kept] == ["10.0.0.10"]
    assert len(apply("teredo_spike_allowlist_filter", "", [dict(r) for r in ROWS], NOW + 1)) == 3


def test_an_unknown_command_is_refused_by_name():
    with pytest.raises(UnsupportedSpl, match="dedup"):
        run("dedup", "src")


def test_answer_runs_teredospike_with_the_search_arguments_then_the_post_processing():
    seen = []

    def teredospike(arguments):
        seen.append(arguments)
        return ROWS

    rows = answer('`teredo_spike_base` | teredospike `teredo_spike_options` output=all | where src="10.0.0.10"',
                  MACROS, teredospike, NOW)
    assert seen[0][-1] == "output=all" and [r["score"] for r in rows] == ["7"]
    fields, cols = columns(rows)
    assert fields[0] == {"name": "_time"} and cols[0] == ["2026-11-02T00:00:00.000+00:00"]


def test_the_alert_severities_macro_keeps_every_severity_and_its_documented_value_high_and_critical():
    rows = ROWS + [dict(ROWS[0], severity="medium", src="10.0.0.20"), dict(ROWS[0], severity="low", src="10.0.0.21")]
    macro = MACROS["teredo_spike_alert_severities"]
    command, _, args = macro["definition"].partition(" ")
    assert [r["src"] for r in run(command, args, rows)] == [r["src"] for r in rows]
    # the value the macro's description (and README, Tune) gives for paging on high and critical
    documented = 'search severity IN ("high", "critical")'
    assert documented in macro["description"]
    command, _, args = documented.partition(" ")
    assert [r["severity"] for r in run(command, args, rows)] == ["high", "critical", "high"]
    with pytest.raises(UnsupportedSpl):
        run("search", "severity=high", rows)
