"""The dashboard's searches answered locally, for the browser test: the part after the base search
of a Dashboard Studio data source, i.e. `| teredospike <options>` run by the local runner over the
bundled sample, then the view's post-processing applied in Python.

Only the handful of SPL commands and eval functions that the view's searches use are implemented,
each as Splunk documents it; anything else raises UnsupportedSpl (naming the command), so a new
panel fails loudly here instead of being answered wrongly. The macro `teredo_spike_allowlist_filter`
is applied for what it means (drop rows whose src is on an unexpired allowlist row, CIDR match),
not command by command: its strptime/now/mvfilter arithmetic is not worth an evaluator.
"""

import csv
import datetime
import ipaddress
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from tests.spl import command_arguments, expand, split_top_level
from tests.splunk_conf import APP_ROOT, parse

Value = Union[str, List[str], None]
Row = Dict[str, Value]
ALLOWLIST_MACRO = "teredo_spike_allowlist_filter"


class UnsupportedSpl(ValueError):
    """The search uses SPL that this helper does not emulate."""


def _values(value: Value) -> List[str]:
    """A field's values: Splunk treats an empty string as no value."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v != ""]
    return [value] if value != "" else []


def _single(values: List[str]) -> Value:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _number(value: str) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _format_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


# --- the search: base, teredospike and its arguments, the rest ------------------------------------

def split_search(query: str, macros: Dict[str, Dict[str, str]]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(teredospike arguments as splunkd passes them, [(command, arguments) after it]) of a view's
    search; it must start with `teredo_spike_base` (the flows) or `teredo_spike_detection_base`
    (as shipped: the same flows) | teredospike."""
    base, *rest = split_top_level(query, "|")
    if base.strip() not in ("`teredo_spike_base`", "`teredo_spike_detection_base`"):
        raise UnsupportedSpl("the search must start with the macro teredo_spike_detection_base: %s"
                             % query)
    # The allowlist macro stays one (pseudo) command: see the module's docstring.
    macros = dict(macros, **{ALLOWLIST_MACRO: {"definition": ALLOWLIST_MACRO}})
    segments = [s.strip() for s in split_top_level(expand("|".join(rest), macros), "|")]
    name, _, args = segments[0].partition(" ")
    if name != "teredospike":
        raise UnsupportedSpl("the search after the base is %r, not teredospike" % segments[0])
    arguments = command_arguments(args)
    post = []
    for segment in segments[1:]:
        command, _, command_args = segment.partition(" ")
        post.append((command, command_args.strip()))
    return arguments, post


def answer(query: str, macros: Dict[str, Dict[str, str]],
           run: Callable[[List[str]], List[Row]], now: float) -> List[Row]:
    """The rows a view's search returns: `run(arguments)` gives teredospike's output rows."""
    arguments, post = split_search(query, macros)
    rows = [dict(r) for r in run(arguments)]
    for command, args in post:
        rows = apply(command, args, rows, now)
    return rows


def apply(command: str, args: str, rows: List[Row], now: float) -> List[Row]:
    handler = COMMANDS.get(command)
    if handler is None:
        raise UnsupportedSpl("SPL command %r is not emulated (arguments: %s)" % (command, args))
    return handler(args, rows, now)


# --- lookups -----------------------------------------------------------------------------------------

def _lookup_table(name: str) -> Tuple[List[Dict[str, str]], Dict[str, str]]:
    transform = parse(APP_ROOT / "default" / "transforms.conf")[name]
    with (APP_ROOT / "lookups" / transform["filename"]).open(newline="") as f:
        return list(csv.DictReader(f)), transform


def allowlist_filter(args: str, rows: List[Row], now: float) -> List[Row]:
    """`teredo_spike_allowlist_filter`: drop rows whose src is in a host_or_subnet (CIDR) of a row
    of teredo_spike_allowlist whose expires date (YYYY-MM-DD, inclusive) has not passed."""
    table, transform = _lookup_table("teredo_spike_allowlist")
    assert transform.get("match_type") == "CIDR(host_or_subnet)", transform
    active = []
    for entry in table:
        try:
            expires = datetime.datetime.strptime(entry["expires"], "%Y-%m-%d").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue  # not a date: suppresses nothing
        if expires + 86400 > now:
            active.append(ipaddress.ip_network(entry["host_or_subnet"], strict=False))

    def allowed(row: Row) -> bool:
        for src in _values(row.get("src")):
            try:
                address = ipaddress.ip_address(src)
            except ValueError:
                continue
            if any(address.version == n.version and address in n for n in active):
                return True
        return False

    return [r for r in rows if not allowed(r)]


