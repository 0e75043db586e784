"""The store's three faces, declared: what a reader, an annotator and the writer may do.

:class:`~audioscan.indexer.store.store.Store` is one object opened in one of three
modes (``Store.open(path)``, ``annotate=True``, ``write=True``); these protocols say
what each mode offers to the layers above, which type their parameters with them.
Everything else on the class - ``connect``, the commit protocol's parts - is for the
store package's own modules.

The rule for where an operation lives: what one catalog transaction does is a method
of ``Store`` (or of the mixin that owns its tables: ``Annotations``, ``Commits``,
``Garbage``); an operation made of several steps over a store - ``check``, ``status``,
``repair``, ``compact``, the approximate index's upkeep - is a free function in a
module named for it, taking the store in the mode it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from audioscan.indexer.store.annotations import ClassifierRow, Label
    from audioscan.indexer.store.records import SetInfo
    from audioscan.indexer.store.snapshot import MediaInfo, Snapshot


@runtime_checkable
class StoreReader(Protocol):
    """Opened by ``Store.open(path)``: reads one commit at a time, changes nothing."""

    path: Path

    def sets(self) -> list["SetInfo"]: ...
    def find_set(self, name: str | None = None) -> "SetInfo": ...
    def roots(self) -> dict[int, Path]: ...
    def media(self) -> dict[int, "MediaInfo"]: ...
    def snapshot(self, info: "SetInfo", stats: bool = False) -> "Snapshot": ...
    def labels(self, label: str | None = None) -> list["Label"]: ...
    def classifier(self, name: str, version: int | None = None) -> "ClassifierRow | None": ...
    def classifiers(self) -> list["ClassifierRow"]: ...


@runtime_checkable
class StoreAnnotator(StoreReader, Protocol):
    """Opened with ``annotate=True``: a reader that may also change labels and detectors.

    Needs no writer lock (a build never reads or writes these tables), so a person can
    label and retrain while a long build runs.
    """

    def add_labels(self, rows: Sequence[tuple[int, str, float, float, str, bool]], source: str) -> list[int]: ...
    def remove_labels(self, ids: Sequence[int]) -> list[int]: ...
    def save_classifier(self, name: str, label: str, set_id: int, kind: str, model: str, blob: bytes | None,
                        metrics: dict) -> int: ...
    def remove_classifier(self, name: str, version: int | None = None) -> int: ...


@runtime_checkable
class StoreWriter(StoreAnnotator, Protocol):
    """Opened with ``write=True``, holding the writer lock: builds, compaction, repair, removal."""

    def ensure_set(self, model: str, weights_id: str, window: float, hop: float, sample_rate: int,
                   dim: int, dtype: str = "fp32") -> "SetInfo": ...
    def ensure_root(self, root: Path) -> int: ...
    def forget(self, root_id: int, scope: str = "") -> int: ...
    def remove_set(self, info: "SetInfo") -> int: ...
    def reserve_ids(self, name: str, count: int) -> int: ...
    def new_media_id(self) -> int: ...
    def record_run(self, command: str, started, stats: dict) -> None: ...
    def collect_garbage(self, grace: float | None = None) -> list[Path]: ...
