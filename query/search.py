"""Search by example: cosine similarity between a query vector and every stored window.

The query is either an audio clip, embedded once with the set's own model (a clip
longer than a window is embedded window by window, like the library, and queried by
the mean of those vectors), or a window already in the store, which needs no model
at all.  Overlapping windows of one file that all match are one moment to a user:
windows are taken best first and each sound they find is one moment with its best
window's score (``audioscan.query.runs``), so the first n hits of any -k are the hits of
-k n.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from audioscan.indexer.store.ann import SetAnn, load_ann, unit_vectors
from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.errors import MediaError
from audioscan.indexer.store.records import MIX_CHANNEL, SetInfo
from audioscan.indexer.store.snapshot import Snapshot, stream_key
from audioscan.indexer.media.windows import window_starts
from audioscan.models import registry
from audioscan.models.base import LoadOptions, embed_windows
from audioscan.models.engine import default_batch_size
from audioscan.models.errors import ModelError
from audioscan.query.errors import QueryError, QueryTooLargeError
from audioscan.query.moments import Moment
from audioscan.query.runs import Profile, ProfileOf, Sounds

# A query is an example of a sound, not a recording to index: decoding stops past this, so
# an hours-long (or hours-of-silence) upload costs the same memory as a ten-minute one.
MAX_QUERY_SECONDS = 600.0
# The shortest query clip, for every model alike: one 25 ms analysis frame, the least any model's front
# end reads (LOGMEL's STFT frame; a shorter clip is padded into noise-free silence, not a sound).
MIN_QUERY_SECONDS = 0.025
# Beyond this many candidates re-ranking them is slower than reading every vector.
_ANN_MAX_FETCH = 4096
# The spread of a query's scores is measured on this many windows of the set, evenly spaced.
_SPREAD_SAMPLE = 4096
# A file's windows are scored this many at a time for its profile (bounded memory for long files).
_PROFILE_PART = 4096


def embed_clips(paths: list[Path], info: SetInfo, *, load: LoadOptions = LoadOptions()) -> np.ndarray:
    """One query from several example clips: the mean of their vectors (a prototype)."""
    return np.mean([embed_clip(path, info, load=load) for path in paths], axis=0)


def embed_clip(path: Path, info: SetInfo, *, start: float = 0.0, end: float | None = None,
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
        audio = decode_all(path, info.sample_rate, start=start,
                           end=start + MAX_QUERY_SECONDS + 1 if end is None else end)
    except MediaError as err:
        raise QueryError(f"cannot read {path}: {err.template}") from err
    if len(audio) > MAX_QUERY_SECONDS * info.sample_rate:
        raise QueryTooLargeError(f"{path.name} is too long: {choose}")
    if not len(audio) or not np.abs(audio).max() > 0:
        raise QueryError(_silent(path, start, end))
    if len(audio) < MIN_QUERY_SECONDS * info.sample_rate:
        raise QueryError(f"{path} holds {len(audio) / info.sample_rate:.3g} s of audio{_span(start, end)}; a query "
                         f"clip must last at least {MIN_QUERY_SECONDS:g} s, one analysis frame of every model")
    model = registry.load_model(info.model, load, weights_id=info.weights_id)
    win, hop = info.window_samples()
    if len(audio) <= win:
        padded = np.zeros(win, dtype=np.float32)
        padded[: len(audio)] = audio
        return model.embed(padded[None, :])[0]
    starts = window_starts(len(audio), win, hop=hop)
    batch = default_batch_size(registry.spec(info.model).params, load.device)
    vectors = np.concatenate([embed_windows(model, [(audio, starts[i: i + batch])], win=win)
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


def stored_query(snapshot: Snapshot, media_id: int, *, rel: str, at: float,
                 channel: int | None = None) -> tuple[np.ndarray, tuple[int, float, float]]:
    """The stored vector of the window of a media file that best centres on ``at`` (no model runs), of
    ``channel`` in a set that hears each channel apart (needed there when the file has several).

    Returns the vector and (stream key, start, end) of that window, to keep it out of the hits.
    """
    if not math.isfinite(at):
        raise QueryError(f"`at` {at:g} is not a time; give seconds from the start of {rel}", value=at)
    on_file = snapshot.media_ids == media_id
    channel = _query_channel(snapshot, on_file, rel, channel)
    mine = np.flatnonzero(on_file & (snapshot.channels == channel) & (snapshot.starts <= at) & (snapshot.ends >= at))
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
    window = (stream_key(media_id, channel), float(snapshot.starts[best]), float(snapshot.ends[best]))
    return snapshot.vectors_at(np.asarray([best]))[0], window


def _query_channel(snapshot: Snapshot, on_file: np.ndarray, rel: str, channel: int | None) -> int:
    """The channel a stored query is of: the mix (0) in a mixed set; in a split set the one asked for,
    or the file's only one; one sentence when it is not there or must be chosen."""
    held = np.unique(snapshot.channels[on_file]).tolist()
    if not snapshot.info.split:
        if channel not in (None, MIX_CHANNEL):
            raise QueryError(f"set {snapshot.info.name} holds one mono mix of each file, no channel of its own; "
                             "leave `from_channel` out, or search a set indexed with each channel apart", value=channel)
        return MIX_CHANNEL
    if channel is None:
        if len(held) > 1:
            raise QueryError(f"set {snapshot.info.name} hears each channel of {rel} apart; give `from_channel` (one of "
                             f"{', '.join(map(str, held))}) to say which one to search from")
        return held[0] if held else 1
    if held and channel not in held:
        raise QueryError(f"{rel} has no channel {channel} in set {snapshot.info.name}; its channels are "
                         f"{', '.join(map(str, held))}", value=channel)
    return channel


