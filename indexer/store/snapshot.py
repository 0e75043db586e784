"""One consistent picture of a set, for every read.

A reader takes the live windows, the segments that hold them, the ANN index row,
the media rows and (when asked) the per-file statistics in one catalog
transaction, and afterwards reads from disk only the files that picture lists.
Files a writer replaces after that moment are retired, not deleted, for a grace
period (see ``Store.collect_garbage``), so a read that started before a commit or a
compaction finishes on the state it started with.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Iterator, TypeVar

import numpy as np

from audioscan.indexer.errors import StoreError
from audioscan.indexer.media.recorded import RecordingStart
from audioscan.indexer.store.files import StoreFiles
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.segments import read_index, read_segment

T = TypeVar("T")

# A stream is what a set hears as one signal: a file's mono mix (channel 0), or in a split set one channel of
# it.  Its key packs the file and the channel into one integer, so windows group by stream as fast as by
# file; a split build refuses files of more channels than fit.
STREAM_CHANNELS = 256


def stream_key(media_id: int, channel: int) -> int:
    """The key of one channel of one file (channel 0: its mix)."""
    return media_id * STREAM_CHANNELS + channel


def stream_parts(key: int) -> tuple[int, int]:
    """(media id, channel) of a stream key."""
    media_id, channel = divmod(int(key), STREAM_CHANNELS)
    return media_id, channel


@dataclass(frozen=True)
class SegmentRow:
    id: int
    file: str
    _: KW_ONLY
    n_vectors: int
    checksum: str | None


@dataclass(frozen=True)
class AnnPart:
    """One file of a set's approximate index (``base`` or ``delta``) and the live windows it was current for."""

    file: str
    kind: str
    signature: str


@dataclass(frozen=True)
class MediaInfo:
    """A media file as readers see it: where it is, how long, whether it is indexed, when it was
    recorded (None: not known) and at which site (None: no site holds its folder)."""

    id: int
    root: str
    _: KW_ONLY
    rel: str
    duration: float | None
    status: str
    fps: float | None = None
    recorded: RecordingStart | None = None
    site: str | None = None

    @property
    def path(self) -> str:
        return str(Path(self.root) / self.rel)


