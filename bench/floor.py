"""The parse floor: csv.reader over the same chunk bodies, nothing else (run under the Python being
measured). Prints JSON: records read and the CPU seconds of decoding and parsing the bodies (reading
the bytes from the file is outside the timing, as the protocol read is outside a parser's)."""

import csv
import io
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.workload import BodySet  # noqa: E402


def main(path: str) -> None:
    records = 0
    cpu = 0.0
    for body in BodySet.load(path):
        start = time.process_time()
        reader = csv.reader(io.StringIO(body.decode("utf-8")))
        next(reader)
        for _ in reader:
            records += 1
        cpu += time.process_time() - start
    sys.stdout.write(json.dumps({"records": records, "cpu": cpu}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
