"""The readers' cheap "may be Teredo" test (the server port, or evidence.names_teredo of the label
and inner-address cells) never passes over a record that record_evidence would find evidence in."""

from hypothesis import given, strategies as st

from teredo_spike import evidence as ev

TEREDO = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
LABELS = st.lists(st.sampled_from(["", "dns", "teredo", "Tunnel::TEREDO", "quic", "te redo"]),
                  max_size=3)
PORTS = st.sampled_from(["3544", "53", "", "35440", " 3544"])
INNER = st.lists(st.sampled_from(["", TEREDO, "2001:db8::1", "fe80::1"]), max_size=2)


@given(LABELS, PORTS, INNER, INNER)
def test_record_evidence_is_found_only_where_the_cheap_test_looks(labels, port, own, peers):
    own = [a for a in own if a]
    peers = [a for a in peers if a]
    mask = ev.record_evidence(labels, port, own, peers, [])
    inner_cells = ["\n".join(own), "\n".join(peers)]
    may_be = port == ev.SERVER_PORT_TEXT or ev.names_teredo(labels, inner_cells)
    assert may_be or not mask


def test_each_kind_of_evidence_is_seen_by_the_cheap_test():
    assert ev.names_teredo(["dns", "Teredo"], ["", ""])
    assert ev.names_teredo([], [TEREDO, ""])
    assert not ev.names_teredo(["dns", ""], ["", ""])
