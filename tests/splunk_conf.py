"""Reading the app's .conf files the way Splunk does, and Splunk's .spec files that say which keys exist.

Splunk's own .spec files come from the Splunk Packaging Toolkit (PyPI splunk-packaging-toolkit, the
`slim` package), which bundles them under slim/config/conf-specs. They are Splunk 7.0's specs
(2017); the few keys that Splunk added later and that this app uses are listed in LATER_SPLUNK_KEYS
with the version that added them. The app's own settings are declared in README/<file>.conf.spec.
"""

import importlib.util
import re
from pathlib import Path
from typing import Dict, List, Pattern

from ksconf.conf.parser import PARSECONF_STRICT_NC, parse_conf

APP_ROOT = Path(__file__).resolve().parent.parent

# Keys Splunk added after the 2017 specs that the toolkit bundles (commands.conf.spec and
# alert_actions.conf.spec of Splunk 8.0+ for python.version, 9.x/10.x for python.required).
LATER_SPLUNK_KEYS = {
    "commands.conf": {"python.version", "python.required"},
    "alert_actions.conf": {"python.version", "python.required"},
}

_SPEC_KEY = re.compile(r"^([A-Za-z0-9_<>.\-:]+)\s*=")
_PLACEHOLDER = re.compile(r"<[^>]+>")


def splunk_spec_dir() -> Path:
    spec = importlib.util.find_spec("slim")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("splunk-packaging-toolkit (slim) is not installed: run ./tools/setup.sh")
    return Path(list(spec.submodule_search_locations)[0]) / "config" / "conf-specs"


def parse(path: Path) -> Dict[str, Dict[str, str]]:
    """Stanza -> key -> value, with ksconf's strict parser (duplicate stanzas or keys raise)."""
    return parse_conf(str(path), profile=PARSECONF_STRICT_NC)


def conf_files() -> List[Path]:
    return sorted((APP_ROOT / "default").glob("*.conf"))


def spec_key_patterns(spec: Path) -> List[Pattern]:
    """The setting names a .spec file declares, as regular expressions: `action.<name>.<param>`
    becomes `action\\..+\\..+`. A name that is only a placeholder (`<name> = ...`) would match
    anything, so it is left out."""
    patterns = []
    for line in spec.read_text(encoding="utf-8").splitlines():
        match = _SPEC_KEY.match(line)
        if not match or _PLACEHOLDER.fullmatch(match.group(1)):
            continue
        parts = _PLACEHOLDER.split(match.group(1))
        patterns.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
    return patterns


def known_keys(conf_name: str) -> List[Pattern]:
    """Every key pattern that Splunk's spec, the app's README spec or LATER_SPLUNK_KEYS allows for
    `conf_name` (e.g. "savedsearches.conf"); empty when nothing declares that file."""
    patterns = []
    for spec in (splunk_spec_dir() / (conf_name + ".spec"), APP_ROOT / "README" / (conf_name + ".spec")):
        if spec.exists():
            patterns.extend(spec_key_patterns(spec))
    patterns.extend(re.compile(re.escape(key) + r"\Z") for key in LATER_SPLUNK_KEYS.get(conf_name, ()))
    return patterns
