"""Modular alert teredo_attack_context: splunkd runs it with --execute and a JSON payload on stdin.

It adds MITRE ATT&CK context to each result row of the Teredo spike detection and delivers the events
to a Splunk index and, when configured, a webhook. The logic is in teredo_spike/alert/.
"""
import os
import sys

_BIN = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BIN, "lib"))
sys.path.insert(0, _BIN)

from teredo_spike.alert.action import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin.buffer))
