"""``index build``: walk a folder, embed what is new, commit often, never lose finished work.

Flow: list the folder -> plan against the catalog (``indexer.plan``) -> commit the
bookkeeping (moves, failures, deletions) -> an engine decodes and embeds the jobs
(here: ``indexer.pipeline``'s threads and batchers; on a cluster:
``indexer.ray_engine``) -> turn finished files into catalog changes
(:func:`finish_job`) -> commit every few seconds or thousand windows
(:class:`Committer`).  This process stays the store's only writer whatever the
engine, and a file is committed whole or not at all, so a crash costs at most the
files in flight.
"""

from __future__ import annotations

import time
from copy import copy
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from pathlib import Path
from fnmatch import fnmatch
from typing import Callable, Iterator

import numpy as np

from audioscan.indexer.errors import StoreError
from audioscan.indexer.faults import crash_point
from audioscan.indexer.media.discover import FileEntry, walk
from audioscan.indexer.media.windows import WindowSpec
from audioscan.indexer.pipeline import Batcher, Decoded, Embedded, Failed, Result, SampleWindows, embed_locally
from audioscan.indexer.plan import FileTally, Job, Plan, make_plan
from audioscan.indexer.progress import Progress
from audioscan.indexer.ray_engine import RayOptions, embed_on_ray
from audioscan.indexer.store.ann_build import ANN_MIN_WINDOWS, build_ann, start_rebuild
from audioscan.indexer.store.compact import compact_set
from audioscan.indexer.store.records import MIX, Commit, FileVectors, MediaRow, SetInfo, utcnow
from audioscan.indexer.store.segments import DEFAULT_DTYPE, VECTOR_DTYPES
from audioscan.indexer.store.store import Store
from audioscan.models import registry
from audioscan.models.base import LoadOptions
from audioscan.models.engine import default_batch_size


@dataclass(frozen=True)
class Target:
    """One set a build fills: a model, its cut, and how it hears a multichannel file (``channels``:
    'mix', one mono downmix; 'split', each channel apart)."""

    model: str
    windows: WindowSpec
    channels: str = MIX


@dataclass(frozen=True)
class BuildOptions:
    """What to build.  ``targets`` are the sets to fill; without them, every model of ``models`` with
    the window spec ``windows``, mixed."""

    models: list[str] = field(default_factory=lambda: [registry.DEFAULT_MODEL])
    windows: WindowSpec = field(default_factory=WindowSpec)
    _: KW_ONLY
    targets: list[Target] = field(default_factory=list)
    select: Callable[[str], bool] | None = None  # which files (relative paths) this build looks at
    load: LoadOptions = field(default_factory=LoadOptions)
    batch_size: int | None = None  # None: chosen per model and device, once a model is needed
    decode_workers: int = 1
    dtype: str = VECTOR_DTYPES[DEFAULT_DTYPE]  # of new sets; a set keeps the dtype it was made with
    commit_seconds: float = 20.0
    commit_windows: int = 4096
    ray: RayOptions | None = None  # None: decode and embed in this process
    ann_min_windows: int = ANN_MIN_WINDOWS  # sets this large keep an approximate index for search


@dataclass
class BuildReport(FileTally):
    """The plan's tally, plus what embedding added: files indexed or failed, windows, time."""

    _: KW_ONLY
    files_indexed: int = 0
    files_failed: int = 0
    files_unavailable: int = 0
    windows_embedded: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {key: getattr(self, key) for key in (
            "files_seen", "files_indexed", "files_skipped", "files_reused", "files_removed",
            "files_failed", "files_unavailable", "windows_embedded", "seconds")}

    def add(self, other: "BuildReport") -> "BuildReport":
        """The figures of two builds as one (``index build A B``)."""
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self


@dataclass
class _Pending:
    """Windows of one job embedded so far, per set: (starts, ends, vectors, channel) pieces in any order."""

    parts: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)
    outcome: Decoded | Failed | None = None

    def complete(self) -> bool:
        """A failure ends a file at once; a decoded file waits for every window it announced."""
        if isinstance(self.outcome, Failed):
            return True
        return self.outcome is not None and all(self.received.get(sid, 0) == n
                                                for sid, n in self.outcome.windows.items())