@dataclass(frozen=True)
class FileStats:
    """Per media file of the set: window count, mean and std of its vectors (rows sorted by media id)."""

    media_ids: np.ndarray
    n_windows: np.ndarray
    _: KW_ONLY
    means: np.ndarray
    stds: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    """A set as of one commit: window arrays sorted by id, and the files holding their vectors."""

    info: SetInfo
    files: StoreFiles
    _: KW_ONLY
    ids: np.ndarray
    media_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    segment_of: np.ndarray
    channels: np.ndarray  # 0: the mix; in a split set, each window's channel from 1
    segments: list[SegmentRow]
    media: dict[int, MediaInfo]
    ann: dict[str, AnnPart] = field(default_factory=dict)
    stats: FileStats | None = None
    _segment_cache: dict = field(default_factory=dict, init=False, repr=False)
    _kept: dict = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def kept(self, key: Hashable, make: Callable[[], T]) -> T:
        """What ``make()`` derives from this snapshot alone, made once and kept with it.

        The process shares one snapshot per set and commit (``indexer.store.remembered``), so
        what readers derive from it (a loaded index, the vectors of windows it lacks) is
        derived once per commit, not once per question."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def only(self, keep: np.ndarray) -> "Snapshot":
        """The windows ``keep`` (a boolean mask) marks, as a snapshot of their own: reading it reads only
        their vectors, and it has no approximate index (a filtered question scores its windows exactly)."""
        return Snapshot(self.info, self.files, ids=self.ids[keep], media_ids=self.media_ids[keep],
                        starts=self.starts[keep], ends=self.ends[keep], segment_of=self.segment_of[keep],
                        channels=self.channels[keep], segments=self.segments, media=self.media, ann={},
                        stats=self.stats)

    @property
    def streams(self) -> np.ndarray:
        """Each window's stream key (:func:`stream_key`): what moments, profiles and labels group by."""
        return self.kept("streams", lambda: self.media_ids * STREAM_CHANNELS + self.channels)

    def segment_path(self, segment: SegmentRow) -> Path:
        return self.files.file(self.info.name, segment.file)

    def paths(self) -> np.ndarray:
        """The absolute media path of every window, as an object array."""
        by_media = {mid: m.path for mid, m in self.media.items()}
        return np.asarray([by_media[int(m)] for m in self.media_ids], dtype=object)

    def iter_segments(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(positions, ids, vectors)`` per segment: the snapshot's live windows it holds
        (``positions`` index this snapshot's arrays), one memory-mapped segment at a time, as
        float32 (a float16 segment's rows are converted here, one segment in memory at a time)."""
        order = np.argsort(self.segment_of, kind="stable")
        grouped = self.segment_of[order]
        for k, segment in enumerate(self.segments):
            a, b = np.searchsorted(grouped, [segment.id, segment.id + 1])
            if a == b:
                continue
            positions = order[a:b]
            ids, vectors, sorter = self._opened(k)
            wanted = self.ids[positions]
            if len(ids) == len(wanted) and np.array_equal(ids, wanted):
                yield positions, wanted, np.asarray(vectors, dtype=np.float32)
                continue
            # Some of the segment's windows (a filtered snapshot, or windows that died): found by their
            # ids, with no sort when the segment's ids ascend (they do, but after a merge of moved files).
            at = np.minimum(np.searchsorted(ids, wanted, sorter=sorter), len(ids) - 1)
            at = at if sorter is None else sorter[at]
            if not np.array_equal(ids[at], wanted):
                raise StoreError(f"segment {segment.file} of set {self.info.name} lacks vectors the catalog "
                                 "lists in it; run 'audioscan index check'")
            yield positions, wanted, np.asarray(vectors[at], dtype=np.float32)

    def vectors(self) -> np.ndarray:
        """Every live vector, in the order of ``ids`` (for sets that fit in memory)."""
        out = None
        for positions, _, vectors in self.iter_segments():
            if out is None:
                out = np.empty((len(self.ids), vectors.shape[1]), dtype=np.float32)
            out[positions] = vectors
        return out if out is not None else np.zeros((0, self.info.dim), dtype=np.float32)

    def positions(self, window_ids: np.ndarray) -> np.ndarray:
        """Positions of ``window_ids`` in this snapshot's arrays (refused if any is not live here)."""
        window_ids = np.asarray(window_ids, dtype=np.int64)
        ahead = np.argsort(window_ids, kind="stable")  # sorted lookups walk the ids forward
        at = np.empty_like(window_ids)
        at[ahead] = np.searchsorted(self.ids, window_ids[ahead])
        if len(window_ids) and (at.max() >= len(self.ids) or not np.array_equal(self.ids[at], window_ids)):
            raise StoreError(f"some windows asked for are not live in set {self.info.name}")
        return at

    def _opened(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Segment ``k``'s ids, its vectors (memory-mapped) and, when its ids are not ascending,
        their sort order; opened on first use and kept for this snapshot's later fetches."""
        if k not in self._segment_cache:
            ids, vectors = read_segment(self.segment_path(self.segments[k]))
            ascending = len(ids) < 2 or bool((ids[1:] > ids[:-1]).all())
            self._segment_cache[k] = (ids, vectors, None if ascending else np.argsort(ids, kind="stable"))
        return self._segment_cache[k]

    def vectors_at(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions`` (in that order), read from the memory-mapped segments
        that hold them and nothing else."""
        asked = np.asarray(positions, dtype=np.int64)
        found = np.empty((len(asked), self.info.dim), dtype=np.float32)
        # Everything is looked up and read in position order (window ids rise through the arrays
        # and through each segment), whatever the order asked: the lookups then walk memory
        # forward and the mapped pages are read once and ahead, so random order costs what
        # sorted does; each vector is written to the place it was asked for.
        ahead = np.argsort(asked, kind="stable")
        positions = asked[ahead]
        segment_ids = np.asarray([segment.id for segment in self.segments], dtype=np.int64)
        order = np.argsort(segment_ids)
        where = order[np.searchsorted(segment_ids, self.segment_of[positions], sorter=order)]
        # One sort groups the positions by segment (a search re-ranks a few hundred windows
        # spread over every segment: the per-segment work is what it pays for).
        grouped = np.argsort(where, kind="stable")
        edges = np.flatnonzero(np.diff(where[grouped])) + 1
        window_ids = self.ids[positions]
        for mine in np.split(grouped, edges) if len(grouped) else ():
            k = int(where[mine[0]])
            ids, vectors, sorter = self._opened(k)
            wanted = window_ids[mine]
            rows = np.searchsorted(ids, wanted, sorter=sorter)
            rows = np.minimum(rows, len(ids) - 1) if sorter is None else sorter[np.minimum(rows, len(ids) - 1)]
            if not np.array_equal(ids[rows], wanted):
                raise StoreError(f"segment {self.segments[k].file} of set {self.info.name} lacks vectors the "
                                 "catalog lists in it; run 'audioscan index check'")
            found[ahead[mine]] = vectors[rows]
        return found

    def set_mean(self) -> np.ndarray:
        """The mean of the set's live vectors, from the per-file statistics (take ``stats=True``)."""
        if self.stats is None or not len(self.stats.media_ids):
            return np.zeros(self.info.dim, dtype=np.float32)
        weights = self.stats.n_windows.astype(np.float64)
        return (self.stats.means.astype(np.float64) * weights[:, None]).sum(0) / max(weights.sum(), 1.0)

    def load_ann(self, part: str = "base"):
        """A part of the set's approximate index as of this snapshot, or None when there is none."""
        if part not in self.ann:
            return None
        return read_index(self.files.file(self.info.name, self.ann[part].file))
