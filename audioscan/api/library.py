"""The ``Library`` class behind ``audioscan.open``: building, searching, training and exporting.

See the package docstring (``audioscan.api``) for a tour.  Each method opens the store
for as long as it needs it: reads take one snapshot, writes take the writer lock.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Sequence, overload

import numpy as np
import pyarrow as pa

from audioscan.api import building, interchange
from audioscan.api.detector import Detector, JointDetector
from audioscan.api.labels import Labels
from audioscan.api.recordings import Recordings
from audioscan.api.results import Results, placed
from audioscan.indexer.errors import StoreNotFoundError
from audioscan.indexer.build import forget
from audioscan.indexer.media.decode import frame_rate
from audioscan.indexer.store.check import check_store, leftovers
from audioscan.indexer.store import catalog
from audioscan.indexer.store.integrity import damage
from audioscan.indexer.store.compact import CompactReport, compact_set
from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader, StoreWriter
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.repair import RepairReport, repair
from audioscan.indexer.store.snapshot import MediaInfo, Snapshot
from audioscan.indexer.store.status import store_status
from audioscan.indexer.store.store import Store
from audioscan.models.base import LoadOptions
from audioscan.query import classifier as classifiers
from audioscan.query import label_files
from audioscan.query import labels as labelling
from audioscan.query.errors import QueryError, QueryNotFoundError
from audioscan.query.filters import MomentFilter, restrict
from audioscan.query.clips import ClipReport, export_clips
from audioscan.query.joint import joint_scores
from audioscan.query.moments import Moment
from audioscan.query.refine import refine as refine_moments
from audioscan.query.rescore import DEFAULT_THRESHOLD
from audioscan.query.search import SetIndex, embed_clip, embed_clips, needs_stats, stored_query
from audioscan.query.training import NEG_MARGIN, TOLERANCE, default_normalization, training_set

class Library:
    """A store of embeddings and what was learnt from them (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.labels = Labels(self)
        self.recordings = Recordings(self)

    def __repr__(self) -> str:
        return f"audioscan.Library({str(self.path)!r})"

    def _reader(self) -> ContextManager[StoreReader]:
        return Store.open(self.path)

    def _annotator(self) -> ContextManager[StoreAnnotator]:
        """The store for changing labels and detectors (no writer lock: they never touch vectors)."""
        return Store.open(self.path, annotate=True)

    def _writer(self) -> ContextManager[StoreWriter]:
        return Store.open(self.path, write=True)

    def _whole(self, write: bool = False) -> ContextManager[Store]:
        """The store itself, for the store package's own operations of several steps (build, import,
        compact, forget, status, check), which take it whole (``indexer/store/protocols.py``)."""
        return Store.open(self.path, write=write)

    def moments(self, hits: Sequence[Moment], *, label: str = "") -> list[Moment]:
        """Hits or detections as moments for export, with each video's frame rate for timecodes, and
        each file's recording start (the moments' clock times) and site."""
        paths = {hit.path for hit in hits}
        rates = self._frame_rates(paths)
        with self._reader() as store:
            known = {item.path: item for item in store.media().values() if item.path in paths}
        return [replace(hit, label=label, fps=rates.get(hit.path),
                        recording=known[hit.path].recorded if hit.path in known else None,
                        site=known[hit.path].site if hit.path in known else None) for hit in hits]

    def _frame_rates(self, paths: set[str] | None = None) -> dict[str, float | None]:
        """Frame rate per media path: as stored at build, or read from the file when it was
        indexed before frame rates were stored."""
        with self._reader() as store:
            media = store.media().values()
        rates = {}
        for item in media:
            if paths is not None and item.path not in paths:
                continue
            rates[item.path] = item.fps if item.fps is not None or item.status != "ok" else frame_rate(Path(item.path))
        return rates

    def _wanted(self, moments: Iterable[Moment], label: str = "") -> list[Moment]:
        """Moments (hits, detections, labels, or rows of a CSV) as clips to cut, with their files' durations."""
        durations = {}
        if Store.exists(self.path):  # a CSV of moments needs no store at all
            with self._reader() as store:
                durations = {item.path: item.duration for item in store.media().values()}
        out = []
        for m in moments:
            out.append(replace(m, label=m.label or label, duration=durations.get(m.path)))
        return out

    def export_clips(self, moments: Iterable[Moment], out_dir: str | Path, *, format: str = "wav",
                     length: float | None = None, pad: float = 0.0, rate: int | None = None,
                     channels: int | None = None, label: str = "",
                     progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
                     tight: bool = False) -> ClipReport:
        """Cut each moment from its source into ``out_dir`` (see ``audioscan.query.clips``): ``length``
        seconds centred on its peak, or its sound's onset to offset with ``tight``, or its span; a
        ``clips.csv`` there that audioscan did not write is refused unless ``overwrite``."""
        return export_clips(self._wanted(moments, label), Path(out_dir), fmt=format, length=length, pad=pad,
                            rate=rate, channels=channels, progress=progress, overwrite=overwrite, tight=tight)

    def read_moments(self, path: str | Path) -> list[Moment]:
        """The moments of a CSV of ``path,start,end[,label]``, as ``export clips MOMENTS.csv`` cuts
        them: each path names an indexed file (as ``labels add`` finds it), or a file beside the
        CSV, or one in the current folder."""
        path = Path(path)
        rows = label_files.read_moments_file(path)
        known = []
        if Store.exists(self.path):
            with self._reader() as store:
                known = labelling.all_media(store)
        resolved: dict[str, str] = {}
        for row in rows:
            where = str(row.media)  # each row names its file
            if where not in resolved:
                resolved[where] = labelling.resolve_path(where, known, beside=path.parent)
        return [Moment(resolved[str(row.media)], row.start, end=row.start if row.end is None else row.end, score=None,
                       label=row.label, channel=row.channel) for row in rows]

    # ------------------------------------------------------------------ building
    # Index media (``api/building.py``).
    build = building.build

    def forget(self, folder: str | Path) -> int:
        """Drop the vectors of every file under an indexed folder (labels are kept); returns the file count."""
        with self._whole(write=True) as store:
            return forget(store, Path(folder))

    def remove_set(self, name: str) -> tuple[SetInfo, int]:
        """Drop an embedding set and the detectors trained on it; returns the set and that count."""
        with self._writer() as store:
            info = store.find_set(name)
            return info, store.remove_set(info)

    def remove_detector(self, name: str, *, version: int | None = None) -> int:
        """Delete a detector's version (or every version); returns how many were deleted."""
        with self._annotator() as store:
            count = store.remove_classifier(name, version)
        if not count:
            which = f"'{name}'" + (f" version {version}" if version else "")
            raise QueryNotFoundError(f"no detector {which}; 'audioscan detectors' lists them")
        return count

    def compact(self, *, dtype: str | None = None) -> list[CompactReport]:
        """Merge small segments and drop dead vectors in every set (with ``dtype``, float16 or
        float32, rewriting every set's vectors in it); the journal of labels and detectors is written
        anew as one snapshot of them."""
        stored = None if dtype is None else building.stored_dtype(dtype)
        with self._whole(write=True) as store:
            reports = [compact_set(store, info, force=True, dtype=stored) for info in store.sets()]
            store.rewrite_journal()
            return reports

    def repair(self) -> RepairReport:
        """Rebuild a damaged or missing catalog (the library's bookkeeping from what still reads, the
        labels and detectors from their journal), then drop lost or damaged segments; the next
        :meth:`build` embeds their files again."""
        if not Store.exists(self.path) and not Store.lost_catalog(self.path):
            raise StoreNotFoundError(f"there is no audioscan store at {self.path} to repair")
        with Store.open(self.path, salvage=True) as store:
            return repair(store)

    # ------------------------------------------------------------------ inspecting
    def status(self) -> dict:
        with self._whole() as store:
            return store_status(store)

    def check(self) -> tuple[list[str], list[str]]:
        """(problems, notes): problems are inconsistencies; notes are leftovers the next build removes.

        Every block of the catalog is read first (see ``integrity``): damage that only a later
        read or write would meet is one sentence now, pointing at ``index repair``."""
        if Store.exists(self.path):
            found = damage(self.path)
            if found is not None:
                raise catalog.damaged(self.path / catalog.CATALOG_FILE, found)
        with self._whole() as store:
            return check_store(store) + store.journal_problems(), leftovers(store)

    def sets(self) -> list[SetInfo]:
        with self._reader() as store:
            return store.sets()

    def set(self, model: str | None = None) -> SetInfo:
        with self._reader() as store:
            return store.find_set(model)

    def snapshot(self, model: str | None = None, *, stats: bool = False) -> Snapshot:
        """One consistent picture of a set (windows, segments, media) as of the last commit."""
        with self._reader() as store:
            return store.snapshot(store.find_set(model), stats=stats)

    def vectors(self, model: str | None = None) -> tuple[np.ndarray, pa.Table]:
        """Every live vector of a set (``[n, dim]`` float32) and a table of their windows
        (``id, path, start, end, channel``), row for row.

        The vectors are a copy in memory (n x dim x 4 bytes: 3 GB for a million 768-d windows),
        gathered from the set's memory-mapped segments; for a set larger than memory, walk
        ``lib.snapshot(model).iter_segments()`` instead, one segment at a time."""
        snapshot = self.snapshot(model)
        table = pa.table({"id": snapshot.ids, "path": pa.array(snapshot.paths().tolist(), pa.string()),
                          "start": snapshot.starts, "end": snapshot.ends, "channel": snapshot.channels})
        return snapshot.vectors(), table

    # ------------------------------------------------------------------ searching
    def search(self, query: str | Path | list | tuple[str, float], *, k: int = 10,
               model: str | Sequence[str] | None = None, start: float = 0.0, end: float | None = None,
               device: str = "auto", exclude_files: Sequence[str] = (), min_score: float | None = None,
               refine: bool = False, per_file: int | None = None, where: MomentFilter | None = None,
               from_channel: int | None = None) -> Results:
        """The ``k`` best moments like ``query``: a clip file (embedded once, ``[start, end)`` of it),
        a list of clip files (searched by the mean of their vectors), or ``(indexed media, seconds)``
        for a stored window (no model runs; that window is left out).  ``exclude_files`` are indexed
        files to leave out of the hits; ``min_score`` drops hits scoring lower; ``refine`` places
        each hit's sound from its span embedded again at a finer hop (``audioscan.query.refine``);
        ``per_file`` keeps at most that many hits of one file.  The first n hits of any ``k`` are the
        hits of ``k=n``: each hit is one sound, found from every window of its file.
        ``where`` (``query.filters``) limits the windows searched: only theirs are read and scored.
        ``from_channel``: the channel of a stored window's file to search from, in a set that hears each
        channel apart (``index build --channels split``; needed when the file has several).

        ``model`` may name several sets: each scores the query with its own model and their
        evidence is combined on the first set's windows (``audioscan.query.joint``); scores are
        then standard deviations above each set's mean, not cosines."""
        names = [model] if model is None or isinstance(model, str) else list(model)
        with self._reader() as store:
            infos = [store.find_set(name) for name in names]
            if len({info.id for info in infos}) < len(infos):
                raise QueryError("`model` names the same embedding set twice; give different sets to combine")
            snapshots = [store.snapshot(info, stats=needs_stats(info)) for info in infos]
            known = list(snapshots[0].media.values())
            skip = frozenset(labelling.resolve_media(store, str(f), media=known).id for f in exclude_files)
            media = labelling.resolve_media(store, str(query[0]), media=known) if isinstance(query, tuple) else None
            vectors, excluded = [], []
            for info, snapshot in zip(infos, snapshots):
                if isinstance(query, tuple) and media is not None:
                    vector, exclude = stored_query(snapshot, media.id, rel=media.rel, at=float(query[1]),
                                                   channel=from_channel)
                elif isinstance(query, list):
                    vector, exclude = embed_clips([Path(q) for q in query], info, load=LoadOptions(device=device)), None
                elif isinstance(query, (str, Path)):
                    vector, exclude = embed_clip(Path(query), info, start=start, end=end,
                                                 load=LoadOptions(device=device)), None
                else:
                    raise QueryError("`query` is a clip file, a list of clip files or (indexed media, seconds)")
                vectors.append(vector)
                excluded.append(exclude)
        indexes = [SetIndex.of(restrict(snapshot, where)) for snapshot in snapshots]
        index, vector = indexes[0], vectors[0]
        scores = joint_scores(indexes, vectors) if len(indexes) > 1 else None
        hits = index.search(vector, k, exclude=excluded[0], skip_media=skip, min_score=min_score, scores=scores,
                            per_file=per_file)
        if refine:
            hits = refine_moments(hits, infos[0], score=lambda found, _: index.cosines(found, vector),
                                  load=LoadOptions(device=device))
        return placed(hits, snapshots[0].media.values())

    def load(self) -> list[SetInfo]:
        """Load every set's vectors (or approximate index) now, so that the first search of a
        long-running process (the page) is as fast as the next; the process keeps them with each
        set's snapshot until a commit changes it.  Raises when there is no store."""
        infos = self.sets()
        with self._reader() as store:
            for info in infos:
                index = SetIndex.of(store.snapshot(info, stats=needs_stats(info)))
                if index.ann is None:
                    index.matrix()
        return infos

    # Vectors to and from other tools (Parquet, perch-hoplite): ``api/interchange.py``.
    export_vectors = interchange.export_vectors
    import_vectors = interchange.import_vectors

    def media(self) -> dict[int, MediaInfo]:
        """Every media file the store knows, by id (ok, failed, missing or unavailable)."""
        with self._reader() as store:
            return store.media()

    # ------------------------------------------------------------------ detectors
    def train(self, name: str, *, label: str | None = None, model: str | None = None, classifier: str = "logreg",
              normalize: str = "auto", tolerance: float = TOLERANCE, neg_margin: float = NEG_MARGIN,
              negatives: str = "both", threshold: float = DEFAULT_THRESHOLD, precision: float | None = None,
              progress: Callable[[str], None] | None = None) -> Detector:
        """Train and store the next version of detector ``name`` from the labels (stored vectors only).

        ``negatives``: automatic negatives from the labelled files, the rest of the library, or
        both (the whole library is the background the sound is told from).  ``threshold`` is the
        one the figures (precision, recall) are reported at and the detector's own (``rescore --all``);
        ``precision`` sets it instead: the lowest whose cross-validated precision reaches it.
        ``metrics["reliable"]`` is False,
        with ``metrics["warnings"]`` saying why, when the detector should not be trusted yet.
        """
        label = label or name
        with self._annotator() as store:
            info = store.find_set(model)
            normalize = default_normalization(info) if normalize == "auto" else normalize
            data = training_set(store, store.snapshot(info, stats=True), label=label, normalize=normalize,
                                tolerance=tolerance, neg_margin=neg_margin, negatives=negatives)
            trained = classifiers.fit(data, name, label=label, set_id=info.id, kind=classifier, normalize=normalize,
                                      threshold=threshold, progress=progress, precision=precision)
            classifiers.save(store, trained)
        return Detector(self, trained, info)

    @overload
    def detector(self, name: str, *, version: int | None = None) -> Detector: ...

    @overload
    def detector(self, name: Sequence[str], *, version: int | None = None) -> Detector | JointDetector: ...

    def detector(self, name: str | Sequence[str], *, version: int | None = None) -> Detector | JointDetector:
        """Detector ``name``, or several names' evidence combined (trained on one label in different sets)."""
        if not isinstance(name, str):
            names = list(name)
            if len(names) > 1:
                if version is not None:
                    raise QueryError("`version` picks one detector's version; combine the newest ones, or one alone")
                return JointDetector([self.detector(one) for one in names])
            name = names[0]
        with self._reader() as store:
            trained = classifiers.load(store, name, version=version)
            info = next((s for s in store.sets() if s.id == trained.set_id), None)
        if info is None:
            raise QueryError(f"the set detector {name} was trained on is no longer in the store; train it again")
        return Detector(self, trained, info)

    def rollback(self, name: str, version: int) -> Detector:
        """Make an earlier version the newest again (saved as a new version; nothing is lost)."""
        old = self.detector(name, version=version)
        with self._annotator() as store:
            classifiers.save(store, old.classifier)
        return old

    def detectors(self) -> list[dict]:
        """Every kept version of every detector, with its cross-validated figures."""
        import json

        with self._reader() as store:
            names = {info.id: info.name for info in store.sets()}
            return [{"name": r.name, "version": r.version, "label": r.label, "set": names.get(r.set_id),
                     "classifier": r.kind, **json.loads(r.metrics), "created": r.created}
                    for r in store.classifiers()]
