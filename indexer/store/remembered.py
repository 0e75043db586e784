"""What this process learnt from a catalog, kept until the catalog changes.

A long-running reader (the page, a notebook, a script calling the API in a loop) asks one
store the same questions again and again: whether its version is one this audioscan
reads, which sets it holds, what windows a set has.  Each answer is kept with the
catalog's generation (:meth:`Store.generation`, two ``stat`` calls) and given again while
the generation stands, so an unchanged store costs no catalog connection at all (one
costs tens of milliseconds).  A set's snapshot outlives its generation as the base of
the next one: the store reads only what was committed since (see ``Store.snapshot``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, TypeVar

from audioscan.indexer.store.snapshot import Snapshot

T = TypeVar("T")


@dataclass
class _Known:
    generation: tuple
    answers: dict[Hashable, object] = field(default_factory=dict)
    # (set, stats) -> (the generation it was taken at, the snapshot)
    snapshots: dict[Hashable, tuple[tuple, Snapshot]] = field(default_factory=dict)


class Remembered:
    """Answers and snapshots per catalog file and generation; safe to share between threads."""

    def __init__(self) -> None:
        self._known: dict[Path, _Known] = {}
        self._guard = threading.Lock()

    def _at(self, catalog: Path, generation: tuple) -> _Known:
        with self._guard:
            known = self._known.get(catalog)
            if known is None or known.generation != generation:
                known = _Known(generation, snapshots=known.snapshots if known else {})
                self._known[catalog] = known
            return known

    def answer(self, catalog: Path, generation: tuple, *, question: Hashable, ask: Callable[[], T]) -> T:
        """``ask()``'s answer, asked once per generation of ``catalog``."""
        known = self._at(catalog, generation)
        if question not in known.answers:
            known.answers[question] = ask()
        return known.answers[question]  # type: ignore[return-value]

    def snapshot(self, catalog: Path, generation: tuple, *, key: Hashable,
                 take: Callable[[Snapshot | None], Snapshot]) -> Snapshot:
        """The snapshot kept for ``key`` if taken at this generation; else ``take(the last one or None)``."""
        known = self._at(catalog, generation)
        kept = known.snapshots.get(key)
        if kept is not None and kept[0] == generation:
            return kept[1]
        snapshot = take(kept[1] if kept is not None else None)
        with self._guard:
            known.snapshots[key] = (generation, snapshot)
        return snapshot


REMEMBERED = Remembered()
