"""Detection benchmark: does search find the moment, and does a detector tell the truth?

Offline and reproducible: short events of six kinds (clicks, knocks, whooshes, tonal
hits, noise bursts, chirps) are synthesised in several takes each - varied pitch,
length and level - and planted among room noise (with distracting sounds) in
recordings of 1-3 minutes, written as wav, flac, mp3, mp4 (AAC), mkv (Opus) and ogg.
Other takes of every kind, never planted, are the query clips.  The library is
indexed with the default 8 s / 1 s windows, once with each LOGMEL recipe, and the
benchmark prints, for logmel-v1 with the first release's per-file z-scores (before),
and for each recipe as ``train`` does it now:

* retrieval: P@5 and AP@10 of ``search CLIP`` (all queries, and those under 2 s);
* 3-shot detection from positives only: three planted takes of a kind are labelled,
  ``train`` runs with nothing else, and the detector ranks the library
  (``rescore --threshold 0``): AP over the held-out takes, precision and recall at
  the default threshold 0.5, and the gap between ``train``'s CV AP and that AP.

Targets: AP@10 at least doubles against logmel-v1; positives-only training works on
every kind; |CV AP - held-out AP| <= 0.15; precision >= 0.3 with recall >= 0.6 at 0.5.

    .venv/bin/python bench/detect_bench.py [--recordings 14] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.indexer.media.samples import write_media  # noqa: E402
from audioscan.models import logmel, registry  # noqa: E402

RATE = 48_000
VERBOSE = "-v" in sys.argv
KINDS = ("click", "knock", "whoosh", "tonal", "burst", "chirp")
CONTAINERS = (".wav", ".flac", ".mp3", ".mp4", ".mkv", ".ogg")


# ----------------------------------------------------------------------------- sounds
def event(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One take of ``kind``: its own pitch, length and level."""
    pitch, stretch, level = rng.uniform(0.8, 1.25), rng.uniform(0.7, 2.2), 10 ** (rng.uniform(-6, 6) / 20)
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


