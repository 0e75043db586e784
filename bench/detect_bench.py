"""Detection benchmark: does search find the moment, where is the sound, and does a detector find most of them?

Offline and reproducible, and harder than the recordings it stands for is easy: six kinds
of short foley (clicks, knocks, whooshes, tonal hits, noise bursts, chirps) are
synthesised in many takes - varied pitch, length and a level from -20 to +6 dB - each
played in a room of its own (reverb, RT60 0.2-0.9 s) and planted in 1-3 minute
recordings of room tone that breathes (hiss drifting +-6 dB, hum, stretches of babble)
with distractors that land on the takes too (thumps, rustles, rumbles, hummed tones),
written as wav, flac, mp3, mp4 (AAC), mkv (Opus) and ogg.  Other takes of every kind,
never planted, are the query clips.  The library is indexed with 8 s / 1 s windows.
Its figures are upper bounds: real recorded foley is harder still.

* retrieval: P@5 and AP@10 of ``search CLIP`` (all queries, and those under 2 s);
* moments: the median span of search moments and of their onset-offset, and how far each
  found moment's ``peak`` lies from the centre of the take it found (median, 90th
  percentile; of the moments holding that centre, and of all that touch the take),
  without and with ``--refine``;
* 3-shot detection from positives only: three planted takes of a kind are labelled,
  ``train`` runs with nothing else, and the detector ranks the library
  (``rescore --threshold 0``): AP over the held-out takes, ties in that ranking, take
  recall and detection precision at the default threshold and at ``--precision 0.3``,
  and the gap between ``train``'s CV AP and the held-out AP.

Targets: peak error median <= 0.5 s and p90 <= 1.5 s without ``--refine``; no ties; take
recall >= 0.5 at precision >= 0.3 at the default threshold.

    .venv/bin/python bench/detect_bench.py [--recordings 20] [--seeds 1 2] [--models logmel-v2 BIRDNET] [-v]
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
from audioscan.models import birdnet, logmel, registry  # noqa: E402
from foley import KINDS, Planted, make_library  # noqa: E402

VERBOSE = "-v" in sys.argv


# ----------------------------------------------------------------------------- measures
def peak_of(hit) -> float:
    """Where a moment says its sound is (the middle of its span, for versions without ``peak``)."""
    peak = getattr(hit, "peak", None)
    return (hit.start + hit.end) / 2 if peak is None else peak


def extent_of(hit) -> float:
    """How long a moment says its sound lasts (its span, for versions without ``onset``)."""
    onset, offset = getattr(hit, "onset", None), getattr(hit, "offset", None)
    return hit.end - hit.start if onset is None else offset - onset


def rank_key(hit) -> float:
    """What a detection list is ordered by (the decision value where there is one)."""
    decision = getattr(hit, "decision", None)
    return hit.score if decision is None else decision


def matches(hits, planted: list[Planted], kind: str, skip: set[int] = frozenset()) -> list[int | None]:
    """For each hit, the planted take of ``kind`` it finds (each take counts once), or None."""
    found: set[int] = set()
    out = []
    for hit in hits:
        name = hit.path.rsplit("/", 1)[-1]
        match = next((i for i, p in enumerate(planted) if p.kind == kind and p.file == name and i not in found
                      and i not in skip and hit.start < p.end and hit.end > p.start), None)
        if match is not None:
            found.add(match)
        out.append(match)
    return out


def errors(hits, found: list[int | None], planted: list[Planted], holding: bool = True) -> list[float]:
    """Seconds from each hit's peak to the centre of the take it found: of the hits holding that
    centre (``holding``), or of every hit touching the take (one that grazes a take's edge
    with its span has mostly found something else)."""
    out = []
    for hit, i in zip(hits, found):
        if i is not None:
            centre = (planted[i].start + planted[i].end) / 2
            if not holding or hit.start <= centre <= hit.end:
                out.append(abs(peak_of(hit) - centre))
    return out


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


def refinable() -> bool:
    """Whether this version of audioscan has ``refine`` (the bench also runs on older checkouts)."""
    import inspect

    return "refine" in inspect.signature(audioscan.Library.search).parameters


def evaluate(store: Path, planted: list[Planted], queries: dict[str, list[Path]], normalize: str = "auto",
             detect: bool = True, model=None, refine: bool = True) -> dict:
    """Retrieval (and 3-shot detection) figures of one store; ``model``: its set (or sets, joined)."""
    lib = audioscan.open(store)
    refine = refine and refinable()
    out: dict = {key: [] for key in ("p5", "ap10", "ap10_short", "span", "extent", "error", "error_touching",
                                      "error_refined", "ap", "cv_gap", "det_error", "det_error_refined")}
    for kind, paths in queries.items():
        relevant = sum(p.kind == kind for p in planted)
        for path in paths:
            hits = lib.search(path, k=10, model=model)
            found = matches(hits, planted, kind)
            marks = [i is not None for i in found]
            out["p5"].append(sum(marks[:5]) / 5)
            out["ap10"].append(average_precision(marks, relevant, 10))
            if query_seconds(path) < 2.0:
                out["ap10_short"].append(out["ap10"][-1])
            out["span"] += [hit.end - hit.start for hit in hits]
            out["extent"] += [extent_of(hit) for hit in hits]
            out["error"] += errors(hits, found, planted)
            out["error_touching"] += errors(hits, found, planted, holding=False)
            if refine:
                refined = lib.search(path, k=10, refine=True, model=model)
                out["error_refined"] += errors(refined, matches(refined, planted, kind), planted)
    counts = {"trained": 0, "tp": 0, "detected": 0, "held_out": 0, "tp_p30": 0, "detected_p30": 0,
              "ties": 0, "ranked": 0}
    for kind in KINDS if detect else ():
        takes = [i for i, p in enumerate(planted) if p.kind == kind]
        shots = takes[:3]
        for i in shots:
            p = planted[i]
            lib.labels.add(p.file, p.start, end=p.end, label=f"bench-{kind}")
        try:
            det = (lib.detector([lib.train(f"bench-{kind}-{i}", label=f"bench-{kind}", normalize=normalize,
                                           model=m).name for i, m in enumerate(model)]) if isinstance(model, list)
                   else lib.train(f"bench-{kind}", normalize=normalize, model=model))
        except audioscan.UserError as err:
            print(f"  {kind}: training failed: {err}")
            continue
        counts["trained"] += 1
        held = len(takes) - len(shots)
        counts["held_out"] += held
        ranked = det.rescore(threshold=0.0)
        keys = [rank_key(h) for h in ranked]
        counts["ties"] += len(keys) - len(set(keys))
        counts["ranked"] += len(keys)
        ranked = [h for h in ranked if not _covers_shot(h, planted, shots)]
        ap = average_precision([i is not None for i in matches(ranked, planted, kind, set(shots))], held)
        out["ap"].append(ap)
        joint = isinstance(model, list)  # combined detectors have no cross-validation of their own
        if not joint:
            out["cv_gap"].append(abs(det.metrics["cv_ap"] - ap))
        if VERBOSE and not joint:
            print(f"    {kind}: held-out AP {ap:.3f}, CV AP {det.metrics['cv_ap']:.3f}, "
                  f"{det.metrics['positives']} positives, {det.metrics['negatives']} negatives")
        above = [h for h in det.rescore() if not _covers_shot(h, planted, shots)]  # the default threshold
        found = matches(above, planted, kind, set(shots))
        counts["tp"] += sum(i is not None for i in found)
        counts["detected"] += len(above)
        out["det_error"] += errors(above, found, planted)
        if refine:
            refined = [h for h in det.rescore(refine=True) if not _covers_shot(h, planted, shots)]
            out["det_error_refined"] += errors(refined, matches(refined, planted, kind, set(shots)), planted)
        try:
            strict = [] if joint else [h for h in det.rescore(precision=0.3) if not _covers_shot(h, planted, shots)]
        except audioscan.UserError:
            strict = []
        counts["tp_p30"] += sum(i is not None for i in matches(strict, planted, kind, set(shots)))
        counts["detected_p30"] += len(strict)
    return {**out, **counts}


def pooled(runs: list[dict]) -> dict:
    """The runs of several seeds as one: lists joined, counts added."""
    return {key: sum((run[key] for run in runs), [] if isinstance(runs[0][key], list) else 0) for key in runs[0]}


def _covers_shot(hit, planted: list[Planted], shots: list[int]) -> bool:
    name = hit.path.rsplit("/", 1)[-1]
    return any(planted[i].file == name and hit.start < planted[i].end and hit.end > planted[i].start for i in shots)


# ----------------------------------------------------------------------------- runs
def build_with(recipe: str, media: Path, store: Path, window: float | None = None, hop: float | None = None) -> float:
    """Index ``media`` with BIRDNET or one LOGMEL recipe (the registry's LOGMEL, pinned to it for this
    run), with the model's own cut or ``window``/``hop``."""
    if recipe == "BIRDNET":
        clock = time.perf_counter()
        audioscan.open(store).build(media, models=["BIRDNET"], window=window, hop=hop)
        return time.perf_counter() - clock
    pinned = dataclasses.replace(logmel.SPEC, recipe=recipe,
                                 build=lambda options, files: logmel.LogMelModel("cpu", recipe))
    original = registry._SPECS[logmel.NAME]
    registry._SPECS[logmel.NAME] = pinned
    try:
        clock = time.perf_counter()
        audioscan.open(store).build(media, window=window, hop=hop)
        return time.perf_counter() - clock
    finally:
        registry._SPECS[logmel.NAME] = original


