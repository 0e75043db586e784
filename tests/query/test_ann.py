"""The derived approximate index never goes stale: new windows are added to it (or scored beside
it until they are), removed windows are filtered out, and it is rebuilt only when too much of it
is dead; its candidates are re-ranked exactly, so what it returns agrees with exact search."""

import numpy as np
import pytest

from audioscan.indexer.build import forget
from audioscan.indexer.store import ann as ann_module
from audioscan.indexer.store import ann_build
from audioscan.indexer.store.ann import load_ann
from audioscan.indexer.store.ann_build import build_ann
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
    store.commit(Commit(media=[MediaRow(media_id, root_id, path=f"new{seed}.wav", size=1, mtime_ns=1,
                                        fingerprint=f"fp-new{seed}", duration=count + 7.0, status="ok")],
                        vectors=[FileVectors(media_id, info.id, starts=starts, ends=starts + 8, vectors=vectors)]))


def _clustered_set(store: Store, folder, files: int, per_file: int, rng: np.random.Generator):
    """A set of 32-d vectors around 40 centres, ``per_file`` windows to each of ``files`` files."""
    centres = rng.standard_normal((40, 32)).astype(np.float32)
    info = store.ensure_set("SYNTH", "synthetic-32", window=8.0, hop=1.0, sample_rate=16_000, dim=32)
    root = store.ensure_root(folder)
    change = Commit()
    for _ in range(files):
        media_id = store.new_media_id()
        vectors = centres[rng.integers(0, 40, per_file)] + 0.5 * rng.standard_normal((per_file, 32)).astype(np.float32)
        times = np.arange(per_file, dtype=np.float64)
        change.media.append(MediaRow(media_id, root, path=f"f{media_id}.wav", size=1, mtime_ns=1,
                                     fingerprint=f"{media_id}", duration=per_file + 7.0, status="ok"))
        change.vectors.append(FileVectors(media_id, info.id, starts=times, ends=times + 8, vectors=vectors))
    store.commit(change)
    return info


def unit_cosines(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    return (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))


def _agrees_with_exact(index: SetIndex, query: np.ndarray) -> None:
    found, found_scores = index.top_windows(query, 10)
    exact_top, exact_scores = index.top_windows(query, 10, exact=True)
    assert len(set(found) & set(exact_top)) >= 9
    assert np.allclose(found_scores[0], exact_scores[0], atol=1e-5)  # re-ranked: exact scores


def test_an_index_serves_search_and_is_added_to_not_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        assert build_ann(store, info, centred=True, minimum=10) == "built"
        assert build_ann(store, info, centred=True, minimum=10) is None  # fresh: nothing to do
        assert store.unlisted_files() == [] and check_store(store) == []
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 0
        _agrees_with_exact(index, store.snapshot(info).vectors()[5])
        assert index.search(store.snapshot(info).vectors()[5], 3)[0].score > 0.99

        _commit_lookalikes(store, 30)  # committed after the index was written
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 30  # still used, new windows scored beside it
        newest = store.snapshot(info).vectors()[-1]
        top, scores = index.top_windows(newest, 5)
        assert index.ids[top[0]] == index.ids[-1] and scores[0] > 0.999

        base = store.snapshot(info).ann["base"].file
        assert build_ann(store, info, centred=True, minimum=10) == "added"
        snapshot = store.snapshot(info, stats=True)
        ann = load_ann(snapshot, centred=True)
        assert len(ann.missing) == 0 and ann.ntotal == len(snapshot) and len(ann.parts) == 2
        assert snapshot.ann["base"].file == base  # the base is never rewritten by an addition
        _agrees_with_exact(SetIndex(snapshot), snapshot.vectors()[-3])
        assert store.unlisted_files() == [] and check_store(store) == []

        _commit_lookalikes(store, 30, seed=1)
        assert build_ann(store, info, centred=True, minimum=10) == "added"  # the delta grows to 60 windows
        _commit_lookalikes(store, 30, seed=2)
        assert build_ann(store, info, centred=True, minimum=10) == "built"  # past a tenth of the base: merged
        snapshot = store.snapshot(info, stats=True)
        assert load_ann(snapshot, centred=True).parts[1].ntotal == 0 and check_store(store) == []


def test_removed_windows_are_filtered_until_too_many_then_the_index_is_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=False, minimum=10)
        before = store.snapshot(info)
        other = before.ids[[before.media[int(m)].rel == "sub/other.flac" for m in before.media_ids]]
        forget(store, world / "media" / "sub")  # 53 of 379 windows die: under the rebuild threshold
        assert build_ann(store, info, centred=False, minimum=10) == "kept"  # dead ones filtered, file unchanged
        snapshot = store.snapshot(info)
        ann = load_ann(snapshot, centred=False)
        assert len(ann.dead) == len(other) and ann.ntotal == len(before)
        query = before.vectors_at(before.positions(other[:1]))[0]
        found = ann.search(query, 50)
        # At least CANDIDATES_MIN candidates for exact re-ranking, and never a dead window.
        assert len(found) == ann_module.CANDIDATES_MIN and not np.isin(found, other).any()
        assert np.isin(found, snapshot.ids).all()

        (world / "media" / "knock.mp3").unlink()
    build_once(world / "store", world / "media")  # knock.mp3's 33 windows die too: 86 of 379, rebuilt
    with Store.open(world / "store", write=True) as store:
        assert build_ann(store, info, centred=False, minimum=10) == "built"
        ann = load_ann(store.snapshot(info), centred=False)
        assert len(ann.dead) == 0 and ann.ntotal == len(store.snapshot(info))
        assert check_store(store) == []


