"""teredo_spike: the logic behind `| teredospike` and the `teredo_attack_context` alert action.

Pure Python 3.9+ (standard library, and the vendored pure-Python libraries in bin/lib), so that
it runs unchanged on Splunk's bundled Python 3.9 and 3.13 on search heads and indexers.
One module per idea:

map phase (indexers):
- fields          CIM Network_Traffic field names -> column positions in a chunk; Chunk
- addresses       internal networks; Teredo address decoding (RFC 4380 section 4)
- evidence        what makes one flow record Teredo (label, prefix, port); names_teredo
- records         the exact per-record reader: how each value is read, which records count
- fastpath        line-level shortcuts over a chunk, held to the exact reader
- cells           Key, Cell and client-port liveness (NEIGHBOURS)
- partials        the wire formats between the phases: partial rows, candidate entries
reduce phase (search head):
- attribution     the spool of candidates, attributed once every live port is known
- hostbuckets     METRICS; each host's cells summed per bucket (HostSeries in columns, Traffic)
- scoring         baselines, z-scores, fleet correction, familiar use, is_spike, episodes
- output          result rows, severity and the `reason` sentence
- summary         the summary stage's rows (output=buckets): layout, bucket ownership, reading back
both:
- phases          MapPhase and ReducePhase, as the command, tools/verdicts.py and bench/ drive them
- options         the command's options, declared once (OPTIONS), checked with messages
- multivalue      the `__mv_` multivalue codec
- splunk_adapter  every use of splunklib's private names, and the public fallback
- alert/          the teredo_attack_context alert action (payload, ATT&CK context, delivery, spool)
"""

__version__ = "0.1.0"
