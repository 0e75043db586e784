"""Vectors and labels to and from perch-hoplite, with perch-hoplite itself (1.0.2, installed by
``make test`` from .ci/lock/perch-hoplite.txt) as the other side: what audioscan writes opens in
hoplite with the same counts, annotations and top hits; what hoplite writes imports with the same
labels and top hits; a damaged or foreign database is one sentence and imports nothing."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from ml_collections import config_dict
from perch_hoplite.db import sqlite_usearch_impl as hoplite_db
from perch_hoplite.db.datatypes import LabelType

import audioscan
from tests.test_cli import run

FLOAT16_SCORE = 3e-3  # how far a float16 cosine may sit from the float32 one


def _hoplite(folder):
    return hoplite_db.SQLiteUSearchDB.create(str(folder), readonly=True)


def _agree(library, db, rel: str, at: float, model: str | None = None) -> None:
    """audioscan's top-10 moments from the stored window of ``rel`` at ``at`` score what hoplite's exact
    search from that window's vector scores their windows: each moment's score is hoplite's score of
    one of its windows, and the best window hoplite finds off the query's own is the best moment."""
    moments = library.search((rel, at), k=10, model=model)
    recordings = {r.id: r.filename for r in db.get_all_recordings()}
    windows = {w.id: (recordings[w.recording_id], *w.offsets) for w in db.get_all_windows()}
    query_id = min((wid for wid, (name, s, e) in windows.items() if name == rel and s <= at <= e),
                   key=lambda wid: abs((windows[wid][1] + windows[wid][2]) / 2 - at))
    scored = [(windows[r.window_id], float(r.sort_score)) for r in db.search(
        db.get_embedding(query_id), search_list_size=len(windows), approximate=False,
        score_fn_name="cos").search_results]

    def of(moment, window) -> bool:
        name, start, end = window
        return moment.path.endswith("/" + name) and start < moment.end and end > moment.start

    assert len(moments) == 10
    for moment in moments:
        assert any(of(moment, window) and abs(score - moment.score) < FLOAT16_SCORE
                   for window, score in scored), moment
    query = windows[query_id]
    elsewhere = [score for (name, start, end), score in scored
                 if not (name == rel and start < query[2] and end > query[1])]
    assert abs(max(elsewhere) - max(moment.score for moment in moments)) < FLOAT16_SCORE


def test_a_database_audioscan_writes_opens_in_hoplite_with_the_same_counts_labels_and_hits(world):
    library = audioscan.open(world / "store")
    library.labels.add("long.mkv", 20, end=30, label="siren")
    library.labels.add("long.mkv", 100, end=130, label="siren", negative=True)
    library.labels.add("other.flac", 5, end=None, label="knock")
    (world / "times.csv").write_text("path,start,time zone\nlong.mkv,2024-03-31T01:30:00,Europe/Berlin\n")
    assert run("index", "times", str(world / "times.csv"), store=world / "store").exit_code == 0
    (world / "sites.csv").write_text("site,latitude,longitude,folder\npond,47.25,8.5,media/sub\n")
    assert run("index", "sites", str(world / "sites.csv"), store=world / "store").exit_code == 0
    result = run("vectors", "export", "--format", "hoplite", "--out", str(world / "hop"), "--labels",
                 store=world / "store")
    assert result.exit_code == 0, result.output
    db = _hoplite(world / "hop")
    vectors, windows = library.vectors()
    assert db.count_embeddings() == len(vectors)
    media = str((world / "media").resolve()) + "/"
    assert sorted(r.filename for r in db.get_all_recordings()) == sorted(
        {p.removeprefix(media) for p in windows.column("path").to_pylist()})
    assert sorted((d.name, d.project, d.latitude, d.longitude) for d in db.get_all_deployments()) == [
        ("media", "media", None, None), ("pond", "media", 47.25, 8.5)]
    deployment_of = {d.id: d.name for d in db.get_all_deployments()}
    assert {r.filename: deployment_of[r.deployment_id] for r in db.get_all_recordings()}["sub/other.flac"] == "pond"
    started = {r.filename: r.datetime for r in db.get_all_recordings()}
    assert str(started["long.mkv"]).startswith("2024-03-31 01:30:00+01:00") and started["knock.mp3"] is None
    assert sorted((a.label, a.label_type, list(a.offsets), a.provenance) for a in db.get_all_annotations()) == [
        ("knock", LabelType.POSITIVE, [5.0, 5.0], "audioscan"),
        ("siren", LabelType.NEGATIVE, [100.0, 130.0], "audioscan"),
        ("siren", LabelType.POSITIVE, [20.0, 30.0], "audioscan")]
    config = db.get_metadata("model_config")
    info = library.set()
    assert (config.embedding_dim, config.model_config.window_size_s, config.model_config.hop_size_s) == (
        info.dim, info.window, info.hop)
    assert db.get_metadata("audio_sources").audio_globs[0]["base_path"] == str((world / "media").resolve())
    _agree(library, db, "long.mkv", 20)
    again = run("vectors", "export", "--format", "hoplite", "--out", str(world / "hop"), store=world / "store")
    assert again.exit_code == 1 and "already there" in again.stderr


