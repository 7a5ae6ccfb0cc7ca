"""Deciding: the statistics of one decision, a variant's evaluation record and the sequential look loop, stored formats'
decisions."""
