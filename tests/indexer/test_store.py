import multiprocessing
import os

import duckdb
import numpy as np
import pytest

from audioscan.indexer.store import catalog
from audioscan.indexer.errors import StoreError
from audioscan.indexer.store.segments import read_segment
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import commit_synthetic


@pytest.fixture
def small_store(store_path):
    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
        commit_synthetic(store, "a.wav", 3, seed=1)
    return store_path


def test_a_commit_is_one_segment_and_its_windows(small_store):
    with Store.open(small_store) as store:
        info = store.find_set()
        snapshot = store.snapshot(info)
        segment, = snapshot.segments
        path = snapshot.segment_path(segment)
        assert segment.n_vectors == 3 and path.exists()
        ids, vectors = snapshot.ids, snapshot.vectors()
        file_ids, file_vectors = read_segment(path)
        assert np.array_equal(ids, file_ids) and np.array_equal(vectors, file_vectors)
        with store.connect() as con:
            mean = np.array(con.execute("SELECT mean FROM media_sets").fetchone()[0])
        assert np.allclose(mean, vectors.mean(axis=0), atol=1e-6)


def test_unlisted_segment_files_are_removed_when_a_writer_opens(small_store):
    with Store.open(small_store) as store:
        info = store.find_set()
    stray = small_store / "sets" / info.name / "seg-00000099.faiss"
    stray.write_bytes(b"left by a crash")
    (small_store / "sets" / info.name / "seg-00000100.faiss.tmp").write_bytes(b"half written")
    with Store.open(small_store) as store:
        assert len(store.unlisted_files()) == 2  # a reader reports, never deletes
    with Store.open(small_store, write=True) as store:
        assert store.unlisted_files() == []
    assert not stray.exists()


def _try_to_write(path, queue):
    try:
        with Store.open(path, write=True):
            queue.put("opened")
    except StoreError as err:
        queue.put(str(err))


def test_a_second_writer_is_refused_with_a_sentence_and_readers_still_read(small_store):
    with Store.open(small_store, write=True):
        queue = multiprocessing.get_context("spawn").Queue()
        proc = multiprocessing.get_context("spawn").Process(target=_try_to_write, args=(small_store, queue))
        proc.start()
        proc.join(60)
        message = queue.get(timeout=5)
        assert "is being written by process" in message and str(os.getpid()) in message
        with Store.open(small_store) as reader:
            assert len(reader.snapshot(reader.find_set()).vectors()) == 3


def test_a_newer_catalog_is_refused_not_guessed(small_store):
    con = duckdb.connect(str(small_store / "catalog.duckdb"))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(catalog.SCHEMA_VERSION + 1)])
    con.close()
    for write in (False, True):
        with pytest.raises(StoreError, match="newer audioscan"):
            with Store.open(small_store, write=write):
                pass


def test_the_schema_version_is_recorded(small_store):
    with Store.open(small_store) as store, store.connect() as con:
        assert catalog.version(con) == catalog.SCHEMA_VERSION


def test_a_failed_catalog_transaction_leaves_no_segment_behind(small_store, monkeypatch):
    with Store.open(small_store, write=True) as store:
        def boom(*args, **kwargs):
            raise RuntimeError("disk full")
        monkeypatch.setattr(Store, "_apply", staticmethod(boom))
        with pytest.raises(RuntimeError):
            commit_synthetic(store, "b.wav", 2, seed=2)
        assert store.unlisted_files() == []
        assert len(store.snapshot(store.find_set()).segments) == 1


def test_missing_store_is_a_sentence(tmp_path):
    with pytest.raises(StoreError, match="no audioscan store"):
        with Store.open(tmp_path / "nothing"):
            pass


def test_an_older_catalog_is_migrated_in_place_keeping_its_data(store_path):
    import datetime

    store_path.mkdir()
    con = duckdb.connect(str(store_path / "catalog.duckdb"))
    con.execute(catalog.MIGRATIONS[1])  # a store written by the first release
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO roots VALUES (1, '/media', ?)", [datetime.datetime(2026, 1, 1)])
    con.execute("INSERT INTO media VALUES (1, 1, 'a.wav', 1, 1, 'fp', 9.0, 'ok', NULL, NULL)")
    con.close()
    with Store.open(store_path) as store, store.connect() as con:  # even a reader brings it up to date
        assert catalog.version(con) == catalog.SCHEMA_VERSION
        assert con.execute("SELECT path FROM media").fetchall() == [("a.wav",)]
        assert con.execute("SELECT count(*) FROM labels").fetchone()[0] == 0


def test_segments_are_read_through_faiss_as_zero_copy_maps(tmp_path):
    from audioscan.indexer.store.segments import write_segment

    ids = np.arange(10, 30, dtype=np.int64)
    vectors = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    write_segment(tmp_path / "seg-0000aaaa-00000001.faiss", ids, parts=[vectors[:5], vectors[5:]], dtype="fp32")
    got_ids, got = read_segment(tmp_path / "seg-0000aaaa-00000001.faiss")
    assert np.array_equal(got_ids, ids) and np.array_equal(got, vectors)
    assert not got.flags.owndata  # a view of the mapping FAISS made, not a copy
    write_segment(tmp_path / "seg-0000aaaa-00000002.faiss", ids, parts=[vectors[:5], vectors[5:]], dtype="fp16")
    _, half = read_segment(tmp_path / "seg-0000aaaa-00000002.faiss")
    assert np.allclose(half, vectors, atol=1e-2)


