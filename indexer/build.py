"""``index build``: walk a folder, embed what is new, commit often, never lose finished work.

Flow: list the folder -> plan against the catalog (``indexer.plan``) -> commit the
bookkeeping (moves, failures, deletions) -> decode ahead in threads
(``indexer.pipeline``) -> gather windows of several files into full model batches
-> commit finished files every few seconds or thousand windows.  A file is
committed whole or not at all, so a crash costs at most the files in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audioscan.indexer.store.ann import build_ann
from audioscan.indexer.store.compact import compact_set
from audioscan.indexer.media.discover import walk
from audioscan.indexer.errors import StoreError
from audioscan.indexer.faults import crash_point
from audioscan.indexer.pipeline import Batch, Cut, Decoded, DecodePool, Failed
from audioscan.indexer.plan import Job, make_plan
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow, SetInfo, utcnow
from audioscan.indexer.store.store import Store
from audioscan.indexer.media.windows import WindowSpec
from audioscan.models import registry
from audioscan.models.base import EmbeddingModel, LoadOptions
from audioscan.models.engine import default_batch_size


@dataclass
class BuildOptions:
    models: list[str] = field(default_factory=lambda: [registry.DEFAULT_MODEL])
    windows: WindowSpec = field(default_factory=WindowSpec)
    load: LoadOptions = field(default_factory=LoadOptions)
    batch_size: int | None = None  # None: chosen per model and device, once a model is needed
    decode_workers: int = 1
    dtype: str = "fp32"
    commit_seconds: float = 20.0
    commit_windows: int = 4096


@dataclass
class BuildReport:
    files_seen: int = 0
    files_indexed: int = 0
    files_skipped: int = 0
    files_reused: int = 0
    files_removed: int = 0
    files_failed: int = 0
    windows_embedded: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    still_failing: int = 0

    def as_json(self) -> dict:
        return {key: getattr(self, key) for key in (
            "files_seen", "files_indexed", "files_skipped", "files_reused", "files_removed",
            "files_failed", "windows_embedded", "seconds")}


class Progress:
    """What the build reports as it goes; the CLI draws a bar from it, tests ignore it."""

    def status(self, text: str) -> None: ...
    def start(self, files: int) -> None: ...
    def advance(self, files: int, windows: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Pending:
    """Windows of one job embedded so far, per set, in window order."""

    parts: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=dict)
    staged: int = 0
    outcome: Decoded | Failed | None = None


class _Stage:
    """Gathers windows of consecutive files into full batches for one model."""

    def __init__(self, model: EmbeddingModel, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size
        self.rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0

    def add(self, job: int, batch: Batch) -> None:
        w = batch.windows
        self.rows.append((job, w.starts, w.ends, w.audio))
        self.count += len(w.starts)

    def run(self, partial: bool) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Embed full batches (and the rest too when ``partial``); returns (job, starts, ends, vectors)."""
        out = []
        while self.count >= self.batch_size or (partial and self.count):
            take, batch_rows = min(self.batch_size, self.count), []
            while take:
                job, starts, ends, audio = self.rows[0]
                n = min(take, len(starts))
                batch_rows.append((job, starts[:n], ends[:n], audio[:n]))
                if n == len(starts):
                    self.rows.pop(0)
                else:
                    self.rows[0] = (job, starts[n:], ends[n:], audio[n:])
                take -= n
                self.count -= n
            vectors = self.model.embed(np.concatenate([r[3] for r in batch_rows]))
            offset = 0
            for job, starts, ends, _ in batch_rows:
                out.append((job, starts, ends, vectors[offset: offset + len(starts)]))
                offset += len(starts)
        return out