def _hoplite_made(folder, media, dim=16, seed=0):
    """A database as hoplite's own API makes one: two recordings of the world, 5 s windows of random
    vectors, and annotations of each kind."""
    rng = np.random.default_rng(seed)
    db = hoplite_db.SQLiteUSearchDB.create(str(folder), usearch_cfg=hoplite_db.get_default_usearch_config(dim))
    db.insert_metadata("audio_sources", config_dict.ConfigDict({"audio_globs": [
        {"dataset_name": "field", "base_path": str(media), "file_glob": "*", "min_audio_len_s": 1.0,
         "target_sample_rate_hz": -2, "shard_len_s": 60.0, "max_shards_per_file": None}]}))
    db.insert_metadata("model_config", config_dict.ConfigDict({
        "model_key": "perch_v2", "embedding_dim": dim, "logits_key": None, "logits_idxes": None,
        "model_config": {"window_size_s": 5.0, "hop_size_s": 5.0, "sample_rate": 32000}}))
    deployment = db.insert_deployment(name="site-a", project="field", latitude=47.1, longitude=8.5)
    for filename, seconds in (("long.mkv", 180), ("sub/other.flac", 60)):
        recording = db.insert_recording(filename=filename, deployment_id=deployment)
        for start in range(0, seconds - 4, 5):
            db.insert_window(recording, [float(start), float(start + 5)], rng.standard_normal(dim).astype(np.float32))
        if filename == "long.mkv":
            db.insert_annotation(recording, [20.0, 25.0], "owl", LabelType.POSITIVE, "expert")
            db.insert_annotation(recording, [100.0, 105.0], "owl", LabelType.NEGATIVE, "expert")
            db.insert_annotation(recording, [40.0, 45.0], "owl", LabelType.UNCERTAIN, "expert")
    db.commit()
    return db


def _labels(library):
    return sorted((item.media.rel, item.label, item.start, item.end, item.positive) for item in library.labels.list())


def test_a_database_hoplite_writes_imports_with_its_labels_and_the_same_hits(world, tmp_path):
    db = _hoplite_made(tmp_path / "theirs", (world / "media").resolve())
    result = run("vectors", "import", str(tmp_path / "theirs"), "--format", "hoplite", store=world / "store")
    assert result.exit_code == 0, result.output
    assert "2 labels" in result.stdout and "1 uncertain labels left out" in result.stdout
    library = audioscan.open(world / "store")
    imported = next(info for info in library.sets() if info.name == "theirs")
    assert imported.foreign and (imported.window, imported.hop, imported.dim) == (5.0, 5.0, 16)
    assert _labels(library) == [("long.mkv", "owl", 20.0, 25.0, True), ("long.mkv", "owl", 100.0, 105.0, False)]
    _agree(library, db, "long.mkv", 52, model="theirs")
    refused = run("search", str(world / "media" / "sub" / "other.flac"), "-m", "theirs", store=world / "store")
    assert refused.exit_code == 1 and "--from" in refused.stderr


