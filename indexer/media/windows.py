"""Cutting audio into windows: the rule every set and every check shares.

Windows start at 0 and every ``hop`` while they fit; when the last one stops short
of the end, one more window ending exactly at the end covers the tail; a file
shorter than one window gives a single zero-padded window (so a 20 s file with 8 s
windows every 1 s gives 13 windows).  The rule is applied to sample counts so the
streaming cutter and the whole-file rule agree to the sample.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Iterator

import numpy as np

from audioscan.indexer.errors import MediaError

# Shorter windows hold too few samples for any model's frames; longer ones are not moments.
MIN_WINDOW = 0.1
MAX_WINDOW = 600.0


@dataclass(frozen=True)
class WindowSpec:
    """Window length and hop, in seconds."""

    window: float = 8.0
    hop: float = 1.0

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.hop > 0):
            raise ValueError("window and hop must be positive numbers of seconds")

    @classmethod
    def checked(cls, window: float, hop: float, *, default: "WindowSpec") -> "WindowSpec":
        """A cut a user asked for, or one sentence saying why it cannot be used (naming the
        ``default`` cut of the model it is for, which differs by model: BIRDNET's is 3 s)."""
        if not (math.isfinite(window) and MIN_WINDOW <= window <= MAX_WINDOW):
            raise MediaError(f"`window` {window:g} is not a usable window length; give between "
                             f"{MIN_WINDOW:g} and {MAX_WINDOW:g} seconds (default {default.window:g})", value=window)
        if not (math.isfinite(hop) and MIN_WINDOW / 10 <= hop <= window):
            raise MediaError(f"`hop` {hop:g} does not fit `window` {window:g}; give a hop between "
                             f"{MIN_WINDOW / 10:g} s and the window length (default {default.hop:g})", value=hop)
        return cls(float(window), float(hop))

    def samples(self, sample_rate: int) -> tuple[int, int]:
        """(window, hop) in samples at ``sample_rate``."""
        return round(self.window * sample_rate), max(1, round(self.hop * sample_rate))


def window_starts(total: int, win: int, *, hop: int) -> np.ndarray:
    """Start sample of every window of a ``total``-sample signal (empty for no signal)."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    if total <= win:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, total - win + 1, hop, dtype=np.int64)
    if starts[-1] + win < total:
        starts = np.append(starts, total - win)
    return starts


@dataclass(frozen=True)
class WindowBatch:
    """Consecutive windows of one signal: start/end in samples, and the samples they cover.

    ``span`` runs from the first window's start to the last one's end (zero-padded where a
    short signal was), so window ``i`` is ``span[starts[i] - starts[0]:][:win]``.  One copy
    of the samples rather than one per window: at 8 s every 1 s that is an eighth of the
    memory, and a model that frames a signal once (LOGMEL) reads the span directly.
    """

    starts: np.ndarray
    ends: np.ndarray
    _: KW_ONLY
    span: np.ndarray
    win: int

    @property
    def offsets(self) -> np.ndarray:
        """Each window's start within ``span``."""
        return self.starts - self.starts[0]

    def split(self, count: int) -> tuple["WindowBatch", "WindowBatch"]:
        """The first ``count`` windows, and the rest (each with only the samples it covers)."""
        cut = int(self.offsets[count]) if count < len(self.starts) else len(self.span)
        head_end = int(self.offsets[count - 1]) + self.win
        return (WindowBatch(self.starts[:count], self.ends[:count], span=self.span[:head_end], win=self.win),
                WindowBatch(self.starts[count:], self.ends[count:], span=self.span[cut:], win=self.win))


class StreamWindower:
    """Applies :func:`window_starts` to a signal that arrives in blocks.

    Only the samples of windows not yet handed out are kept between blocks, so a
    three-hour file never has to sit in memory, and windows come out in batches ready
    for a model.
    """

    def __init__(self, win: int, hop: int, *, batch_size: int) -> None:
        self.win, self.hop, self.batch_size = win, hop, batch_size
        self.total = 0
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._next = 0
        self._last: int | None = None
        self._starts: list[int] = []

    def feed(self, block: np.ndarray) -> Iterator[WindowBatch]:
        """Add samples; yield every full batch of windows they complete."""
        self._buf = np.concatenate([self._buf, block.astype(np.float32, copy=False)])
        self.total += len(block)
        while self._next + self.win <= self.total:
            self._starts.append(self._next)
            self._last = self._next
            self._next += self.hop
            if len(self._starts) >= self.batch_size:
                yield self._flush()
        waiting = self._starts[0] if self._starts else self._next
        keep_from = max(self._buf_start, min(waiting, self.total - self.win))
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start:]
            self._buf_start = keep_from

    def finish(self) -> Iterator[WindowBatch]:
        """Emit the tail window (or the zero-padded short window) and what is left."""
        if self.total == 0:
            return
        if self._last is None and self.total < self.win:
            span = np.zeros(self.win, dtype=np.float32)
            span[: self.total] = self._buf[: self.total]
            yield WindowBatch(np.zeros(1, dtype=np.int64), np.full(1, self.total, dtype=np.int64), span=span,
                              win=self.win)
            return
        if self._last is None or self._last + self.win < self.total:
            self._starts.append(self.total - self.win)
            self._last = self.total - self.win
        if self._starts:
            yield self._flush()

    def _flush(self) -> WindowBatch:
        starts = np.asarray(self._starts, dtype=np.int64)
        begin = int(starts[0]) - self._buf_start
        span = self._buf[begin: begin + int(starts[-1] - starts[0]) + self.win].copy()
        self._starts = []
        return WindowBatch(starts, np.minimum(starts + self.win, self.total), span=span, win=self.win)
