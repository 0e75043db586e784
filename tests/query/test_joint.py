import json
import numpy as np
import pytest

import audioscan
from audioscan.indexer.store.store import Store
from audioscan.query.joint import _range_max, joint_scores, onto, standardised
from audioscan.query.search import SetIndex
from tests.conftest import STREET_KITCHEN_FOREST, tone_file, write_scenes
from tests.indexer.helpers import build_once


class _Windows:
    """The parts of a SetIndex that ``onto`` reads."""

    def __init__(self, media_ids, starts, ends, channels=None) -> None:
        self.media_ids, self.starts, self.ends = (np.asarray(a, dtype=float) for a in (media_ids, starts, ends))
        self.media_ids = self.media_ids.astype(np.int64)
        self.channels = np.zeros(len(self.starts), np.int16) if channels is None else np.asarray(channels, np.int16)
        self.streams = self.media_ids * 256 + self.channels

    def __len__(self) -> int:
        return len(self.starts)


def test_each_window_takes_the_best_of_the_other_sets_windows_centred_within_it():
    long = _Windows([1, 1, 1, 2], [0, 1, 2, 0], [8, 9, 10, 8])
    short = _Windows([1, 1, 1, 1, 1, 3], [0, 3, 6, 7, 8.5, 0], [3, 6, 9, 10, 11.5, 3])  # centres 1.5 4.5 7.5 8.5 10
    scores = np.array([0.1, 0.9, 0.2, 0.7, 0.3, 5.0])
    mapped = onto(long, short, scores=scores)
    assert mapped[:3].tolist() == [0.9, 0.9, 0.9]  # centres 1.5-7.5, 1.5-8.5 and 4.5-8.5 lie within them
    assert np.isnan(mapped[3])  # file 2 has no windows in the other set
    shifted = onto(_Windows([1], [8, ], [11.5]), short, scores=scores)
    assert shifted.tolist() == [0.7]  # centres 8.5 and 10 lie within 8-11.5; 7.5 does not


def test_range_maxima_match_the_plain_ones():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(500)
    lo = rng.integers(0, 499, 300)
    hi = np.minimum(lo + rng.integers(1, 50, 300), 500)
    assert np.array_equal(_range_max(values, lo, hi), [values[a:b].max() for a, b in zip(lo, hi)])


def test_the_set_that_singles_windows_out_weighs_more():
    from audioscan.query.joint import _mean, _weights

    peaked, flat = standardised(np.array([0.0, 0.0, 0.0, 1.0])), standardised(np.array([0.0, 1.0, 0.0, 1.0]))
    weights = _weights([peaked, flat])
    assert weights[0] > weights[1] > 0
    both = _mean(np.stack([peaked, flat]), weights)
    assert np.argmax(both) == 3 and _mean(np.array([[1.0, 2.0], [np.nan, 4.0]]), np.ones(2)).tolist() == [1.0, 3.0]


def test_standardised_scores_have_no_scale_and_a_flat_set_adds_nothing():
    assert np.allclose(standardised(np.array([1.0, 2.0, 3.0])) * 2, standardised(np.array([10.0, 20.0, 30.0])) * 2)
    assert standardised(np.full(4, 0.7)).tolist() == [0.0] * 4


@pytest.fixture
def two_cuts(tmp_path):
    """One library indexed at two cuts (8 s / 1 s and 2 s / 0.5 s): two sets of one store."""
    from audioscan.indexer.media.windows import WindowSpec

    root = write_scenes(tmp_path / "lib", STREET_KITCHEN_FOREST)
    build_once(tmp_path / "store", root)
    build_once(tmp_path / "store", root, windows=WindowSpec(2.0, 0.5))
    return tmp_path


def test_search_with_two_sets_combines_them_on_the_first_sets_windows(two_cuts):
    clip = tone_file(two_cuts / "clip.wav", 5, "siren", 44_100, seed=77)
    lib = audioscan.open(two_cuts / "store")
    names = [info.name for info in lib.sets()]
    assert len(names) == 2
    joint = lib.search(clip, k=3, model=names)
    assert joint[0].path.endswith("street.mkv") and 14 < joint[0].peak < 36
    with Store.open(two_cuts / "store") as store:
        indexes = [SetIndex.of(store.snapshot(store.find_set(n), stats=True)) for n in names]
    from audioscan.query.search import embed_clip

    queries = [embed_clip(clip, index.info) for index in indexes]
    scores = joint_scores(indexes, queries)
    first, second = (standardised(index.exact_scores(q).astype(np.float64)) for index, q in zip(indexes, queries))
    # Each set weighted by its best window's standardised score.
    expected = (first.max() * first + second.max() * onto(indexes[0], indexes[1],
                                                          scores=second)) / (first.max() + second.max())
    assert np.allclose(scores, expected, atol=1e-5)
    assert joint[0].score == pytest.approx(float(scores.max()), abs=1e-5)
    alone = lib.search(clip, k=3, model=names[0])
    assert [h.path for h in alone][:1] == [h.path for h in joint][:1]


