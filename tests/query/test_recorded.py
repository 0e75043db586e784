"""Moments on recorded foley (``../shared/data/foley-dev``): the same hits whatever -k, one
detection per planted take.  Two minutes of room noise hold eight real takes and their
distractors, indexed once with LOGMEL."""

from __future__ import annotations

import numpy as np
import pytest

import audioscan
from audioscan.indexer.media.samples import write_media
from bench.recorded import FOLEY_DEV, RATE, Planted, audible, plant, takes

pytestmark = pytest.mark.skipif(not (FOLEY_DEV / "takes.csv").exists(), reason="foley-dev is not here")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Four bird takes, two in each file, between a slam, a clonk and a conga; a fifth bird take
    (never planted) is the query."""
    root = tmp_path_factory.mktemp("recorded")
    pool = takes()
    birds, rng = pool["bird"], np.random.default_rng(34)
    others = [pool["knife"][0], pool["rip_"][0]]
    planted = plant(root / "media", "a.wav", 60, [birds[0], pool["slam"][0], birds[1], pool["clonk"][0]], others, rng)
    planted += plant(root / "media", "b.flac", 60, [birds[2], pool["conga_"][0], birds[3], pool["slam"][1]],
                     others, rng)
    write_media(root / "query.wav", audible(birds[4]), rate=RATE)
    lib = audioscan.open(root / "store")
    lib.build(root / "media")
    return lib, root, planted


def _shown(hits) -> list[tuple]:
    return [(h.path, h.start, h.end, h.score, h.peak, h.onset, h.offset) for h in hits]


def test_the_first_n_hits_of_any_k_are_the_hits_of_k_n(recorded):
    lib, root, _ = recorded
    every = _shown(lib.search(root / "query.wav", k=20))
    assert len(every) >= 4  # two minutes hold eight takes and eight distractors, some of them on the takes
    for k in range(1, len(every)):
        assert _shown(lib.search(root / "query.wav", k=k)) == every[:k], k
    capped = _shown(lib.search(root / "query.wav", k=2, per_file=1))
    assert [hit[0] for hit in capped] == sorted({hit[0] for hit in every}, key=[hit[0] for hit in every].index)
    assert capped[0] == every[0] and _shown(lib.search(root / "query.wav", k=1, per_file=1)) == capped[:1]
    spans = sorted(hit[:3] for hit in every)
    assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(spans, spans[1:]))  # moments never overlap


def _holding(found, take: Planted) -> list:
    return [hit for hit in found if hit.path.endswith(take.file) and hit.start <= take.centre <= hit.end]


def test_each_planted_take_is_one_detection(recorded):
    lib, _, planted = recorded
    shots = [take for take in planted if take.group == "bird" and take.file == "a.wav"]
    for take in shots:
        lib.labels.add(take.file, take.start, end=take.end, label="bird")
    detector = lib.train("bird")
    for threshold in (0.5, 0.0):
        found = detector.rescore(threshold)
        assert all(len(_holding(found, take)) <= 1 for take in planted), threshold
    held_out = [take for take in planted if take.group == "bird" and take.file == "b.flac"]
    assert all(len(_holding(detector.rescore(0.0)[:6], take)) == 1 for take in held_out)
