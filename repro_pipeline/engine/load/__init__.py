"""The load stage: the checked plan, schema replication (pre-data / post-data), masked row transfer, and
the load of a repro database."""
