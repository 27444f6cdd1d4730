"""The ATT&CK lookup is generated from real ATT&CK data and committed; MITRE's notice travels with it."""
import csv
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOKUPS = os.path.join(REPO, "lookups")


def test_regenerating_the_lookup_gives_the_committed_bytes(tmp_path):
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "gen_attack_lookup.py"),
                    "--out-dir", str(tmp_path), "--notice", str(tmp_path / "NOTICE-ATTACK.md")], check=True)
    for committed_path in (os.path.join(LOOKUPS, "teredo_attack_techniques.csv"),
                           os.path.join(REPO, "NOTICE-ATTACK.md")):
        name = os.path.basename(committed_path)
        with open(committed_path, "rb") as committed:
            assert (tmp_path / name).read_bytes() == committed.read(), name + " differs from a fresh build"


def test_t1572_row_has_the_context_the_alert_needs():
    with open(os.path.join(LOOKUPS, "teredo_attack_techniques.csv"), newline="", encoding="utf-8") as f:
        rows = {r["mitre_technique_id"]: r for r in csv.DictReader(f)}
    row = rows["T1572"]
    assert row["mitre_technique"] == "Protocol Tunneling"
    assert row["mitre_tactic"] == "command-and-control" and row["mitre_tactic_id"] == "TA0011"
    assert row["mitre_url"] == "https://attack.mitre.org/techniques/T1572"
    assert row["mitre_mitigation_ids"].split("\n") == ["M1031", "M1037"]
    assert row["mitre_mitigations"].split("\n") == ["Network Intrusion Prevention", "Filter Network Traffic"]
    for component in ("Network Traffic Flow", "Network Traffic Content", "Network Connection Creation"):
        assert component in row["mitre_data_components"].split("\n")
    assert row["mitre_description"].startswith("Adversaries may tunnel network communications")
    assert row["attack_version"] == "18.1"


def test_notice_carries_mitres_copyright_and_licence():
    with open(os.path.join(REPO, "NOTICE-ATTACK.md"), encoding="utf-8") as f:
        text = f.read()
    assert "Copyright 2015-2025, The MITRE Corporation" in text
    assert "hereby grants you a non-exclusive, royalty-free license to use ATT&CK" in text
    assert "reproduce MITRE's copyright designation and this license in any such copy" in text


def test_lookups_folder_holds_only_lookup_tables():
    # AppInspect (cloud) fails any file in lookups/ that is not a valid lookup table.
    assert all(name.endswith(".csv") for name in os.listdir(LOOKUPS))


def test_transforms_defines_the_lookup():
    with open(os.path.join(REPO, "default", "transforms.conf"), encoding="utf-8") as f:
        text = f.read()
    assert "[teredo_attack_techniques]\nfilename = teredo_attack_techniques.csv" in text