class Committer:
    """Collects finished files and commits them every ``seconds`` or ``windows``."""

    def __init__(self, store: Store, seconds: float, *, windows: int) -> None:
        self.store, self.seconds, self.windows = store, seconds, windows
        self.change = Commit()
        self._last = time.monotonic()

    def maybe_commit(self, force: bool = False) -> None:
        due = self.change.windows() >= self.windows or time.monotonic() - self._last >= self.seconds
        if self.change and (force or due):
            self.store.commit(self.change)
            self.change, self._last = Commit(), time.monotonic()


def _cut_of(info: SetInfo) -> SampleWindows:
    """How the set ``info`` wants its audio, in samples."""
    win, hop = info.window_samples()
    return SampleWindows(info.id, info.sample_rate, win=win, hop=hop, split=info.split)


class _Run:
    """One pass of an engine over a plan's jobs: collect each file's vectors, commit whole files."""

    def __init__(self, store: Store, plan: Plan, *, sets: dict[int, SetInfo], options: BuildOptions,
                 report: BuildReport, progress: Progress) -> None:
        self.plan, self.sets, self.options, self.report, self.progress = plan, sets, options, report, progress
        self.needed = {sid for job in plan.jobs for sid in job.set_ids}
        self.batch_size = options.batch_size or min(
            (default_batch_size(registry.spec(sets[sid].model).params, options.load.device)
             for sid in self.needed), default=1)
        self.files = [(job.path, [_cut_of(sets[sid]) for sid in job.set_ids], job.media.fingerprint is None)
                      for job in plan.jobs]
        self.pending: dict[int, _Pending] = {}
        self.finished: set[int] = set()
        self.committer = Committer(store, options.commit_seconds, windows=options.commit_windows)

    def results(self) -> Iterator[Result]:
        if not self.files:
            return iter(())
        if self.options.ray is not None:
            models = {sid: (self.sets[sid].model, self.sets[sid].weights_id) for sid in self.needed}
            return embed_on_ray(self.files, models, load=self.options.load, batch_size=self.batch_size,
                                options=self.options.ray,
                                model_batch=self.options.batch_size, notice=self.progress.notice)
        # Only the models some file still needs are loaded: a no-op rebuild loads none.
        loaded = {self.sets[sid].model: registry.load_model(self.sets[sid].model, self.options.load)
                  for sid in self.needed}
        batchers = {sid: Batcher(loaded[self.sets[sid].model], self.batch_size) for sid in self.needed}
        return embed_locally(self.files, batchers, batch_size=self.batch_size, workers=self.options.decode_workers)

    def run(self) -> None:
        self.progress.start(len(self.plan.jobs))
        try:
            for result in self.results():
                self.take(result)
                self.committer.maybe_commit()
        finally:
            # Whatever happens (Ctrl-C included), files that finished are committed.
            self.committer.maybe_commit(force=True)
            self.progress.close()

    def take(self, result: Result) -> None:
        if result.job in self.finished:
            return  # windows of a file that failed part-way
        entry = self.pending.setdefault(result.job, _Pending())
        if isinstance(result, Embedded):
            entry.parts.setdefault(result.set_id, []).append(
                (result.starts, result.ends, result.vectors, result.channel))
            entry.received[result.set_id] = entry.received.get(result.set_id, 0) + len(result.starts)
            self.progress.advance(0, len(result.starts))  # the bar shows the work; the report what was kept
            crash_point("embedded")
        else:
            entry.outcome = result
        if entry.complete():
            finish_job(self.plan.jobs[result.job], self.pending.pop(result.job), sets=self.sets,
                       change=self.committer.change, report=self.report)
            self.finished.add(result.job)
            self.progress.advance(1, 0)


