"""The bundled sample's results, pinned by digest: a change that is meant to keep results (a
refactor, a speed-up) must leave them byte-identical, under Splunk's Python 3.9 and 3.13 and with the
map phase over 1 or 3 partitions (indexers), each once (RUNS).

A change that is meant to change results updates tests/golden/sample.json in the same commit, with
`python -m tests.test_golden` (it prints the new digests), and says why in the commit message.
"""

import hashlib
import json
import os
import sys

import pytest

from tests.pythons import SPLUNK_PYTHONS, splunk_python
from tools.readers import read_records
from tools.runner import run_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "samples", "enterprise_week.csv.gz")
DIGESTS = os.path.join(ROOT, "tests", "golden", "sample.json")
OUTPUTS = ("all", "spikes")


def digest(rows) -> str:
    """sha256 of the rows as canonical JSON lines (field order as the command wrote them)."""
    hasher = hashlib.sha256()
    for row in rows:
        hasher.update(json.dumps(list(row.items()), ensure_ascii=False).encode("utf-8"))
        hasher.update(b"\n")
    return hasher.hexdigest()


def sample_digest(output: str, python: str, partitions: int) -> str:
    result = run_search(_records(), ["output=" + output], partitions=partitions,
                             chunk_size=2500, python=python)
    assert set(result.exit_codes) == {0}, result.messages
    assert not [m for m in result.messages if m[0] == "ERROR"], result.messages
    return digest(result.rows)


_cache = []


def _records():
    if not _cache:
        _cache.append(list(read_records(SAMPLE, "csv")))
    return _cache[0]


def _stored():
    with open(DIGESTS, encoding="utf-8") as f:
        return json.load(f)


# Each Python and each partitioning once (pairwise: a run takes 10-25 s, and the suite must stay
# within CI's 20 minutes); tests/test_protocol.py and tests/test_summary_stage.py hold results
# equal across Pythons, chunkings and partitions.
RUNS = ((SPLUNK_PYTHONS[0], 3), (SPLUNK_PYTHONS[1], 1))


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("version, partitions", RUNS)
def test_sample_results_are_unchanged(output, version, partitions):
    assert sample_digest(output, splunk_python(version), partitions) == _stored()[output]


if __name__ == "__main__":
    found = {output: sample_digest(output, splunk_python(SPLUNK_PYTHONS[0]), 1)
             for output in OUTPUTS}
    with open(DIGESTS, "w", encoding="utf-8") as f:
        json.dump(found, f, indent=1)
        f.write("\n")
    json.dump(found, sys.stdout, indent=1)
