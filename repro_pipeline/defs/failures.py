"""User mistakes become Dagster failures with the engine's message: no traceback, no retry."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from repro_pipeline.engine.errors import ReproError


@contextmanager
def reported_as_failure() -> Iterator[None]:
    try:
        yield
    except ReproError as error:
        # A note says what else went wrong, such as a cleanup that failed after the error.
        notes = getattr(error, "__notes__", [])
        raise dg.Failure(description="\n".join([str(error), *notes]), allow_retries=False) from None
