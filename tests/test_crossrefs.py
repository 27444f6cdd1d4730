"""Cross-references hold: every macro, lookup, command, alert action, saved search, view and token
named in the app's SPL, dashboard and navigation exists in the app (or in Splunk itself), with the
right number of arguments and the right lookup columns."""

import csv
import json
import re
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.spl import commands, expand, macro_calls, macro_key, tokens
from tests.splunk_conf import APP_ROOT, parse

DEFAULT = APP_ROOT / "default"
# Splunk's built-in search commands that the app's SPL uses. Anything else must be the app's own.
SPLUNK_COMMANDS = {
    "collect", "convert", "eval", "fields", "head", "inputlookup", "lookup", "mvexpand", "rename",
    "return", "rex", "search", "sort", "stats", "table", "timechart", "tstats", "where",
}
# Alert actions that Splunk itself or Enterprise Security provides (ES: risk, notable and the
# correlation-search settings that ES stores as action.correlationsearch.*).
SPLUNK_ACTIONS = {"email", "script", "summary_index", "populate_lookup", "lookup", "logevent", "webhook", "rss"}
ES_ACTIONS = {"risk", "notable", "correlationsearch"}
SPLUNK_VIEWS = {"search", "reports", "alerts", "dashboards", "datasets", "analytics_workspace"}


def _conf(name):
    path = DEFAULT / name
    return parse(path) if path.exists() else {}


MACROS = _conf("macros.conf")
SAVED = _conf("savedsearches.conf")
TRANSFORMS = _conf("transforms.conf")
APP_COMMANDS = {name for name in _conf("commands.conf") if name != "default"}
ALERT_ACTIONS = {name: keys for name, keys in _conf("alert_actions.conf").items() if name != "default"}


def _dashboards():
    for path in sorted((DEFAULT / "data" / "ui" / "views").glob("*.xml")):
        root = ET.parse(path).getroot()
        if root.get("version") == "2":
            yield path.stem, json.loads(root.find("definition").text)


def searches():
    """(where, SPL) of every search the app runs: saved searches, dashboard data sources, search-bar
    examples, and the detection with each alternative base (flow sources, the summary stage's
    rows) in place of teredo_spike_detection_base."""
    found = [("savedsearches.conf [%s]" % name, keys["search"]) for name, keys in SAVED.items()]
    for view, definition in _dashboards():
        for ds_name, ds in definition["dataSources"].items():
            found.append(("view %s %s" % (view, ds_name), ds["options"]["query"]))
    for stanza, keys in _conf("searchbnf.conf").items():
        found += [("searchbnf.conf [%s] %s" % (stanza, k), v) for k, v in keys.items() if k.startswith("example")]
    detection = SAVED["Teredo Spike - Outbound Teredo Tunnel - Rule"]["search"]
    alternatives = [name for name in MACROS if name.startswith("teredo_spike_flows_")]
    for alternative in sorted(alternatives + ["teredo_spike_base_summary"]):
        found.append(("detection over `%s`" % alternative,
                      detection.replace("`teredo_spike_detection_base`", "`%s`" % alternative)))
    return found


SEARCHES = searches()
IDS = [where for where, _ in SEARCHES]


def test_there_is_spl_to_check():
    assert len(SEARCHES) >= 8


@pytest.mark.parametrize("where, spl", SEARCHES, ids=IDS)
def test_macros_exist_with_their_argument_count(where, spl):
    missing = []

    def walk(text, trail):
        for name, args in macro_calls(text):
            key = macro_key(name, args)
            if key not in MACROS:
                missing.append("%s (from %s)" % (key, " > ".join(trail) or where))
                continue
            declared = [a for a in MACROS[key].get("args", "").split(",") if a.strip()]
            assert len(declared) == len(args), "%s: %s declares %d args" % (where, key, len(declared))
            walk(MACROS[key]["definition"], trail + [key])

    walk(spl, [])
    assert not missing, "%s: undefined macros %s" % (where, missing)


@pytest.mark.parametrize("where, spl", SEARCHES, ids=IDS)
def test_commands_exist(where, spl):
    unknown = {name for name, _ in commands(expand(spl, MACROS))} - SPLUNK_COMMANDS - APP_COMMANDS
    assert not unknown, "%s: commands that neither Splunk nor the app provides: %s" % (where, unknown)


def _lookup_columns(name):
    assert name in TRANSFORMS, "lookup %s has no transforms.conf stanza" % name
    path = APP_ROOT / "lookups" / TRANSFORMS[name]["filename"]
    assert path.is_file(), "transforms.conf [%s]: %s missing" % (name, path)
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def _lookup_fields(args):
    """The lookup name, its input columns and its output columns from `lookup NAME f [AS x] ... OUTPUT g [AS y]`."""
    words = tokens(args.replace(",", " "))
    name, rest = words[0], words[1:]
    inputs, outputs = [], []
    target = inputs
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.upper() in ("OUTPUT", "OUTPUTNEW"):
            target = outputs
        elif word.upper() == "AS":
            i += 1  # the next word is the search's field name, not a lookup column
        else:
            target.append(word)
        i += 1
    return name, inputs, outputs


@pytest.mark.parametrize("where, spl", SEARCHES, ids=IDS)
def test_lookups_exist_with_their_columns(where, spl):
    for command, args in commands(expand(spl, MACROS)):
        if command == "inputlookup":
            _lookup_columns(tokens(args)[-1])
        elif command == "lookup":
            name, inputs, outputs = _lookup_fields(args)
            columns = _lookup_columns(name)
            absent = [c for c in inputs + outputs if c not in columns]
            assert not absent, "%s: lookup %s has no columns %s (it has %s)" % (where, name, absent, columns)