def lookup(args: str, rows: List[Row], now: float) -> List[Row]:
    """`lookup <table> <key> [AS <field>] OUTPUT <out> ...` (exact match, first match)."""
    match = re.fullmatch(r"(\S+)\s+(\S+)(?:\s+AS\s+(\S+))?\s+OUTPUT\s+(.+)", args)
    if not match:
        raise UnsupportedSpl("lookup %s" % args)
    name, key, field, outputs = match.group(1), match.group(2), match.group(3) or match.group(2), match.group(4).split()
    table, _ = _lookup_table(name)
    index = {}
    for entry in table:
        index.setdefault(entry[key], entry)
    result = []
    for row in rows:
        row = dict(row)
        found = [index[v] for v in _values(row.get(field)) if v in index]
        for out in outputs:
            row[out] = _single([f[out] for f in found if f.get(out)])
        result.append(row)
    return result


# --- filtering, shaping ---------------------------------------------------------------------------

def where(args: str, rows: List[Row], now: float) -> List[Row]:
    """`where <field>="<string>"` only."""
    match = re.fullmatch(r'(\w+)\s*=\s*("(?:\\.|[^"\\])*")', args.strip())
    if not match:
        raise UnsupportedSpl("where %s (only field=\"string\" is emulated)" % args)
    field, value = match.group(1), _unquote(match.group(2))
    return [r for r in rows if value in _values(r.get(field))]


_QUOTED = r'"(?:\\.|[^"\\])*"'


def search(args: str, rows: List[Row], now: float) -> List[Row]:
    """`search <field> IN ("<string>", ...)` only."""
    match = re.fullmatch(r'(\w+)\s+IN\s*\(\s*(%s(?:\s*,\s*%s)*)\s*\)' % (_QUOTED, _QUOTED), args.strip())
    if not match:
        raise UnsupportedSpl("search %s (only field IN (\"string\", ...) is emulated)" % args)
    field, values = match.group(1), {_unquote(v) for v in re.findall(_QUOTED, match.group(2))}
    return [r for r in rows if values.intersection(_values(r.get(field)))]


def head(args: str, rows: List[Row], now: float) -> List[Row]:
    return rows[:int(args or 10)]


def table(args: str, rows: List[Row], now: float) -> List[Row]:
    fields = [f for f in re.split(r"[\s,]+", args) if f]
    return [OrderedDict((f, r.get(f)) for f in fields) for r in rows]


def _sort_key(value: Value, numeric: bool):
    values = _values(value)
    if not values:
        return None
    return _number(values[0]) if numeric else values[0]


def sort(args: str, rows: List[Row], now: float) -> List[Row]:
    """`sort [N] [-|+]field, [-|+]field ...` (each sign applies to its own field): numbers
    numerically, text lexicographically; rows missing the field go last."""
    parts = re.findall(r"([+-]?)\s*(\w+)", args)
    limit = 10000
    if parts and parts[0][1].isdigit() and not parts[0][0]:
        limit = int(parts.pop(0)[1]) or len(rows)
    result = list(rows)
    for sign, field in reversed(parts):  # stable sorts, last key first
        numeric = all(_number(_values(r.get(field))[0]) is not None for r in result if _values(r.get(field)))
        present = [r for r in result if _sort_key(r.get(field), numeric) is not None]
        missing = [r for r in result if _sort_key(r.get(field), numeric) is None]
        present.sort(key=lambda r: _sort_key(r.get(field), numeric), reverse=sign == "-")
        result = present + missing
    return result[:limit]


def convert(args: str, rows: List[Row], now: float) -> List[Row]:
    """`convert ctime(field) ...`: epoch seconds as Splunk's default %m/%d/%Y %H:%M:%S (UTC here)."""
    fields = re.findall(r"ctime\((\w+)\)", args)
    if not fields or re.sub(r"ctime\(\w+\)", "", args).strip():
        raise UnsupportedSpl("convert %s (only ctime() is emulated)" % args)
    result = []
    for row in rows:
        row = dict(row)
        for field in fields:
            stamps = [_number(v) for v in _values(row.get(field))]
            row[field] = _single([
                datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
                if s is not None else v for s, v in zip(stamps, _values(row.get(field)))])
        result.append(row)
    return result