def test_export_import_export_keeps_the_vectors_and_the_labels(world, tmp_path):
    library = audioscan.open(world / "store")
    library.labels.add("long.mkv", 20, end=30, label="siren")
    library.labels.add("other.flac", 3, end=9, label="siren", negative=True)
    library.export_vectors(tmp_path / "first", fmt="hoplite", labels=True)
    other = audioscan.open(tmp_path / "other")
    done = other.import_vectors(tmp_path / "first", fmt="hoplite")
    assert done.labels == 2 and _labels(other) == _labels(library)
    other.export_vectors(tmp_path / "second", fmt="hoplite", labels=True)
    first, second = _hoplite(tmp_path / "first"), _hoplite(tmp_path / "second")
    ids = sorted(w.id for w in first.get_all_windows())
    assert ids == sorted(w.id for w in second.get_all_windows())
    assert np.array_equal(first.get_embeddings_batch(ids), second.get_embeddings_batch(ids))
    assert sorted((a.label, a.label_type, list(a.offsets)) for a in first.get_all_annotations()) == \
        sorted((a.label, a.label_type, list(a.offsets)) for a in second.get_all_annotations())


def _legacy(folder):
    folder.mkdir()
    with sqlite3.connect(folder / "hoplite.sqlite") as db:
        db.execute("CREATE TABLE hoplite_sources (id INTEGER PRIMARY KEY, dataset STRING, source STRING)")
        db.execute("CREATE TABLE hoplite_embeddings (id INTEGER PRIMARY KEY, source_idx INTEGER, offsets BLOB)")


