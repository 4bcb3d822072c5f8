"""One organization's repro database: its partitions, assets, checks and job."""