def test_the_same_set_twice_is_one_sentence(two_cuts):
    clip = tone_file(two_cuts / "clip.wav", 5, "siren", 44_100, seed=77)
    lib = audioscan.open(two_cuts / "store")
    name = lib.sets()[0].name
    with pytest.raises(audioscan.UserError, match="same embedding set twice"):
        lib.search(clip, model=[name, name])


def test_the_command_line_combines_sets_named_with_repeated_model(two_cuts):
    import json

    from tests.test_cli import run

    clip = tone_file(two_cuts / "clip.wav", 5, "siren", 44_100, seed=77)
    names = [info.name for info in audioscan.open(two_cuts / "store").sets()]
    args = ["search", str(clip), "-k", "2", "--format", "json"]
    joint = json.loads(run(*args, "-m", names[0], "-m", names[1], store=two_cuts / "store").stdout)
    alone = json.loads(run(*args, "-m", names[0], store=two_cuts / "store").stdout)
    assert joint[0]["path"].endswith("street.mkv") and alone[0]["path"].endswith("street.mkv")
    assert joint[0]["score"] > 1.0 >= alone[0]["score"]  # standard deviations, not cosines
    assert run(*args, store=two_cuts / "store").exit_code == 1  # several sets and none named: one sentence


def test_detectors_of_one_label_in_two_sets_are_combined(two_cuts):
    lib = audioscan.open(two_cuts / "store")
    names = [info.name for info in lib.sets()]
    lib.labels.add("street.mkv", 20, end=30, label="siren")
    lib.labels.add("kitchen.flac", 5, end=15, label="knock")
    first, second = (lib.train(f"siren-{i}", label="siren", model=name) for i, name in enumerate(names))
    joint = lib.detector([first.name, second.name])
    found = joint.rescore(threshold=0.0)
    assert found[0].path.endswith("street.mkv") and 14 < found[0].peak < 36
    scored = [first.scores(), second.scores()]
    from audioscan.query.joint import joint_scored

    combined = joint_scored(scored)
    assert len(combined.ids) == len(scored[0].ids)
    w = [standardised(found.decisions).max() for found in scored]
    assert np.allclose(combined.scores,
                       (w[0] * scored[0].scores + w[1] * onto(scored[0], scored[1], scores=scored[1].scores))
                       / (w[0] + w[1]))
    assert len(joint.windows()) == len(scored[0].ids)
    other = lib.train("knock-1", label="knock", model=names[1])
    with pytest.raises(audioscan.UserError, match="same label"):
        lib.detector([first.name, other.name])
    with pytest.raises(audioscan.UserError, match="different embedding set"):
        lib.detector([first.name, lib.train("siren-again", label="siren", model=names[0]).name])
    with pytest.raises(audioscan.UserError, match="`?threshold`?"):
        joint.rescore(precision=0.5)
    with pytest.raises(audioscan.UserError, match="version"):
        lib.detector([first.name, second.name], version=1)
    import json

    from tests.test_cli import run

    shown = json.loads(run("rescore", first.name, second.name, "--threshold", "0", "--top", "1", "--format", "json",
                           store=two_cuts / "store").stdout)
    assert shown[0]["path"] == found[0].path and shown[0]["score"] == pytest.approx(found[0].score, abs=1e-4)


def detector_commands() -> list[str]:
    """The commands of the CLI's tree that take detector NAMES."""
    from audioscan.cli import main

    return sorted(name for name, command in main.commands.items()
                  if any(param.name == "names" for param in command.params) and name != "search")


def test_every_command_that_takes_detectors_takes_what_rescore_takes(two_cuts):
    """Several names (one label's detectors in different sets) are accepted wherever one is."""
    from tests.test_cli import run

    lib = audioscan.open(two_cuts / "store")
    names = [info.name for info in lib.sets()]
    lib.labels.add("street.mkv", 20, end=30, label="siren")
    lib.labels.add("kitchen.flac", 5, end=15, label="siren", negative=True)
    trained = [lib.train(f"siren-{i}", label="siren", model=name).name for i, name in enumerate(names)]
    assert {"rescore", "suggest"} <= set(detector_commands())
    for command in detector_commands():
        result = run(command, *trained, "--format", "json", store=two_cuts / "store")
        assert result.exit_code == 0 and json.loads(result.stdout), (command, result.output)