@pytest.mark.parametrize("sizes", [[0], [1], [3, 0, 4], [0, 0], [257, 1000]])
def test_a_segment_written_in_parts_is_byte_for_byte_what_faiss_writes(tmp_path, sizes):
    import faiss

    from audioscan.indexer.store.segments import checksum, write_segment

    rng = np.random.default_rng(len(sizes))
    parts = [rng.standard_normal((n, 12)).astype(np.float32) for n in sizes]
    vectors = np.concatenate(parts)
    ids = rng.permutation(10 * len(vectors) + 1)[:len(vectors)].astype(np.int64)
    path = tmp_path / "seg-0000aaaa-00000001.faiss"
    recorded = write_segment(path, ids, parts=parts, dtype="fp32")
    theirs = faiss.IndexIDMap2(faiss.IndexFlatIP(12))
    theirs.add_with_ids(vectors, ids)
    assert path.read_bytes() == faiss.serialize_index(theirs).tobytes()
    assert recorded == checksum(path)
    got_ids, got = read_segment(path)
    assert np.array_equal(got_ids, ids) and np.array_equal(got, vectors)



def test_a_segment_checksum_recorded_by_an_earlier_version_still_verifies_and_still_finds_damage(small_store):
    """Commits record XXH3-128 ("xxh3:..."); a segment written before keeps the bare BLAKE2b-128 it
    was recorded with until compaction rewrites it, and check, repair and the good copy read both."""
    import hashlib

    from audioscan.indexer.store import catalog
    from audioscan.indexer.store.check import check_store
    from audioscan.indexer.store.segments import matches

    with Store.open(small_store) as store:
        info = store.sets()[0]
        recorded = {file: value for file, value in _segment_checksums(store, info.id)}
        path = store.files.set_dir(info.name) / next(iter(recorded))
    assert all(value.startswith("xxh3:") for value in recorded.values())
    old = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    with catalog.connect(small_store / catalog.CATALOG_FILE, read_only=False) as con:
        con.execute("UPDATE segments SET checksum = ? WHERE file = ?", [old, path.name])
    with Store.open(small_store) as store:
        assert check_store(store) == []
    assert matches(path, old) and matches(path, recorded[path.name])
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    assert not matches(path, old) and not matches(path, recorded[path.name])
    with Store.open(small_store) as store:
        assert any(path.name in problem and "damaged" in problem for problem in check_store(store))


def _segment_checksums(store: Store, set_id: int) -> list[tuple[str, str]]:
    with store.connect() as con:
        return con.execute("SELECT file, checksum FROM segments WHERE set_id = ?", [set_id]).fetchall()


def test_media_rows_of_one_commit_are_upserted_as_one_row_at_a_time_would_be(small_store):
    from audioscan.indexer.store.records import Commit, MediaRow

    with Store.open(small_store, write=True) as store:
        root = store.ensure_root(small_store.parent)
        first, second = store.new_media_id(), store.new_media_id()
        store.commit(Commit(media=[MediaRow(first, root, path="v.mp4", size=5, mtime_ns=5, fingerprint="a",
                                            duration=9.0, status="ok", fps=25.0)]))
        store.commit(Commit(media=[
            MediaRow(first, root, path="v.mp4", size=6, mtime_ns=6, fingerprint="b", duration=9.5, status="failed",
                     error="unreadable", retry=True),
            MediaRow(second, root, path="w.mp4", size=1, mtime_ns=1, fingerprint="c", duration=3.0, status="ok",
                     fps=30.0),
            MediaRow(second, root, path="w.mp4", size=2, mtime_ns=2, fingerprint="d", duration=4.0,
                     status="ok"),  # the same file again, no frame rate
        ]))
        with store.connect() as con:
            rows = con.execute("SELECT id, path, size, fingerprint, duration, status, error, retry, fps "
                               "FROM media WHERE id IN (?, ?) ORDER BY id", [first, second]).fetchall()
    assert rows == [(first, "v.mp4", 6, "b", 9.5, "failed", "unreadable", True, 25.0),
                    (second, "w.mp4", 2, "d", 4.0, "ok", None, False, 30.0)]


def test_vectors_fetched_in_any_order_are_those_asked_for(small_store):
    """Each segment's rows are read in file order, whatever the order (and repeats) asked."""
    with Store.open(small_store, write=True) as store:
        commit_synthetic(store, "b.wav", 40, seed=2)
        commit_synthetic(store, "c.wav", 25, seed=3)
        info = store.find_set()
        snapshot = store.snapshot(info)
        every = snapshot.vectors()
    positions = np.random.default_rng(4).permutation(np.r_[np.arange(len(every)), [5, 5, 0, len(every) - 1]])
    assert len(snapshot.segments) == 3
    assert np.array_equal(snapshot.vectors_at(positions), every[positions])
    assert np.array_equal(snapshot.vectors_at(positions[::-1]), every[positions[::-1]])
