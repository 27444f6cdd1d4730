"""The alert action's configuration, spec, setup page and icon agree with each other."""
import configparser
import os
import re
import struct

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANZA = "teredo_attack_context"


def conf(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(os.path.join(REPO, path), encoding="utf-8")
    return parser


def test_alert_stanza_runs_json_payload_on_both_pythons():
    stanza = conf("default/alert_actions.conf")[STANZA]
    assert stanza["is_custom"] == "1"
    assert stanza["payload_format"] == "json"
    assert stanza["python.version"] == "python3"
    assert stanza["python.required"] == "3.9, 3.13"
    assert stanza["param.index"] == "main"
    assert stanza["param.webhook_url"] == ""
    assert stanza["param.webhook_allow_http"] == "0"
    assert stanza["param.webhook_allow_private"] == "0"
    assert os.path.isfile(os.path.join(REPO, "bin", STANZA + ".py"))


def test_every_parameter_is_in_the_spec_the_payload_schema_and_nowhere_undeclared():
    import json
    params = {k[len("param."):] for k in conf("default/alert_actions.conf")[STANZA] if k.startswith("param.")}
    with open(os.path.join(REPO, "README", "alert_actions.conf.spec"), encoding="utf-8") as f:
        spec = set(re.findall(r"^param\.(\w+) = ", f.read(), re.M))
    with open(os.path.join(REPO, "bin", "teredo_spike", "alert", "schemas", "payload.schema.json")) as f:
        schema = set(json.load(f)["properties"]["configuration"]["properties"])
    with open(os.path.join(REPO, "default", "data", "ui", "alerts", STANZA + ".html"), encoding="utf-8") as f:
        page = set(re.findall(r'name="action\.teredo_attack_context\.param\.(\w+)"', f.read()))
    assert params == spec == schema
    assert {"index", "webhook_url", "webhook_allow_http", "webhook_allow_private"} <= page <= params


def test_icon_is_a_png_where_icon_path_points():
    icon = conf("default/alert_actions.conf")[STANZA]["icon_path"]
    with open(os.path.join(REPO, "appserver", "static", icon), "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (48, 48)


def test_props_declares_the_alert_sourcetype():
    stanza = conf("default/props.conf")["teredo_spike:alert"]
    assert stanza["KV_MODE"] == "json"
    assert stanza["SHOULD_LINEMERGE"] == "false"
