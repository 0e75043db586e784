"""Errors the indexer raises for things a user can fix (the CLI prints them as one sentence)."""

from audioscan.errors import BusyError, NotFoundError, UserError


class StoreError(UserError):
    """The store cannot be used as asked: missing, locked, newer than this program, or damaged."""


class StoreFullError(StoreError):
    """The disk holding the store is full; what was committed before is kept."""

    kind = "storage_full"


class StoreBusyError(StoreError, BusyError):
    """Another process holds the store (or its catalog) for writing; try again when it is done."""


class StoreNotFoundError(StoreError, NotFoundError):
    """The store, or a set in it, is not there."""


class MediaError(UserError):
    """One media file cannot be indexed; the message is the one-line reason recorded for it."""


class EngineError(UserError):
    """The chosen build engine cannot run as asked (Ray missing, a cluster that cannot be reached)."""
