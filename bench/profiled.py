#!/usr/bin/env python3
"""`bin/teredospike.py` under cProfile, spoken to through the protocol like the command itself.

bench/two_stage.py starts this script in the command's place (argv = [script] only, as splunkd
does) with TEREDOSPIKE_PROFILE naming the file for the statistics, written once the protocol ends.
The command's own exit (os._exit, skipping teardown) is left out, so that the stats get written.
"""

import cProfile
import os
import runpy
import sys

COMMAND = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin",
                       "teredospike.py")


def main() -> None:
    command = runpy.run_path(COMMAND, run_name="teredospike_profiled")
    sys.argv = [COMMAND]
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        command["dispatch"](command["TeredoSpikeCommand"], sys.argv, sys.stdin, sys.stdout, None)
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ["TEREDOSPIKE_PROFILE"])
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
