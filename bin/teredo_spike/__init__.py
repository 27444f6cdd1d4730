"""teredo_spike: the logic behind `| teredospike` and the `teredo_attack_context` alert action.

Pure Python 3.9+ (standard library, and the vendored pure-Python libraries in bin/lib), so that
it runs unchanged on Splunk's bundled Python 3.9 and 3.13 on search heads and indexers.
One module per idea:

- fields       CIM Network_Traffic field names -> column positions in a chunk
- addresses    internal networks; Teredo address decoding (RFC 4380 section 4)
- evidence     what makes one flow record Teredo (label, prefix, port)
- aggregation  mergeable per (host, client port, bucket) aggregates; client-port attribution
- scoring      baselines, z-scores, fleet correction, episodes, severity
- output       result rows and the `reason` sentence
- options      the command's options, checked with messages that say what to type
- alert/       the teredo_attack_context alert action (payload, ATT&CK context, delivery, spool)
"""

__version__ = "0.1.0"
