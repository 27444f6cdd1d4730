"""The options are declared once (teredo_spike.options.OPTIONS): the command's splunklib Options,
tools/verdicts.py, searchbnf.conf's syntax and the README's options table follow it."""

import pytest

from teredo_spike import options as opts
from teredo_spike.scoring import Settings
from tests.splunk_conf import APP_ROOT, parse


def test_the_commands_options_are_the_tables():
    import teredospike
    command = teredospike.TeredoSpikeCommand
    for spec in opts.OPTIONS:
        assert getattr(command, spec.name).default == spec.default, spec.name
    # Names may grow but never change meaning (SPEC): the first six are the contract's.
    assert opts.OPTION_NAMES.startswith("span, threshold, min_packets, min_bytes, internal, output")


def test_the_defaults_parse_to_the_documented_settings():
    chosen = opts.parse()
    assert chosen.scoring == Settings(span=600, threshold=6.0, min_packets=50, min_bytes=16000)
    assert [chosen.internal.contains(a) for a in ("10.1.2.3", "100.64.0.9", "fe80::1", "8.8.8.8")
            ] == [True, True, True, False]
    assert chosen.output == "spikes"
    assert opts.parse(span="1h", output='"all"').scoring.span == 3600


@pytest.mark.parametrize("texts, message", [
    ({"span": "abc"}, "span=abc: expected a duration"),
    ({"threshold": "0"}, "threshold=0: must be at least 0.1"),
    ({"internal": "10.0.0.0/33"}, "internal=10.0.0.0/33: "),
    ({"output": "some"}, "output=some: expected spikes"),
    ({"record_time": "middle"}, "record_time=middle: expected start .* or end"),
    ({"colour": "red"}, "unknown option colour"),
])
def test_a_bad_option_is_named(texts, message):
    with pytest.raises(opts.OptionError, match=message):
        opts.parse(**texts)


def test_verdicts_take_the_commands_defaults():
    from tools import verdicts
    defaults, theirs = opts.parse(), verdicts._settings([])
    assert (theirs.scoring, theirs.output) == (defaults.scoring, defaults.output)
    assert verdicts._settings(["span=1h"]).scoring.span == 3600


def test_searchbnf_syntax_is_made_from_the_table():
    conf = parse(APP_ROOT / "default" / "searchbnf.conf")
    assert conf["teredospike-command"]["syntax"] == opts.searchbnf_syntax()


def test_the_readme_options_table_is_made_from_the_table():
    readme = (APP_ROOT / "README.md").read_text(encoding="utf-8")
    assert opts.readme_table() in readme, "README.md's options table: paste options.readme_table()"


def test_searchbnf_description_states_the_tables_defaults():
    description = parse(APP_ROOT / "default" / "searchbnf.conf")["teredospike-command"][
        "description"]
    for spec in opts.OPTIONS:
        assert spec.name in description, spec.name
        if spec.name not in ("internal", "output"):  # described in words there
            assert spec.default in description, spec.name
