"""One value from a query that always returns one row (a count, a counter, a row looked up by its key).

DuckDB's ``fetchone()`` says ``None`` when there is no row; for these queries that can only mean the
catalog lost a row it needs, so it is said once here, as a damaged catalog, rather than surfacing as a
``TypeError`` wherever ``fetchone()[0]`` was written.
"""

from __future__ import annotations

from typing import Any, Sequence

import duckdb

from audioscan.indexer.errors import StoreError


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...]:
    """The one row ``sql`` returns."""
    row = con.execute(sql, list(params)).fetchone()
    if row is None:
        raise StoreError(f"the catalog has no row where one must be ({' '.join(sql.split()[:6])} ...): "
                         "it is damaged; check the store")
    return row


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> Any:
    """The first column of the one row ``sql`` returns."""
    return one_row(con, sql, params)[0]
