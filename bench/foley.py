"""The synthetic foley library the detection benchmark plants and queries (see detect_bench.py).

Six kinds of short foley in many takes - varied pitch, length and a level from -20 to +6
dB - each played in a room of its own (reverb), planted in 1-3 minute recordings of room
tone that breathes, with distractors that land on the takes too, and written in six
containers.  Other takes of every kind, never planted, are the query clips.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from audioscan.indexer.media.samples import write_media

RATE = 48_000
KINDS = ("click", "knock", "whoosh", "tonal", "burst", "chirp")
CONTAINERS = (".wav", ".flac", ".mp3", ".mp4", ".mkv", ".ogg")


def event(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One dry take of ``kind``: its own pitch, length and level (-20 to +6 dB)."""
    pitch, stretch, level = rng.uniform(0.8, 1.25), rng.uniform(0.7, 2.2), 10 ** (rng.uniform(-20, 6) / 20)
    if kind == "click":  # a few sharp broadband ticks
        n = int(RATE * 0.6 * stretch)
        out = np.zeros(n)
        for at in rng.uniform(0, 0.5 * stretch, rng.integers(2, 5)):
            s = int(at * RATE)
            tick = rng.standard_normal(int(0.004 * RATE)) * np.exp(-np.arange(int(0.004 * RATE)) / 40)
            out[s: s + len(tick)] += tick[: n - s]
        sound = out * 0.6
    elif kind == "knock":  # damped low resonances, two or three strikes
        n = int(RATE * 0.9 * stretch)
        out = np.zeros(n)
        t = np.arange(int(0.25 * RATE)) / RATE
        body = sum(np.sin(2 * np.pi * f * pitch * t) * np.exp(-t * d) for f, d in ((140, 30), (310, 45), (520, 60)))
        for at in np.arange(0, 0.8 * stretch, 0.3 * stretch)[: rng.integers(2, 4)]:
            s = int(at * RATE)
            out[s: s + len(body)] += body[: n - s]
        sound = out * 0.35
    elif kind == "whoosh":  # noise through a sweeping band, rising then falling
        n = int(RATE * 1.8 * stretch)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        centre = 1200 * pitch
        spectrum *= np.exp(-((freqs - centre) / (centre * 0.8)) ** 2)
        sound = np.fft.irfft(spectrum, n) * np.sin(np.linspace(0, np.pi, n)) ** 2 * 3
    elif kind == "tonal":  # a struck bell: inharmonic partials, exponential decay
        n = int(RATE * 2.2 * stretch)
        t = np.arange(n) / RATE
        base = 440 * pitch
        sound = sum(a * np.sin(2 * np.pi * base * r * t) for a, r in ((0.5, 1), (0.3, 2.76), (0.2, 5.4)))
        sound = sound * np.exp(-t * 2.5 / stretch) * 0.6
    elif kind == "burst":  # white noise with a square or ramped envelope
        n = int(RATE * 0.8 * stretch)
        envelope = np.ones(n) if rng.random() < 0.5 else np.linspace(1, 0, n)
        sound = rng.standard_normal(n) * envelope * 0.25
    elif kind == "chirp":  # quick upward sweeps, repeated
        n = int(RATE * 1.2 * stretch)
        out = np.zeros(n)
        length = int(0.15 * RATE)
        t = np.arange(length) / RATE
        tone = np.sin(2 * np.pi * (2000 * pitch * t + 0.5 * 15000 * t ** 2)) * np.hanning(length) * 0.4
        for s in range(0, n - length, int(0.3 * RATE)):
            out[s: s + length] += tone
        sound = out
    else:
        raise ValueError(kind)
    return (sound * level).astype(np.float32)


