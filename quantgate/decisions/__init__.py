"""Deciding: the statistics of one decision, the sequential look loop, the checks' one contract, the metrics (name,
direction, aggregation)."""
