"""The TTL sweep: repro databases dropped when their time to live runs out."""
