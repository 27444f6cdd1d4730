"""`| teredospike` as it runs under a splunklib without the private names splunk_adapter uses:
the adapter's switch is set as its import-time check would set it, then the command runs as
splunkd starts it (tests/test_splunk_adapter.py drives it through the protocol)."""

import os
import sys

BIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin")
sys.path.insert(0, os.path.join(BIN, "lib"))
sys.path.insert(0, BIN)

from teredo_spike import splunk_adapter  # noqa: E402

splunk_adapter.PRIVATE_API = False

import teredospike  # noqa: E402

if __name__ == "__main__":
    teredospike.main()
