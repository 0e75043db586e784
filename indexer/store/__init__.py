"""Stored embeddings and their catalog: FAISS segments, the DuckDB catalog, the writer lock,
compaction, derived ANN indexes and consistency checks.  The only keeper of SQL."""

from audioscan.indexer.store.store import Store

__all__ = ["Store"]
