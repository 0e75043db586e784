"""Search by example: cosine similarity between a query vector and every stored window.

The query is either an audio clip, embedded once with the set's own model (a clip
longer than a window is embedded window by window, like the library, and queried by
the mean of those vectors), or a window already in the store, which needs no model
at all.  Overlapping windows of one file that all match are one moment to a user,
so hits are merged into segments that keep the best score.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import faiss
import numpy as np

from audioscan.indexer.store.ann import load_ann, unit_vectors
from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.errors import MediaError
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.media.windows import window_starts
from audioscan.models import registry
from audioscan.models.base import LoadOptions, embed_windows
from audioscan.models.engine import default_batch_size
from audioscan.models.errors import ModelError
from audioscan.query.errors import QueryError, QueryTooLargeError
from audioscan.query.moments import Moment
from audioscan.query.runs import ProfileOf, Windows, moments

# A query is an example of a sound, not a recording to index: decoding stops past this, so
# an hours-long (or hours-of-silence) upload costs the same memory as a ten-minute one.
MAX_QUERY_SECONDS = 600.0
# The shortest query clip, for every model alike: one 25 ms analysis frame, the least any model's front
# end reads (LOGMEL's STFT frame; a shorter clip is padded into noise-free silence, not a sound).
MIN_QUERY_SECONDS = 0.025
# Beyond this many candidates re-ranking them is slower than reading every vector.
_ANN_MAX_FETCH = 4096


def embed_clips(paths: list[Path], info: SetInfo, load: LoadOptions = LoadOptions()) -> np.ndarray:
    """One query from several example clips: the mean of their vectors (a prototype)."""
    return np.mean([embed_clip(path, info, load=load) for path in paths], axis=0)


def embed_clip(path: Path, info: SetInfo, start: float = 0.0, end: float | None = None,
               load: LoadOptions = LoadOptions()) -> np.ndarray:
    """The query vector of ``[start, end)`` of a clip, with the set's own model.

    The clip is cut the way the library was: a clip shorter than a window is placed at
    the start of a zero-padded window (as a short file is), a longer one is embedded
    window by window and queried by the mean.
    """
    if info.foreign:
        raise QueryError(f"set {info.name} holds vectors imported from another tool ({info.model}), a model "
                         "audioscan does not run, so a clip cannot be embedded for it; search it from a stored "
                         "window (`from` a file `at` a time), and train, rescore and suggest on it as on any set")
    if not math.isfinite(start) or start < 0 or (end is not None and not (math.isfinite(end) and end > start)):
        shown = "its end" if end is None else f"{end:g}"
        raise QueryError(f"`start` {start:g} and `end` {shown} do not make a time range; "
                         "give finite seconds with `start` before `end`")
    choose = f"a query clip may last {MAX_QUERY_SECONDS:g} s at most; give `start` and `end` around the sound you mean"
    if end is not None and end - start > MAX_QUERY_SECONDS:
        raise QueryTooLargeError(f"{start:g}-{end:g} s is too long: {choose}", value=end - start)
    try:
        audio = decode_all(path, info.sample_rate, start, start + MAX_QUERY_SECONDS + 1 if end is None else end)
    except MediaError as err:
        raise QueryError(f"cannot read {path}: {err.template}") from err
    if len(audio) > MAX_QUERY_SECONDS * info.sample_rate:
        raise QueryTooLargeError(f"{path.name} is too long: {choose}")
    if not len(audio) or not np.abs(audio).max() > 0:
        raise QueryError(_silent(path, start, end))
    if len(audio) < MIN_QUERY_SECONDS * info.sample_rate:
        raise QueryError(f"{path} holds {len(audio) / info.sample_rate:.3g} s of audio{_span(start, end)}; a query "
                         f"clip must last at least {MIN_QUERY_SECONDS:g} s, one analysis frame of every model")
    model = registry.load_model(info.model, load, info.weights_id)
    win, hop = info.window_samples()
    if len(audio) <= win:
        padded = np.zeros(win, dtype=np.float32)
        padded[: len(audio)] = audio
        return model.embed(padded[None, :])[0]
    starts = window_starts(len(audio), win, hop)
    batch = default_batch_size(registry.spec(info.model).params, load.device)
    vectors = np.concatenate([embed_windows(model, [(audio, starts[i: i + batch])], win)
                              for i in range(0, len(starts), batch)])
    return vectors.mean(axis=0)


def _span(start: float, end: float | None) -> str:
    """`` between S s and E s`` when a part of the clip was asked for, else nothing."""
    if start == 0 and end is None:
        return ""
    return f" between {start:g} s and {'its end' if end is None else f'{end:g} s'}"


def _silent(path: Path, start: float, end: float | None) -> str:
    """Why a clip gave no sound: the part asked for (and the options that chose it) or the whole clip."""
    if start == 0 and end is None:
        return f"{path} is silent (it holds no audio); give a clip with the sound you mean"
    chosen = " and ".join(f"`{name}`" for name, given in (("start", start != 0), ("end", end is not None)) if given)
    return f"{path} has no audio{_span(start, end)}; check {chosen}"


def stored_query(snapshot: Snapshot, media_id: int, rel: str, at: float) -> tuple[np.ndarray, tuple]:
    """The stored vector of the window of a media file that best centres on ``at`` (no model runs).

    Returns the vector and (media id, start, end) of that window, to keep it out of the hits.
    """
    if not math.isfinite(at):
        raise QueryError(f"`at` {at:g} is not a time; give seconds from the start of {rel}", value=at)
    mine = np.flatnonzero((snapshot.media_ids == media_id) & (snapshot.starts <= at) & (snapshot.ends >= at))
    if not len(mine):
        media = snapshot.media.get(media_id)
        duration = media.duration if media else None
        if media is not None and media.status != "ok":
            why = {"missing": "is gone from disk", "failed": "could not be indexed",
                   "unavailable": "is on a folder that cannot be read now"}.get(media.status, "is not indexed")
            raise QueryError(f"{rel} {why}, so it has no stored windows to search from; "
                             "'audioscan index status' says more")
        if duration is not None and not 0 <= at <= duration:
            raise QueryError(f"`at` {at:g} is outside {rel}, which lasts {duration:.1f} s", value=at)
        raise QueryError(f"{rel} has no vectors in set {snapshot.info.name}; index it with that model first")
    centre = (snapshot.starts[mine] + snapshot.ends[mine]) / 2
    best = mine[np.argmin(np.abs(centre - at))]
    window = (media_id, float(snapshot.starts[best]), float(snapshot.ends[best]))
    return snapshot.vectors_at(np.asarray([best]))[0], window


def needs_stats(info: SetInfo) -> bool:
    """Whether searching ``info`` centres vectors on the set's mean (so the snapshot needs stats).

    A set of a model this version does not know is searched as stored (uncentred)."""
    try:
        return registry.spec(info.model).centred(info.weights_id)
    except ModelError:
        return False


class SetIndex:
    """Searches one snapshot of a set: through its approximate index when it has one (the index's
    dead windows filtered out, windows committed after it scored exactly beside it, every
    candidate re-ranked exactly), else exactly.

    The exact path loads the snapshot's unit vectors in memory on first use (so repeated
    searches in one process cost one matrix-vector product each).
    """

    def __init__(self, snapshot: Snapshot, use_ann: bool = True) -> None:
        self.snapshot = snapshot
        self.info = snapshot.info
        centred = needs_stats(self.info)
        if centred and snapshot.stats is None:
            raise ValueError("a centred set is searched from a snapshot taken with stats=True")
        # Vectors of a centred set (LOGMEL v2) are compared after subtracting the set's mean.
        self.centre = snapshot.set_mean().astype(np.float32) if centred else None
        self.ids = snapshot.ids
        self.media_ids = snapshot.media_ids
        self.media_paths = {media_id: media.path for media_id, media in snapshot.media.items()}
        self.starts = snapshot.starts
        self.ends = snapshot.ends
        self.ann = load_ann(snapshot, centred) if use_ann else None
        self._matrix: np.ndarray | None = None
        self._missing: faiss.Index | None = None  # unit vectors of live windows the index lacks
        self._by_file: tuple[np.ndarray, np.ndarray] | None = None
        self._loading = threading.Lock()  # an index is shared by threads (the page's): each load happens once

    @classmethod
    def of(cls, snapshot: Snapshot, use_ann: bool = True) -> "SetIndex":
        """The index of ``snapshot``, made once and kept with it: every question asked of one
        commit (the page's, a notebook's, the API's) shares its loaded index and the vectors of
        the windows that index lacks."""
        return snapshot.kept(("SetIndex", use_ann), lambda: cls(snapshot, use_ann))

    def __len__(self) -> int:
        return len(self.ids)

    def matrix(self) -> np.ndarray:
        """Unit vectors of every live window, in the order of ``self.ids``."""
        with self._loading:
            if self._matrix is None:
                matrix = np.empty((len(self.ids), self.info.dim), dtype=np.float32)
                for positions, _, vectors in self.snapshot.iter_segments():  # one segment at a time: no copy
                    matrix[positions] = unit_vectors(self._centred(vectors))
                self._matrix = matrix
        return self._matrix

    def top_windows(self, query: np.ndarray, count: int, exact: bool = False,
                    scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into ``self.ids``) and cosine scores of the ``count`` best windows, best first.

        ``scores`` (every window's cosine, from :meth:`exact_scores`) saves recomputing them.
        """
        count = min(count, len(self))
        if self.ann is not None and not exact and scores is None:
            return self._approximate_top(query, count)
        query = unit_vectors(self._centred(query))
        scores = self.matrix() @ query if scores is None else scores
        top = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return top, scores[top]

    def _approximate_top(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the index (its dead windows filtered out) and from the windows
        committed after it (scored exactly), re-ranked by their exact cosine."""
        unit = unit_vectors(self._centred(query))
        candidates = np.searchsorted(self.ids, self.ann.search(query, count))
        missing = self.ann.missing
        if len(missing):
            with self._loading:
                if self._missing is None:  # scored by FAISS too: one thread pool, no BLAS fighting OpenMP
                    unindexed = faiss.IndexFlatIP(self.info.dim)
                    unindexed.add(unit_vectors(self._centred(self.snapshot.vectors_at(missing))))
                    self._missing = unindexed
            _, best = self._missing.search(unit[None], min(count, len(missing)))
            candidates = np.concatenate([candidates, missing[best[0][best[0] >= 0]]])
        scores = unit_vectors(self._centred(self.snapshot.vectors_at(candidates))) @ unit
        order = np.argsort(-scores, kind="stable")[:count]
        return candidates[order], scores[order]

    def cosines(self, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of ``query`` with vectors that are not in the store (as the store's are scored)."""
        return unit_vectors(self._centred(vectors)) @ unit_vectors(self._centred(query))

    def exact_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of ``query`` with every live window (one pass over the vectors)."""
        return self.matrix() @ unit_vectors(self._centred(query))

    def _centred(self, vectors: np.ndarray) -> np.ndarray:
        return vectors if self.centre is None else vectors - self.centre

    def search(self, query: np.ndarray, k: int, exclude: tuple[int, float, float] | None = None,
               skip_media: frozenset[int] = frozenset(), min_score: float | None = None,
               scores: np.ndarray | None = None) -> list[Moment]:
        """The ``k`` best moments for ``query``; ``exclude`` = (media id, start, end) to leave out,
        ``skip_media`` files to leave out, ``min_score`` the lowest score worth returning.
        ``scores``: every window's score, when they are not ``query``'s cosines (``query.joint``)."""
        if not len(self):
            return []
        per_moment = math.ceil(self.info.window / self.info.hop)
        fetch = min(len(self), max(4 * k * per_moment, 64))
        every = scores  # exact scores, computed once however often the fetch grows
        while True:
            if every is None and (self.ann is None or fetch > _ANN_MAX_FETCH):
                every = self.exact_scores(query)
            top, scores = self.top_windows(query, fetch, scores=every)
            if exclude is not None:
                media_id, start, end = exclude
                keep = ~((self.media_ids[top] == media_id) & (self.starts[top] < end) & (self.ends[top] > start))
                top, scores = top[keep], scores[keep]
            if skip_media:
                keep = ~np.isin(self.media_ids[top], list(skip_media))
                top, scores = top[keep], scores[keep]
            if min_score is not None:
                keep = scores >= min_score
                complete_by_score = not keep.all()  # every later window scores lower still
                top, scores = top[keep], scores[keep]
            else:
                complete_by_score = False
            taken, complete = first_moments(self.media_ids[top], self.starts[top], self.ends[top], k)
            if complete or complete_by_score or fetch >= len(self):
                top, scores = top[:taken], scores[:taken]
                windows = Windows(self.media_ids[top], self.starts[top], self.ends[top], scores, scores)
                found = moments(windows, self.media_paths, 2 * self.info.window, self._profiles(query, every, exclude))
                return found[:k]
            fetch = min(len(self), fetch * 4)

    def _profiles(self, query: np.ndarray, every: np.ndarray | None,
                  exclude: tuple[int, float, float] | None) -> ProfileOf:
        """Every window of a file overlapping a stretch with its exact cosine (from ``every`` when
        the search computed it): the windows under the cut show where one sound ends.  The
        query's own windows (``exclude``) are left out here too, or a hit beside them would be
        placed on the query."""
        unit = unit_vectors(self._centred(query))

        def profile(media_id: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mine = self.file_windows(media_id)
            keep = (self.starts[mine] < end) & (self.ends[mine] > start)
            if exclude is not None and media_id == exclude[0]:
                keep &= ~((self.starts[mine] < exclude[2]) & (self.ends[mine] > exclude[1]))
            near = mine[keep]
            near = near[np.argsort(self.starts[near], kind="stable")]
            scores = every[near] if every is not None else unit_vectors(
                self._centred(self.snapshot.vectors_at(near))) @ unit
            return self.starts[near], self.ends[near], scores

        return profile

    def file_windows(self, media_id: int) -> np.ndarray:
        """Positions of one file's windows (an index by file is built on first use)."""
        if self._by_file is None:
            order = np.argsort(self.media_ids, kind="stable")
            self._by_file = order, self.media_ids[order]
        order, media = self._by_file
        return np.sort(order[np.searchsorted(media, media_id, "left"): np.searchsorted(media, media_id, "right")])


def first_moments(media_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int) -> tuple[int, bool]:
    """How many of the windows (given best first) make the ``k`` best moments, and whether a
    (k+1)-th moment was reached (else more windows may be needed).

    Windows are taken in score order; one that overlaps or touches a moment already found in
    its file widens that moment (bridging two if it joins them), any other starts a new
    moment, until a (k+1)-th moment would begin.  So the moments are the stretches covered
    by windows scoring above the (k+1)-th best distinct moment (which ``runs.moments`` then
    splits at their valleys).
    """
    spans: dict[int, list[list[float]]] = {}
    count = 0
    for i, (media, start, end) in enumerate(zip(media_ids.tolist(), starts.tolist(), ends.tolist())):
        mine = spans.setdefault(media, [])
        joined = [m for m in mine if start <= m[1] and end >= m[0]]
        if not joined:
            if count == k:
                return i, True
            mine.append([start, end])
            count += 1
            continue
        keep = joined[0]
        for other in joined[1:]:
            keep[0], keep[1] = min(keep[0], other[0]), max(keep[1], other[1])
            mine.remove(other)
            count -= 1
        keep[0], keep[1] = min(keep[0], start), max(keep[1], end)
    return len(media_ids), False
