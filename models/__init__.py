"""Embedding models behind one contract (``models.base``) and one registry
(``models.registry``).  This package knows nothing of files, the store or the CLI."""