def _truncated(folder):
    data = (folder / "hoplite.sqlite").read_bytes()
    (folder / "hoplite.sqlite").write_bytes(data[: len(data) // 3])


def _index_short(folder):
    from usearch.index import Index

    index = Index.restore(str(folder / "usearch.index"))
    index.remove(int(next(iter(index.keys))))
    index.save(str(folder / "usearch.index"))


def _nan(folder):
    from usearch.index import Index

    index = Index.restore(str(folder / "usearch.index"))
    key = int(next(iter(index.keys)))
    index.remove(key)
    index.add(key, np.full(index.ndim, np.nan, dtype=np.float32))
    index.save(str(folder / "usearch.index"))


def _other_dimension(folder):
    with sqlite3.connect(folder / "hoplite.sqlite") as db:
        db.execute("""UPDATE hoplite_metadata SET value = json_set(value, '$.embedding_dim', 8)
                      WHERE key = 'usearch_config'""")


def _no_index(folder):
    (folder / "usearch.index").unlink()


BAD = {"legacy": (_legacy, "before 1.0"), "truncated": (_truncated, "damaged"),
       "index short": (_index_short, "disagree"), "nan": (_nan, "NaN"),
       "dimension": (_other_dimension, "dimension"), "no index": (_no_index, "usearch.index")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_database_is_one_sentence_and_nothing_is_imported(case, world, tmp_path):
    spoil, words = BAD[case]
    folder = tmp_path / "db"
    if case != "legacy":
        _hoplite_made(folder, (world / "media").resolve()).db.close()
    spoil(folder)
    before = [info.name for info in audioscan.open(world / "store").sets()]
    result = run("vectors", "import", str(folder), "--format", "hoplite", store=world / "store")
    assert result.exit_code == 1 and words in result.stderr, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert [info.name for info in audioscan.open(world / "store").sets()] == before


def test_a_folder_given_as_parquet_and_a_file_as_hoplite_are_refused(world, tmp_path):
    (tmp_path / "dir").mkdir()
    assert "--format parquet reads one file" in run("vectors", "import", str(tmp_path / "dir"),
                                                    store=world / "store").stderr
    shutil.copy(world / "media" / "sub" / "other.flac", tmp_path / "x.flac")
    assert "--format hoplite reads a database folder" in run("vectors", "import", str(tmp_path / "x.flac"), "--format",
                                                             "hoplite", store=world / "store").stderr


def test_without_usearch_the_hoplite_format_says_what_to_install(world, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "usearch", None)
    result = run("vectors", "export", "--format", "hoplite", "--out", str(tmp_path / "db"), store=world / "store")
    assert result.exit_code == 1 and "audioscan[hoplite]" in result.stderr and not (tmp_path / "db").exists()


def _birdnet_analyzer_made(folder, media, vectors_of) -> None:
    """A database as BirdNET-Analyzer writes one: its settings, files by absolute path, 3 s windows."""
    db = hoplite_db.SQLiteUSearchDB.create(str(folder), usearch_cfg=hoplite_db.get_default_usearch_config(1024))
    db.insert_metadata("birdnet_analyzer_settings", config_dict.ConfigDict(
        {"BANDPASS_FMIN": 0, "BANDPASS_FMAX": 15000, "AUDIO_SPEED": 1.0}))
    deployment = db.insert_deployment(name="birdnet_analyzer_dataset", project="birdnet_analyzer_dataset")
    for path in sorted(media.iterdir()):
        recording = db.insert_recording(filename=str(path), deployment_id=deployment)
        for start, vector in vectors_of(path):
            db.insert_window(recording, [start, start + 3.0], vector)
    db.commit()


def test_birdnet_vectors_that_birdnet_gives_again_make_a_birdnet_set_and_others_do_not(tmp_path):
    from audioscan.indexer.media.decode import decode_all
    from audioscan.indexer.media.samples import scene, write_media
    from audioscan.models import registry

    media = (tmp_path / "media").resolve()
    write_media(media / "yard.flac", scene(12, 48_000, background="rain", events=[("chirp", 4, 6)], seed=1),
                rate=48_000)
    write_media(tmp_path / "query.wav", scene(2, 48_000, background="rain", events=[("chirp", 0.2, 1.8)], seed=3),
                rate=48_000)
    model = registry.load_model("BIRDNET")

    def birdnet(path):
        audio = decode_all(path, 48_000)
        starts = np.arange(0.0, 10.0, 3.0)
        return zip(starts, model.embed(np.stack([audio[int(s * 48_000):int(s * 48_000) + 144_000] for s in starts])))

    _birdnet_analyzer_made(tmp_path / "same", media, birdnet)
    same = run("vectors", "import", str(tmp_path / "same"), "--format", "hoplite", store=tmp_path / "store")
    assert same.exit_code == 0 and "note:" not in same.stderr, same.output
    library = audioscan.open(tmp_path / "store")
    info = next(i for i in library.sets() if i.name == "same")
    assert (info.model, info.foreign, info.window, info.hop) == ("BIRDNET", False, 3.0, 3.0)
    assert library.search(tmp_path / "query.wav", k=1, model="same")[0].path == str(media / "yard.flac")
    rng = np.random.default_rng(0)
    _birdnet_analyzer_made(tmp_path / "other", media,
                           lambda path: ((s, rng.standard_normal(1024).astype(np.float32)) for s, _ in birdnet(path)))
    other = run("vectors", "import", str(tmp_path / "other"), "--format", "hoplite", store=tmp_path / "store")
    assert other.exit_code == 0 and "gives other vectors" in other.stderr, other.output
    assert next(i for i in library.sets() if i.name == "other").foreign


@pytest.mark.parametrize("name", ["../outside.flac", "sub/../../outside.flac", "/etc/hostname"])
def test_a_recording_named_outside_its_root_is_refused(world, tmp_path, name):
    """A hostile database (or Parquet file) cannot make the store point at a file outside the root."""
    (world / "outside.flac").write_bytes((world / "media" / "sub" / "other.flac").read_bytes())
    folder = tmp_path / "db"
    db = _hoplite_made(folder, (world / "media").resolve())
    db.db.execute("UPDATE recordings SET filename = ? WHERE filename = 'long.mkv'", (name,))
    db.db.commit()
    db.db.close()
    result = run("vectors", "import", str(folder), "--format", "hoplite", store=world / "store")
    assert result.exit_code == 1 and "not a path inside its root folder" in result.stderr, result.output
