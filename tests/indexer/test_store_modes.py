"""The store's three modes keep their word: a reader changes nothing, an annotator changes only
labels and detectors (with no writer lock), the writer holds the lock."""

from __future__ import annotations

import pytest

from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader, StoreWriter
from audioscan.indexer.store.records import Commit, NewLabel
from audioscan.indexer.store.store import Store


@pytest.fixture
def store_path(tmp_path):
    with Store.open(tmp_path / "store", write=True) as store:
        store.ensure_set("LOGMEL", "logmel-v2", window=8.0, hop=1.0, sample_rate=16_000, dim=256)
    return tmp_path / "store"


def test_each_mode_offers_its_protocol(store_path):
    with Store.open(store_path) as reader:
        assert isinstance(reader, StoreReader)
    for protocol in (StoreReader, StoreAnnotator, StoreWriter):
        missing = [name for name in protocol.__dict__ if not name.startswith("_") and not hasattr(Store, name)
                   and name != "path"]
        assert missing == [], f"{protocol.__name__} declares what Store lacks"


def test_a_reader_changes_nothing(store_path):
    with Store.open(store_path) as reader:
        with pytest.raises(RuntimeError, match="read-only"):
            reader.add_labels([NewLabel(media_id=1, label="x", start=0.0, end=1.0, kind="range", positive=True)],
                              "test")
        with pytest.raises(RuntimeError, match="read-only"):
            reader.remove_classifier("x")
        with pytest.raises(RuntimeError, match="read-only"):
            reader.commit(Commit(non_media=[(1, "a.txt", 1, 1)]))


def test_an_annotator_labels_while_the_writer_holds_the_lock(store_path):
    with Store.open(store_path, write=True):  # a build running in another process, say
        with Store.open(store_path, annotate=True) as annotator:
            assert annotator.remove_labels([]) == []
            with pytest.raises(RuntimeError, match="read-only"):
                annotator.ensure_root(store_path)


def test_the_generation_moves_with_every_commit_and_only_then(store_path):
    before = Store.generation(store_path)
    assert Store.generation(store_path) == before
    with Store.open(store_path, write=True) as writer:
        writer.ensure_root(store_path / "media")
    assert Store.generation(store_path) != before
    assert Store.exists(store_path) and not Store.exists(store_path / "elsewhere")
