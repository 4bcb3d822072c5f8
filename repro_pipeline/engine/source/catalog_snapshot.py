"""The tables of the source's catalog, kept between runs: the Dagster layer makes one asset per table from it.

Read from the standby by a command (``dg utils refresh-defs-state``, ``repro-pipeline catalog refresh``),
never when definitions load, so a code location loads with the standby down; a run copies what its own
snapshot holds, whatever this file says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, ValidationError

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import TableName, read_catalog

REFRESH_COMMAND = "repro-pipeline catalog refresh"


class CatalogTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_name: str
    name: str

    @property
    def table_name(self) -> TableName:
        return TableName(self.schema_name, self.name)


class CatalogSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str  # host:port/database, never a password
    taken_at: datetime
    tables: tuple[CatalogTable, ...]

    @property
    def table_names(self) -> tuple[TableName, ...]:
        return tuple(table.table_name for table in self.tables)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def read_catalog_snapshot(conn: psycopg.Connection[TupleRow], source: str) -> CatalogSnapshot:
    """Every table the source's catalog holds now, in name order."""
    names = sorted(read_catalog(conn).tables)
    return CatalogSnapshot(
        source=source,
        taken_at=datetime.now(UTC),
        tables=tuple(CatalogTable(schema_name=name.schema, name=name.name) for name in names),
    )


def load_catalog_snapshot(path: Path) -> CatalogSnapshot:
    """The snapshot kept at ``path``; one that cannot be read is a ``ConfigError`` saying to refresh it."""
    try:
        return CatalogSnapshot.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as error:
        reason = (
            f"{error.error_count()} invalid field(s), the first at "
            f"{'.'.join(str(part) for part in error.errors()[0]['loc']) or 'the top'}: {error.errors()[0]['msg']}"
            if isinstance(error, ValidationError)
            else str(error)
        )
        raise ConfigError(
            f"the catalog snapshot {path} cannot be read ({reason})",
            f"run `{REFRESH_COMMAND}` (or `dg utils refresh-defs-state`) to write it again",
        ) from None
