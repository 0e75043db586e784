"""Rows as values: one value from a query that always returns one row (a count, a counter, a row looked up
by its key), and rows as records.

DuckDB's ``fetchone()`` says ``None`` when there is no row; for these queries that can only mean the
catalog lost a row it needs, so it is said once here, as a damaged catalog, rather than surfacing as a
``TypeError`` wherever ``fetchone()[0]`` was written.  :func:`records` gives each column to the field it
is named after, so no record depends on the order of a SELECT's columns.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

R = TypeVar("R")

import duckdb

from audioscan.indexer.errors import StoreError


def one_row(con: duckdb.DuckDBPyConnection, sql: str, *, params: Sequence[object] = ()) -> tuple[Any, ...]:
    """The one row ``sql`` returns."""
    row = con.execute(sql, list(params)).fetchone()
    if row is None:
        raise StoreError(f"the catalog has no row where one must be ({' '.join(sql.split()[:6])} ...): "
                         "it is damaged; check the store")
    return row


def scalar(con: duckdb.DuckDBPyConnection, sql: str, *, params: Sequence[object] = ()) -> Any:
    """The first column of the one row ``sql`` returns."""
    return one_row(con, sql, params=params)[0]


def records(cls: type[R], con: duckdb.DuckDBPyConnection, *, sql: str, params: Sequence[object] = ()) -> list[R]:
    """The rows ``sql`` returns as records of ``cls``, each column given by name to the field it is named
    after (alias a column ``AS field`` where the catalog names it otherwise)."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description or ()]
    return [cls(**dict(zip(names, row))) for row in cursor.fetchall()]
