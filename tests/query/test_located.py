"""Moments at the resolution of the sound: where it is, one sound per moment, ranks without ties."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import audioscan
from audioscan.indexer.media.samples import write_media
from audioscan.query.clips import clip_span
from audioscan.query.formats import render
from audioscan.query.moments import Moment

RATE = 16_000


def tone(seconds: float = 1.0, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t))).astype(np.float32)


def room(seconds: float, seed: int) -> np.ndarray:
    return (0.01 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def planted(seconds: float, at: list[float], seed: int) -> np.ndarray:
    audio = room(seconds, seed)
    for start in at:
        audio[int(start * RATE): int(start * RATE) + RATE] += tone()
    return audio


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Tones of 1 s: one at 23.4 s of a minute of room tone, two 10 s apart in another, and three
    in a third file, long enough to give a detector its negatives, to train it from."""
    root = tmp_path_factory.mktemp("located")
    write_media(root / "media" / "one.wav", planted(60, [23.4], 1), rate=RATE)
    write_media(root / "media" / "two.flac", planted(60, [20.0, 30.0], 2), rate=RATE)
    write_media(root / "media" / "train.wav", planted(300, [10.0, 40.0, 70.0], 3), rate=RATE)
    write_media(root / "query.wav", np.concatenate([room(0.2, 4), tone() + room(1, 5), room(0.2, 6)]), rate=RATE)
    lib = audioscan.open(root / "store")
    lib.build(root / "media")
    return lib, root


def test_a_planted_one_second_tone_is_found_with_its_peak_within_half_a_second(library):
    lib, root = library
    for refine in (False, True):
        hit = next(h for h in lib.search(root / "query.wav", k=5, refine=refine) if h.path.endswith("one.wav"))
        assert abs(hit.peak - 23.9) <= 0.5, (refine, hit)
        assert hit.start <= hit.onset <= hit.peak <= hit.offset <= hit.end
        assert hit.onset <= 23.9 <= hit.offset


def test_a_moment_never_spans_two_sounds_ten_seconds_apart(library):
    lib, root = library
    hits = [h for h in lib.search(root / "query.wav", k=10) if h.path.endswith("two.flac")]
    holding = [[at for at in (20.5, 30.5) if h.start <= at <= h.end] for h in hits]
    assert all(len(held) <= 1 for held in holding)
    assert {at for held in holding for at in held} == {20.5, 30.5}  # each is a moment of its own
    peaks = sorted(h.peak for h in hits[:2])
    assert abs(peaks[0] - 20.5) <= 0.5 and abs(peaks[1] - 30.5) <= 0.5


