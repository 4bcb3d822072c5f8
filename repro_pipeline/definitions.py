"""The Dagster code location: every definition under ``defs/``, one folder per domain, found by
``dg.load_from_defs_folder``. Nothing here reads the environment: resources read their settings when a
run uses them."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def tenant_repro_job_def() -> dg.JobDefinition:
    """The resolved tenant job: the CLI runs it in process (``cli/launch.py``); tests also launch it through
    ``dagster.reconstructable``."""
    return defs().resolve_job_def("tenant_repro")


def ttl_sweep_job_def() -> dg.JobDefinition:
    return defs().resolve_job_def("ttl_sweep")