def build(store: Store, root: Path, *, options: BuildOptions, progress: Progress | None = None) -> BuildReport:
    """Bring the store up to date with ``root``; returns the figures of this run."""
    progress = progress or Progress()
    started, clock = utcnow(), time.monotonic()
    root = root.resolve()
    if not root.is_dir():
        raise StoreError(f"{root} is not a folder; give the folder of media to index")
    targets = options.targets or [Target(name, options.windows) for name in dict.fromkeys(options.models)]
    sets = []
    for target in dict.fromkeys(targets):
        spec = registry.spec(target.model)
        sets.append(store.ensure_set(spec.name, spec.weights_id(options.load), window=target.windows.window,
                                     hop=target.windows.hop, sample_rate=spec.sample_rate, dim=spec.dim,
                                     dtype=options.dtype, channels=target.channels))
    root_id, scope = place_root(store, root)
    unreadable: list[str] = []
    entries = [FileEntry(scope + e.rel, e.abs, size=e.size, mtime_ns=e.mtime_ns)
               for e in walk(root, skip=store.path.resolve(), unreadable=unreadable)]
    select = options.select
    selected = (lambda rel: rel.startswith(scope) and select(rel[len(scope):])) if select is not None else None
    if selected is not None:
        entries = [e for e in entries if selected(e.rel)]
    progress.status(f"{len(entries)} files under {root}; checking which are new or changed")
    plan = make_plan(store, root_id, entries=entries, set_ids=[info.id for info in sets],
                     unreadable=[scope + u for u in unreadable], scope=scope,
                     selected=selected)
    store.commit(plan.bookkeeping)
    store.plan_files(root_id, scope, paths=[job.media.path for job in plan.jobs])  # behind until committed
    tally = {f.name: copy(getattr(plan, f.name)) for f in fields(FileTally)}
    report = BuildReport(**tally, files_failed=len(plan.failures), files_unavailable=len(plan.unavailable))
    centred = {info.id: registry.spec(info.model).centred(info.weights_id) for info in sets}
    # An approximate index that is due for a rebuild is rebuilt while the engine embeds; it gets
    # what the engine committed meanwhile as a delta at the end.
    rebuilding = {info.id: start_rebuild(store, info, centred=centred[info.id],
                                         minimum=options.ann_min_windows) for info in sets}
    _Run(store, plan, sets={info.id: info for info in sets}, options=options, report=report, progress=progress).run()
    for info in sets:
        compact_set(store, info)
        build_ann(store, info, centred=centred[info.id], minimum=options.ann_min_windows, prepared=rebuilding[info.id])
    store.collect_garbage()
    report.seconds = round(time.monotonic() - clock, 3)
    store.record_run(f"index build {root}", started, stats=report.as_json())
    return report


def build_targets(existing: list[SetInfo], models: list[str] | None, *, window: float | None,
                  hop: float | None, channels: str | None = None) -> list[Target]:
    """Which sets a build fills: every set the store holds when nothing is chosen (so no set
    falls behind); else the chosen models (or the store's models, or LOGMEL) with the chosen window spec
    (each model's own unless given: 8 s / 1 s, BIRDNET 3 s / 1 s), hearing files as ``channels`` says
    (default: the mono mix)."""
    existing = [info for info in existing if not info.foreign]  # sets of another tool's vectors: no model to run
    if not models and window is None and hop is None and channels is None and existing:
        return list(dict.fromkeys(Target(info.model, info.window_spec, info.channels) for info in existing))
    names = list(dict.fromkeys(m.upper() for m in models)) if models else (
        list(dict.fromkeys(info.model for info in existing)) or [registry.DEFAULT_MODEL])
    out = []
    for name in names:
        spec = registry.spec(name)
        out.append(Target(name,
                          WindowSpec.checked(spec.window if window is None else window,
                                             spec.hop if hop is None else hop,
                                             default=WindowSpec(spec.window, spec.hop)),
                          channels or MIX))
    return out


