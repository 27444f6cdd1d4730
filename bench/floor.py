"""The parse floor: csv.reader over the same chunk bodies, nothing else (run under the Python being
measured). Prints JSON: records read and the CPU seconds of decoding and parsing the bodies (reading
the bytes from the file is outside the timing, as the protocol read is outside a parser's)."""

import csv
import io
import json
import sys
import time


def main(path: str) -> None:
    with open(path + ".json") as f:
        chunks = json.load(f)
    records = 0
    cpu = 0.0
    with open(path, "rb") as f:
        for offset, length, _ in chunks:
            f.seek(offset)
            body = f.read(length)
            start = time.process_time()
            reader = csv.reader(io.StringIO(body.decode("utf-8")))
            next(reader)
            for _ in reader:
                records += 1
            cpu += time.process_time() - start
    sys.stdout.write(json.dumps({"records": records, "cpu": cpu}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
