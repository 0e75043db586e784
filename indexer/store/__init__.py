"""Stored embeddings and their catalog: FAISS segments, the DuckDB catalog, the writer lock,
compaction, derived ANN indexes and consistency checks.  The only keeper of SQL.

One ``Store``, opened as a reader, an annotator or the writer; ``protocols`` declares what
each may do and where an operation lives (a method, or a free function in a module named
for it); ``catalog.transaction`` is the one way SQL is grouped.
"""

from audioscan.indexer.store.store import Store

__all__ = ["Store"]