def _searchbnf_options():
    syntax = _conf("searchbnf.conf")["teredospike-command"]["syntax"]
    return set(re.findall(r"\((\w+)=", syntax))


def test_searchbnf_documents_exactly_the_commands_options():
    sys.path.insert(0, str(APP_ROOT / "bin"))
    try:
        from teredo_spike.options import OPTION_NAMES
    finally:
        sys.path.remove(str(APP_ROOT / "bin"))
    assert _searchbnf_options() == {o.strip() for o in OPTION_NAMES.split(",")}
    assert "teredospike" in APP_COMMANDS


@pytest.mark.parametrize("where, spl", SEARCHES, ids=IDS)
def test_teredospike_is_called_with_known_options(where, spl):
    known = _searchbnf_options()
    for command, args in commands(expand(spl, MACROS)):
        if command != "teredospike":
            continue
        for token in tokens(args):
            if token == "[]":  # a subsearch's place: its result is checked by the subsearch below
                continue
            name, equals, value = token.partition("=")
            assert equals and name in known and value, "%s: bad teredospike argument %r" % (where, token)


def test_internal_subsearch_returns_the_option_name():
    # `teredo_spike_internal` expands to a subsearch whose `return` yields internal="...".
    expanded = expand("`teredo_spike_internal`", MACROS)
    inner = commands(expanded)
    assert ("inputlookup", "teredo_spike_internal_networks") in inner
    assert inner[-1] == ("return", "internal")


def test_every_macro_is_used():
    used = set()
    texts = [spl for _, spl in SEARCHES] + [keys["definition"] for keys in MACROS.values()]
    for text in texts:
        used |= {macro_key(name, args) for name, args in macro_calls(text)}
    unused = set(MACROS) - used - {"teredo_spike_base"}
    assert not unused, "macros that nothing uses: %s" % unused
    assert any("`teredo_spike_base`" in spl for _, spl in SEARCHES)


def test_alert_actions_of_saved_searches_are_known():
    readme_spec = (APP_ROOT / "README" / "savedsearches.conf.spec")
    declared = set(re.findall(r"^action\.(\w+) =", readme_spec.read_text(), re.M)) if readme_spec.exists() else set()
    for name, keys in SAVED.items():
        for key, value in keys.items():
            match = re.match(r"action\.(\w+)$", key)
            if not match or value != "1":
                continue
            action = match.group(1)
            assert action in SPLUNK_ACTIONS | ES_ACTIONS | set(ALERT_ACTIONS) | declared, \
                "[%s] uses alert action %s, which neither Splunk, ES nor the app defines" % (name, action)


def test_alert_action_parameters_match_the_apps_alert_actions():
    """Every action.<app action>.param.X in savedsearches.conf is a param.X of that action's
    alert_actions.conf stanza, and each action the app defines has its script in bin/."""
    readme_spec = APP_ROOT / "README" / "savedsearches.conf.spec"
    spec_text = readme_spec.read_text() if readme_spec.exists() else ""
    for action, stanza in ALERT_ACTIONS.items():
        assert (APP_ROOT / "bin" / (action + ".py")).is_file(), "alert action %s has no bin/%s.py" % (action, action)
    for name, keys in SAVED.items():
        for key in keys:
            match = re.match(r"action\.(\w+)\.param\.(\w+)$", key)
            if not match or match.group(1) in SPLUNK_ACTIONS | ES_ACTIONS:
                continue
            action, param = match.groups()
            assert "\n%s =" % key in "\n" + spec_text, "README/savedsearches.conf.spec lacks %s" % key
            if action in ALERT_ACTIONS:
                assert "param." + param in ALERT_ACTIONS[action], \
                    "[%s] sets %s, but alert_actions.conf [%s] has no param.%s" % (name, key, action, param)


def test_dashboard_tokens_are_defined():
    for view, definition in _dashboards():
        defined = {"global_time.earliest", "global_time.latest"} if any(
            i["options"].get("token") == "global_time" for i in definition["inputs"].values()) else set()
        defined |= {i["options"]["token"] for i in definition["inputs"].values()}
        for viz in definition["visualizations"].values():
            for handler in viz.get("eventHandlers", ()):
                defined |= {t["token"] for t in handler["options"].get("tokens", ())}
        used = set(re.findall(r"\$([\w.]+)\$", json.dumps(definition)))
        assert used <= defined, "view %s uses undefined tokens %s" % (view, used - defined)


def test_navigation_names_existing_views_and_searches():
    nav = ET.parse(DEFAULT / "data" / "ui" / "nav" / "default.xml").getroot()
    views = {p.stem for p in (DEFAULT / "data" / "ui" / "views").glob("*.xml")}
    for view in nav.iter("view"):
        assert view.get("name") in views | SPLUNK_VIEWS, view.get("name")
    for saved in nav.iter("saved"):
        if saved.get("name"):
            assert saved.get("name") in SAVED
        if saved.get("match"):
            assert any(saved.get("match") in name for name in SAVED)
    default_views = [v.get("name") for v in nav.iter("view") if v.get("default") == "true"]
    assert default_views and default_views[0] in views


def test_savedsearch_references_exist():
    for where, spl in SEARCHES:
        for command, args in commands(expand(spl, MACROS)):
            if command == "savedsearch":
                assert tokens(args)[0].strip('"') in SAVED, where
    for view, definition in _dashboards():
        for ds in definition["dataSources"].values():
            if ds["type"] == "ds.savedSearch":
                assert ds["options"]["ref"] in SAVED, view
