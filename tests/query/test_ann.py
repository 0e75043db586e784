"""The derived graph never goes stale: new windows are added to it (or scored beside it until
they are), removed windows are filtered out, and it is rebuilt only when too much of it is dead."""

import numpy as np

from audioscan.indexer.build import forget
from audioscan.indexer.store.ann import build_ann, load_ann
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from audioscan.query.search import SetIndex
from tests.conftest import tone_file
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow
from tests.indexer.helpers import build_once


def _commit_lookalikes(store: Store, count: int, seed: int = 0) -> None:
    """Commit ``count`` windows of a new file whose vectors resemble the set's (no decoding)."""
    info = store.find_set()
    rng = np.random.default_rng(seed)
    every = store.snapshot(info).vectors()
    vectors = every[rng.choice(len(every), count, replace=False)]
    vectors = vectors + rng.normal(0, 0.05, vectors.shape).astype(np.float32) * vectors.std()
    media_id = store.new_media_id()
    root_id = store.ensure_root(store.path.parent)
    starts = np.arange(count, dtype=float)
    store.commit(Commit(media=[MediaRow(media_id, root_id, f"new{seed}.wav", 1, 1, f"fp-new{seed}", count + 7.0,
                                        "ok")],
                        vectors=[FileVectors(media_id, info.id, starts, starts + 8, vectors)]))


def _agrees_with_exact(index: SetIndex, query: np.ndarray) -> None:
    graph_top, graph_scores = index.top_windows(query, 10)
    exact_top, exact_scores = index.top_windows(query, 10, exact=True)
    assert len(set(graph_top) & set(exact_top)) >= 9
    assert np.allclose(graph_scores[0], exact_scores[0], atol=1e-5)  # re-ranked: exact scores


def test_a_graph_serves_search_and_is_added_to_not_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        assert build_ann(store, info, centred=True, minimum=10) == "built"
        assert build_ann(store, info, centred=True, minimum=10) is None  # fresh: nothing to do
        assert store.unlisted_files() == [] and check_store(store) == []
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 0
        _agrees_with_exact(index, store.snapshot(info).vectors()[5])
        assert index.search(store.snapshot(info).vectors()[5], 3)[0].score > 0.99

        _commit_lookalikes(store, 30)  # committed after the graph was written
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 30  # still used, new windows scored beside it
        newest = store.snapshot(info).vectors()[-1]
        top, scores = index.top_windows(newest, 5)
        assert index.ids[top[0]] == index.ids[-1] and scores[0] > 0.999

        base = store.snapshot(info).ann["base"].file
        assert build_ann(store, info, centred=True, minimum=10) == "added"
        snapshot = store.snapshot(info, stats=True)
        graph = load_ann(snapshot, centred=True)
        assert len(graph.missing) == 0 and graph.ntotal == len(snapshot) and len(graph.parts) == 2
        assert snapshot.ann["base"].file == base  # the base graph is never rewritten by an addition
        _agrees_with_exact(SetIndex(snapshot), snapshot.vectors()[-3])
        assert store.unlisted_files() == [] and check_store(store) == []

        _commit_lookalikes(store, 30, seed=1)
        assert build_ann(store, info, centred=True, minimum=10) == "added"  # the delta grows to 60 windows
        _commit_lookalikes(store, 30, seed=2)
        assert build_ann(store, info, centred=True, minimum=10) == "built"  # past a tenth of the base: merged
        assert list(store.snapshot(info).ann) == ["base"] and check_store(store) == []


def test_removed_windows_are_filtered_until_too_many_then_the_graph_is_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=False, minimum=10)
        before = store.snapshot(info)
        other = before.ids[[before.media[int(m)].rel == "sub/other.flac" for m in before.media_ids]]
        forget(store, world / "media" / "sub")  # 53 of 379 windows die: under the rebuild threshold
        assert build_ann(store, info, centred=False, minimum=10) == "kept"  # dead ones filtered, file unchanged
        snapshot = store.snapshot(info)
        graph = load_ann(snapshot, centred=False)
        assert len(graph.dead) == len(other) and graph.ntotal == len(before)
        query = before.vectors_at(before.positions(other[:1]))[0]
        found = graph.search(query, 50)
        assert len(found) == 50 and not np.isin(found, other).any()  # a dead window is never returned
        assert np.isin(found, snapshot.ids).all()

        (world / "media" / "knock.mp3").unlink()
    build_once(world / "store", world / "media")  # knock.mp3's 33 windows die too: 86 of 379, rebuilt
    with Store.open(world / "store", write=True) as store:
        assert build_ann(store, info, centred=False, minimum=10) == "built"
        graph = load_ann(store.snapshot(info), centred=False)
        assert len(graph.dead) == 0 and graph.ntotal == len(store.snapshot(info))
        assert check_store(store) == []


def test_a_centred_graph_is_rebuilt_when_the_set_mean_moves(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=True, minimum=10)
        forget(store, world / "media" / "sub")  # the hum file was a seventh of the set: the mean moves
        assert build_ann(store, info, centred=True, minimum=10) == "built"


def test_a_build_keeps_the_graph_fresh_so_search_still_uses_it(world):
    build_once(world / "store", world / "media", ann_min_windows=10)
    tone_file(world / "media" / "new.wav", 9, "siren")
    build_once(world / "store", world / "media", ann_min_windows=10)  # a small incremental build
    with Store.open(world / "store") as store:
        info = store.find_set()
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 0 and index.ann.ntotal == len(index)


def test_a_large_set_gets_a_compressed_graph_and_exact_scores(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        assert build_ann(store, info, centred=True, minimum=10, compress_above=0) == "built"
        snapshot = store.snapshot(info, stats=True)
        assert snapshot.ann["base"].kind == "hnsw-sq8-centred"
        index = SetIndex(snapshot)
        for row in (3, 100, 300):
            _agrees_with_exact(index, snapshot.vectors()[row])


def test_graphs_of_an_older_layout_are_ignored_until_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=True, minimum=10)
        with store.connect() as con:
            con.execute("UPDATE ann_indexes SET kind = 'hnsw-centred'")  # what the first release wrote
        assert SetIndex(store.snapshot(info, stats=True)).ann is None  # exact search meanwhile
        assert build_ann(store, info, centred=True, minimum=10) == "built"
        assert SetIndex(store.snapshot(info, stats=True)).ann is not None


def test_a_due_rebuild_runs_during_the_build_and_what_it_embeds_lands_in_a_delta(world):
    build_once(world / "store", world / "media", ann_min_windows=10)
    (world / "media" / "knock.mp3").unlink()
    (world / "media" / "sub" / "other.flac").unlink()  # 86 of 379 windows die: the base is due
    tone_file(world / "media" / "new.wav", 20, "siren")
    build_once(world / "store", world / "media", ann_min_windows=10)
    with Store.open(world / "store") as store:
        info = store.find_set()
        snapshot = store.snapshot(info, stats=True)
        # The base was built from the store as it was when the build started (in the background),
        # the new file's windows, embedded meanwhile, went to a delta.
        assert list(sorted(snapshot.ann)) == ["base", "delta"]
        graph = load_ann(snapshot, centred=True)
        assert len(graph.dead) == 0 and len(graph.missing) == 0 and graph.parts[1].ntotal == 13
        assert store.unlisted_files() == [] and check_store(store) == []
        _agrees_with_exact(SetIndex(snapshot), snapshot.vectors()[-2])
