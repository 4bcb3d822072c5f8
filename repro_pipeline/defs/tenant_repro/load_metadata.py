"""The load's progress at its end, table by table, as the repro database's metadata: the same rows, seconds and
rows/s as the run log's last progress line of each table, kept with the materialization."""

from __future__ import annotations

import dagster as dg

from repro_pipeline.engine.load.loader import LoadReport

LOAD_BY_TABLE = "load_by_table"

_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("table", "string", description="schema.table"),
        dg.TableColumn("rows", "int", description="rows the target stored"),
        dg.TableColumn("seconds", "float", description="streaming, masking and writing the table's rows"),
        dg.TableColumn("rows_per_second", "int"),
    ]
)


def load_by_table(report: LoadReport) -> dg.TableMetadataValue:
    """One record per loaded table, the slowest first."""
    timed = sorted(
        (
            (str(table), rows, report.table_seconds.get(table, 0.0))
            for table, rows in report.loaded_rows.items()
        ),
        key=lambda row: (-row[2], row[0]),
    )
    records = [
        dg.TableRecord(
            {
                "table": table,
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_second": round(rows / seconds) if seconds > 0 else 0,
            }
        )
        for table, rows, seconds in timed
    ]
    return dg.MetadataValue.table(records, schema=_COLUMNS)
