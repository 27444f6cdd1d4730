"""The one multivalue codec (teredo_spike.multivalue): what splunkd writes in `__mv_` columns."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teredo_spike import multivalue


@given(st.lists(st.text(), min_size=1))
def test_decode_inverts_encode(values):
    assert multivalue.decode(multivalue.encode(values)) == values


def test_dollars_are_doubled():
    assert multivalue.encode(["a", "b$c"]) == "$a$;$b$$c$"
    assert multivalue.decode("$a$;$b$$c$") == ["a", "b$c"]


@pytest.mark.parametrize("cell", ["a", "$a", "$a$;", "$a$b$", "$a$;b"])
def test_malformed_cells_are_refused(cell):
    with pytest.raises(ValueError):
        multivalue.decode(cell)


def test_cells_as_splunklib_writes_them():
    assert multivalue.multivalue_cells([]) == ("", "")
    assert multivalue.multivalue_cells(["x"]) == ("x", "")
    assert multivalue.multivalue_cells({"b", "a"}) == ("a\nb", "$a$;$b$")
