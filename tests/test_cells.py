"""Liveness has one definition (cells.NEIGHBOURS): a candidate is attributed in the buckets it
names, whichever way it arrives (cells.attribute one at a time, keep_resolvable a chunk at once)."""

from teredo_spike import evidence as ev
from teredo_spike.cells import NEIGHBOURS, Cell, attribute, is_live_near, keep_resolvable

SPAN = 600
T0 = 1_700_006_400


def cell(evidence: int) -> Cell:
    made = Cell()
    made.packets = made.flows = 1
    made.evidence = evidence
    made.dests = {"83.170.1.38": 1}
    return made


def test_a_candidate_is_attributed_exactly_in_the_neighbouring_buckets():
    for step in range(-3, 4):
        live = {("10.0.0.1", "3797", T0): cell(ev.PORT)}
        key = ("10.0.0.1", "3797", T0 + step * SPAN)
        near = step in NEIGHBOURS
        assert is_live_near(live, key, SPAN) is near
        one = dict(live)
        assert attribute(one, key, cell(ev.CLIENT_PORT), SPAN) is near
        chunk = dict(live)
        unresolved = keep_resolvable(chunk, {key: cell(ev.CLIENT_PORT)}, SPAN)
        assert (key in chunk) is near and (key in unresolved) is not near
        assert one.keys() == chunk.keys()


def test_only_own_evidence_makes_a_port_live():
    cells = {("10.0.0.1", "3797", T0): cell(ev.CLIENT_PORT)}
    key = ("10.0.0.1", "3797", T0 + SPAN)
    assert not is_live_near(cells, key, SPAN)
    assert keep_resolvable(cells, {key: cell(ev.CLIENT_PORT)}, SPAN).keys() == {key}
    other_port = ("10.0.0.1", "3798", T0)
    cells[("10.0.0.1", "3797", T0)].evidence |= ev.LABEL
    assert is_live_near(cells, key, SPAN) and not is_live_near(cells, other_port, SPAN)


def test_a_candidate_merges_into_its_own_cell():
    cells = {("10.0.0.1", "3797", T0 + 5 * SPAN): cell(ev.CLIENT_PORT)}
    key = ("10.0.0.1", "3797", T0 + 5 * SPAN)
    assert attribute(cells, key, cell(ev.CLIENT_PORT), SPAN)
    assert cells[key].packets == 2