def _ratio(tp: int, total: int) -> str:
    return f"{tp / total:.3f}" if total else "none"


def _quantiles(values: list[float]) -> str:
    return f"{np.median(values):.2f} / {np.percentile(values, 90):.2f} s ({len(values)})" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--takes", type=int, default=10, help="planted takes per kind")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=[logmel.RECIPE_VERSION], choices=[*logmel.RECIPES, "BIRDNET"],
                        help="LOGMEL recipes and/or BIRDNET (needs the extra birdnet)")
    parser.add_argument("--joint", action="store_true",
                        help="all models in one store, and search with them combined (query.joint) beside each alone")
    parser.add_argument("--no-refine", action="store_true", help="skip the --refine figures (slow for BIRDNET)")
    parser.add_argument("-v", action="store_true", help="per-kind figures")
    args = parser.parse_args()
    columns = [*args.models] + (["BIRDNET, zero-padded queries"] if "BIRDNET" in args.models else [])
    orders = [args.models, args.models[::-1]] if args.joint else []  # the first set carries the moments
    columns += [" + ".join(order) for order in orders]
    runs: dict[str, list[dict]] = {column: [] for column in columns}
    rates: dict[str, list[float]] = {column: [] for column in columns}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            media = Path(tmp) / "media"
            planted, queries = make_library(media, args.recordings, args.takes, seed)
            lengths = [p.end - p.start for p in planted]
            print(f"seed {seed}: {len(planted)} takes of {len(KINDS)} kinds (median {np.median(lengths):.2f} s, "
                  f"{sum(x < 2 for x in lengths)} under 2 s) in {args.recordings} recordings of 1-3 minutes; "
                  f"{sum(map(len, queries.values()))} held-out query takes")
            sets = {}
            for name in args.models:
                store = Path(tmp) / ("store" if args.joint else f"store-{name}")
                took = build_with(name, media, store)
                sets[name] = audioscan.open(store).status()["sets"][-1]  # the newest set: the one just built
                windows = sets[name]["windows"]
                rates[name].append(windows / took)
                print(f"  {name}: indexed {windows} windows in {took:.1f} s ({windows / took:.0f} windows/s)", flush=True)
                model = sets[name]["name"] if args.joint else None
                runs[name].append(evaluate(store, planted, queries, model=model, refine=not args.no_refine))
                if name == "BIRDNET":  # the short-input rule, measured: quiet noise against digital silence
                    level, birdnet.PAD_LEVEL = birdnet.PAD_LEVEL, 0.0
                    try:
                        runs["BIRDNET, zero-padded queries"].append(evaluate(store, planted, queries, detect=False,
                                                                             model=model, refine=False))
                    finally:
                        birdnet.PAD_LEVEL = level
            for order in orders:
                runs[" + ".join(order)].append(evaluate(Path(tmp) / "store", planted, queries, refine=False,
                                                        model=[sets[name]["name"] for name in order]))
    results = {recipe: pooled(found) for recipe, found in runs.items()}
    mean = lambda values: f"{np.mean(values):.3f}" if values else "-"  # noqa: E731
    median = lambda values: f"{np.median(values):.2f} s" if values else "-"  # noqa: E731
    print(f"\n{'':44s}" + "".join(f"{n:>30s}" for n in results))
    for title, fn in (
        ("build windows/s (wall, this machine)", lambda r: f"{np.mean(rates[r['name']]):.0f}" if rates[r["name"]] else "-"),
        ("retrieval P@5", lambda r: mean(r["p5"])),
        ("retrieval AP@10", lambda r: mean(r["ap10"])),
        ("AP@10, queries under 2 s", lambda r: f"{mean(r['ap10_short'])} ({len(r['ap10_short'])})"),
        ("search moment span, median", lambda r: median(r["span"])),
        ("search moment onset-offset, median", lambda r: median(r["extent"])),
        ("search peak error, median / p90", lambda r: _quantiles(r["error"])),
        ("  of every hit touching a take", lambda r: _quantiles(r["error_touching"])),
        ("  with refine", lambda r: _quantiles(r["error_refined"])),
        ("3-shot detectors trained", lambda r: f"{r['trained']}/{len(KINDS) * len(args.seeds)}"),
        ("3-shot detection AP (held-out)", lambda r: mean(r["ap"])),
        ("precision at the default threshold", lambda r: _ratio(r["tp"], r["detected"])),
        ("take recall at the default threshold", lambda r: _ratio(r["tp"], r["held_out"])),
        ("detections per kind at the default", lambda r: f"{r['detected'] / max(r['trained'], 1):.1f}"),
        ("precision with --precision 0.3", lambda r: _ratio(r["tp_p30"], r["detected_p30"])),
        ("take recall with --precision 0.3", lambda r: _ratio(r["tp_p30"], r["held_out"])),
        ("detection peak error, median / p90", lambda r: _quantiles(r["det_error"])),
        ("  with refine", lambda r: _quantiles(r["det_error_refined"])),
        ("tied ranks in rescore --threshold 0", lambda r: f"{r['ties']} of {r['ranked']}"),
        ("|CV AP - held-out AP|, median", lambda r: f"{np.median(r['cv_gap']):.3f}" if r["cv_gap"] else "-"),
    ):
        print(f"{title:44s}" + "".join(f"{fn({**results[n], 'name': n}):>30s}" for n in results))


if __name__ == "__main__":
    main()
