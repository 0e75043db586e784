"""Media discovery, decoding, windowing, the build pipeline and the store (FAISS + DuckDB)."""