def test_detections_rank_by_decision_value_without_ties_and_split_the_two_sounds(library):
    lib, _ = library
    for at in (10.0, 40.0, 70.0):
        lib.labels.add("train.wav", at, end=at + 1, label="beep")
    detector = lib.train("beep", negatives="labelled")
    ranked = detector.rescore(threshold=0.0)
    decisions = [h.decision for h in ranked]
    assert decisions == sorted(decisions, reverse=True) and len(set(decisions)) == len(decisions)
    scores = [h.score for h in ranked]
    assert scores == sorted(scores, reverse=True)  # the probability never disagrees with the order
    windows = detector.windows()
    vectors, table = lib.vectors()
    stored = {(p, s): v.tobytes() for p, s, v in zip(table.column("path").to_pylist(),
                                                     table.column("start").to_pylist(),
                                                    vectors)}
    # Windows whose stored vectors differ almost never tie: float16 vectors scored in float32 can meet in
    # one value now and then (here one pair in ~400), never a stretch of them as calibrated probabilities do.
    distinct = len({stored[(w.path, w.start)] for w in windows})
    assert len({w.decision for w in windows}) >= distinct - max(1, distinct // 200)
    two = [h for h in ranked if h.path.endswith("two.flac")]
    assert all(not (h.start <= 20.5 <= h.end and h.start <= 30.5 <= h.end) for h in two)
    peaks = sorted(h.peak for h in two[:2])  # its two best moments are the two tones, each placed
    assert abs(peaks[0] - 20.5) <= 0.5 and abs(peaks[1] - 30.5) <= 0.5
    found = detector.rescore()
    centres = {"one.wav": [23.9], "two.flac": [20.5, 30.5], "train.wav": [10.5, 40.5, 70.5]}
    assert {h.path.rsplit("/", 1)[1] for h in found} >= {"train.wav"}
    assert all(min(abs(h.peak - c) for c in centres[h.path.rsplit("/", 1)[1]]) <= 0.5 for h in found)
    refined = detector.rescore(refine=True, top=3)
    assert [(h.path, h.start, h.end) for h in refined] == [(h.path, h.start, h.end) for h in found[:3]]
    assert all(h.start <= h.onset <= h.peak <= h.offset <= h.end and abs(h.peak - c.peak) <= 1.0
               for h, c in zip(refined, found))


MOMENT = Moment("/media/a b.mkv", 4.0, end=20.0, score=0.875, label="door", fps=25.0, peak=12.36, onset=11.9,
                offset=12.8, decision=1.25)


def test_every_text_format_carries_the_peak_where_it_has_a_field_for_it():
    rows = list(csv.DictReader(io.StringIO(render("csv", [MOMENT]))))
    assert rows[0]["peak"] == "12.360" and rows[0]["onset"] == "11.900" and rows[0]["decision"] == "1.2500"
    assert json.loads(render("json", [MOMENT]))[0]["peak"] == 12.36
    assert json.loads(render("ndjson", [MOMENT]))["offset"] == 12.8
    raven = [line.split("\t") for line in render("raven", [MOMENT]).splitlines()]
    assert raven[1][raven[0].index("Peak Time (s)")] == "12.360000"
    assert "peak 00:00:12:09" in render("edl", [MOMENT])  # 12.36 s at 25 fps
    markers = list(csv.DictReader(io.StringIO(render("markers", [MOMENT]))))
    assert markers[0]["Description"] == "score 0.88 peak 00:00:12:09"
    assert render("audacity", [MOMENT]) == "4.000000\t20.000000\tdoor 0.88\n"  # no field for it


def test_clips_centre_on_the_peak_and_tight_cuts_the_sound():
    assert clip_span(MOMENT, 8.0, pad=0.0) == pytest.approx((8.36, 16.36))
    assert clip_span(MOMENT, None, pad=0.5, tight=True) == pytest.approx((11.4, 13.3))
    assert clip_span(MOMENT, None, pad=0.0) == (4.0, 20.0)
    plain = Moment("/media/x.wav", 4.0, end=20.0, duration=14.0)  # no peak known: the middle, inside the file
    assert clip_span(plain, 8.0, pad=0.0) == (6.0, 14.0) and clip_span(plain, None, pad=0.0, tight=True) == (4.0, 14.0)


def test_a_hit_beside_the_query_window_is_placed_on_its_own_sound_not_on_the_query(library):
    lib, _ = library
    hits = lib.search(("two.flac", 20.5), k=5)  # the stored window around the first tone
    second = next(h for h in hits if h.path.endswith("two.flac"))
    assert abs(second.peak - 30.5) <= 0.5


def _profile(sound: tuple[float, float], beside: tuple[float, float] | None = None):
    """Scores of 8 s windows every 1 s over 30-70 s: a window holding the sound scores by how
    much of it it holds (0.76 whole), one holding ``beside`` (something like it) 0.68, others 0.1."""
    starts = np.arange(30.0, 70.0)
    ends = starts + 8.0
    held = (np.minimum(ends, sound[1]) - np.maximum(starts, sound[0])).clip(0) / (sound[1] - sound[0])
    ranks = 0.1 + 0.66 * held
    if beside is not None:
        ranks = np.where((starts <= beside[0]) & (ends >= beside[1]), np.maximum(ranks, 0.68), ranks)
    return starts, ends, ranks


def test_the_peak_is_where_the_windows_holding_the_sound_meet_not_among_look_alikes_beside_it():
    from audioscan.query.runs import locate

    starts, ends, ranks = _profile((55.0, 56.3), beside=(49.0, 50.0))  # a knock-like thump 6 s before
    peak, onset, offset = locate(starts, ends, ranks=ranks, background=0.1)
    assert abs(peak - 55.65) <= 0.5
    assert onset <= peak <= offset
    starts, ends, ranks = _profile((47.2, 48.2))
    assert abs(locate(starts, ends, ranks=ranks, background=0.1)[0] - 47.7) <= 0.25  # between the window steps
    flat = np.full(len(starts), 0.1)  # nothing above the level around it: the middle of the windows
    assert locate(starts, ends, ranks=flat, background=0.1)[0] == pytest.approx((starts.max() + ends.min()) / 2)
