"""Errors the indexer raises for things a user can fix (the CLI prints them as one sentence)."""


class StoreError(Exception):
    """The store cannot be used as asked: missing, locked, newer than this program, or damaged."""


class MediaError(Exception):
    """One media file cannot be indexed; the message is the one-line reason recorded for it."""
