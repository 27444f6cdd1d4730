#!/usr/bin/env python
"""The splunklib per-record reference: a ReportingCommand that only counts records per source host,
reading records the way splunklib hands them over (a dict per record). Benchmark only, not in the app."""

import os
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bin", "lib"))

from splunklib.searchcommands import Configuration, ReportingCommand, dispatch  # noqa: E402


@Configuration(requires_preop=True)
class CountByHostCommand(ReportingCommand):
    """Counts records per src_ip in the map phase; sums the counts in the reduce phase."""

    def prepare(self):
        self.counts = Counter()
        super().prepare()

    @Configuration()
    def map(self, records):
        counts = self.counts
        for record in records:
            counts[record.get("src_ip", "")] += 1
        if self._finished:
            for host, count in sorted(counts.items()):
                yield {"src_ip": host, "count": count}

    def reduce(self, records):
        counts = self.counts
        for record in records:
            counts[record["src_ip"]] += int(record["count"])
        if self._finished:
            for host, count in sorted(counts.items()):
                yield {"src_ip": host, "count": count}


if __name__ == "__main__":
    dispatch(CountByHostCommand, sys.argv, sys.stdin, sys.stdout, __name__)