def selection(files: list[str], include: list[str], *, exclude: list[str]) -> Callable[[str], bool] | None:
    """A test of relative paths for named files and --include/--exclude glob patterns (matched
    against the relative path and the file name)."""
    if not files and not include and not exclude:
        return None

    def chosen(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if files and rel not in files:
            return False
        if include and not any(fnmatch(rel, g) or fnmatch(name, g) for g in include):
            return False
        return not any(fnmatch(rel, g) or fnmatch(name, g) for g in exclude)

    return chosen


def place_root(store: Store, folder: Path) -> tuple[int, str]:
    """The root a build of ``folder`` belongs to, and the folder's path inside it.

    A file's identity is its real path: a folder inside an indexed root is part of that
    root (its files are not indexed twice), and indexed roots inside a new, larger
    folder are folded into it, keeping their files' ids, vectors and labels.
    """
    roots = store.roots()
    for root_id, path in roots.items():
        if folder == path:
            return root_id, ""
        if path in folder.parents:
            return root_id, folder.relative_to(path).as_posix() + "/"
    root_id = store.ensure_root(folder)
    for child_id, path in roots.items():
        if folder in path.parents:
            store.adopt_root(child_id, root_id, prefix=path.relative_to(folder).as_posix() + "/")
    return root_id, ""


def shortfall(decoded: float, declared: float | None) -> str | None:
    """A warning kept with an indexed file whose audio ends well before its header says it does
    (a copy cut short): what was indexed is all there is, and the user should know."""
    if declared is None or declared - decoded <= max(1.0, 0.02 * declared):
        return None
    return f"truncated: {decoded:.1f} s of audio decoded, its header declares {declared:.1f} s"


def finish_job(job: Job, entry: _Pending, *, sets: dict[int, SetInfo], change: Commit, report: BuildReport) -> None:
    """Turn a finished job into catalog changes: vectors and an ok row, or a failure.

    A file that was already indexed and only lacked some sets keeps its row and its
    other sets' vectors when it fails now: the failure is reported, and since those
    sets are still missing, the next build tries again.
    """
    adding_sets = not job.replaces and job.media.status == "ok" and job.had_vectors
    if job.replaces:
        change.retire.append((job.media.id, None))
    outcome = entry.outcome
    assert outcome is not None  # a job is finished only once its outcome came
    broken = [sets[sid].model for sid, parts in entry.parts.items()
              if not all(np.isfinite(p[2]).all() for p in parts)]
    if broken and not isinstance(outcome, Failed):
        outcome = Failed(outcome.job, f"{', '.join(broken)} gives non-finite vectors for its audio, so none "
                                      "were stored")
    if isinstance(outcome, Failed):
        report.files_failed += 1
        names = ", ".join(sets[sid].name for sid in job.set_ids)
        report.failures.append((job.media.path, outcome.reason + (f" (for {names})" if adding_sets else "")))
        if not adding_sets:
            change.media.append(MediaRow(job.media.id, job.media.root_id, path=job.media.path, size=job.media.size,
                                         mtime_ns=job.media.mtime_ns, fingerprint=job.media.fingerprint, duration=None,
                                         status="failed", error=outcome.reason, retry=outcome.retry))
        return
    change.media.append(replace(job.media, fingerprint=job.media.fingerprint or outcome.fingerprint,
                                duration=outcome.duration, status="ok",
                                error=shortfall(outcome.duration, outcome.declared), retry=False, fps=outcome.fps))
    for set_id, parts in entry.parts.items():
        rate = sets[set_id].sample_rate
        parts.sort(key=lambda part: (part[3], int(part[0][0])))  # a cluster may return a file's batches in any order
        vectors = np.concatenate([p[2] for p in parts]).astype(np.float32, copy=False)
        channels = np.concatenate([np.full(len(p[0]), p[3], np.int16) for p in parts]) if sets[set_id].split else None
        change.vectors.append(FileVectors(
            job.media.id, set_id, starts=np.concatenate([p[0] for p in parts]) / rate,
            ends=np.concatenate([p[1] for p in parts]) / rate, vectors=vectors, channels=channels))
        report.windows_embedded += len(vectors)  # counted once kept: a file failing part-way keeps none
    report.files_indexed += 1


def forget(store: Store, folder: Path) -> int:
    """``index forget``: drop the vectors of every file under an indexed folder, then compact."""
    folder = Path(folder).expanduser().resolve()
    for root_id, path in store.roots().items():
        if folder == path or path in folder.parents:
            scope = "" if folder == path else folder.relative_to(path).as_posix() + "/"
            count = store.forget(root_id, scope)
            for info in store.sets():
                compact_set(store, info)
            return count
    raise StoreError(f"{folder} is not an indexed folder; 'audioscan index status' lists what the store holds")
