"""Search by example: cosine similarity between a query vector and every stored window.

The query is either an audio clip, embedded once with the set's own model (a clip
longer than a window is embedded window by window, like the library, and queried by
the mean of those vectors), or a window already in the store, which needs no model
at all.  Overlapping windows of one file that all match are one moment to a user,
so hits are merged into segments that keep the best score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.decode import decode_all
from indexer.errors import MediaError
from indexer.store import SetInfo, Store
from indexer.windows import WindowSpec, window_starts
from models import registry
from models.base import LoadOptions
from query.errors import QueryError

_EMBED_BATCH = 16


@dataclass(frozen=True)
class Hit:
    """A stretch of one media file and how well it matches (cosine similarity)."""

    path: str
    start: float
    end: float
    score: float

    def as_json(self) -> dict:
        return {"path": self.path, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 4)}


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero instead of becoming NaN)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def embed_clip(path: Path, info: SetInfo, start: float = 0.0, end: float | None = None,
               load: LoadOptions = LoadOptions()) -> np.ndarray:
    """The query vector of ``[start, end)`` of a clip, with the set's own model."""
    if start < 0 or (end is not None and end <= start):
        raise QueryError(f"--start {start:g} and --end {end:g} do not make a time range; "
                         "give --start before --end, in seconds")
    try:
        audio = decode_all(path, info.sample_rate, start, end)
    except MediaError as err:
        raise QueryError(f"cannot read {path}: {err}") from err
    if not len(audio) or not np.abs(audio).max() > 0:
        raise QueryError(f"{path} has no audio between {start:g} s and "
                         f"{'its end' if end is None else f'{end:g} s'}; check --start/--end")
    model = registry.load_model(info.model, load)
    win, hop = WindowSpec(info.window, info.hop).samples(info.sample_rate)
    if len(audio) <= win:
        return model.embed(audio[None, :])[0]
    windows = np.stack([audio[s: s + win] for s in window_starts(len(audio), win, hop)])
    vectors = np.concatenate([model.embed(windows[i: i + _EMBED_BATCH])
                              for i in range(0, len(windows), _EMBED_BATCH)])
    return vectors.mean(axis=0)


class SetIndex:
    """The live vectors of one set, unit-normalised in memory, with their windows' places."""

    def __init__(self, store: Store, info: SetInfo) -> None:
        self.info = info
        table = store.live_windows(info)
        self.ids = table["id"]
        self.media_ids = table["media_id"]
        self.paths = np.asarray([str(Path(r) / p) for r, p in zip(table["root"], table["path"])], dtype=object)
        self.starts = table["start_s"]
        self.ends = table["end_s"]
        ids, vectors = store.vectors(info)
        order = np.searchsorted(self.ids, ids)
        if len(ids) != len(self.ids) or not np.array_equal(self.ids[order], ids):
            raise QueryError("the store changed while it was being read; run the command again")
        self.vectors = np.empty((len(self.ids), info.dim), dtype=np.float32)
        self.vectors[order] = normalize(vectors)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: np.ndarray, k: int, exclude: tuple[int, float, float] | None = None) -> list[Hit]:
        """The ``k`` best segments for ``query``; ``exclude`` = (media id, start, end) to leave out."""
        if not len(self):
            return []
        scores = self.vectors @ normalize(np.asarray(query, dtype=np.float32))
        if exclude is not None:
            media_id, start, end = exclude
            scores[(self.media_ids == media_id) & (self.starts < end) & (self.ends > start)] = -np.inf
        per_moment = math.ceil(self.info.window / self.info.hop)
        fetch = min(len(scores), max(4 * k * per_moment, 64))
        while True:
            top = np.argpartition(-scores, fetch - 1)[:fetch]
            top = top[np.isfinite(scores[top])]
            top = top[np.argsort(-scores[top], kind="stable")]
            hits, complete = merge_hits(self.paths[top], self.media_ids[top], self.starts[top], self.ends[top],
                                        scores[top], k)
            if complete or fetch == len(scores):
                return hits
            fetch = min(len(scores), fetch * 4)


def merge_hits(paths: np.ndarray, media_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               scores: np.ndarray, k: int) -> tuple[list[Hit], bool]:
    """The ``k`` best moments from windows given best first.

    Windows are taken in score order; one that overlaps or touches a moment already
    found in its file widens that moment (bridging two if it joins them), any other
    starts a new moment, until a (k+1)-th moment would begin.  So a moment is the
    stretch covered by windows that all score above the (k+1)-th best distinct
    moment, and its score is its best window's.  Returns the hits, best first, and
    whether the (k+1)-th moment was reached (else more windows may be needed).
    """
    moments: dict[int, list[list]] = {}
    count = 0
    for path, media, start, end, score in zip(paths, media_ids, starts, ends, scores):
        spans = moments.setdefault(int(media), [])
        joined = [m for m in spans if start <= m[1] and end >= m[0]]
        if not joined:
            if count == k:
                return _ranked(moments), True
            spans.append([start, end, float(score), path])
            count += 1
            continue
        keep = joined[0]
        for other in joined[1:]:
            keep[0], keep[1], keep[2] = min(keep[0], other[0]), max(keep[1], other[1]), max(keep[2], other[2])
            spans.remove(other)
            count -= 1
        keep[0], keep[1] = min(keep[0], start), max(keep[1], end)
    return _ranked(moments), False


def _ranked(moments: dict[int, list[list]]) -> list[Hit]:
    hits = [Hit(path, float(start), float(end), score) for spans in moments.values()
            for start, end, score, path in spans]
    return sorted(hits, key=lambda hit: -hit.score)
