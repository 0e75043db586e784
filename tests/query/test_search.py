import numpy as np
import pytest

from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.store.snapshot import stream_key, stream_parts
from audioscan.indexer.store.store import Store
from audioscan.models import registry
from audioscan.query.errors import QueryError
from audioscan.query.runs import Profile, Sounds
from audioscan.query.search import SetIndex, embed_clip
from tests.conftest import STREET_KITCHEN_FOREST, tone_file, write_scenes
from tests.indexer.helpers import build_once


def _moments(media, starts, ends, scores, k):
    """The first ``k`` moments of windows given best first (every window given is the profile)."""

    def profile(stream):
        mine = np.flatnonzero(media == stream_parts(stream)[0])
        mine = mine[np.argsort(starts[mine])]
        return Profile(starts[mine], ends[mine], ranks=scores[mine], scores=scores[mine])

    sounds = Sounds({1: "a", 2: "b"}, profile, spread=float(scores.std()))
    found = [sounds.offer(stream_key(int(m), 0), float(s)) for m, s in zip(media, starts)]
    return [moment for moment in found if moment is not None][:k]


def test_overlapping_windows_of_a_file_are_one_hit_with_the_best_score_whatever_k():
    media = np.array([1, 1, 2, 1, 1])
    starts = np.array([10.0, 11.0, 0.0, 30.0, 12.0])
    ends = starts + 8
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    hits = _moments(media, starts, ends, scores, k=3)
    assert [(h.path, h.score) for h in hits] == [("a", 0.9), ("b", 0.7), ("a", 0.6)]
    assert hits[0].start == 10.0 and hits[2].start == 30.0
    assert _moments(media, starts, ends, scores, k=2) == hits[:2]


def test_two_humps_are_two_moments_that_never_overlap():
    starts = np.arange(0.0, 13.0)  # two sounds: windows 0-4 and 8-12 score high, 5-7 low
    scores = np.r_[np.linspace(0.6, 0.9, 5), [0.3, 0.2, 0.3], np.linspace(0.9, 0.6, 5)]
    order = np.argsort(-scores, kind="stable")
    hits = _moments(np.ones(13, np.int64)[order], starts[order], starts[order] + 8, scores[order], k=5)
    assert len(hits) == 2
    assert hits[0].end <= hits[1].start or hits[1].end <= hits[0].start


@pytest.fixture
def sirens(tmp_path):
    """A library where only two files hold a siren, at known places."""
    root = write_scenes(tmp_path / "lib", {**STREET_KITCHEN_FOREST,
                                           "alarm.wav": (20, 16_000, "noise", [("siren", 0, 20)], 4)})
    build_once(tmp_path / "store", root)
    return tmp_path


def test_search_by_clip_finds_the_sirens_first(sirens):
    clip = tone_file(sirens / "clip.wav", 5, "siren", 44_100, seed=77)
    with Store.open(sirens / "store") as store:
        info = store.find_set()
        hits = SetIndex(store.snapshot(info, stats=True)).search(embed_clip(clip, info), k=4)
    assert {h.path.rsplit("/", 1)[1] for h in hits[:2]} == {"street.mkv", "alarm.wav"}
    street = next(h for h in hits if h.path.endswith("street.mkv"))
    assert street.start < 25 < street.end  # the hit covers the siren at 20-30 s
    assert all(-1.0 <= h.score <= 1.0001 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_long_clip_is_embedded_window_by_window_and_averaged(sirens, monkeypatch):
    clip = tone_file(sirens / "long.wav", 20, "siren", 16_000, seed=5)
    with Store.open(sirens / "store") as store:
        info = store.find_set()
    cuts = []
    from audioscan.models.logmel import LogMelModel
    real = LogMelModel.embed_pieces
    monkeypatch.setattr(LogMelModel, "embed_pieces",
                        lambda self, pieces, win: cuts.extend((len(s), o, win) for s, o in pieces)
                        or real(self, pieces, win))
    vector = embed_clip(clip, info)
    assert [(n, o.tolist(), w) for n, o, w in cuts] == [(20 * 16_000, list(range(0, 12 * 16_000 + 1, 16_000)),
                                                         8 * 16_000)]
    windows = np.stack([decode_all(clip, 16_000)[o: o + 8 * 16_000] for o in cuts[0][1]])
    assert np.allclose(vector, registry.load_model(info.model).embed(windows).mean(axis=0), atol=1e-4)


def test_a_range_outside_the_clip_is_a_sentence(sirens):
    clip = tone_file(sirens / "c.wav", 3, "siren", 16_000)
    with Store.open(sirens / "store") as store:
        info = store.find_set()
    with pytest.raises(QueryError, match="no audio between 10 s"):
        embed_clip(clip, info, start=10.0, end=12.0)
    with pytest.raises(QueryError, match="do not make a time range"):
        embed_clip(clip, info, start=2.0, end=1.0)
