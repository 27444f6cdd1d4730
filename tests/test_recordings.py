"""Real splunkd streams (recorded from Splunk 6.3 by the SDK team) replayed into the command.

The recorded events hold no network fields: the command must answer every chunk in protocol and
say, in the search's messages, that the data has none of the fields it needs."""

import gzip
import os
import tempfile

import pytest

from tools import scpv2
from tools.runner import SCRIPT


def recorded_frames(path):
    with gzip.open(path) as stream:
        return list(iter(lambda: scpv2.read_frame(stream), None))


def replay(path, args, python):
    """Send the recording's chunks with this command's `args` in getinfo; the replies."""
    frames = recorded_frames(path)
    with tempfile.TemporaryDirectory() as dispatch:
        command = scpv2.CommandProcess(SCRIPT, python, dispatch)
        replies = []
        for meta, body in frames:
            if meta["action"] == "getinfo":
                meta["searchinfo"]["args"] = list(args)
                meta["searchinfo"]["raw_args"] = list(args)
                meta["searchinfo"]["dispatch_dir"] = dispatch
            replies.append(command.request(meta, body))
        code = command.close()
    return replies, command.messages, code


def no_traceback(messages, replies):
    for level, text in messages:
        assert "Traceback" not in text and 'at "' not in text, text
    for _, body in replies:
        assert b"Traceback" not in body


@pytest.mark.parametrize("name", ["countmatches.input.gz", "sum.reduce.input.gz"])
def test_reduce_phase_says_the_data_has_no_network_fields(shared_data, python, name):
    path = os.path.join(shared_data, "scpv2-recordings", name)
    replies, messages, code = replay(path, [], python)
    assert len(replies) == 2                       # one reply per request
    info = replies[0][0]
    assert info["type"] == "reporting" and info["streaming_preop"].startswith("teredospike phase=")
    assert replies[-1][0].get("finished") is True
    assert code == 0
    warnings = [text for level, text in messages if level == "WARN"]
    assert any("no network fields" in text for text in warnings), messages
    no_traceback(messages, replies)


def test_map_phase_counts_them_and_the_search_head_reports(shared_data, python):
    path = os.path.join(shared_data, "scpv2-recordings", "sum.map.input.gz")
    replies, messages, code = replay(path, ["phase=map"], python)
    assert code == 0 and len(replies) == 2
    rows = scpv2.decode_body(replies[-1][1])
    assert len(rows) == 1                          # only the record counts travel on
    assert rows[0]["records"] == "50000"
    assert "no network fields" in rows[0]["skipped"]
    no_traceback(messages, replies)
    # Feed the map output into a reduce phase, as splunkd would.
    with tempfile.TemporaryDirectory() as dispatch:
        reduce = scpv2.CommandProcess(SCRIPT, python, dispatch)
        reduce.getinfo([])
        assert reduce.execute(replies[-1][1], finished=True) == []
        assert reduce.close() == 0
    assert any("skipped 50,000 of 50,000 records" in text and "no network fields" in text
               for level, text in reduce.messages if level == "WARN"), reduce.messages
