"""A process keeps the last snapshot of each set: given again while nothing was committed,
brought up to date with what was committed since, read whole after a compaction."""

import numpy as np
import pytest

from audioscan.indexer.store import catalog
from audioscan.indexer.store.compact import compact_set
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import commit_synthetic


@pytest.fixture
def store_with_two_files(store_path):
    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
        commit_synthetic(store, "a.wav", 5, seed=1)
        commit_synthetic(store, "b.wav", 4, seed=2)
    return store_path


def _read_whole(store: Store, stats: bool):
    with store.connect() as con, catalog.transaction(con):
        return store._snapshot_since(con, store.find_set(), stats, None)


def _same(kept, whole) -> None:
    for name in ("ids", "media_ids", "starts", "ends", "segment_of"):
        assert np.array_equal(getattr(kept, name), getattr(whole, name)), name
    assert kept.segments == whole.segments and kept.media == whole.media and kept.ann == whole.ann
    assert np.array_equal(kept.vectors(), whole.vectors())
    if whole.stats is not None:
        for name in ("media_ids", "n_windows", "means", "stds"):
            assert np.array_equal(getattr(kept.stats, name), getattr(whole.stats, name)), name


def test_an_unchanged_store_gives_the_same_snapshot_without_opening_the_catalog(store_with_two_files,
                                                                                  monkeypatch):
    with Store.open(store_with_two_files) as store:
        info = store.find_set()
        first = store.snapshot(info, stats=True)
        opened = []
        monkeypatch.setattr(Store, "connect", lambda self: opened.append(1) or pytest.fail("catalog opened"))
        assert store.snapshot(info, stats=True) is first
        with Store.open(store_with_two_files) as again:  # its version and sets are kept too
            assert again.find_set() == info and again.snapshot(info, stats=True) is first
    assert not opened


@pytest.mark.parametrize("stats", [False, True])
def test_after_commits_the_snapshot_is_the_one_read_whole(store_with_two_files, stats):
    with Store.open(store_with_two_files) as reader:
        info = reader.find_set()
        before = reader.snapshot(info, stats=stats)
        with Store.open(store_with_two_files, write=True) as writer:
            commit_synthetic(writer, "c.wav", 3, seed=3)  # new windows only
        after = reader.snapshot(info, stats=stats)
        assert after is not before and len(after) == 5 + 4 + 3
        _same(after, _read_whole(reader, stats))
        with Store.open(store_with_two_files, write=True) as writer:
            writer.forget(writer.ensure_root(writer.path.parent), "b.wav")  # deaths only
        _same(reader.snapshot(info, stats=stats), _read_whole(reader, stats))
        with Store.open(store_with_two_files, write=True) as writer:
            writer.forget(writer.ensure_root(writer.path.parent), "a.wav")  # deaths and new windows
            commit_synthetic(writer, "d.wav", 2, seed=4)
        last = reader.snapshot(info, stats=stats)
        assert len(last) == 3 + 2
        _same(last, _read_whole(reader, stats))


def test_after_a_compaction_the_snapshot_is_read_whole(store_with_two_files):
    with Store.open(store_with_two_files) as reader:
        info = reader.find_set()
        before = reader.snapshot(info, stats=True)
        with Store.open(store_with_two_files, write=True) as writer:
            writer.forget(writer.ensure_root(writer.path.parent), "a.wav")
            report = compact_set(writer, info, force=True)
        assert report.segments_after < report.segments_before
        assert not {s.id for s in before.segments} <= {s.id for s in reader.snapshot(info).segments}
        _same(reader.snapshot(info, stats=True), _read_whole(reader, True))


def test_an_update_reads_only_what_was_committed_since(store_with_two_files, monkeypatch):
    with Store.open(store_with_two_files) as reader:
        info = reader.find_set()
        reader.snapshot(info)
        with Store.open(store_with_two_files, write=True) as writer:
            commit_synthetic(writer, "c.wav", 3, seed=3)
        asked = []
        since = Store._snapshot_since
        monkeypatch.setattr(Store, "_snapshot_since", lambda self, con, info_, stats, last: asked.append(last)
                            or since(self, con, info_, stats, last))
        assert len(reader.snapshot(info)) == 12
    assert len(asked) == 1 and asked[0] is not None and len(asked[0]) == 9


def test_snapshots_of_other_stores_are_their_own(tmp_path):
    for name, n in (("one", 2), ("two", 3)):
        with Store.open(tmp_path / name, write=True) as store:
            store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
            commit_synthetic(store, "a.wav", n)
    with Store.open(tmp_path / "one") as one, Store.open(tmp_path / "two") as two:
        assert len(one.snapshot(one.find_set())) == 2 and len(two.snapshot(two.find_set())) == 3
