"""Cutting audio into windows: the rule every set and every check shares.

Windows start at 0 and every ``hop`` while they fit; when the last one stops short
of the end, one more window ending exactly at the end covers the tail; a file
shorter than one window gives a single zero-padded window (so a 20 s file with 8 s
windows every 1 s gives 13 windows).  The rule is applied to sample counts so the
streaming cutter and the whole-file rule agree to the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
    def checked(cls, window: float, hop: float) -> "WindowSpec":
        """A cut a user asked for, or one sentence saying why it cannot be used."""
        if not (math.isfinite(window) and MIN_WINDOW <= window <= MAX_WINDOW):
            raise MediaError(f"`window` {window:g} is not a usable window length; give between "
                             f"{MIN_WINDOW:g} and {MAX_WINDOW:g} seconds (default 8)", value=window)
        if not (math.isfinite(hop) and MIN_WINDOW / 10 <= hop <= window):
            raise MediaError(f"`hop` {hop:g} does not fit `window` {window:g}; give a hop between "
                             f"{MIN_WINDOW / 10:g} s and the window length (default 1)", value=hop)
        return cls(float(window), float(hop))

    def samples(self, sample_rate: int) -> tuple[int, int]:
        """(window, hop) in samples at ``sample_rate``."""
        return round(self.window * sample_rate), max(1, round(self.hop * sample_rate))


def window_starts(total: int, win: int, hop: int) -> np.ndarray:
    """Start sample of every window of a ``total``-sample signal (empty for no signal)."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    if total <= win:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, total - win + 1, hop, dtype=np.int64)
    if starts[-1] + win < total:
        starts = np.append(starts, total - win)
    return starts


@dataclass
class WindowBatch:
    """Consecutive windows of one signal: start/end in samples and the audio ``[B, win]``."""

    starts: np.ndarray
    ends: np.ndarray
    audio: np.ndarray


class StreamWindower:
    """Applies :func:`window_starts` to a signal that arrives in blocks.

    Only the last window's worth of samples is kept between blocks, so a three-hour
    file never has to sit in memory, and windows come out in batches ready for a model.
    """

    def __init__(self, win: int, hop: int, batch_size: int) -> None:
        self.win, self.hop, self.batch_size = win, hop, batch_size
        self.total = 0
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0
        self._next = 0
        self._last: int | None = None
        self._starts: list[int] = []
        self._rows: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> Iterator[WindowBatch]:
        """Add samples; yield every full batch of windows they complete."""
        self._buf = np.concatenate([self._buf, block.astype(np.float32, copy=False)])
        self.total += len(block)
        while self._next + self.win <= self.total:
            self._take(self._next)
            self._next += self.hop
            if len(self._rows) >= self.batch_size:
                yield self._flush()
        keep_from = max(self._buf_start, min(self._next, self.total - self.win))
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start:]
            self._buf_start = keep_from

    def finish(self) -> Iterator[WindowBatch]:
        """Emit the tail window (or the zero-padded short window) and what is left."""
        if self.total == 0:
            return
        if self._last is None and self.total < self.win:
            padded = np.zeros(self.win, dtype=np.float32)
            padded[: self.total] = self._buf[: self.total]
            self._starts.append(0)
            self._rows.append(padded)
            self._last = 0
        elif self._last is None or self._last + self.win < self.total:
            self._take(self.total - self.win)
        if self._rows:
            yield self._flush()

    def _take(self, start: int) -> None:
        offset = start - self._buf_start
        self._rows.append(self._buf[offset: offset + self.win])
        self._starts.append(start)
        self._last = start

    def _flush(self) -> WindowBatch:
        starts = np.asarray(self._starts, dtype=np.int64)
        ends = np.minimum(starts + self.win, self.total)
        batch = WindowBatch(starts, ends, np.stack(self._rows))
        self._starts, self._rows = [], []
        return batch
