"""Bad options and bad records: a clear message in the search's messages, the stream stays in
protocol (the runner checks every frame), skipped records are counted, never a traceback."""

import pytest

from tests.flows import BUCKET, T0, flow
from tools.runner import run_search


def errors(result):
    return [text for level, text in result.messages if level in ("ERROR", "FATAL")]


def warnings(result):
    return [text for level, text in result.messages if level == "WARN"]


def assert_no_traceback(result):
    for level, text in result.messages:
        assert "Traceback" not in text and "Error at" not in text, text


@pytest.mark.parametrize("args,expected", [
    (["foo=bar"], "Unrecognized option: foo=bar"),
    (["span=abc"], "span=abc: expected a duration such as 10m"),
    (["span=0"], "span=0: must be between 1 minute and 7 days"),
    (["span=30s"], "span=30s: must be between 1 minute and 7 days"),
    (["max_host_buckets=0"], "max_host_buckets=0: must be at least 1"),
    (["threshold=high"], "threshold=high: expected a number"),
    (["threshold=-1"], "threshold=-1: must be at least 0.1"),
    (["min_packets=1.5"], "min_packets=1.5: expected a whole number"),
    (["min_bytes=-5"], "min_bytes=-5: must be at least 0"),
    (["internal=10.0.0.0/33"], "internal=10.0.0.0/33: '10.0.0.0/33' is not an IPv4 or IPv6 network"),
    (["output=table"], "output=table: expected spikes"),
    (["src_ip"], "teredospike takes no field names"),
])
def test_bad_options_are_refused_at_getinfo(args, expected, python):
    result = run_search([flow(T0, "10.0.0.1", 1, "65.55.158.80", 3544, 1, 60)], args,
                        python=python)
    assert result.rows == []
    assert any(expected in text for text in errors(result)), result.messages
    assert result.exit_codes == [1]  # only the search head ran: the search stops at getinfo
    assert_no_traceback(result)


def test_unreadable_records_are_skipped_counted_and_reported(python):
    good = [flow(T0 + i * 25, "10.0.0.1", 4000, "65.55.158.80", 3544, 1, 61, "teredo")
            for i in range(24)]
    bad = [
        {"src_ip": "10.0.0.2", "dest_ip": "65.55.158.80", "dest_port": "3544"},     # no _time
        {"_time": str(T0), "dest_ip": "65.55.158.80", "dest_port": "3544"},          # no source
        dict(flow(T0, "10.0.0.3", 1, "65.55.158.80", 3544, 1, 60), count="many"),   # count
        dict(flow(T0, "10.0.0.3", 1, "65.55.158.80", 3544, 1, 60), bytes_out="1e"),  # bytes
        flow(T0, "not-an-ip", 1, "65.55.158.80", 3544, 1, 60),                      # garbage IP
        flow(T0, "10.0.0.4", 1, "999.1.1.1", 3544, 1, 60),                          # garbage IP
        dict(flow(T0, "10.0.0.5", 1, "65.55.158.80", 3544, 1, 60), _time="yesterday"),
    ]
    result = run_search(good + bad, ["output=all"], chunk_size=5, python=python)
    assert result.exit_codes == [0, 0]
    assert [r["src"] for r in result.rows] == ["10.0.0.1"]
    assert result.rows[0]["flows"] == "24"
    [warning] = warnings(result)
    assert warning.startswith("teredospike skipped 7 of 31 records it could not read")
    for reason in ("2 no or unreadable _time", "1 no source address",
                   "2 source or destination is not an IP address",
                   "2 count, bytes or packets not a whole number from 0 to 2^53"):
        assert reason in warning
    assert_no_traceback(result)


def test_records_without_network_fields(python):
    records = [{"_time": str(T0 + i), "host": "web01", "message": "hello"} for i in range(10)]
    result = run_search(records, [], python=python)
    assert result.rows == [] and result.exit_codes == [0, 0]
    assert any("10 of 10 records" in w and "no network fields" in w for w in warnings(result))


def test_empty_input(python):
    result = run_search([], [], python=python)
    assert result.rows == [] and result.exit_codes == [0, 0]
    assert errors(result) == [] and warnings(result) == []


def test_no_teredo_at_all_is_said_plainly():
    records = [flow(T0 + i, "10.0.0.1", 50000 + i, "8.8.8.8", 53, 1, 70) for i in range(50)]
    result = run_search(records, [])
    assert result.rows == []
    assert ("INFO", "teredospike: no outbound Teredo traffic in 50 records.") in result.messages


def test_huge_multivalue_cells(python):
    """10,000 addresses in one multivalue cell and a 1 MB label: read, not choked on."""
    from teredo_spike.addresses import encode_teredo
    inner = [encode_teredo("65.55.158.80", 0, "70.55.215.%d" % (i % 250), 1024 + i)
             for i in range(10000)]
    record = flow(T0, "10.0.0.7", 3797, "83.170.1.38", 32900, 900, 900000, app="x" * 1_000_000)
    record["inner_src_ip"] = inner
    idle = [flow(T0 + BUCKET * k, "10.0.0.7", 3797, "65.55.158.80", 3544, 1, 61)
            for k in range(3)]
    result = run_search([record] + idle, ["output=all"], python=python)
    assert result.exit_codes == [0, 0]
    first = result.rows[0]
    assert first["src"] == "10.0.0.7" and "prefix" in first["evidence"]
    assert len(first["mapped"]) == 10000
    assert_no_traceback(result)


@pytest.mark.parametrize("limit,phase", [(3, "reduce"), (1, "map")])
def test_too_many_host_buckets_stop_the_search_with_the_option_to_change(limit, phase, python):
    """A search that would hold more (host, client port, bucket) aggregates than max_host_buckets
    ends with an ERROR naming the option, not with the search head out of memory."""
    records = [flow(T0 + BUCKET * k + 5 * i, "10.0.0.%d" % (1 + i % 3), 4000 + i % 3,
                    "65.55.158.80", 3544, 1, 61, "teredo") for k in range(4) for i in range(6)]
    limit_args = ["max_host_buckets=%d" % limit]
    result = run_search(records, limit_args, python=python)
    assert result.rows == []
    [error] = errors(result)
    assert "max_host_buckets" in error and "more than {:,} host-buckets".format(limit) in error
    assert 1 in result.exit_codes
    assert_no_traceback(result)
    assert run_search(records, ["max_host_buckets=12"], python=python).exit_codes == [0, 0]
