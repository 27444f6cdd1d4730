"""splunk_adapter owns every touch of splunklib's private names: they are all there in the
vendored splunklib (bin/lib), the check notices one missing, and without them the command takes
splunklib's public way with the same results, through the protocol."""

import os
import subprocess

import pytest

from teredo_spike import splunk_adapter
from tests.test_golden import _records
from tools.runner import run_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC_API_COMMAND = os.path.join(ROOT, "tests", "public_api_command.py")
BIN = os.path.join(ROOT, "bin")


def test_the_vendored_splunklib_has_every_private_name(python):
    """Under each Splunk Python: the adapter's check passes, name by name."""
    code = ("import sys; sys.path[:0] = [%r, %r]\n"
            "from splunklib.searchcommands import internals, search_command\n"
            "from teredo_spike import splunk_adapter as a\n"
            "import io\n"
            "w = internals.RecordWriterV2(io.BytesIO())\n"
            "c = search_command.SearchCommand()\n"
            "print([n for n in a.WRITER_ATTRIBUTES if not hasattr(w, n)],"
            " [n for n in a.COMMAND_ATTRIBUTES if not hasattr(c, n)], a.PRIVATE_API)\n"
            % (os.path.join(BIN, "lib"), BIN))
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] True"


def test_the_command_overrides_the_chunk_handler_only_with_the_private_names():
    import teredospike
    assert (teredospike.TeredoSpikeCommand._execute_chunk_v2
            is splunk_adapter.execute_chunk_v2)


@pytest.mark.parametrize("name", splunk_adapter.WRITER_ATTRIBUTES)
def test_a_missing_writer_name_turns_the_private_way_off(monkeypatch, name):
    import io

    from splunklib.searchcommands import internals
    if name in vars(internals.RecordWriterV2(io.BytesIO())):  # set by __init__
        made = internals.RecordWriter.__init__

        def without(self, *args, **kwargs):
            made(self, *args, **kwargs)
            delattr(self, name)

        monkeypatch.setattr(internals.RecordWriter, "__init__", without)
    else:  # a method: taken from the class that defines it
        owner = next(c for c in internals.RecordWriterV2.__mro__ if name in vars(c))
        monkeypatch.delattr(owner, name)
    assert splunk_adapter.private_api_present() is False


@pytest.mark.parametrize("output", ("all", "spikes"))
def test_the_public_way_gives_the_same_results(output):
    """A fifth of the bundled sample, map phase on 3 indexers: rows and messages identical."""
    records = _records()[:len(_records()) // 5]
    args = ["output=" + output]
    private = run_search(records, args, partitions=3)
    public = run_search(records, args, partitions=3, script=PUBLIC_API_COMMAND)
    assert set(public.exit_codes) == {0}, public.messages
    assert private.rows and public.rows == private.rows
    assert public.messages == private.messages