def mvexpand(args: str, rows: List[Row], now: float) -> List[Row]:
    field = args.strip()
    result = []
    for row in rows:
        for value in _values(row.get(field)):
            result.append(dict(row, **{field: value}))
    return result


def rex(args: str, rows: List[Row], now: float) -> List[Row]:
    """`rex field=<field> "<regex with (?<name>...) groups>"`."""
    match = re.fullmatch(r'field=(\w+)\s+("(?:\\.|[^"\\])*")', args.strip())
    if not match:
        raise UnsupportedSpl("rex %s" % args)
    field = match.group(1)
    pattern = re.compile(match.group(2)[1:-1].replace('\\"', '"').replace("(?<", "(?P<"))
    result = []
    for row in rows:
        row = dict(row)
        for value in _values(row.get(field))[:1]:
            found = pattern.search(value)
            if found:
                row.update({k: v for k, v in found.groupdict().items() if v is not None})
        result.append(row)
    return result


# --- eval: string literals, fields, the "." operator, mvappend() and mvmap() ------------------------

EVAL_TOKEN = re.compile(r'\s*(?:("(?:\\.|[^"\\])*")|(\w+)|([(),.]))')


def _eval_tokens(text: str) -> List[str]:
    out, position = [], 0
    while position < len(text.rstrip()):
        match = EVAL_TOKEN.match(text, position)
        if not match:
            raise UnsupportedSpl("eval expression %r" % text)
        out.append(match.group(match.lastindex))
        position = match.end()
    return out


def _eval_expression(items: List[str], row: Row) -> List[str]:
    """Evaluate a token list (consumed from the front) to a list of values (empty = null)."""
    def primary():
        token = items.pop(0)
        if token.startswith('"'):
            return [_unquote(token)]
        if items and items[0] == "(":
            items.pop(0)
            if token == "mvappend":
                values = []
                while True:
                    values += expression()
                    if items.pop(0) == ")":
                        return values
            if token == "mvmap":
                field = items.pop(0)
                if items.pop(0) != ",":
                    raise UnsupportedSpl("mvmap needs a field first")
                body_start = list(items)
                values = []
                for value in _values(row.get(field)):
                    items[:] = list(body_start)
                    values += _eval_expression(items, dict(row, **{field: value}))
                if not values:  # still consume the body once
                    items[:] = list(body_start)
                    _eval_expression(items, row)
                if items.pop(0) != ")":
                    raise UnsupportedSpl("mvmap takes two arguments")
                return values
            raise UnsupportedSpl("eval function %s() is not emulated" % token)
        return _values(row.get(token))

    def expression():
        values = primary()
        while items and items[0] == ".":
            items.pop(0)
            right = primary()
            values = [values[0] + right[0]] if values and right else []
        return values

    return expression()


def eval_(args: str, rows: List[Row], now: float) -> List[Row]:
    field, equals, expression = args.partition("=")
    if not equals or not re.fullmatch(r"\s*\w+\s*", field):
        raise UnsupportedSpl("eval %s" % args)
    parsed = _eval_tokens(expression)
    result = []
    for row in rows:
        items = list(parsed)
        values = _eval_expression(items, row)
        if items:
            raise UnsupportedSpl("eval: unexpected %r in %s" % (items, expression))
        result.append(dict(row, **{field.strip(): _single(values)}))
    return result


# --- stats and timechart ------------------------------------------------------------------------------

AGGREGATION = re.compile(r"(\w+)(?:\((\w+)\))?(?:\s+AS\s+(\w+))?", re.IGNORECASE)


def _aggregate(function: str, field: Optional[str], rows: List[Row]) -> Value:
    if function == "count":
        return str(len(rows) if field is None else sum(len(_values(r.get(field))) for r in rows))
    values = [v for r in rows for v in _values(r.get(field))]
    if function == "values":
        return _single(sorted(set(values)))
    if function == "dc":
        return str(len(set(values)))
    if function == "latest":
        timed = [(float(r["_time"]), _single(_values(r.get(field)))) for r in rows if _values(r.get(field))]
        return max(timed, key=lambda t: t[0])[1] if timed else None
    if not values:
        return None
    numbers = [_number(v) for v in values]
    if function == "sum":
        return _format_number(sum(n for n in numbers if n is not None))
    if function in ("max", "min"):
        pick = max if function == "max" else min
        if all(n is not None for n in numbers):
            return _format_number(pick(numbers))
        return pick(values)
    raise UnsupportedSpl("stats function %s() is not emulated" % function)


