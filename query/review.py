"""Reviewing detections by score: how many of them are right, from a person's judgement of a sample.

The call-density workflow in one place.  ``rescore NAME --sample N --by-score`` splits the
detections into :data:`BINS` bins of equal width in calibrated probability, from the threshold to
1, and draws N spread evenly over the bins that hold any (a bin with fewer gives all it has), at
random with a fixed seed, so the same library gives the same sample.  A person writes yes or no in
each row's ``verdict``.  ``rescore NAME --estimate FILE`` reads the judged sample back: each bin's
precision (the share judged yes, with a Wilson 95 % interval), and the detections corrected for
it - the sum over bins of detections x precision, the number of true events the detector found.
A bin is stratified because precision rises with the score: one precision for all would be
dominated by the many low-scoring detections and mislead on the few high ones.

Rows are matched to bins by their score, not by a column, so a sample drawn at another threshold
still counts; a row without a verdict is not judged; anything else in ``verdict`` is a bad row.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from audioscan.query.errors import QueryError, quoted
from audioscan.query.formats import safe_cell, unsafe_cell
from audioscan.query.labels import bad_rows
from audioscan.query.moments import Moment

BINS = 4
SEED = 0
WILSON_Z = 1.96  # a 95 % interval
VERDICTS = {"yes": True, "y": True, "1": True, "true": True, "no": False, "n": False, "0": False, "false": False}
SAMPLE_COLUMNS = ["path", "start", "end", "score", "bin", "verdict"]


@dataclass(frozen=True)
class ScoreBin:
    low: float
    high: float

    def name(self) -> str:
        return f"{self.low:.2f}-{self.high:.2f}"


@dataclass(frozen=True)
class BinEstimate:
    """One bin's detections, the judged ones among them, and what they say."""

    bin: ScoreBin
    detections: int
    _: KW_ONLY
    judged: int
    right: int

    @property
    def precision(self) -> float | None:
        return self.right / self.judged if self.judged else None

    def interval(self) -> tuple[float, float] | None:
        """Wilson's 95 % interval of the precision (sound for the few judgements a bin gets)."""
        if not self.judged:
            return None
        n, p, z = self.judged, self.right / self.judged, WILSON_Z
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    @property
    def corrected(self) -> float | None:
        return None if self.precision is None else self.detections * self.precision


def score_bins(threshold: float, count: int = BINS) -> list[ScoreBin]:
    edges = np.linspace(threshold, 1.0, count + 1)
    return [ScoreBin(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def bin_of(score: float, bins: Sequence[ScoreBin]) -> int:
    """The bin a score falls in (the top bin holds 1, the first anything below its low edge)."""
    for number, item in enumerate(bins):
        if score < item.high:
            return number
    return len(bins) - 1


def review_sample(detections: Sequence[Moment], threshold: float, *, size: int, by_score: bool,
                  seed: int = SEED) -> list[tuple[ScoreBin, Moment]]:
    """``size`` detections to judge, spread evenly over the score bins that hold any (``by_score``),
    or drawn from all of them alike; each with its bin."""
    bins = score_bins(threshold) if by_score else score_bins(threshold, 1)
    members: list[list[int]] = [[] for _ in bins]
    for index, moment in enumerate(detections):
        members[bin_of(float(moment.score or 0.0), bins)].append(index)
    rng = np.random.default_rng(seed)
    filled = [number for number, held in enumerate(members) if held]
    out: list[tuple[ScoreBin, Moment]] = []
    for order, number in enumerate(filled):
        share = size // len(filled) + (1 if order < size % len(filled) else 0)
        chosen = rng.choice(members[number], min(share, len(members[number])), replace=False)
        out += [(bins[number], detections[int(i)]) for i in sorted(chosen)]
    return out


def sample_csv(sample: Sequence[tuple[ScoreBin, Moment]]) -> str:
    """The sample to judge: one row a detection, an empty ``verdict`` for yes or no."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SAMPLE_COLUMNS)
    for item, moment in sample:
        writer.writerow([safe_cell(moment.path), repr(float(moment.start)), repr(float(moment.end)),
                         f"{float(moment.score or 0.0):.6f}", item.name(), ""])
    return buffer.getvalue()


def read_verdicts(path: Path) -> list[tuple[float, bool]]:
    """(score, verdict) of every judged row of a sample file; every bad row is named as
    ``file:line: what`` (the first ten, then a count) and then nothing is read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise QueryError(f"cannot read {path} as UTF-8 text ({getattr(err, 'strerror', None) or err})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"score", "verdict"} <= {name.strip().lower() for name in reader.fieldnames}:
        raise QueryError(f"{path.name} has no 'score' and 'verdict' columns; give the review sample file "
                         "written for this detector, with yes or no in each verdict")
    judged, problems = [], []
    try:
        for row in reader:
            cells = {(key or "").strip().lower(): unsafe_cell((value or "").strip()) for key, value in row.items()}
            where = f"{path.name}:{reader.line_num}"
            verdict = cells.get("verdict", "").lower()
            if not verdict:
                continue
            try:
                score = float(cells.get("score", ""))
            except ValueError:
                problems.append(f"{where}: the score {quoted(cells.get('score', ''))} is not a number")
                continue
            if verdict not in VERDICTS or not math.isfinite(score):
                problems.append(f"{where}: the verdict {quoted(verdict)} is none of yes/no, y/n, 1/0, true/false")
                continue
            judged.append((score, VERDICTS[verdict]))
    except csv.Error as err:
        raise QueryError(f"{path.name}:{reader.line_num}: {err}; is it a CSV file?") from None
    if problems:
        raise bad_rows(problems)
    if not judged:
        raise QueryError(f"{path.name} holds no judged row; write yes or no in the verdict column of the rows "
                         "you checked")
    return judged


def estimate(detections: Sequence[Moment], threshold: float, *, judged: Sequence[tuple[float, bool]],
             by_score: bool = True) -> list[BinEstimate]:
    """Each bin's detections, judgements and precision (see the module docstring)."""
    bins = score_bins(threshold) if by_score else score_bins(threshold, 1)
    counts = np.zeros(len(bins), dtype=int)
    for moment in detections:
        counts[bin_of(float(moment.score or 0.0), bins)] += 1
    seen, right = np.zeros(len(bins), dtype=int), np.zeros(len(bins), dtype=int)
    for score, verdict in judged:
        number = bin_of(score, bins)
        seen[number] += 1
        right[number] += verdict
    return [BinEstimate(bin=item, detections=int(counts[k]), judged=int(seen[k]), right=int(right[k]))
            for k, item in enumerate(bins)]
