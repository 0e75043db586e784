"""A review of detections by score: a sample spread over the score bins, judged, gives each bin's
precision and the detections corrected for it - checked against a planted truth, and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audioscan.query.errors import QueryError
from audioscan.query.moments import Moment
from audioscan.query.review import BinEstimate, ScoreBin, estimate, read_verdicts, review_sample, sample_csv
from tests.query.helpers import cli, label_sirens


def _planted(count: int = 2000, seed: int = 5) -> tuple[list[Moment], dict[tuple[str, float], bool]]:
    """Detections scored 0.5-1 whose truth is planted: right with probability rising with the score."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.5, 1.0, count)
    right = rng.uniform(size=count) < (scores - 0.5) * 1.8  # 0 at the threshold, 0.9 at the top
    moments = [Moment(f"/m/f{i % 50}.wav", float(i), end=float(i) + 8, score=float(s), label="owl") for i,
               s in enumerate(scores)]
    return moments, {(m.path, m.start): bool(r) for m, r in zip(moments, right)}


def test_a_sample_judged_by_the_planted_truth_estimates_the_right_detections():
    moments, truth = _planted()
    sample = review_sample(moments, 0.5, size=200, by_score=True)
    assert len(sample) == 200 and {item.name() for item, _ in sample} == {"0.50-0.62", "0.62-0.75", "0.75-0.88",
                                                                          "0.88-1.00"}
    assert all(item.low <= m.score <= item.high for item, m in sample)
    judged = [(float(m.score), truth[(m.path, m.start)]) for _, m in sample]
    bins = estimate(moments, 0.5, judged=judged)
    actual = sum(truth.values())
    corrected = sum(b.corrected for b in bins)
    assert abs(corrected - actual) < 0.1 * actual, (corrected, actual)
    precisions = [b.precision for b in bins]
    assert precisions == sorted(precisions)  # precision rises with the score, as planted
    for b in bins:  # each bin's true precision lies in its interval
        members = [truth[(m.path, m.start)] for m in moments if b.bin.low <= m.score < b.bin.high]
        low, high = b.interval()
        assert low <= np.mean(members) <= high
    assert review_sample(moments, 0.5, size=200, by_score=True) == sample  # the same library gives the same sample


def test_wilson_intervals_stay_honest_at_the_edges():
    assert BinEstimate(ScoreBin(0.5, 1), detections=100, judged=0, right=0).interval() is None
    low, high = BinEstimate(ScoreBin(0.5, 1), detections=100, judged=10, right=10).interval()
    assert 0.69 < low < 0.73 and high == 1.0
    low, high = BinEstimate(ScoreBin(0.5, 1), detections=100, judged=10, right=0).interval()
    assert low == 0.0 and 0.27 < high < 0.31


def test_a_judged_file_with_bad_rows_names_every_one_and_one_with_none_judged_is_refused(tmp_path):
    moments, _ = _planted(20)
    text = sample_csv(review_sample(moments, 0.5, size=6, by_score=True)).splitlines()
    rows = [text[0]] + [line + verdict for line, verdict in zip(text[1:], ["yes", "maybe", "", "no", "2",
                                                                                     "n"])]
    (tmp_path / "judged.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(QueryError) as caught:
        read_verdicts(tmp_path / "judged.csv")
    assert "judged.csv:3" in str(caught.value) and "judged.csv:6" in str(caught.value)
    (tmp_path / "none.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(QueryError, match="no judged row"):
        read_verdicts(tmp_path / "none.csv")
    (tmp_path / "other.csv").write_text("path,start\na.wav,1\n")
    with pytest.raises(QueryError, match="no 'score' and 'verdict' columns"):
        read_verdicts(tmp_path / "other.csv")


def test_rescore_samples_by_score_then_estimates_from_the_judged_file(world):
    label_sirens(world)
    assert cli(world, "train", "siren").exit_code == 0
    sampled = cli(world, "rescore", "siren", "--threshold", "0", "--sample", "6", "--by-score", "--format", "csv",
                  "--out", str(world / "review.csv"))
    assert sampled.exit_code == 0, sampled.stderr
    lines = (world / "review.csv").read_text().splitlines()
    assert lines[0] == "path,start,end,score,bin,verdict" and 1 <= len(lines) - 1 <= 6
    judged = [lines[0]] + [line + ("yes" if number % 2 else "no") for number, line in enumerate(lines[1:])]
    (world / "review.csv").write_text("\n".join(judged) + "\n")
    result = cli(world, "rescore", "siren", "--threshold", "0", "--estimate", str(world / "review.csv"),
                 "--by-score", "--format", "json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["total"]["judged"] == len(lines) - 1 and len(found["bins"]) == 4
    assert found["total"]["right"] == sum(1 for number in range(len(lines) - 1) if number % 2)
    for args, words in ((["--by-score"], "goes with --sample or --estimate"),
                        (["--sample", "3", "--top", "2"], "--top go with lists of moments"),
                        (["--sample", "3", "--format", "json"], "writes the CSV a person fills in")):
        refused = cli(world, "rescore", "siren", *args)
        assert refused.exit_code == 2 and words in refused.stderr, (args, refused.stderr)
