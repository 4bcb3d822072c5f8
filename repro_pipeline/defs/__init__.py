"""The Dagster layer, loaded by ``dg.load_from_defs_folder``: one folder per domain, and ``resources.py``,
which binds the resources every domain uses."""
