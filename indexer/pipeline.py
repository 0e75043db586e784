"""Decoding ahead of inference.

Background threads decode media files (FFmpeg releases the GIL) and cut them into
window batches while the main thread runs the models, so a GPU never waits on a
demuxer.  A bounded queue keeps memory flat: a fast decoder simply blocks until
the model catches up.  Events come out per file, in order within a file.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from audioscan.indexer.media.decode import decode, frame_rate
from audioscan.indexer.media.discover import fingerprint
from audioscan.indexer.errors import MediaError
from audioscan.indexer.media.windows import StreamWindower, WindowBatch

# Peak amplitude under which a whole file counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class Cut:
    """How one embedding set wants its audio: rate and window/hop in samples."""

    set_id: int
    rate: int
    win: int
    hop: int


@dataclass
class Batch:
    job: int
    set_id: int
    windows: WindowBatch


@dataclass
class Decoded:
    """A file decoded to the end: its duration in seconds (from decoded samples) and,
    when it was asked for, its content fingerprint."""

    job: int
    duration: float
    totals: dict[int, int]
    fingerprint: str | None = None
    fps: float | None = None


@dataclass
class Failed:
    """A file that could not be indexed; ``retry`` when the cause may pass (it could not be read)."""

    job: int
    reason: str
    retry: bool = False


Event = Batch | Decoded | Failed


def _decode_one(job: int, path: Path, cuts: Sequence[Cut], batch_size: int, hash_it: bool) -> Iterator[Event]:
    digest = fingerprint(path) if hash_it else None
    windowers = {cut.set_id: StreamWindower(cut.win, cut.hop, batch_size) for cut in cuts}
    by_rate: dict[int, list[Cut]] = {}
    for cut in cuts:
        by_rate.setdefault(cut.rate, []).append(cut)
    totals = dict.fromkeys(by_rate, 0)
    peak = 0.0
    for rate, block in decode(path, list(by_rate)):
        totals[rate] += len(block)
        if len(block):
            peak = max(peak, float(np.abs(block).max()))
        for cut in by_rate[rate]:
            for windows in windowers[cut.set_id].feed(block):
                yield Batch(job, cut.set_id, windows)
    lowest = min(by_rate)
    if totals[lowest] == 0:
        raise MediaError("no audio could be decoded from it")
    if peak < SILENCE_PEAK:
        raise MediaError("its audio is silent (peak below -80 dBFS), so there is nothing to index")
    for cut in cuts:
        for windows in windowers[cut.set_id].finish():
            yield Batch(job, cut.set_id, windows)
    yield Decoded(job, totals[lowest] / lowest, totals, digest, frame_rate(path))


class DecodePool:
    """Decodes ``files[i]`` = (path, cuts, hash it too) on ``workers`` threads; iterate to get events."""

    def __init__(self, files: Sequence[tuple[Path, Sequence[Cut], bool]], batch_size: int, workers: int = 1,
                 queue_batches: int = 8) -> None:
        self._files = files
        self._batch_size = batch_size
        self._todo: queue.Queue[int] = queue.Queue()
        for index in range(len(files)):
            self._todo.put(index)
        self._events: queue.Queue[Event | None] = queue.Queue(maxsize=max(2, queue_batches))
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"decode-{i}")
                         for i in range(max(1, min(workers, len(files) or 1)))]

    def __enter__(self) -> "DecodePool":
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while any(w.is_alive() for w in self._workers):
            try:  # unblock workers waiting on a full queue
                while True:
                    self._events.get_nowait()
            except queue.Empty:
                pass
            for worker in self._workers:
                worker.join(timeout=0.05)

    def _put(self, event: Event | None) -> bool:
        while not self._stop.is_set():
            try:
                self._events.put(event, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                index = self._todo.get_nowait()
            except queue.Empty:
                self._put(None)
                return
            path, cuts, hash_it = self._files[index]
            try:
                for event in _decode_one(index, path, cuts, self._batch_size, hash_it):
                    if not self._put(event):
                        return
            except MediaError as err:
                self._put(Failed(index, str(err)))
            except OSError as err:
                self._put(Failed(index, f"cannot be read ({err.strerror or err})", retry=True))
            except Exception as err:  # any decoder crash costs this file only, never the build
                self._put(Failed(index, f"decoding failed ({type(err).__name__}: {err})"))

    def idle(self) -> bool:
        """True when no event is waiting (the model may as well run a partial batch now)."""
        return self._events.empty()

    def __iter__(self) -> Iterator[Event]:
        finished = 0
        while finished < len(self._workers):
            event = self._events.get()
            if event is None:
                finished += 1
                continue
            yield event
