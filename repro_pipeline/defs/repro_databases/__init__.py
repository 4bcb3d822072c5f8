"""Operating the repro databases: list them, extend one's TTL, drop one now; and the observations that keep
each organization's partition telling what became of its database."""