def _aggregations(text: str) -> List[Tuple[str, Optional[str], str]]:
    result = []
    for match in AGGREGATION.finditer(text):
        function, field, name = match.group(1).lower(), match.group(2), match.group(3)
        result.append((function, field, name or ("%s(%s)" % (function, field) if field else function)))
    return result


def stats(args: str, rows: List[Row], now: float) -> List[Row]:
    """`stats <function>(<field>) [AS <name>] ... [BY <field> ...]`, groups in sorted order."""
    by = re.search(r"\s+BY\s+(.+)$", args, re.IGNORECASE)
    spec, keys = (args[:by.start()], by.group(1).split()) if by else (args, [])
    groups = OrderedDict()
    for row in rows:
        group = tuple(_single(_values(row.get(k))) for k in keys)
        if any(g is None or isinstance(g, list) for g in group):
            continue  # Splunk drops rows missing a BY field (multivalue BY is not emulated)
        groups.setdefault(group, []).append(row)
    result = []
    for group in sorted(groups):
        out = OrderedDict(zip(keys, group))
        for function, field, name in _aggregations(spec):
            out[name] = _aggregate(function, field, groups[group])
        result.append(out)
    return result


SPAN = re.compile(r"span=(\d+)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def timechart(args: str, rows: List[Row], now: float) -> List[Row]:
    """`timechart span=<n><s|m|h|d> <function>(<field>) AS <name> ... [BY <field>]`: one row per
    bucket from the first to the last bucket with data (count 0, other functions null in gaps)."""
    span_match = SPAN.search(args)
    if not span_match:
        raise UnsupportedSpl("timechart without span=: %s" % args)
    span = int(span_match.group(1)) * SECONDS[span_match.group(2)]
    spec = SPAN.sub("", args)
    by = None
    by_match = re.search(r"\s+BY\s+(\w+)\s*$", spec, re.IGNORECASE)
    if by_match:
        by, spec = by_match.group(1), spec[:by_match.start()]
    aggregations = _aggregations(spec)
    if by and len(aggregations) != 1:
        raise UnsupportedSpl("timechart BY with more than one function")
    buckets = {}
    for row in rows:
        start = int(float(row["_time"])) // span * span
        buckets.setdefault(start, []).append(row)
    if not buckets:
        return []
    series = sorted({_single(_values(r.get(by))) for r in rows} - {None}) if by else None
    result = []
    for start in range(min(buckets), max(buckets) + span, span):
        bucket = buckets.get(start, [])
        out = OrderedDict([("_time", _iso(start))])
        if by:
            function, field, _ = aggregations[0]
            for name in series:
                members = [r for r in bucket if _single(_values(r.get(by))) == name]
                out[name] = _aggregate(function, field, members) if members or function == "count" else None
        else:
            for function, field, name in aggregations:
                out[name] = _aggregate(function, field, bucket) if bucket or function == "count" else None
        out["_span"] = str(span)
        result.append(out)
    return result


COMMANDS = {
    ALLOWLIST_MACRO: allowlist_filter, "convert": convert, "eval": eval_, "head": head,
    "lookup": lookup, "mvexpand": mvexpand, "rex": rex, "search": search, "sort": sort, "stats": stats,
    "table": table, "timechart": timechart, "where": where,
}


def columns(rows: Iterable[Row]) -> Tuple[List[Dict[str, str]], List[List[Value]]]:
    """Rows as a Splunk JSON_COLS result: fields (in first-seen order) and one column each."""
    rows = list(rows)
    names = []
    for row in rows:
        names += [k for k in row if k not in names]
    def cell(name: str, value: Value) -> Value:
        # Splunk's results carry _time as an ISO 8601 time, not epoch seconds.
        number = _number(value) if name == "_time" and isinstance(value, str) else None
        return _iso(number) if number is not None else value

    return [{"name": n} for n in names], [[cell(n, r.get(n)) for r in rows] for n in names]
