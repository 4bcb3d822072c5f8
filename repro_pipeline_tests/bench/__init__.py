"""``make bench``: issue 11's goals measured on a persistent bench stack holding the synthetic source and the
whale tenant, each measure in its own child process, results as JSON, Markdown and a PNG chart under
``bench-results/<UTC timestamp>/``. Run with ``python -m repro_pipeline_tests.bench [--quick]``.
"""
