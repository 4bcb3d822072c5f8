"""Tickets: a labelled ticket on a GitHub-compatible tracker launches its organization's repro, and hears
back (accepted, refused, ready, failed)."""