def room(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Room noise: pink-ish hiss, a mains hum, and a few distracting sounds no query looks for."""
    n = int(seconds * RATE)
    white = rng.standard_normal(n)
    pink = np.fft.irfft(np.fft.rfft(white) / np.maximum(1, np.sqrt(np.arange(n // 2 + 1))), n)
    t = np.arange(n) / RATE
    out = pink / np.abs(pink).max() * 0.05 + 0.01 * np.sin(2 * np.pi * 50 * t)
    for _ in range(int(seconds / 20)):  # distractors: a hummed tone or a soft rumble
        s, length = rng.integers(0, n - RATE * 3), int(RATE * rng.uniform(1, 3))
        tt = np.arange(length) / RATE
        tone = np.sin(2 * np.pi * rng.uniform(150, 400) * tt) * np.hanning(length) * 0.05
        out[s: s + length] += tone
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
            sound = event(kind, rng)
            s = int(at * RATE)
            audio[s: s + len(sound)] += sound[: len(audio) - s]
            planted.append(Planted(name, kind, float(at), float(at) + len(sound) / RATE))
        write_media(folder / name, np.clip(audio, -1, 1), RATE)
    queries: dict[str, list[Path]] = {}
    for kind in KINDS:
        for q in range(3):
            clip = event(kind, rng)  # a take that was never planted
            padded = np.concatenate([np.zeros(int(0.1 * RATE)), clip, np.zeros(int(0.1 * RATE))]).astype(np.float32)
            padded += rng.standard_normal(len(padded)).astype(np.float32) * 0.003
            path = folder.parent / "queries" / f"{kind}-{q}.wav"
            write_media(path, padded, RATE)
            queries.setdefault(kind, []).append(path)
    return planted, queries


# ----------------------------------------------------------------------------- measures
def _hits_relevance(hits, planted: list[Planted], kind: str, skip: set[int] = frozenset()) -> list[bool]:
    """Whether each hit covers a not-yet-found planted take of ``kind`` (each take counts once)."""
    found: set[int] = set()
    marks = []
    for hit in hits:
        name = hit.path.rsplit("/", 1)[-1]
        match = next((i for i, p in enumerate(planted) if p.kind == kind and p.file == name and i not in found
                      and i not in skip and hit.start < p.end and hit.end > p.start), None)
        if match is not None:
            found.add(match)
        marks.append(match is not None)
    return marks


def average_precision(marks: list[bool], relevant: int, cut: int | None = None) -> float:
    marks = marks[:cut] if cut else marks
    denominator = min(relevant, cut) if cut else relevant
    if not denominator:
        return 0.0
    hits, total = 0, 0.0
    for i, mark in enumerate(marks, start=1):
        if mark:
            hits += 1
            total += hits / i
    return total / denominator


def query_seconds(path: Path) -> float:
    from audioscan.indexer.media.decode import decode_all

    audio = decode_all(path, 16_000)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return (loud[-1] - loud[0]) / 16_000 if len(loud) else 0.0


def evaluate(store: Path, planted: list[Planted], queries: dict[str, list[Path]], normalize: str = "auto") -> dict:
    lib = audioscan.open(store)
    p5, ap10, ap10_short = [], [], []
    for kind, paths in queries.items():
        relevant = sum(p.kind == kind for p in planted)
        for path in paths:
            marks = _hits_relevance(lib.search(path, k=10), planted, kind)
            p5.append(sum(marks[:5]) / 5)
            ap10.append(average_precision(marks, relevant, 10))
            if query_seconds(path) < 2.0:
                ap10_short.append(ap10[-1])
    detection = {"trained": 0, "ap": [], "cv_gap": [], "tp": 0, "detected": 0, "held_out": 0, "recalled": 0}
    for kind in KINDS:
        takes = [i for i, p in enumerate(planted) if p.kind == kind]
        shots = takes[:3]
        for i in shots:
            p = planted[i]
            lib.labels.add(p.file, p.start, p.end, f"bench-{kind}")
        try:
            det = lib.train(f"bench-{kind}", normalize=normalize)
        except audioscan.UserError as err:
            print(f"  {kind}: training failed: {err}")
            continue
        detection["trained"] += 1
        held = len(takes) - len(shots)
        ranked = det.rescore(threshold=0.0)
        marks = _hits_relevance(ranked, planted, kind, skip=set(shots))
        keep = [not _covers_shot(h, planted, shots) for h in ranked]
        marks = [m for m, k in zip(marks, keep) if k]
        ap = average_precision(marks, held)
        detection["ap"].append(ap)
        detection["cv_gap"].append(abs(det.metrics["cv_ap"] - ap))
        if VERBOSE:
            print(f"    {kind}: held-out AP {ap:.3f}, CV AP {det.metrics['cv_ap']:.3f}, "
                  f"{det.metrics['positives']} positives, {det.metrics['negatives']} negatives")
        above = [h for h in det.rescore(threshold=0.5) if not _covers_shot(h, planted, shots)]
        found = _hits_relevance(above, planted, kind, skip=set(shots))
        detection["tp"] += sum(found)
        detection["detected"] += len(above)
        detection["held_out"] += held
        detection["recalled"] += sum(found)
    return {"p5": p5, "ap10": ap10, "ap10_short": ap10_short, **detection}


def pooled(runs: list[dict]) -> dict:
    """The runs of several seeds as one: lists joined, counts added."""
    return {key: sum((run[key] for run in runs), [] if isinstance(runs[0][key], list) else 0) for key in runs[0]}


def _covers_shot(hit, planted: list[Planted], shots: list[int]) -> bool:
    name = hit.path.rsplit("/", 1)[-1]
    return any(planted[i].file == name and hit.start < planted[i].end and hit.end > planted[i].start for i in shots)


# ----------------------------------------------------------------------------- runs
def build_with(recipe: str, media: Path, store: Path) -> float:
    """Index ``media`` with one LOGMEL recipe (the registry's LOGMEL, pinned to it for this run)."""
    pinned = dataclasses.replace(logmel.SPEC, recipe=recipe,
                                 build=lambda options, files: logmel.LogMelModel("cpu", recipe))
    original = registry._SPECS[logmel.NAME]
    registry._SPECS[logmel.NAME] = pinned
    try:
        clock = time.perf_counter()
        audioscan.open(store).build(media)
        return time.perf_counter() - clock
    finally:
        registry._SPECS[logmel.NAME] = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--takes", type=int, default=10, help="planted takes per kind")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("-v", action="store_true", help="per-kind figures")
    args = parser.parse_args()
    # "before": the first recipe with the first release's per-file z-scores; then each recipe as trained now.
    columns = {"v1 per-file": ("logmel-v1", "file"), "logmel-v1": ("logmel-v1", "auto"),
               "logmel-v2": ("logmel-v2", "auto")}
    runs: dict[str, list[dict]] = {column: [] for column in columns}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            media = Path(tmp) / "media"
            planted, queries = make_library(media, args.recordings, args.takes, seed)
            lengths = [p.end - p.start for p in planted]
            print(f"seed {seed}: {len(planted)} takes of {len(KINDS)} kinds (median {np.median(lengths):.2f} s, "
                  f"{sum(x < 2 for x in lengths)} under 2 s) in {args.recordings} recordings of 1-3 minutes; "
                  f"{sum(map(len, queries.values()))} held-out query takes")
            for recipe in logmel.RECIPES:
                took = build_with(recipe, media, Path(tmp) / f"store-{recipe}")
                print(f"  {recipe}: indexed in {took:.1f} s")
            for column, (recipe, normalize) in columns.items():
                store = Path(tmp) / f"store-{recipe}"
                runs[column].append(evaluate(store, planted, queries, normalize))
                audioscan.open(store).labels.remove([label.id for label in audioscan.open(store).labels.list()])
    results = {recipe: pooled(found) for recipe, found in runs.items()}
    names = list(results)
    mean = lambda values: f"{np.mean(values):.3f}" if values else "-"  # noqa: E731
    print(f"\n{'':36s}" + "".join(f"{n:>12s}" for n in names))
    for title, fn in (
        ("retrieval P@5", lambda r: mean(r["p5"])),
        ("retrieval AP@10", lambda r: mean(r["ap10"])),
        ("AP@10, queries under 2 s", lambda r: f"{mean(r['ap10_short'])} ({len(r['ap10_short'])})"),
        ("3-shot detectors trained", lambda r: f"{r['trained']}/{len(KINDS) * len(args.seeds)}"),
        ("3-shot detection AP (held-out)", lambda r: mean(r["ap"])),
        ("precision at 0.5", lambda r: f"{r['tp'] / r['detected']:.3f}" if r["detected"] else "none"),
        ("recall at 0.5", lambda r: f"{r['recalled'] / r['held_out']:.3f}" if r["held_out"] else "-"),
        ("|CV AP - held-out AP|, median", lambda r: f"{np.median(r['cv_gap']):.3f}" if r["cv_gap"] else "-"),
        ("|CV AP - held-out AP|, max", lambda r: f"{np.max(r['cv_gap']):.3f}" if r["cv_gap"] else "-"),
    ):
        print(f"{title:36s}" + "".join(f"{fn(results[n]):>12s}" for n in names))
    old, new = np.mean(results["v1 per-file"]["ap10"]), np.mean(results["logmel-v2"]["ap10"])
    print(f"\nAP@10 new / old = {new / max(old, 1e-9):.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
