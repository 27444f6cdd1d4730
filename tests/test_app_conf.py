"""The app's configuration: every .conf parses with a real Splunk conf parser, every key is one that
Splunk's spec or the app's README/*.spec declares, and the settings that an install relies on hold."""

import csv
import ipaddress
import json
import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from tests.splunk_conf import APP_ROOT, conf_files, known_keys, parse, splunk_spec_dir

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
CONF_FILES = conf_files() + [APP_ROOT / "metadata" / "default.meta"]


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.name)
def test_conf_parses_strictly(path):
    conf = parse(path)
    assert conf, "%s has no stanza" % path.name


def test_splunk_specs_are_available():
    # The key check below is only as good as the specs it reads: make sure they are Splunk's.
    specs = {p.name for p in splunk_spec_dir().glob("*.conf.spec")}
    assert {"savedsearches.conf.spec", "macros.conf.spec", "transforms.conf.spec", "app.conf.spec",
            "searchbnf.conf.spec", "commands.conf.spec"} <= specs


@pytest.mark.parametrize("path", conf_files(), ids=lambda p: p.name)
def test_every_key_is_declared_by_a_spec(path):
    patterns = known_keys(path.name)
    assert patterns, "%s: neither Splunk nor README/%s.spec declares this file" % (path.name, path.name)
    unknown = ["[%s] %s" % (stanza, key)
               for stanza, keys in parse(path).items() for key in keys
               if not any(p.match(key) for p in patterns)]
    assert not unknown, "%s: keys that no spec declares: %s" % (path.name, unknown)


def test_spec_check_rejects_a_misspelt_key():
    # The check must be able to fail: a typo of a real savedsearches.conf key is not declared.
    patterns = known_keys("savedsearches.conf")
    assert any(p.match("cron_schedule") for p in patterns)
    assert not any(p.match("cron_shedule") for p in patterns)


def test_app_conf_identity_and_versions():
    app = parse(APP_ROOT / "default" / "app.conf")
    manifest = json.loads((APP_ROOT / "app.manifest").read_text())
    assert app["package"]["id"] == "teredo_spike" == app["id"]["name"] == manifest["info"]["id"]["name"]
    assert app["package"]["check_for_updates"] == "false"
    assert app["ui"]["label"] == "Teredo Spike Detection" == manifest["info"]["title"]
    versions = {app["launcher"]["version"], app["id"]["version"], manifest["info"]["id"]["version"]}
    assert len(versions) == 1, "versions differ: %s" % versions
    assert SEMVER.match(versions.pop())


def test_default_meta_permissions():
    meta = parse(APP_ROOT / "metadata" / "default.meta")
    access = re.sub(r"\s", "", meta[""]["access"])
    assert access == "read:[*],write:[admin,sc_admin]"
    for stanza, keys in meta.items():
        assert "write:[*]" not in re.sub(r"\s", "", keys.get("access", "")), stanza


def test_script_stanzas_run_on_python3_for_splunk_9_and_10():
    for name in ("commands.conf", "alert_actions.conf"):
        path = APP_ROOT / "default" / name
        if not path.exists():
            continue
        for stanza, keys in parse(path).items():
            if stanza == "default" or not (keys.get("filename") or name == "alert_actions.conf"):
                continue
            assert keys.get("python.version") == "python3", "%s [%s]" % (name, stanza)
            assert keys.get("python.required") == "3.9, 3.13", "%s [%s]" % (name, stanza)


def test_every_saved_search_ships_disabled():
    searches = parse(APP_ROOT / "default" / "savedsearches.conf")
    assert searches
    for name, keys in searches.items():
        assert keys.get("disabled") == "1", "saved search %r must ship disabled" % name


