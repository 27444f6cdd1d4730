"""ATT&CK context from the app's lookup lookups/teredo_attack_techniques.csv.

The lookup is generated from MITRE ATT&CK data by tools/gen_attack_lookup.py; multivalue cells hold
one value per line.
"""
import csv
import os
from typing import Dict, List, NamedTuple

APP_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LOOKUP_PATH = os.path.join(APP_DIR, "lookups", "teredo_attack_techniques.csv")


class AttackError(Exception):
    """The lookup is missing or does not hold the technique."""


class Technique(NamedTuple):
    technique_id: str
    name: str
    tactics: List[str]
    tactic_ids: List[str]
    tactic_names: List[str]
    url: str
    description: str
    mitigations: List[Dict[str, str]]
    data_components: List[str]
    detection_strategies: List[str]
    attack_version: str


def _lines(cell: str) -> List[str]:
    return [v for v in cell.split("\n") if v]


def load_techniques(path: str = LOOKUP_PATH) -> Dict[str, Technique]:
    """Techniques by ATT&CK id."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise AttackError("ATT&CK lookup {} cannot be read: {}".format(path, e.strerror or e))
    techniques = {}
    for row in rows:
        mitigations = [{"id": i, "name": n, "url": u} for i, n, u in zip(
            _lines(row["mitre_mitigation_ids"]), _lines(row["mitre_mitigations"]),
            _lines(row["mitre_mitigation_urls"]))]
        techniques[row["mitre_technique_id"]] = Technique(
            technique_id=row["mitre_technique_id"],
            name=row["mitre_technique"],
            tactics=_lines(row["mitre_tactic"]),
            tactic_ids=_lines(row["mitre_tactic_id"]),
            tactic_names=_lines(row["mitre_tactic_name"]),
            url=row["mitre_url"],
            description=row["mitre_description"],
            mitigations=mitigations,
            data_components=_lines(row["mitre_data_components"]),
            detection_strategies=_lines(row["mitre_detection_strategy_id"]),
            attack_version=row["attack_version"],
        )
    return techniques


def technique(techniques: Dict[str, Technique], technique_id: str) -> Technique:
    try:
        return techniques[technique_id]
    except KeyError:
        raise AttackError("ATT&CK lookup {} has no row for {}".format(LOOKUP_PATH, technique_id))