def test_a_centred_index_is_rebuilt_when_the_set_mean_moves(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=True, minimum=10)
        forget(store, world / "media" / "sub")  # the hum file was a seventh of the set: the mean moves
        assert build_ann(store, info, centred=True, minimum=10) == "built"


def test_a_build_keeps_the_index_fresh_so_search_still_uses_it(world):
    build_once(world / "store", world / "media", ann_min_windows=10)
    tone_file(world / "media" / "new.wav", 9, "siren")
    build_once(world / "store", world / "media", ann_min_windows=10)  # a small incremental build
    with Store.open(world / "store") as store:
        info = store.find_set()
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None and len(index.ann.missing) == 0 and index.ann.ntotal == len(index)


def test_a_set_larger_than_its_probes_is_searched_with_exact_scores_and_high_recall(tmp_path):
    """20k clustered windows: 128 lists of which 16 are probed, so most of the set is never
    scanned, and the re-ranked top 10 still match exact search."""
    rng = np.random.default_rng(4)
    with Store.open(tmp_path / "store", write=True) as store:
        info = _clustered_set(store, tmp_path, 20, 1000, rng)
        assert build_ann(store, info, minimum=10) == "built"
        snapshot = store.snapshot(info)
        assert snapshot.ann["base"].kind == "ivfpq"
        index = SetIndex(snapshot)
        assert ann_build.list_count(len(index)) == 128 > ann_module.NPROBE
        vectors = snapshot.vectors()
        rows = rng.choice(len(index), 50, replace=False)
        noise = rng.standard_normal((50, 32)).astype(np.float32) / np.sqrt(32)  # 5 % of each vector's length
        queries = vectors[rows] + 0.05 * np.linalg.norm(vectors[rows], axis=1, keepdims=True) * noise
        recall = []
        for query in queries:
            found, scores = index.top_windows(query, 10)
            exact_top, exact_scores = index.top_windows(query, 10, exact=True)
            assert np.allclose(scores, unit_cosines(vectors[found], query), atol=1e-5)  # exact scores
            recall.append(len(set(found) & set(exact_top)) / 10)
        assert np.mean(recall) >= 0.95


def test_graphs_of_an_older_layout_are_ignored_until_rebuilt(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        build_ann(store, info, centred=True, minimum=10)
        with store.connect() as con:
            con.execute("UPDATE ann_indexes SET kind = 'hnsw-flat-centred'")  # an HNSW graph of 0.1.0
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
        ann = load_ann(snapshot, centred=True)
        assert len(ann.dead) == 0 and len(ann.missing) == 0 and ann.parts[1].ntotal == 13
        assert store.unlisted_files() == [] and check_store(store) == []
        _agrees_with_exact(SetIndex(snapshot), snapshot.vectors()[-2])


def test_a_set_too_small_to_learn_codes_from_is_searched_exactly(tmp_path):
    with Store.open(tmp_path / "store", write=True) as store:
        info = _clustered_set(store, tmp_path, 1, ann_build.CODEBOOK_SIZE - 1, np.random.default_rng(5))
        assert build_ann(store, info, minimum=0) is None
        index = SetIndex(store.snapshot(info))
        assert index.ann is None and store.snapshot(info).ann == {}
        assert index.search(store.snapshot(info).vectors()[3], 1)[0].score > 0.999


@pytest.mark.parametrize("centred", [False, True])
def test_the_lists_trained_apart_are_those_faiss_trains_through_the_pre_transform(centred):
    import faiss

    from audioscan.indexer.store.ann_build import KMEANS_ITERATIONS, _new_index

    sample = (np.random.default_rng(3).standard_normal((2000, 16)) + 0.5).astype(np.float32)
    centre = sample.mean(axis=0) if centred else None
    built = _new_index(16, centre, sample, 1600)  # owns the inner index: keep it referenced
    ours = faiss.downcast_index(built.index)
    inner = faiss.index_factory(16, f"IVF{ours.nlist},PQ8x4fs", faiss.METRIC_INNER_PRODUCT)
    inner.cp.niter = KMEANS_ITERATIONS
    inner.cp.min_points_per_centroid = 1
    theirs = faiss.IndexPreTransform(inner)
    theirs.prepend_transform(faiss.NormalizationTransform(16, 2.0))
    if centred:
        centring = faiss.CenteringTransform(16)
        faiss.copy_array_to_vector(centre, centring.mean)
        centring.is_trained = True
        theirs.prepend_transform(centring)
    theirs.train(sample)
    lists = [faiss.downcast_index(index.quantizer).reconstruct_n(0, index.nlist) for index in (ours, inner)]
    assert ours.quantizer.ntotal == ours.nlist and np.allclose(*lists, atol=1e-5)
