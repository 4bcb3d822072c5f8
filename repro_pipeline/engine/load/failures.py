"""Database errors of the load as messages that quote no row value."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import StandbyNotReady, TargetError


@contextmanager
def without_values(step: str, source: psycopg.Connection[TupleRow] | None = None) -> Iterator[None]:
    """Database errors without their DETAIL, which can quote row values (a failing row, a duplicate key);
    a lost ``source`` connection is the standby's fault, not the target's."""
    try:
        yield
    except psycopg.errors.SerializationFailure:
        raise
    except psycopg.Error as exc:
        reason = exc.diag.message_primary or str(exc).split("\n", 1)[0] or type(exc).__name__
        if source is not None and source.broken:
            raise StandbyNotReady(
                f"{step} failed: the standby's connection was lost mid-load ({reason})",
                "nothing was handed off; launch again once the standby is back and caught up",
            ) from None
        code = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        raise TargetError(
            f"{step} failed: {reason}{code}",
            "the repro database was not handed off; the message names the object at fault",
        ) from None
