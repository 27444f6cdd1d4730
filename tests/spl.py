"""Just enough SPL for the tests: macro expansion as splunkd does it (textual, recursive, `$arg$`
substitution) and splitting a search into its commands, subsearches included."""

import csv
import re
from typing import Dict, Iterator, List, Tuple

from tests.splunk_conf import APP_ROOT, parse

MACRO_CALL = re.compile(r"`([^`]+)`")


def unquoted(text: str) -> Iterator[Tuple[int, str]]:
    """(position, character) of every character outside double quotes; a backslash inside quotes
    escapes the next character. The one quote-aware scanner of these helpers."""
    quoted, i = False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        else:
            yield i, c
        i += 1


def split_top_level(text: str, separator: str) -> List[str]:
    """Split on `separator` outside double quotes, brackets and parentheses."""
    parts, depth, start = [], 0, 0
    for i, c in unquoted(text):
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
        elif c == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def macro_calls(spl: str) -> Iterator[Tuple[str, List[str]]]:
    """(name, arguments) of every macro call written in `spl` (not expanded)."""
    for match in MACRO_CALL.finditer(spl):
        call = match.group(1).strip()
        name, paren, rest = call.partition("(")
        args = [a.strip() for a in split_top_level(rest[:-1], ",")] if paren else []
        yield name.strip(), args


def macro_key(name: str, args: List[str]) -> str:
    """The macros.conf stanza that a call names: `name` or `name(N)`."""
    return "%s(%d)" % (name, len(args)) if args else name


def expand(spl: str, macros: Dict[str, Dict[str, str]], depth: int = 0) -> str:
    """Expand every macro call, recursively; KeyError names a macro that does not exist."""
    if depth > 20:
        raise RecursionError("macro expansion deeper than 20 levels: %s" % spl[:200])

    def replace(match):
        (name, args), = list(macro_calls(match.group(0)))
        stanza = macros[macro_key(name, args)]
        definition = stanza["definition"]
        names = [a.strip() for a in stanza.get("args", "").split(",") if a.strip()]
        for arg_name, value in zip(names, args):
            definition = definition.replace("$%s$" % arg_name, value.strip('"'))
        return expand(definition, macros, depth + 1)

    return MACRO_CALL.sub(replace, spl)


def subsearches(text: str) -> Tuple[str, List[str]]:
    """`text` with each top-level [subsearch] replaced by [], and the subsearches' contents."""
    out, subs, depth, start = [], [], 0, 0
    for i, c in unquoted(text):
        if c == "[":
            if depth == 0:
                out.append(text[start:i + 1])
                start = i + 1
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                subs.append(text[start:i])
                start = i
    out.append(text[start:])
    return "".join(out), subs


def commands(spl: str) -> List[Tuple[str, str]]:
    """(command, arguments) of every command in an expanded search, subsearches included. A search
    that does not start with a pipe starts with an implicit `search`."""
    flat, subs = subsearches(spl)
    result = []
    segments = split_top_level(flat, "|")
    for position, segment in enumerate(segments):
        segment = segment.strip()
        if position == 0:
            if not segment:
                continue
            if not re.match(r"search\b", segment):
                segment = "search " + segment
        name, _, args = segment.partition(" ")
        result.append((name, args.strip()))
    for sub in subs:
        result.extend(commands(sub))
    return result


def tokens(args: str) -> List[str]:
    """Whitespace-separated tokens of a command's arguments, quotes kept together."""
    return re.findall(r'(?:[^\s"]|"(?:\\.|[^"\\])*")+', args)


def internal_networks_subsearch(text: str) -> str:
    """The value that the subsearch `[| inputlookup teredo_spike_internal_networks | stats
    values(network) AS internal | eval internal=mvjoin(internal, ",") | return internal]` returns."""
    assert commands(text) == [("inputlookup", "teredo_spike_internal_networks"),
                              ("stats", "values(network) AS internal"),
                              ("eval", 'internal=mvjoin(internal, ",")'),
                              ("return", "internal")], "unexpected subsearch: %s" % text
    transform = parse(APP_ROOT / "default" / "transforms.conf")["teredo_spike_internal_networks"]
    with (APP_ROOT / "lookups" / transform["filename"]).open(newline="") as f:
        networks = sorted({row["network"] for row in csv.DictReader(f)})  # values() sorts, dedups
    return "internal=" + ",".join(networks)


def command_arguments(args: str) -> List[str]:
    """A command's arguments as splunkd hands them over in getinfo's searchinfo.args: one token
    per argument, subsearches resolved, enclosing double quotes removed."""
    flat, subs = subsearches(args)
    resolved = [internal_networks_subsearch(s) for s in subs]
    arguments = []
    for token in tokens(flat):
        if token == "[]":
            arguments.append(resolved.pop(0))
            continue
        key, _, value = token.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        arguments.append("%s=%s" % (key, value))
    return arguments
