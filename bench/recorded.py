"""Libraries of real recorded foley (``../shared/data/foley-dev``) planted in room noise.

Each take is trimmed to its audible extent (where its short-time level stays within 40 dB
of its loudest, so a take's own silence is not counted as the sound), then planted at a
level drawn from -30 to -6 dB below full scale, in recordings of pink room noise at about
-45 dBFS with a drifting level and a mains hum, with other takes of the pool as
distractors, some of them overlapping a planted take.  Where a take is said to lie is where
its 20 ms level, at the level planted, stands above the room's: a tail under the room's
noise is not the sound a listener, or a window, hears.  Which take lies where is known to the sample, so
retrieval, localisation and detection are scored against where the sound really is.

Used by ``bench/recorded_bench.py`` (the figures) and by ``tests/query/test_recorded.py``
(a handful of takes in a minute of noise).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.media.samples import write_media

RATE = 16_000
# Where the takes are: $AUDIOSCAN_FOLEY_DEV, else beside the repository (../shared), else where this
# project's machines keep the shared folder (a clone elsewhere, as CI makes, still finds them).
_FOLEY_PLACES = [Path(__file__).resolve().parents[2] / "shared" / "data" / "foley-dev",
                 Path("/work/shared/data/foley-dev")]
FOLEY_DEV = Path(os.environ.get("AUDIOSCAN_FOLEY_DEV") or next(
    (place for place in _FOLEY_PLACES if (place / "takes.csv").exists()), _FOLEY_PLACES[0]))
AUDIBLE_DB = 40.0
ROOM_DBFS = -45.0
ROOM_RMS = 10 ** (ROOM_DBFS / 20)
_FRAME = 0.02


@dataclasses.dataclass(frozen=True)
class Take:
    group: str
    path: Path


@dataclasses.dataclass(frozen=True)
class Planted:
    """A take where it was planted: its file, group and audible extent in seconds."""

    file: str
    group: str
    start: float
    end: float

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


def takes(root: Path = FOLEY_DEV) -> dict[str, list[Take]]:
    """Every take of the pool by group, in the order of ``takes.csv``."""
    out: dict[str, list[Take]] = {}
    with open(root / "takes.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["group"], []).append(Take(row["group"], root / "takes" / row["file"]))
    return out


def audible(take: Take) -> np.ndarray:
    """The take at ``RATE``, trimmed to where its 20 ms level stays within ``AUDIBLE_DB`` of its loudest."""
    audio = decode_all(take.path, RATE)
    first, last = _above(audio, _levels(audio).max() * 10 ** (-AUDIBLE_DB / 20))
    return audio[first:last]


def _levels(audio: np.ndarray) -> np.ndarray:
    """The RMS level of each 20 ms frame."""
    frame = int(_FRAME * RATE)
    frames = max(1, len(audio) // frame)
    return np.sqrt((np.resize(audio, frames * frame).reshape(frames, -1) ** 2).mean(axis=1) + 1e-20)


def _above(audio: np.ndarray, floor: float) -> tuple[int, int]:
    """The samples from the first to the end of the last 20 ms frame louder than ``floor``
    (the whole of ``audio`` when none is)."""
    loud = np.flatnonzero(_levels(audio) > floor)
    frame = int(_FRAME * RATE)
    return (int(loud[0]) * frame, min(len(audio), (int(loud[-1]) + 1) * frame)) if len(loud) else (0, len(audio))


def at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """``audio`` scaled so that its peak lies at ``dbfs``."""
    return (audio / (np.abs(audio).max() + 1e-9) * 10 ** (dbfs / 20)).astype(np.float32)


def room(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Pink noise at about -45 dBFS whose level drifts by +-4 dB, with a faint 50 Hz hum."""
    n = int(seconds * RATE)
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.maximum(1, np.sqrt(np.arange(n // 2 + 1))), n)
    pink *= ROOM_RMS / (pink.std() + 1e-12)
    drift = np.interp(np.arange(n), np.linspace(0, n, int(seconds / 5) + 2), rng.uniform(-4, 4, int(seconds / 5) + 2))
    return (pink * 10 ** (drift / 20) + 0.002 * np.sin(2 * np.pi * 50 * np.arange(n) / RATE)).astype(np.float32)


def plant(folder: Path, name: str, seconds: float, chosen: list[Take], others: list[Take],
          rng: np.random.Generator, spacing: float = 12.0, overlap: float = 0.3) -> list[Planted]:
    """Write ``folder/name``: ``chosen`` takes starting ``spacing`` to 1.25 ``spacing`` seconds apart
    (``seconds`` must hold them) in room noise, a distractor from ``others`` after each, on the
    take's tail with probability ``overlap`` and else in the gap before the next."""
    audio = room(seconds, rng)
    slots = 2.0 + spacing * np.arange(len(chosen)) + rng.uniform(0, spacing / 4, len(chosen))
    planted = []
    for take, at in zip(chosen, slots):
        sound = at_level(audible(take), rng.uniform(-30, -6))
        begin = int(at * RATE)
        audio[begin: begin + len(sound)] += sound[: len(audio) - begin]
        first, last = _above(sound, ROOM_RMS)  # where it stands above the room, at the level planted
        planted.append(Planted(name, take.group, float(at) + first / RATE, float(at) + last / RATE))
        if others:
            other = at_level(audible(others[int(rng.integers(len(others)))]), rng.uniform(-36, -12))
            here = (at + len(sound) / RATE * rng.uniform(0.5, 1.0) if rng.random() < overlap
                    else at + spacing * rng.uniform(0.55, 0.7))
            s = int(here * RATE)
            audio[s: s + len(other)] += other[: max(0, len(audio) - s)]
    write_media(folder / name, np.clip(audio, -1, 1), rate=RATE)
    return planted
