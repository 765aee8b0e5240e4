"""Many rows in one statement, for the batch jobs (the sweep, the reminder
scan) whose cost is per row.

The ORM's bulk_create and bulk_update build one parameter per value and, for
updates, a CASE expression per field; at thousands of rows that Python costs
more than the database's work. On PostgreSQL the rows travel instead as one
binary array per column, unnested by the server (`INSERT … SELECT FROM
unnest(…)`, `UPDATE … FROM unnest(…)`): one statement whatever the row
count, and a statement text that does not change with it, so the server
plans it once. SQLite runs in-process, where a statement costs microseconds:
multi-row VALUES for inserts, executemany for updates.

Columns are database column names (`line_id`, not `line`); values are what
the model field holds (aware datetimes, dicts for JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models

# SQLite allows 32,766 parameters a statement; 500 rows of up to 65 columns.
SQLITE_ROWS_PER_STATEMENT = 500


def _fields(model: type[models.Model], columns: Sequence[str]) -> list[models.Field[Any, Any]]:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    return [by_column[c] for c in columns]


def _pg_columns(
    fields: list[models.Field[Any, Any]], rows: Sequence[Sequence[Any]]
) -> tuple[list[str], list[str], list[list[Any]]]:
    """Per column: the array parameter, the expression that reads it back in
    the column's type, and the values. JSON goes as text and is cast after
    unnesting (a binary array of jsonb would need psycopg's Jsonb wrappers)."""
    params, reads, values = [], [], []
    for i, field in enumerate(fields):
        column_values = [row[i] for row in rows]
        db_type = field.db_type(connection)
        if isinstance(field, models.JSONField):
            encoder = field.encoder
            column_values = [
                None if v is None else json.dumps(v, cls=encoder) for v in column_values
            ]
            params.append("%b::text[]")
            reads.append(f"c{i}::jsonb")
        else:
            # An explicit cast to varchar(n) would cut a longer value short
            # without a word; to plain varchar, the column refuses it instead.
            if db_type is None:
                raise ValueError(f"{field} has no database column")
            if db_type.startswith("varchar("):
                db_type = "varchar"
            params.append(f"%b::{db_type}[]")
            reads.append(f"c{i}")
        values.append(column_values)
    return params, reads, values


def _sqlite_value(field: models.Field[Any, Any], value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(field, models.JSONField) and value is not None:
        return json.dumps(value, cls=field.encoder)
    return value


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> int:
    """Insert `rows` (one value per column, in `columns`' order); returns how
    many rows were written (with `ignore_conflicts`, the rows a unique
    constraint turned away are not counted)."""
    return _insert(model, columns, rows, ignore_conflicts, ())[0] if rows else 0


def insert_rows_returning(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
    *,
    ignore_conflicts: bool = False,
) -> list[tuple[Any, ...]]:
    """insert_rows, returning the `returning` columns of each row written
    (in no particular order; a row a unique constraint turned away returns
    nothing), so the caller need not read them back."""
    if not rows:
        return []
    names = [connection.ops.quote_name(c) for c in returning]
    return _insert(model, columns, rows, ignore_conflicts, names)[1]


def _insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ignore_conflicts: bool,
    returning: Sequence[str],
) -> tuple[int, list[tuple[Any, ...]]]:
    """The rows written: how many, and their `returning` columns if any."""
    fields = _fields(model, columns)
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    tail = (" ON CONFLICT DO NOTHING" if ignore_conflicts else "") + (
        " RETURNING " + ", ".join(returning) if returning else ""
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            params, reads, values = _pg_columns(fields, rows)
            aliases = ", ".join(f"c{i}" for i in range(len(columns)))
            import psycopg

            # Server-side binding: the arrays travel as binary parameters,
            # not quoted into the SQL text.
            # wrap_database_errors: callers get Django's exceptions, as from the ORM.
            with connection.wrap_database_errors, psycopg.Cursor(cursor.connection) as raw:
                raw.execute(
                    f"INSERT INTO {table} ({names}) "  # noqa: S608 - names are ours
                    f"SELECT {', '.join(reads)} FROM unnest({', '.join(params)}) "
                    f"AS t({aliases}){tail}",
                    values,
                )
                if returning:
                    inserted = [tuple(row) for row in raw.fetchall()]
                    return len(inserted), inserted
                return int(raw.rowcount), []
        one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        written = 0
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
            chunk = rows[start : start + SQLITE_ROWS_PER_STATEMENT]
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES "  # noqa: S608 - names are ours
                + ", ".join([one_row] * len(chunk))
                + tail,
                [_sqlite_value(f, v) for row in chunk for f, v in zip(fields, row, strict=True)],
            )
            if returning:
                chunk_found = [tuple(row) for row in cursor.fetchall()]
                written += len(chunk_found)
                found.extend(chunk_found)
            else:
                written += int(cursor.rowcount)
        return written, found


def update_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Set `columns` of each row given as (pk, *values)."""
    if not rows:
        return
    fields = _fields(model, columns)
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    assert pk is not None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            params, reads, values = _pg_columns([pk, *fields], rows)
            aliases = ", ".join(f"c{i}" for i in range(len(columns) + 1))
            assignments = ", ".join(
                f"{connection.ops.quote_name(c)} = {read}"
                for c, read in zip(columns, reads[1:], strict=True)
            )
            import psycopg

            with connection.wrap_database_errors, psycopg.Cursor(cursor.connection) as raw:
                raw.execute(
                    f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names are ours
                    f"FROM unnest({', '.join(params)}) AS v({aliases}) "
                    f"WHERE t.{connection.ops.quote_name(pk.column)} = v.c0",
                    values,
                )
            return
        cursor.executemany(
            f"UPDATE {table} SET "  # noqa: S608 - names are ours
            + ", ".join(f"{connection.ops.quote_name(c)} = %s" for c in columns)
            + f" WHERE {connection.ops.quote_name(pk.column)} = %s",
            [
                (*(_sqlite_value(f, v) for f, v in zip(fields, row[1:], strict=True)), row[0])
                for row in rows
            ],
        )
