"""METRICS is the one statement of the per-metric quantities: a HostSeries' values follow its order,
and every per-metric result field is found by its name."""

from teredo_spike import output
from array import array

from teredo_spike.hostbuckets import (MAX_VOLUME, METRICS, Traffic, context_of, metric_values,
                                      series_of,
                                      series_of_rows)
from teredo_spike.partials import dest_text
from teredo_spike.scoring import Settings


TRAFFIC = Traffic(bucket=600, packets=70, bytes=9000, flows=3, relay_packets=40, dest_count=2,
                  dests=("a", "b"), dest_packets=(30, 40), client_ports=("3797",), servers=("a",),
                  mapped=(), evidence=4)


def test_metric_values_are_in_metrics_order():
    assert metric_values(**{name: i for i, name in enumerate(METRICS)}) == tuple(
        range(len(METRICS)))


def test_metric_values_stay_in_the_scorings_domain():
    """No input reaches log1p of a negative number or of a value beyond a double."""
    values = metric_values(packets=-5, bytes=10 ** 400, flows=3, dests=0, relay_packets=7)
    assert values == (0, MAX_VOLUME, 3, 0, 7)


def test_a_host_bucket_names_its_metrics():
    hb = series_of("10.0.0.1", [TRAFFIC])[0]
    assert dict(zip(METRICS, hb.values)) == {"packets": 70, "bytes": 9000, "flows": 3,
                                             "dests": 2, "relay_packets": 40}
    assert (hb.packets, hb.bytes) == (70, 9000)


def test_each_output_field_reads_its_own_metric():
    hb = series_of("10.0.0.1", [TRAFFIC])[0]
    for k, name in enumerate(METRICS):
        hb.z[k] = 1.0 + k  # distinct per metric
    row = output.bucket_row(hb, Settings(span=600, threshold=6.0, min_packets=50,
                                         min_bytes=16000), False, 0.0)
    assert (row["z_packets"], row["z_bytes"], row["z_flows"], row["z_dests"],
            row["z_relay_packets"]) == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert (row["packets"], row["bytes"], row["flows"], row["dests"],
            row["relay_packets"]) == (70, 9000, 3, 2, 40)
    assert set(output.FIELDS) >= set(METRICS) | {"z_" + name for name in METRICS}


def test_a_value_beyond_64_bits_keeps_its_host_scorable():
    """in_domain allows values up to MAX_VOLUME; a host with one beyond 2**63 keeps its values in
    a list (exact) rather than an array of 64-bit integers, and scores like any other."""
    from teredo_spike.scoring import population_prior, score_host
    huge = TRAFFIC._replace(bucket=1200, bytes=MAX_VOLUME * 10)
    series = series_of("10.0.0.1", [TRAFFIC, huge])
    assert isinstance(series.values, list) and series[1].bytes == MAX_VOLUME
    settings = Settings(span=600, threshold=6.0, min_packets=50, min_bytes=16000)
    score_host(series, population_prior({"10.0.0.1": series}), settings)
    assert series[1].z[METRICS.index("bytes")] > series[0].z[METRICS.index("bytes")]


def test_equal_contexts_are_held_once():
    later = TRAFFIC._replace(bucket=1200)
    series = series_of("10.0.0.1", [TRAFFIC, later])
    assert len(series.contexts) == 1 and series[0].context is series[1].context
    assert (series[1].dests, series[1].client_ports, series[1].servers) == (("a", "b"), ("3797",),
                                                                            ("a",))


def test_summary_rows_make_the_series_their_traffic_makes():
    """series_of_rows (summary rows in columns) holds the METRICS order, destinations and contexts that
    series_of makes from the same traffic: two buckets, rows 1 and 0 of three taken."""
    rows = [TRAFFIC._replace(bucket=1200, packets=5, bytes=300, flows=1, relay_packets=0,
                             dest_count=1, dests=("a",), dest_packets=(5,), client_ports=()),
            TRAFFIC._replace(bucket=600, mapped=("2001:0:1::1",)),
            TRAFFIC._replace(bucket=1800)]
    columns = series_of_rows(
        "10.0.0.1", [1, 0], array("q", [r.bucket for r in rows]),
        [r.packets for r in rows], [r.bytes for r in rows], [r.flows for r in rows],
        [r.dest_count for r in rows], [r.relay_packets for r in rows],
        [dest_text(zip(r.dests, r.dest_packets)) for r in rows],
        [context_of(r.client_ports[0] if r.client_ports else "", r.servers, r.mapped)
         for r in rows], array("q", [r.evidence for r in rows]))
    expected = series_of("10.0.0.1", rows[:2])
    for name in ("buckets", "values", "dests", "contexts", "context_index", "evidence"):
        assert list(getattr(columns, name)) == list(getattr(expected, name)), name
