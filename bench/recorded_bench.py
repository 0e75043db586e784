"""Moments on recorded foley: retrieval, where the sound is, and 3-shot detection, measured on
real takes (``../shared/data/foley-dev``, see ``bench/recorded.py``) rather than generated tones.

Groups are split by position in ``takes.csv``: every fourth group only lends distractors; of
every other group the last take is the query (never planted) and each other take is planted
twice, at different levels in different recordings of room noise (``--recordings`` of them,
1.5-3 minutes each), with a distractor after each take, on its tail in a third of cases.

* retrieval: P@5 and AP@10 of ``search QUERY -k 10`` (all queries, and queries under 2 s);
* where: the peak's error against the centre of the take found (median, p90) without and
  with ``--refine``, and the extent (offset - onset) against the take's length (median of
  the ratio; p90);
* detection: for each group with at least four planted takes, the first three planted are
  labelled and ``train`` runs on nothing else; at the default threshold (and at each of
  ``--thresholds``: a detector's probabilities are calibrated, so lower ones trade precision
  for recall), take recall and detection precision over the held-out takes, and detections per held-out take found
  (detections whose onset-offset overlaps it: one event should be one detection, > 1 means
  pieces); and the most take recall that cuts of each detector's own could reach at precision >= 0.4
  if they knew the answers (:func:`known_cuts`): what no threshold chosen from the labels can beat.

    nice .venv/bin/python bench/recorded_bench.py [--models logmel-v2 logmel-v2@2/0.5 BIRDNET] [--seeds 1]
        [--thresholds 0.3 0.2]

A model is a LOGMEL recipe or BIRDNET, with ``@WINDOW/HOP`` for another cut than its default.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.indexer.media.samples import write_media  # noqa: E402
from audioscan.models import logmel  # noqa: E402
from detect_bench import (_covers_shot, _quantiles, _ratio, average_precision, build_with, errors,  # noqa: E402
                          matches, pooled)
from recorded import RATE, Planted, Take, audible, plant, takes  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Instance(Planted):
    """A planted take under the name the measures of ``detect_bench`` read (``kind``)."""

    @property
    def kind(self) -> str:
        return self.group


def make_library(media: Path, recordings: int, seed: int) -> tuple[list[Instance], dict[str, Path]]:
    """Plant the pool (module docstring); returns the planted takes and one query clip per group."""
    rng = np.random.default_rng(seed)
    pool = takes()
    names = list(pool)
    distractors = [take for n, name in enumerate(names) if n % 4 == 3 for take in pool[name]]
    targets = [name for n, name in enumerate(names) if n % 4 != 3]
    queries: dict[str, Path] = {}
    chosen: list[Take] = []
    for name in targets:
        queries[name] = media.parent / "queries" / f"{name}.wav"
        write_media(queries[name], audible(pool[name][-1]), rate=RATE)
        chosen += pool[name][:-1] * 2
    order = rng.permutation(len(chosen))
    per_file = -(-len(chosen) // recordings)
    planted: list[Instance] = []
    for i in range(recordings):
        mine = [chosen[j] for j in order[i * per_file: (i + 1) * per_file]]
        seconds = 2.0 + 12.0 * 1.25 * len(mine) + 12.0
        found = plant(media, f"rec{i:02d}.{'flac' if i % 2 else 'wav'}", seconds, mine, distractors, rng)
        planted += [Instance(p.file, p.group, p.start, p.end) for p in found]
    return planted, queries


def evaluate(store: Path, planted: list[Instance], queries: dict[str, Path], refine: bool,
             thresholds: tuple[float, ...] = ()) -> dict:
    lib = audioscan.open(store)
    out: dict = {key: [] for key in ("p5", "ap10", "ap10_short", "error", "error_refined", "extent_ratio", "ranked")}
    for group, path in queries.items():
        relevant = sum(p.group == group for p in planted)
        hits = lib.search(path, k=10)
        found = matches(hits, planted, group)
        marks = [i is not None for i in found]
        out["p5"].append(sum(marks[:5]) / 5)
        out["ap10"].append(average_precision(marks, relevant, 10))
        if len(audible_of(path)) < 2 * RATE:
            out["ap10_short"].append(out["ap10"][-1])
        out["error"] += errors(hits, found, planted)
        out["extent_ratio"] += [(hit.offset - hit.onset) / (planted[i].end - planted[i].start)
                                for hit, i in zip(hits, found) if i is not None]
        if refine:
            refined = lib.search(path, k=10, refine=True)
            out["error_refined"] += errors(refined, matches(refined, planted, group), planted)
    counts = {"trained": 0, "tp": 0, "detected": 0, "held_out": 0, "pieces": 0,
              **{f"{key}@{t:g}": 0 for t in thresholds for key in ("tp", "detected")}}
    for group in queries:
        mine = [i for i, p in enumerate(planted) if p.group == group]
        if len(mine) < 4:
            continue
        shots = mine[:3]
        for i in shots:
            lib.labels.add(planted[i].file, planted[i].start, end=planted[i].end, label=f"bench-{group}")
        try:
            detector = lib.train(f"bench-{group}")
        except audioscan.UserError as err:
            print(f"  {group}: training failed: {err}")
            continue
        counts["trained"] += 1
        counts["held_out"] += len(mine) - len(shots)
        above = [h for h in detector.rescore() if not _covers_shot(h, planted, shots)]
        found = matches(above, planted, group, set(shots))
        counts["tp"] += sum(i is not None for i in found)
        counts["detected"] += len(above)
        every = [h for h in detector.rescore(0.0) if not _covers_shot(h, planted, shots)]
        out["ranked"].append([(h.score, i is not None) for h, i in zip(every, matches(every, planted, group,
                                                                                          set(shots)))])
        for t in thresholds:
            lower = [h for h in detector.rescore(t) if not _covers_shot(h, planted, shots)]
            counts[f"tp@{t:g}"] += sum(i is not None for i in matches(lower, planted, group, set(shots)))
            counts[f"detected@{t:g}"] += len(lower)
        for i in set(mine) - set(shots):  # detections beyond the first whose sound overlaps a held-out take
            take = planted[i]
            counts["pieces"] += max(0, sum(h.path.endswith(take.file) and h.onset < take.end and h.offset > take.start
                                           for h in above) - 1)
    return {**out, **counts}


def known_cuts(ranked: list[list[tuple[float, bool]]], held_out: int, floor: float = 0.4) -> tuple[float, float]:
    """(take recall, precision) of the best threshold of each detector's own, chosen knowing which of its
    detections (``ranked``: each detector's (probability, found a held-out take)) are right, at pooled
    precision >= ``floor``: for each price ``lam`` of a detection each detector keeps the cut that most
    exceeds ``lam`` per detection in takes found (the Lagrangian bound); the best such price that keeps
    the precision.  A default threshold chosen from the labels alone can only do worse."""
    best = (0.0, 0.0)
    for lam in np.linspace(0.01, 0.99, 99):
        tp = detected = 0
        for found in ranked:
            right = np.cumsum([ok for _, ok in sorted(found, key=lambda x: -x[0])])
            gain = np.r_[0.0, right - lam * np.arange(1, len(right) + 1)]
            keep = int(np.argmax(gain))
            tp, detected = tp + (int(right[keep - 1]) if keep else 0), detected + keep
        if detected and tp / detected >= floor and tp / max(held_out, 1) > best[0]:
            best = (tp / held_out, tp / detected)
    return best


def audible_of(path: Path) -> np.ndarray:
    from audioscan.indexer.media.decode import decode_all

    return decode_all(path, RATE)


def build(model: str, media: Path, store: Path) -> float:
    """Index ``media`` with ``model``: ``NAME[@WINDOW/HOP]``, a LOGMEL recipe or BIRDNET."""
    name, _, cut = model.partition("@")
    window, hop = (float(x) for x in cut.split("/")) if cut else (None, None)
    return build_with(name, media, store, window, hop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--models", nargs="+", default=[logmel.RECIPE_VERSION])
    parser.add_argument("--refine", action="store_true", help="also the peak error with --refine (model time)")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[],
                        help="also take recall / precision of the 3-shot detectors at these thresholds")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {model: [] for model in args.models}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            media = Path(tmp) / "media"
            planted, queries = make_library(media, args.recordings, seed)
            lengths = [p.end - p.start for p in planted]
            print(f"seed {seed}: {len(planted)} takes of {len(queries)} groups (median {np.median(lengths):.2f} s) in "
                  f"{args.recordings} recordings; {len(queries)} query takes", flush=True)
            for model in args.models:
                store = Path(tmp) / f"store-{model.replace('/', '-')}"
                took = build(model, media, store)
                print(f"  {model}: indexed in {took:.1f} s", flush=True)
                runs[model].append(evaluate(store, planted, queries, args.refine, tuple(args.thresholds)))
    results = {model: pooled(found) for model, found in runs.items()}
    mean = lambda values: f"{np.mean(values):.3f}" if values else "-"  # noqa: E731
    print(f"\n{'':40s}" + "".join(f"{model:>26s}" for model in results))
    for title, fn in (
        ("retrieval P@5", lambda r: mean(r["p5"])),
        ("retrieval AP@10", lambda r: mean(r["ap10"])),
        ("AP@10, queries under 2 s", lambda r: f"{mean(r['ap10_short'])} ({len(r['ap10_short'])})"),
        ("peak error, median / p90", lambda r: _quantiles(r["error"])),
        ("  with --refine", lambda r: _quantiles(r["error_refined"])),
        ("extent / take length, median / p90", lambda r: (f"{np.median(r['extent_ratio']):.2f} / "
                                                          f"{np.percentile(r['extent_ratio'], 90):.2f}")
         if r["extent_ratio"] else "-"),
        ("3-shot detectors trained", lambda r: str(r["trained"])),
        ("take recall at the default threshold", lambda r: _ratio(r["tp"], r["held_out"])),
        ("precision at the default threshold", lambda r: _ratio(r["tp"], r["detected"])),
        ("detections per held-out take", lambda r: _ratio(r["tp"] + r["pieces"], r["tp"])),
        ("known per-detector cuts: recall / precision", lambda r: "%.3f / %.3f" % known_cuts(r["ranked"],
                                                                                             r["held_out"])),
        *((f"recall / precision at threshold {t:g}",
           lambda r, t=t: f"{_ratio(r[f'tp@{t:g}'], r['held_out'])} / {_ratio(r[f'tp@{t:g}'], r[f'detected@{t:g}'])}")
          for t in args.thresholds),
    ):
        print(f"{title:40s}" + "".join(f"{fn(results[model]):>26s}" for model in results))


if __name__ == "__main__":
    main()
