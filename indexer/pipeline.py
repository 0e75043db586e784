"""Decoding ahead of inference, and the local engine that embeds what it decodes.

Background threads decode media files (FFmpeg releases the GIL) and cut them into
window batches while the main thread runs the models, so a GPU never waits on a
demuxer.  A bounded queue keeps memory flat: a fast decoder simply blocks until
the model catches up.  Both engines (this one and ``indexer.ray_engine``) hand the
build the same events: embedded windows, and per file its outcome, which says how
many windows of each set it produced so the build knows when a file is complete.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np

from audioscan.indexer.media.decode import Hearing, decode_hearings, header_facts
from audioscan.indexer.media.discover import fingerprint
from audioscan.indexer.errors import MediaError
from audioscan.indexer.media.windows import StreamWindower, WindowBatch
from audioscan.indexer.store.records import MIX_CHANNEL
from audioscan.models.base import EmbeddingModel, embed_windows

# Peak amplitude under which a whole file counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4

# Where a file's bytes come from: its path, or a way to open them (media shipped to a worker).
Source = Path | Callable[[], BinaryIO]


@dataclass(frozen=True)
class SampleWindows:
    """How one embedding set wants its audio: rate, window/hop in samples, and whether each channel
    is cut apart (``split``) or the mono mix is."""

    set_id: int
    rate: int
    _: KW_ONLY
    win: int
    hop: int
    split: bool = False

    @property
    def hearing(self) -> Hearing:
        return Hearing(self.rate, self.split)


@dataclass(frozen=True)
class Batch:
    job: int
    set_id: int
    _: KW_ONLY
    windows: WindowBatch
    channel: int = MIX_CHANNEL  # in a split set, the channel (from 1) these windows are of


@dataclass(frozen=True)
class Embedded:
    """Vectors of consecutive windows of one file in one set (starts/ends in samples)."""

    job: int
    set_id: int
    _: KW_ONLY
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    channel: int = MIX_CHANNEL


@dataclass(frozen=True)
class Decoded:
    """A file decoded to the end: its duration in seconds (from decoded samples), how many
    windows each set got from it, and, when it was asked for, its content fingerprint."""

    job: int
    duration: float
    _: KW_ONLY
    totals: dict[int, int]
    fingerprint: str | None = None
    fps: float | None = None
    windows: dict[int, int] = field(default_factory=dict)
    declared: float | None = None  # the duration its header claims (a truncated file claims more)


@dataclass
class Failed:
    """A file that could not be indexed; ``retry`` when the cause may pass (it could not be read)."""

    job: int
    reason: str
    retry: bool = False


Event = Batch | Decoded | Failed
Result = Embedded | Decoded | Failed  # what an engine hands the build


def _open(source: Source) -> Path | BinaryIO:
    return source if isinstance(source, Path) else source()


def _decode_one(job: int, source: Source, cuts: Sequence[SampleWindows], batch_size: int,
                hash_it: bool) -> Iterator[Event]:
    digest = fingerprint(_open(source)) if hash_it else None
    # A windower per set and channel (0: the mix); a split set's are made when its channels are known.
    windowers: dict[tuple[int, int], StreamWindower] = {}
    by_hearing: dict[Hearing, list[SampleWindows]] = {}
    for cut in cuts:
        by_hearing.setdefault(cut.hearing, []).append(cut)
    totals = dict.fromkeys(by_hearing, 0)
    emitted = {cut.set_id: 0 for cut in cuts}
    peak = 0.0
    for hearing, block in decode_hearings(_open(source), list(by_hearing)):
        totals[hearing] += block.shape[-1]
        if block.size:
            peak = max(peak, float(np.abs(block).max()))
        channels = enumerate(block, start=1) if hearing.split else [(MIX_CHANNEL, block)]
        for channel, samples in channels:
            for cut in by_hearing[hearing]:
                windower = windowers.get((cut.set_id, channel))
                if windower is None:
                    windower = windowers[cut.set_id, channel] = StreamWindower(cut.win, cut.hop, batch_size=batch_size)
                for windows in windower.feed(samples):
                    emitted[cut.set_id] += len(windows.starts)
                    yield Batch(job, cut.set_id, windows=windows, channel=channel)
    lowest = min(by_hearing)
    if totals[lowest] == 0:
        raise MediaError("no audio could be decoded from it")
    if peak < SILENCE_PEAK:
        raise MediaError("its audio is silent (peak below -80 dBFS), so there is nothing to index")
    for (set_id, channel), windower in windowers.items():
        for windows in windower.finish():
            emitted[set_id] += len(windows.starts)
            yield Batch(job, set_id, windows=windows, channel=channel)
    facts = header_facts(_open(source))
    yield Decoded(job, totals[lowest] / lowest.rate, totals={h.rate: n for h, n in totals.items()},
                  fingerprint=digest, fps=facts.fps, windows=emitted, declared=facts.declared)


def decode_events(job: int, source: Source, *, cuts: Sequence[SampleWindows], batch_size: int,
                  hash_it: bool) -> Iterator[Event]:
    """The window batches of one file, then its outcome; any failure costs this file only."""
    try:
        yield from _decode_one(job, source, cuts, batch_size, hash_it)
    except MediaError as err:
        yield Failed(job, str(err))
    except OSError as err:
        yield Failed(job, f"cannot be read ({err.strerror or err})", retry=True)
    except Exception as err:  # any decoder crash costs this file only, never the build
        yield Failed(job, f"decoding failed ({type(err).__name__}: {err})")


class DecodePool:
    """Decodes ``files[i]`` = (path, cuts, hash it too) on ``workers`` threads; iterate to get events."""

    def __init__(self, files: Sequence[tuple[Source, Sequence[SampleWindows], bool]], batch_size: int, *,
                 workers: int = 1,
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
            source, cuts, hash_it = self._files[index]
            for event in decode_events(index, source, cuts=cuts, batch_size=self._batch_size, hash_it=hash_it):
                if not self._put(event):
                    return

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


class Batcher:
    """Gathers windows of consecutive files into full batches for one model."""

    def __init__(self, model: EmbeddingModel, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size
        self.rows: list[tuple[int, int, WindowBatch]] = []  # (job, channel, windows)
        self.count = 0

    def add(self, job: int, windows: WindowBatch, *, channel: int = MIX_CHANNEL) -> None:
        self.rows.append((job, channel, windows))
        self.count += len(windows.starts)

    def run(self, set_id: int, partial: bool) -> Iterator[Embedded]:
        """Embed full batches (and the rest too when ``partial``)."""
        while self.count >= self.batch_size or (partial and self.count):
            take, batch_rows = min(self.batch_size, self.count), []
            while take:
                job, channel, windows = self.rows[0]
                n = min(take, len(windows.starts))
                if n == len(windows.starts):
                    self.rows.pop(0)
                else:
                    windows, rest = windows.split(n)
                    self.rows[0] = (job, channel, rest)
                batch_rows.append((job, channel, windows))
                take -= n
                self.count -= n
            vectors = embed_windows(self.model, [(w.span, w.offsets) for _, _, w in batch_rows],
                                    win=batch_rows[0][2].win)
            offset = 0
            for job, channel, windows in batch_rows:
                yield Embedded(job, set_id, starts=windows.starts, ends=windows.ends,
                               vectors=vectors[offset: offset + len(windows.starts)], channel=channel)
                offset += len(windows.starts)


def embed_locally(files: Sequence[tuple[Source, Sequence[SampleWindows], bool]], batchers: dict[int, Batcher],
                  *, batch_size: int, workers: int) -> Iterator[Result]:
    """The local engine: decode threads feed this process's models, full batches first."""
    with DecodePool(files, batch_size, workers=workers) as pool:
        for event in pool:
            if isinstance(event, Batch):
                batchers[event.set_id].add(event.job, event.windows, channel=event.channel)
            else:
                yield event
            for set_id, batcher in batchers.items():
                yield from batcher.run(set_id, partial=pool.idle())
        for set_id, batcher in batchers.items():
            yield from batcher.run(set_id, partial=True)
