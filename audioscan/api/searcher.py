"""A search index that stays loaded between questions, for a long-running process (the web page).

It keeps one snapshot of a set with its vectors in memory and answers every search
from it; before each search it asks the store for its generation, and only when a commit
moved it on does it take a new snapshot.  A search therefore costs a matrix-vector
product, not a catalog read.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audioscan.api.results import Results
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.store.store import Store
from audioscan.models.base import LoadOptions
from audioscan.query.search import SetIndex, embed_clip, needs_stats, stored_query

if TYPE_CHECKING:
    from audioscan.api.library import Library


class Searcher:
    def __init__(self, library: "Library", model: str | None = None) -> None:
        self.library, self.model = library, model
        self._key: tuple | None = None
        self._index: SetIndex | None = None
        self._guard = threading.Lock()

    def index(self) -> SetIndex:
        """The loaded index, taken anew only when the catalog changed since the last one."""
        with self._guard:
            key = Store.generation(self.library.path)
            if self._index is None or key != self._key:
                with self.library._reader() as store:
                    info = store.find_set(self.model)
                    snapshot = store.snapshot(info, stats=needs_stats(info))
                self._index, self._key = SetIndex(snapshot), key
                if self._index.ann is None:
                    self._index.matrix()  # load the vectors now, not during the first search
            return self._index

    @property
    def snapshot(self) -> Snapshot:
        return self.index().snapshot

    def search_clip(self, clip: Path, *, k: int = 10, start: float = 0.0, end: float | None = None,
                    device: str = "auto") -> Results:
        index = self.index()
        return Results(index.search(embed_clip(clip, index.info, start, end, LoadOptions(device=device)), k))

    def search_window(self, media_id: int, at: float, *, k: int = 10) -> Results:
        index = self.index()
        media = index.snapshot.media[media_id]
        vector, exclude = stored_query(index.snapshot, media_id, media.rel, at)
        return Results(index.search(np.asarray(vector), k, exclude))
