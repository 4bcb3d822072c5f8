"""``repro-pipeline``: the embedded demo, tenant runs through Dagster, the TTL sweep, the engine without
Dagster, and the config files' checks. One module per command group; ``main`` assembles them.

Connection strings come from ``REPRO_STANDBY_DSN`` and ``REPRO_TARGET_DSN``; when both are unset the
embedded stack (``repro-pipeline stack up``) is used. User mistakes print one clear message, no traceback.
"""
