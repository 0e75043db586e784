"""A search index that stays loaded between questions, for a long-running process (the web page).

Before each search it takes the set's snapshot, which the store gives again while nothing
was committed (two ``stat`` calls) and updates with what was committed since; the index
is kept with the snapshot (:meth:`SetIndex.of`), so a search costs a matrix-vector product
or an index probe, not a catalog read, and the page, the API and ``search`` share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audioscan.api.results import Results
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.models.base import LoadOptions
from audioscan.query.search import SetIndex, embed_clip, needs_stats, stored_query

if TYPE_CHECKING:
    from audioscan.api.library import Library


class Searcher:
    def __init__(self, library: "Library", model: str | None = None) -> None:
        self.library, self.model = library, model

    def index(self) -> SetIndex:
        """The index of the set as of the last commit."""
        with self.library._reader() as store:
            info = store.find_set(self.model)
            index = SetIndex.of(store.snapshot(info, stats=needs_stats(info)))
        if index.ann is None:
            index.matrix()  # the vectors load now, once per commit, not during a search
        return index

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
