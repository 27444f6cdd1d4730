"""Splunk's multivalue cell encoding, the one codec the command, the alert action and the tools use.

Every field F travels with a `__mv_F` companion column. A single value travels plain in F with an
empty companion; several travel newline-joined in F and as `$v1$;$v2$` in `__mv_F`, each `$` inside
a value doubled (docs/splunk-protocol-notes.md).
"""

from typing import Collection, List, Sequence, Tuple


def encode(values: Sequence[str]) -> str:
    """The `__mv_` cell of `values`, in their order: ['a', 'b$c'] -> '$a$;$b$$c$'."""
    return ";".join("$%s$" % v.replace("$", "$$") for v in values)


def decode(cell: str) -> List[str]:
    """The values of a `__mv_` cell: '$a$;$b$$c$' -> ['a', 'b$c']. Raises ValueError on a cell that
    is not in this encoding."""
    values: List[str] = []
    i, end = 0, len(cell)
    while i < end:
        if cell[i] != "$":
            raise ValueError("bad multivalue cell %r" % cell)
        i += 1
        value: List[str] = []
        while True:
            if i >= end:
                raise ValueError("bad multivalue cell %r" % cell)
            if cell[i] == "$":
                if i + 1 < end and cell[i + 1] == "$":
                    value.append("$")
                    i += 2
                    continue
                i += 1
                break
            value.append(cell[i])
            i += 1
        values.append("".join(value))
        if i < end:
            if cell[i] != ";" or i + 1 == end:
                raise ValueError("bad multivalue cell %r" % cell)
            i += 1
    return values


def multivalue_cells(values: Collection[str]) -> Tuple[str, str]:
    """A field's two wire cells, as splunklib's record writer makes them: one value travels plain;
    several travel sorted, newline-joined, with their `__mv_` companion."""
    if len(values) <= 1:
        return next(iter(values), ""), ""
    ordered = sorted(values)
    return "\n".join(ordered), encode(ordered)
