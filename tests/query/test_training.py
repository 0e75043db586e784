import numpy as np
import pytest

from audioscan.indexer.store.store import Store
from audioscan.query.errors import QueryError
from audioscan.query.labels import all_media
from audioscan.query.training import Normalizer, training_set
from tests.query.helpers import cli, label_sirens


def _windows(store, info, ids):
    with store.connect() as con:
        rows = con.execute(f"SELECT id, media_id, start_s FROM windows WHERE id IN ({','.join(map(str, ids))})").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_positives_negatives_and_automatic_negatives_follow_the_original_rules(world):
    label_sirens(world)  # long.mkv: siren 20-30, negative 100-110; other.flac: siren 30-40
    cli(world, "labels", "add", "long.mkv", "205", "siren", "--marker")
    with Store.open(world / "store") as store:
        info = store.find_set()
        data = training_set(store, store.snapshot(info, stats=True), label="siren", negatives="labelled")
        where = _windows(store, info, data.window_ids)
        long_id = next(m.id for m in all_media(store) if m.rel == "long.mkv")
    in_long = np.array([where[i][0] == long_id for i in data.window_ids])
    starts = np.array([where[i][1] for i in data.window_ids])
    positive_starts = sorted(starts[(data.y == 1) & in_long])
    # The range 20-30 claims the windows overlapping it (starts 13..29); the marker at 205
    # claims windows starting within 12 s of it (194..216).
    assert positive_starts == list(range(13, 30)) + list(range(194, 217))
    assert data.hard_negatives == len(range(93, 110))  # windows overlapping 100-110
    assert data.positives == 17 + 23 + 17  # + other.flac's 30-40 range (starts 23..39)
    auto = starts[(data.y == 0) & ~((starts > 92) & (starts < 110))]
    assert len(auto) == data.auto_negatives
    assert all(s % 4 == 0 for s in auto)  # one window every 4 s


def test_automatic_negatives_keep_their_distance_and_a_fixed_seed(world):
    cli(world, "labels", "add", "long.mkv", "20", "30", "siren")
    with Store.open(world / "store") as store:
        info = store.find_set()
        first = training_set(store, store.snapshot(info, stats=True), label="siren", negatives="labelled")
        second = training_set(store, store.snapshot(info, stats=True), label="siren", negatives="labelled")
        where = _windows(store, info, first.window_ids)
    assert np.array_equal(first.window_ids, second.window_ids)
    negatives = sorted(where[i][1] for i in first.window_ids[first.y == 0])
    assert negatives and negatives[0] > 30 + 120 and all(s % 4 == 0 for s in negatives)
    assert first.auto_negatives == len(negatives) == len(range(152, 293, 4))  # every one beyond the margin


def test_one_class_only_is_a_clear_error(world):
    cli(world, "labels", "add", "knock.mp3", "10", "20", "knock")
    with Store.open(world / "store") as store:
        with pytest.raises(QueryError, match="needs both"):
            training_set(store, store.snapshot(store.find_set(), stats=True), label="knock", negatives="labelled")
        with pytest.raises(QueryError, match="no labels named 'gag'"):
            training_set(store, store.snapshot(store.find_set(), stats=True), label="gag")


def test_per_file_z_scores_use_the_stats_stored_by_the_build(world):
    with Store.open(world / "store") as store:
        info = store.find_set()
        snapshot = store.snapshot(info, stats=True)
        table = {"id": snapshot.ids, "media_id": snapshot.media_ids}
        ids, vectors = snapshot.ids, snapshot.vectors()
        media = table["media_id"][np.searchsorted(table["id"], ids)]
        z = Normalizer.load(snapshot, "file").apply(vectors, media)
        one = media == media[0]
        assert np.allclose(z[one].mean(0), 0, atol=1e-3) and np.allclose(z[one].std(0)[z[one].std(0) > 0], 1, atol=1e-3)
        flat = Normalizer.load(snapshot, "global").apply(vectors, media)
        assert np.allclose(flat.mean(0), 0, atol=1e-3)
        assert np.array_equal(Normalizer.load(snapshot, "none").apply(vectors, media), vectors)


def test_positive_regions_are_separate_stretches_not_files(world):
    """Three sirens in two files are three examples (counting files said two)."""
    label_sirens(world)  # long.mkv 20-30, other.flac 30-40
    assert cli(world, "labels", "add", "long.mkv", "200", "210", "siren").exit_code == 0
    with Store.open(world / "store") as store:
        info = store.find_set()
        data = training_set(store, store.snapshot(info, stats=True), label="siren", negatives="labelled")
    assert data.grouping == "file" and data.positive_regions == 3