def test_detection_is_an_annotated_correlation_search_with_risk():
    searches = parse(APP_ROOT / "default" / "savedsearches.conf")
    rule = searches["Teredo Spike - Outbound Teredo Tunnel - Rule"]
    assert rule["enableSched"] == "1" and rule["cron_schedule"]
    assert rule["action.teredo_attack_context"] == "1"
    for param in ("index", "webhook_url", "webhook_allow_http"):
        assert "action.teredo_attack_context.param." + param in rule
    assert json.loads(rule["action.correlationsearch.annotations"])["mitre_attack"] == ["T1572"]
    assert rule["action.risk"] == "1"
    risk = json.loads(rule["action.risk.param._risk"])
    assert [r["risk_object_field"] for r in risk] == ["src"]
    assert all(r["risk_object_type"] == "system" for r in risk)


def _transform(name):
    return parse(APP_ROOT / "default" / "transforms.conf")[name]


def _lookup_rows(name):
    path = APP_ROOT / "lookups" / _transform(name)["filename"]
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name, column", [("teredo_spike_internal_networks", "network"),
                                          ("teredo_spike_allowlist", "host_or_subnet")])
def test_cidr_lookups_hold_networks(name, column):
    assert _transform(name)["match_type"] == "CIDR(%s)" % column
    rows = _lookup_rows(name)
    assert rows
    for row in rows:
        ipaddress.ip_network(row[column])  # raises on anything that is not a network


def test_allowlist_rows_have_a_reason_and_an_expiry_date():
    for row in _lookup_rows("teredo_spike_allowlist"):
        assert row["reason"].strip()
        date.fromisoformat(row["expires"])


def test_internal_networks_lookup_is_the_specs_default_list():
    networks = {row["network"] for row in _lookup_rows("teredo_spike_internal_networks")}
    assert networks == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                        "169.254.0.0/16", "fc00::/7", "fe80::/10"}


def test_known_teredo_servers_say_where_each_came_from():
    rows = _lookup_rows("teredo_spike_servers")
    assert len(rows) >= 5
    for row in rows:
        address = ipaddress.ip_address(row["server_ip"])
        assert address.is_global, row
        assert row["role"] in ("server", "relay"), row
        assert row["server_name"].strip() and row["source"].strip(), row
    addresses = {row["server_ip"] for row in rows}
    # Seen in the reference captures (see /work/shared/data/pcaps/PROVENANCE.md).
    assert {"65.55.158.80", "194.136.28.76"} <= addresses


def _dashboard():
    root = ET.parse(APP_ROOT / "default" / "data" / "ui" / "views" / "teredo_spike_overview.xml").getroot()
    return root, json.loads(root.find("definition").text)


def test_dashboard_is_studio_v2_with_drilldown_to_host():
    root, definition = _dashboard()
    assert root.tag == "dashboard" and root.get("version") == "2"
    sources = definition["dataSources"]
    assert all(ds["type"] == "ds.search" for ds in sources.values())
    setters = [handler for viz in definition["visualizations"].values()
               for handler in viz.get("eventHandlers", ()) if handler["type"] == "drilldown.setToken"]
    assert any(t["token"] == "host_tok" for h in setters for t in h["options"]["tokens"])
    host_queries = [ds["options"]["query"] for ds in sources.values() if "$host_tok$" in ds["options"]["query"]]
    assert any("output=all" in q for q in host_queries), "no per-host output=all panel"
    placed = {item["item"] for item in definition["layout"]["structure"]}
    assert placed == set(definition["visualizations"])
    for viz in definition["visualizations"].values():
        assert viz["dataSources"]["primary"] in sources


def test_icons_are_what_the_icon_script_draws():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_icons", APP_ROOT / "tools" / "make_icons.py")
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    for name, data in make_icons.render_all().items():
        shipped = (APP_ROOT / "static" / name).read_bytes()
        assert shipped == data, "static/%s differs from tools/make_icons.py's drawing" % name
        width, height = int.from_bytes(shipped[16:20], "big"), int.from_bytes(shipped[20:24], "big")
        assert (width, height) == ((72, 72) if name.endswith("_2x.png") else (36, 36))
