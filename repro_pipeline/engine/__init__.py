"""The engine: plain Python over psycopg, grouped by pipeline stage. It never imports dagster.

The stages, in the order a run goes through them:

    source  ->  subset  ->  masking  ->  load  ->  verify

- ``source``: the standby's health, the one read snapshot, the catalog, and the references it lacks.
- ``subset``: the tenant key, root predicates, the FK closure and its key sets.
- ``masking``: the rules' maskers, providers, JSON paths, uniqueness, and PII auto-detection.
- ``load``: the plan, schema replication (pre-data / post-data), the masked row transfer, the load.
- ``verify``: FK orphans, row counts, the leak scan.
- ``repro_databases``: the target side (create, record, expire, drop; the run's manifest).

The import rule, enforced by ``repro_pipeline_tests/engine/test_import_rule.py``:

- A stage imports only the stages before it.
- ``repro_databases`` imports only ``source`` (for table names); ``load`` and ``verify`` may import it.
- Every package may import the shared modules: ``config``, ``secrets`` (with ``secret_stores``), ``errors``, ``dsn``,
  ``pg_binaries`` (where PostgreSQL's programs are; the embedded stack uses it too) and ``exit_codes`` (the
  CLI's exit code of each kind of error). These import only each
  other, except that ``config`` validates the user's files with three stage parsers that import
  no engine module but ``errors``: ``subset.predicate``, ``masking.regex`` and ``masking.providers``.
"""