def needs_stats(info: SetInfo) -> bool:
    """Whether searching ``info`` centres vectors on the set's mean (so the snapshot needs stats).

    A set of a model this version does not know is searched as stored (uncentred)."""
    try:
        return registry.spec(info.model).centred(info.weights_id)
    except ModelError:
        return False


class SetIndex:
    """Searches one snapshot of a set: through its approximate index when it has one (the index's
    dead windows filtered out, windows committed after it coded in memory beside it, every
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
        self.channels = snapshot.channels
        self.streams = snapshot.streams
        self.media_paths = {media_id: media.path for media_id, media in snapshot.media.items()}
        self.starts = snapshot.starts
        self.ends = snapshot.ends
        self.ann = load_ann(snapshot, centred) if use_ann else None
        self._matrix: np.ndarray | None = None
        self._by_stream: tuple[np.ndarray, np.ndarray] | None = None
        self._covariance: np.ndarray | None = None  # of a fixed sample of unit vectors, for the scores' spread
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

    def top_windows(self, query: np.ndarray, count: int, *, exact: bool = False,
                    scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into ``self.ids``) and cosine scores of the ``count`` best windows, best first.

        ``scores`` (every window's cosine, from :meth:`exact_scores`) saves recomputing them.
        """
        count = min(count, len(self))
        if self.ann is not None and not exact and scores is None:
            return self._approximate_top(self.ann, query, count)
        query = unit_vectors(self._centred(query))
        scores = self.matrix() @ query if scores is None else scores
        top = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return top, scores[top]

    def _approximate_top(self, ann: SetAnn, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the index (its dead windows filtered out; the windows committed after it
        coded in memory with its own lists and codebooks, once per snapshot), re-ranked by their
        exact cosine."""
        unit = unit_vectors(self._centred(query))
        if len(ann.missing) and ann.covering is None:
            with self._loading:
                if ann.covering is None:
                    ann.cover(self.snapshot.vectors_at(ann.missing), self.ids[ann.missing])
        candidates = np.searchsorted(self.ids, ann.search(query, count))
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

    def search(self, query: np.ndarray, k: int, *, exclude: tuple[int, float, float] | None = None,
               skip_media: frozenset[int] = frozenset(), min_score: float | None = None,
               scores: np.ndarray | None = None, per_file: int | None = None) -> list[Moment]:
        """The ``k`` best moments for ``query``; ``exclude`` = (stream key, start, end) to leave out,
        ``skip_media`` files to leave out, ``min_score`` the lowest score worth returning,
        ``per_file`` the most moments of one file.
        ``scores``: every window's score, when they are not ``query``'s cosines (``query.joint``).

        Windows are offered to :class:`Sounds` best first until ``k`` moments are found, so the
        moments are the same whatever ``k`` is; only how far down the list is read changes."""
        if per_file is not None and per_file < 1:
            raise QueryError(f"`per_file` {per_file} keeps no hit; give at least 1", value=per_file)
        if not len(self):
            return []
        per_moment = math.ceil(self.info.window / self.info.hop)
        fetch = min(len(self), max(4 * k * per_moment, 64))
        every = scores  # exact scores, computed once however often the fetch grows
        spread = self._spread(query, scores)
        while True:
            if every is None and (self.ann is None or fetch > _ANN_MAX_FETCH):
                every = self.exact_scores(query)
            top, ranks = self.top_windows(query, fetch, scores=every)
            keep = ~np.isin(self.media_ids[top], list(skip_media))
            if exclude is not None:
                stream, start, end = exclude
                keep &= ~((self.streams[top] == stream) & (self.starts[top] < end) & (self.ends[top] > start))
            sounds = Sounds(self.media_paths, self._profiles(query, every, exclude), spread=spread)
            found: list[Moment] = []
            per_path: dict[str, int] = {}
            for position, rank in zip(top[keep].tolist(), ranks[keep].tolist()):
                if min_score is not None and rank < min_score:
                    return found  # every later window scores lower still
                moment = sounds.offer(int(self.streams[position]), float(self.starts[position]))
                if moment is None or per_path.get(moment.path, 0) == per_file:
                    continue
                per_path[moment.path] = per_path.get(moment.path, 0) + 1
                found.append(moment)
                if len(found) == k:
                    return found
            if fetch >= len(self):
                return found
            fetch = min(len(self), fetch * 4)

    def _spread(self, query: np.ndarray, given: np.ndarray | None) -> float:
        """The standard deviation of the query's scores over the set, the same whatever is
        fetched (so moments do not depend on ``k``): of the ``given`` scores over a fixed sample
        of windows, else from the covariance of that sample's unit vectors (one product a query)."""
        sample = np.unique(np.linspace(0, len(self) - 1, min(len(self), _SPREAD_SAMPLE)).astype(np.int64))
        if given is not None:
            return float(given[sample].std())
        with self._loading:
            if self._covariance is None:
                self._covariance = np.cov(unit_vectors(self._centred(self.snapshot.vectors_at(sample))),
                                          rowvar=False).reshape(self.info.dim, self.info.dim)
        unit = unit_vectors(self._centred(query)).astype(np.float64)
        return float(np.sqrt(max(unit @ self._covariance @ unit, 0.0)))

    def _profiles(self, query: np.ndarray, every: np.ndarray | None,
                  exclude: tuple[int, float, float] | None) -> ProfileOf:
        """Each stream's profile: every window of it with its exact cosine (from ``every`` when the
        search computed it), by start.  The query's own windows (``exclude``) are left out here
        too, or a hit beside them would be placed on the query."""
        unit = unit_vectors(self._centred(query))

        def profile(stream: int) -> Profile:
            mine = self.stream_windows(stream)
            if exclude is not None and stream == exclude[0]:
                mine = mine[~((self.starts[mine] < exclude[2]) & (self.ends[mine] > exclude[1]))]
            mine = mine[np.argsort(self.starts[mine], kind="stable")]
            ranks = every[mine] if every is not None else _Cosines(
                mine, lambda part: unit_vectors(self._centred(self.snapshot.vectors_at(part))) @ unit)
            return Profile(self.starts[mine], self.ends[mine], ranks=ranks, scores=ranks)

        return profile

    def stream_windows(self, stream: int) -> np.ndarray:
        """Positions of one stream's windows (a file's, or one channel's of it; an index by stream is
        built on first use)."""
        if self._by_stream is None:
            order = np.argsort(self.streams, kind="stable")
            self._by_stream = order, self.streams[order]
        order, grouped = self._by_stream
        return np.sort(order[np.searchsorted(grouped, stream, "left"): np.searchsorted(grouped, stream, "right")])


class _Cosines:
    """The cosines of a file's windows (``positions``), computed a part at a time as they are
    read: moments read the windows around a file's best ones, so a long file's vectors are not
    all fetched for them.  Reads as an array does (``len``, an index, a slice)."""

    def __init__(self, positions: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> None:
        self._positions, self._score = positions, score
        self._values = np.zeros(len(positions), dtype=np.float32)
        self._done = np.zeros(-(-len(positions) // _PROFILE_PART), dtype=bool)

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, key: int | slice) -> np.ndarray:
        lo, hi = key.indices(len(self))[:2] if isinstance(key, slice) else (int(key), int(key) + 1)
        for part in range(lo // _PROFILE_PART, -(-max(hi, lo + 1) // _PROFILE_PART)):
            if not self._done[part]:
                chunk = slice(part * _PROFILE_PART, (part + 1) * _PROFILE_PART)
                self._values[chunk] = self._score(self._positions[chunk])
                self._done[part] = True
        return self._values[key]
