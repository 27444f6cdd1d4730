"""The package says what it holds: `teredo_spike/__init__.py` lists exactly its modules, and no
comment in shipped code cites a document outside the repository."""

import re

from tests.splunk_conf import APP_ROOT

PACKAGE = APP_ROOT / "bin" / "teredo_spike"


def test_the_module_list_is_true():
    import teredo_spike
    listed = set(re.findall(r"^- (\w+/?)\s", teredo_spike.__doc__, re.MULTILINE))
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.name + "/" for p in PACKAGE.iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    assert listed == present


def test_no_comment_cites_notes_outside_the_repository():
    shipped = list((APP_ROOT / "bin").glob("*.py")) + list(PACKAGE.rglob("*.py"))
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bSPEC\b|FIELD-NOTES", text), path
