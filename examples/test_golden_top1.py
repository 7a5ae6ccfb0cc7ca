"""A team's own gate: for our golden queries, no variant may change the top-1 document the reference picks.

Written with the public fixtures only (README "Write your own gate"); run beside the packaged gates with
`quantgate gate examples/`. The golden queries here are the first 50 of the gate's evaluation data; a team
would read its own list (or override `gate_data` in its conftest.py)."""

import numpy as np

GOLDEN = 50  # queries


def test_golden_top1_unchanged(gate_variant, gate_reference, gate_data, gate_record):
    queries = list(gate_data.queries().items())[:GOLDEN]
    lists = [(qid, text, gate_data.candidates(qid)) for qid, text in queries]
    pairs = [(text, doc) for _, text, docs in lists for _, doc in docs]
    # one call each: the reference's scores are kept by the gate, so it is scored once for every variant
    variant, reference = gate_variant.score(pairs), gate_reference.score(pairs)
    changed, start = [], 0
    for qid, _, docs in lists:
        end = start + len(docs)
        if docs and np.argmax(variant[start:end]) != np.argmax(reference[start:end]):
            changed.append(qid)
        start = end
    gate_record("golden_top1_changed", len(changed), limit=0,
                note=f"of {len(lists)} queries" + (f"; changed: {', '.join(changed[:5])}" if changed else ""))