def reverberate(dry: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``dry`` in a room of its own: an exponentially decaying noise tail (RT60 0.2-0.9 s) mixed
    in at a random wet level; the result is longer than the take by the tail."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.2, 0.9)
    t = np.arange(int(rt60 * RATE)) / RATE
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail /= np.sqrt((tail ** 2).sum())
    wet = fftconvolve(dry, tail)
    out = wet * rng.uniform(0.3, 1.0)
    out[: len(dry)] += dry
    return out.astype(np.float32)


def _band_noise(n: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, n)
    return out / (np.abs(out).max() + 1e-9)


def distractor(rng: np.random.Generator) -> np.ndarray:
    """A sound no query looks for, some of them close cousins of the kinds that are: a hummed
    tone, a rumble, a thump (a low damped hit), a rustle (high noise with a ragged envelope)."""
    kind = rng.choice(["hum", "rumble", "thump", "rustle"])
    n = int(RATE * rng.uniform(0.4, 3.0))
    t = np.arange(n) / RATE
    if kind == "hum":
        sound = np.sin(2 * np.pi * rng.uniform(150, 400) * t) * np.hanning(n) * 0.05
    elif kind == "rumble":
        sound = _band_noise(n, 20, 200, rng) * np.hanning(n) * 0.15
    elif kind == "thump":
        sound = _band_noise(n, 40, 400, rng) * np.exp(-t * rng.uniform(8, 25)) * 0.25
    else:
        ragged = np.repeat(rng.uniform(0, 1, n // 2400 + 1), 2400)[:n]
        sound = _band_noise(n, 3000, 12000, rng) * ragged * 0.08
    return (sound * 10 ** (rng.uniform(-12, 0) / 20)).astype(np.float32)


def room(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Room tone that breathes: pink hiss whose level drifts by +-6 dB, a mains hum, stretches of
    babble (band-passed noise at syllable rate), and distractors every ten seconds on average,
    which land on planted takes too."""
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    pink = np.fft.irfft(np.fft.rfft(white) / np.maximum(1, np.sqrt(np.arange(n // 2 + 1))), n)
    drift = np.interp(np.arange(n), np.linspace(0, n, int(seconds / 5) + 2), rng.uniform(-6, 6, int(seconds / 5) + 2))
    t = np.arange(n) / RATE
    out = pink / np.abs(pink).max() * 0.05 * 10 ** (drift / 20) + 0.01 * np.sin(2 * np.pi * 50 * t)
    for _ in range(int(seconds / 30)):  # babble: a few voices' worth of formant-band noise, syllable-rate
        s, length = int(rng.integers(0, n - RATE * 6)), int(RATE * rng.uniform(3, 6))
        tt = np.arange(length) / RATE
        voices = sum(_band_noise(length, f, f * 1.6, rng) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * tt
                     + rng.uniform(0, 6.3))) for f in rng.uniform(300, 2500, 3))
        out[s: s + length] += voices * np.hanning(length) * 0.02
    for _ in range(int(seconds / 10)):
        sound = distractor(rng)
        s = int(rng.integers(0, n - len(sound)))
        out[s: s + len(sound)] += sound
    return out.astype(np.float32)


@dataclasses.dataclass
class Planted:
    file: str
    kind: str
    start: float
    end: float


def make_library(folder: Path, recordings: int, takes: int, seed: int) -> tuple[list[Planted], dict[str, list[Path]]]:
    rng = np.random.default_rng(seed)
    pending = [kind for kind in KINDS for _ in range(takes)]
    rng.shuffle(pending)
    planted: list[Planted] = []
    per_file = -(-len(pending) // recordings)
    for i in range(recordings):
        seconds = float(rng.uniform(60, 180))
        audio = room(seconds, rng)
        name = f"rec{i:02d}{CONTAINERS[i % len(CONTAINERS)]}"
        slots = np.sort(rng.choice(np.arange(5, seconds - 10, 10), size=min(per_file, len(pending)), replace=False))
        for at in slots:
            kind = pending.pop()
            dry = event(kind, rng)
            sound = reverberate(dry, rng)
            s = int(at * RATE)
            audio[s: s + len(sound)] += sound[: len(audio) - s]
            planted.append(Planted(name, kind, float(at), float(at) + len(dry) / RATE))
        write_media(folder / name, np.clip(audio, -1, 1), rate=RATE)
    queries: dict[str, list[Path]] = {}
    for kind in KINDS:
        for q in range(3):
            clip = reverberate(event(kind, rng), rng)  # a take that was never planted
            padded = np.concatenate([np.zeros(int(0.1 * RATE)), clip, np.zeros(int(0.1 * RATE))]).astype(np.float32)
            padded += rng.standard_normal(len(padded)).astype(np.float32) * 0.003
            path = folder.parent / "queries" / f"{kind}-{q}.wav"
            write_media(path, padded, rate=RATE)
            queries.setdefault(kind, []).append(path)
    return planted, queries
