"""Stream the closure's rows from the source to the target through the masks, table by table.

Rows go from ``COPY ... TO STDOUT`` on the source to ``COPY ... FROM STDIN`` on the target one batch of
keys (or, for a table without a primary key, one selecting condition) at a time, so memory holds one batch
whatever the tenant's size. Rows stay COPY text: a table without masks is copied as the bytes the source sent,
and in a masked one only the masked fields are decoded and written again (``copy_text``).

Those bytes are in the source session's client encoding (its database's, unless its DSN sets another), which
need not be the target database's: the target session takes the same client encoding for the COPY, so its
server converts them (and refuses, naming the character, one its own encoding cannot hold).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Copy, sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.copy_text import FieldMasker, UnwritableValue, line_masker, splits_safely
from repro_pipeline.engine.masking.in_select import SelectMask
from repro_pipeline.engine.masking.plan import TableMasking
from repro_pipeline.engine.source.catalog import ForeignKey
from repro_pipeline.engine.subset.keyset import column_list, match_keys

WRITE_SIZE = 1 << 17  # bytes of COPY data handed to the target at once


@dataclass(frozen=True)
class NulledReference:
    """Where ``fk`` holds one of ``values`` (a row left out as another tenant's), ``columns`` are NULL."""

    fk: ForeignKey
    columns: tuple[str, ...]
    values: frozenset[Any]


@dataclass(frozen=True)
class CopiedRows:
    read: int  # the source server's own count (COPY's command tag), in the load's snapshot
    written: int  # the target server's count of rows it stored


def copy_table(
    source: psycopg.Connection[TupleRow],
    target: psycopg.Connection[TupleRow],
    masking: TableMasking,
    batches: Iterable[tuple[sql.Composed, dict[str, Any]]],
    nulled: Collection[NulledReference] = (),
    *,
    freeze: bool = True,
) -> CopiedRows:
    """Copy the rows each ``(condition, params)`` batch selects into the target table; the ``nulled`` values
    of a reference (to another tenant's rows left out) are written as NULL. ``freeze``: the table was created
    or truncated in this transaction, and no other writes it."""
    table = masking.table
    columns = [column.name for column in table.copy_columns]
    selected, nulled_params = _selected_columns(masking, columns, nulled)
    source_cur, target_cur = source.cursor(), target.cursor()
    # FREEZE: the table was created in this transaction, so its rows can be written already frozen
    # (PostgreSQL allows it on ordinary tables only; a partitioned table routes rows to its partitions).
    copy_in = sql.SQL("COPY {table} ({columns}) FROM STDIN{freeze}").format(
        table=table.name.identifier,
        columns=column_list(columns),
        freeze=sql.SQL(" WITH (FREEZE)" if freeze and not table.partition_by else ""),
    )
    read = 0
    encoding = source.info.encoding
    python_maskers = _python_maskers(masking)
    mask_lines = line_masker(python_maskers, encoding) if python_maskers else None
    # The source sends one message per row; handing each to the target on its own costs a round of libpq
    # calls per row, so rows are gathered into blocks of about WRITE_SIZE bytes first.
    pending = bytearray()
    target_encoding = target.info.parameter_status("client_encoding")
    source_encoding = source.info.parameter_status("client_encoding")
    _set_client_encoding(target, source_encoding)
    try:
        with target_cur.copy(copy_in) as sink:
            for condition, params in batches:
                copy_out = sql.SQL("COPY (SELECT {columns} FROM {table} WHERE {condition}) TO STDOUT").format(
                    columns=selected, table=table.name.identifier, condition=condition
                )
                with source_cur.copy(copy_out, params | nulled_params) as stream:
                    if mask_lines is not None and not splits_safely(encoding):
                        for row in stream.rows():
                            sink.write_row(_masked_row(row, python_maskers, encoding))
                    else:
                        for block in stream:
                            pending += block
                            if len(pending) >= WRITE_SIZE:
                                pending = _write_lines(sink, pending, mask_lines)
                read += source_cur.rowcount
            _write_lines(sink, pending, mask_lines)
    except UnwritableValue as exc:
        column = columns[exc.position]
        action = next((c.action for c in masking.columns if c.column == column), "masked")
        raise ConfigError(
            f"a masked value of {table.name}.{column} ({action}) holds a character the "
            f"source's client encoding {source_encoding} cannot write",
            f"give {table.name}.{column} a mask whose values {source_encoding} can hold, or connect to the "
            "source with a client encoding that holds them (client_encoding=UTF8 in its DSN's options)",
        ) from None
    # The target's later statements (the post-data script) are text of the target's own encoding.
    _set_client_encoding(target, target_encoding)
    return CopiedRows(read=read, written=target_cur.rowcount)


def _set_client_encoding(conn: psycopg.Connection[TupleRow], name: str | None) -> None:
    if name is not None and name != conn.info.parameter_status("client_encoding"):
        conn.execute(sql.SQL("SET client_encoding TO {}").format(sql.Literal(name)))


def _python_maskers(masking: TableMasking) -> list[FieldMasker]:
    """The maskers the rows go through on their way, by their column's position in the line: what the server
    does not do already in the SELECT (``in_select``)."""
    python = {
        position: masker.remaining if isinstance(masker, SelectMask) else masker
        for position, masker in masking.maskers.items()
    }
    return sorted((position, masker) for position, masker in python.items() if masker is not None)


def _masked_row(row: tuple[Any, ...], maskers: list[FieldMasker], encoding: str) -> list[Any]:
    """A row parsed by psycopg, through the maskers left to Python (the SELECT applied the others), each
    masked value checked writable in ``encoding``, the COPY's."""
    masked = list(row)
    for position, masker in maskers:
        masked[position] = value = masker(masked[position])
        if value is not None:
            try:
                value.encode(encoding)
            except UnicodeEncodeError:
                raise UnwritableValue(position) from None
    return masked


def _write_lines(sink: Copy, data: bytearray, mask_lines: Callable[[bytes], bytes] | None) -> bytearray:
    """Writes the whole lines of ``data`` to ``sink``, masked; returns what follows the last line."""
    end = data.rfind(b"\n") + 1
    if end:
        sink.write(data[:end] if mask_lines is None else mask_lines(bytes(data[:end])))
    return data[end:]


def _selected_columns(
    masking: TableMasking, columns: list[str], nulled: Collection[NulledReference]
) -> tuple[sql.Composable, dict[str, Any]]:
    """The COPY's select list: each column, or the mask the server applies to it, or NULL where its reference
    leads to a row left out."""
    table = masking.table
    selected: list[sql.Composable] = [sql.Identifier(column) for column in columns]
    for position, masker in masking.maskers.items():
        if isinstance(masker, SelectMask):
            selected[position] = masker.expression(selected[position])
    conditions: dict[str, list[sql.Composable]] = {}
    params: dict[str, Any] = {}
    for index, reference in enumerate(nulled):
        condition, fk_params = match_keys(
            table, reference.fk.child_columns, list(reference.values), name=f"nulled{index}"
        )
        params |= fk_params
        for column in reference.columns:
            conditions.setdefault(column, []).append(condition)
    return sql.SQL(", ").join(
        sql.SQL("CASE WHEN {any} THEN NULL ELSE {value} END AS {column}").format(
            any=sql.SQL(" OR ").join(conditions[column]), value=value, column=sql.Identifier(column)
        )
        if column in conditions
        else value
        for column, value in zip(columns, selected, strict=True)
    ), params
