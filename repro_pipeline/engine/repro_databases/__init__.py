"""The target side: repro databases on the target server (create, record, expire, drop) and the run's
manifest inside each."""
