"""The source stage: the standby is caught up, the one read snapshot, what the source database holds."""