def build(store: Store, root: Path, options: BuildOptions, progress: Progress | None = None) -> BuildReport:
    """Bring the store up to date with ``root``; returns the figures of this run."""
    progress = progress or Progress()
    started, clock = utcnow(), time.monotonic()
    root = root.resolve()
    if not root.is_dir():
        raise StoreError(f"{root} is not a folder; give the folder of media to index")
    specs = [registry.spec(name) for name in dict.fromkeys(options.models)]
    sets: list[SetInfo] = [
        store.ensure_set(spec.name, spec.weights_id(options.load), options.windows.window, options.windows.hop,
                         spec.sample_rate, spec.dim, options.dtype) for spec in specs]
    root_id = store.ensure_root(root)
    entries = list(walk(root))
    progress.status(f"{len(entries)} files under {root}; checking which are new or changed")
    plan = make_plan(store, root_id, entries, [info.id for info in sets])
    store.commit(plan.bookkeeping)
    report = BuildReport(files_seen=plan.files_seen, files_skipped=plan.files_skipped,
                         files_reused=plan.files_reused, files_removed=plan.files_removed,
                         files_failed=len(plan.failures), failures=list(plan.failures),
                         still_failing=plan.still_failing)
    set_by_id = {info.id: info for info in sets}
    # Only the models some file still needs are loaded: a no-op rebuild loads none.
    needed = {sid for job in plan.jobs for sid in job.set_ids}
    models = {set_by_id[sid].model: registry.load_model(set_by_id[sid].model, options.load) for sid in needed}
    batch_size = options.batch_size or min(
        (default_batch_size(registry.spec(set_by_id[sid].model).count_params(), options.load.device) for sid in needed),
        default=1)
    stages = {sid: _Stage(models[set_by_id[sid].model], batch_size) for sid in needed}
    files = []
    for job in plan.jobs:
        cuts = [Cut(sid, set_by_id[sid].sample_rate, *options.windows.samples(set_by_id[sid].sample_rate))
                for sid in job.set_ids]
        files.append((job.path, cuts, job.media.fingerprint is None))
    progress.start(len(plan.jobs))
    pending: dict[int, _Pending] = {}
    change, last_commit = Commit(), time.monotonic()

    def finish_ready() -> None:
        for index in [i for i, p in pending.items() if p.outcome is not None and p.staged == 0]:
            _finish(plan.jobs[index], pending.pop(index), set_by_id, change, report)
            progress.advance(1, 0)

    def maybe_commit(force: bool = False) -> None:
        nonlocal change, last_commit
        due = change.windows() >= options.commit_windows or time.monotonic() - last_commit >= options.commit_seconds
        if change and (force or due):
            store.commit(change)
            change, last_commit = Commit(), time.monotonic()

    def embed(partial: bool) -> None:
        for set_id, stage in stages.items():
            for job, starts, ends, vectors in stage.run(partial):
                entry = pending[job]
                entry.parts.setdefault(set_id, []).append((starts, ends, vectors))
                entry.staged -= len(starts)
                report.windows_embedded += len(starts)
                progress.advance(0, len(starts))
                crash_point("embedded")

    try:
        with DecodePool(files, batch_size, options.decode_workers) as pool:
            for event in pool:
                entry = pending.setdefault(event.job, _Pending())
                if isinstance(event, Batch):
                    stages[event.set_id].add(event.job, event)
                    entry.staged += len(event.windows.starts)
                else:
                    entry.outcome = event
                embed(partial=pool.idle())
                finish_ready()
                maybe_commit()
            embed(partial=True)
            finish_ready()
    finally:
        # Whatever happens (Ctrl-C included), files that finished are committed.
        finish_ready()
        maybe_commit(force=True)
        progress.close()
    for info in sets:
        compact_set(store, info)
        build_ann(store, info)
    report.seconds = round(time.monotonic() - clock, 3)
    store.record_run(f"index build {root}", started, report.as_json())
    return report


def _finish(job: Job, entry: _Pending, sets: dict[int, SetInfo], change: Commit, report: BuildReport) -> None:
    """Turn a finished job into catalog changes: vectors and an ok row, or a failure."""
    if job.replaces:
        change.retire.append((job.media.id, None))
    if isinstance(entry.outcome, Failed):
        change.media.append(MediaRow(job.media.id, job.media.root_id, job.media.path, job.media.size,
                                     job.media.mtime_ns, job.media.fingerprint, None, "failed", entry.outcome.reason))
        if not job.replaces and job.media.status == "ok":
            change.retire.append((job.media.id, None))  # the bytes no longer decode: old vectors go
        report.files_failed += 1
        report.failures.append((job.media.path, entry.outcome.reason))
        return
    change.media.append(MediaRow(job.media.id, job.media.root_id, job.media.path, job.media.size, job.media.mtime_ns,
                                 job.media.fingerprint or entry.outcome.fingerprint, entry.outcome.duration, "ok"))
    for set_id, parts in entry.parts.items():
        rate = sets[set_id].sample_rate
        change.vectors.append(FileVectors(
            job.media.id, set_id,
            np.concatenate([p[0] for p in parts]) / rate,
            np.concatenate([p[1] for p in parts]) / rate,
            np.concatenate([p[2] for p in parts]).astype(np.float32, copy=False)))
    report.files_indexed += 1
