"""Vectors out to Parquet and back in: the rows, the metadata, search on an imported set, bad files."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import audioscan
from audioscan.indexer.build import build_targets
from audioscan.indexer.vectors_in import VectorsError
from audioscan.query.vectors_out import METADATA_KEY
from tests.test_cli import run


def top(library, path: str, at: float, model: str | None = None) -> list[tuple[str, float, float]]:
    return [(hit.path.rsplit("/", 1)[-1], hit.start, hit.end)
            for hit in library.search((path, at), k=10, model=model)]


def test_an_export_holds_every_window_and_says_what_the_vectors_are(world):
    library = audioscan.open(world / "store")
    library.labels.add("long.mkv", 20, end=30, label="siren")
    out = world / "vectors.parquet"
    result = run("vectors", "export", "--out", str(out), "--labels", store=world / "store")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    vectors, windows = library.vectors()
    assert table.num_rows == len(vectors)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), vectors.shape[1])
    by_id = dict(zip(windows.column("id").to_pylist(), vectors))
    stored = np.stack([by_id[i] for i in table.column("id").to_pylist()])
    assert np.array_equal(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), stored)  # bit for bit
    described = json.loads(table.schema.metadata[METADATA_KEY])
    info = library.set()
    assert (described["model"], described["window"], described["hop"], described["dim"]) == (
        info.model, info.window, info.hop, info.dim)
    counted = duckdb.sql(f"select count(*) from '{out}' where path = 'long.mkv'").fetchall()[0][0]
    assert counted == sum(1 for p in windows.column("path").to_pylist() if p.endswith("long.mkv"))
    labels = pq.read_table(world / "vectors.labels.parquet").to_pylist()
    assert [(row["path"], row["start"], row["end"], row["label"], row["negative"]) for row in labels] == [
        ("long.mkv", 20.0, 30.0, "siren", False)]
    half = world / "half.parquet"
    library.export_vectors(half, half=True)
    assert pq.read_table(half).schema.field("vector").type.value_type == pa.float16()


def test_export_import_export_gives_the_same_vectors_and_search_works_on_the_imported_set(world, tmp_path):
    library = audioscan.open(world / "store")
    first = world / "first.parquet"
    library.export_vectors(first)
    other = audioscan.open(tmp_path / "other")
    result = run("vectors", "import", str(first), "--name", "mine", store=tmp_path / "other")
    assert result.exit_code == 0, result.output
    assert "windows of 3 files imported" in result.stdout
    again = tmp_path / "again.parquet"
    other.export_vectors(again)
    a, b = pq.read_table(first), pq.read_table(again)
    key = lambda t: sorted(zip(t.column("path").to_pylist(), t.column("start").to_pylist(),  # noqa: E731
                               (v.tobytes() for v in t.column("vector").to_numpy(zero_copy_only=False))))
    assert key(a) == key(b)
    long_path = next(m.path for m in library.media().values() if m.path.endswith("long.mkv"))
    assert top(other, long_path, 25.0) == top(library, long_path, 25.0)
    assert run("index", "check", store=tmp_path / "other").exit_code == 0


def test_another_tools_vectors_make_a_set_that_every_stored_vector_command_uses(world, tmp_path):
    """No metadata, a model audioscan does not run: the cut is read from the windows; search from a
    stored window, train and rescore work; a clip search says which commands do."""
    rng = np.random.default_rng(0)
    media = world / "media"
    rows = [("long.mkv", float(start)) for start in range(0, 297, 3)] + [("knock.mp3", float(s)) for s in range(0, 37, 3)]
    vectors = rng.standard_normal((len(rows), 16)).astype(np.float32)
    vectors[[i for i, (p, s) in enumerate(rows) if p == "long.mkv" and 18 <= s <= 30]] += 4.0
    table = pa.table({"path": [p for p, _ in rows], "start": [s for _, s in rows], "end": [s + 3 for _, s in rows],
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 16)})
    source = tmp_path / "perch.parquet"
    pq.write_table(table, source)
    store = tmp_path / "foreign"
    done = audioscan.open(store).import_vectors(source, media_root=media)
    assert (done.files, done.windows, done.unmatched) == (2, len(rows), [])
    library = audioscan.open(store)
    info = library.set()
    assert (info.window, info.hop, info.foreign) == (3.0, 3.0, True)
    hits = library.search((str(media / "long.mkv"), 21.0), k=3)
    assert 18 <= hits[0].start <= 30 and hits[0].score > 0.9  # the planted windows beside the query's own
    library.labels.add("long.mkv", 20, end=30, label="siren")
    library.labels.add("long.mkv", 100, end=130, label="siren", negative=True)
    library.train("siren")
    assert library.detector("siren").rescore(0.5)[0].path.endswith("long.mkv")
    refused = run("search", str(media / "knock.mp3"), store=store)
    assert refused.exit_code == 1 and "--from" in refused.stderr and "another tool" in refused.stderr
    assert all(target.model != info.model  # no build fills it
               for target in build_targets(library.sets(), None, window=None, hop=None))
    assert run("index", "check", store=store).exit_code == 0


def _write(target, **columns) -> None:
    pq.write_table(pa.table(columns), target)


GOOD = {"path": ["long.mkv", "long.mkv"], "start": [0.0, 1.0], "end": [8.0, 9.0]}


@pytest.mark.parametrize("case, columns, words", [
    ("no vector column", dict(GOOD), "no column vector"),
    ("NaN", {**GOOD, "vector": [[1.0, float("nan")], [1.0, 2.0]]}, "row 1 has a vector with NaN"),
    ("two dimensions", {**GOOD, "vector": [[1.0, 2.0], [1.0, 2.0, 3.0]]}, "different lengths"),
    ("text vectors", {**GOOD, "vector": ["a", "b"]}, "not lists of floating-point"),
    ("end before start", {**GOOD, "end": [8.0, 0.5], "vector": [[1.0], [2.0]]}, "row 2 has start"),
    ("a window twice", {**GOOD, "start": [0.0, 0.0], "vector": [[1.0], [2.0]]}, "rows 1 and 2 are the same window"),
])
def test_a_bad_file_is_one_sentence_and_nothing_is_imported(case, columns, words, world, tmp_path):
    source = tmp_path / "bad.parquet"
    _write(source, **columns)
    library = audioscan.open(tmp_path / "fresh")
    with pytest.raises(VectorsError, match=words):
        library.import_vectors(source, media_root=world / "media")
    assert not (tmp_path / "fresh" / "catalog.duckdb").exists() or library.sets() == []


def test_a_truncated_file_and_a_name_taken_are_refused(world, tmp_path):
    library = audioscan.open(world / "store")
    good = tmp_path / "good.parquet"
    library.export_vectors(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = run("vectors", "import", str(cut), store=tmp_path / "s")
    assert result.exit_code == 1 and "not a readable Parquet file" in result.stderr
    taken = run("vectors", "import", str(good), store=world / "store")
    assert taken.exit_code == 1 and "already" in taken.stderr
    assert [info.name for info in library.sets()] == [library.set().name]


def test_unmatched_files_are_listed_not_fatal(world, tmp_path):
    library = audioscan.open(world / "store")
    out = tmp_path / "v.parquet"
    library.export_vectors(out)
    (world / "media" / "knock.mp3").rename(tmp_path / "elsewhere.mp3")
    result = run("vectors", "import", str(out), "--name", "partial", store=tmp_path / "s2")
    assert result.exit_code == 0 and "not found: " in result.stderr and "knock.mp3" in result.stderr
    assert "of 2 files imported" in result.stdout


def test_rows_in_any_order_over_many_row_groups_import_as_the_same_windows(world, tmp_path):
    """Vectors are read a row group at a time: a file's windows scattered over many small groups
    (another tool's order) come back whole and in place."""
    library = audioscan.open(world / "store")
    ordered = tmp_path / "ordered.parquet"
    library.export_vectors(ordered)
    table = pq.read_table(ordered)
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    scattered = tmp_path / "scattered.parquet"
    pq.write_table(shuffled, scattered, row_group_size=7)
    other = audioscan.open(tmp_path / "other")
    other.import_vectors(scattered, name="scattered")
    again = tmp_path / "again.parquet"
    other.export_vectors(again)
    key = lambda t: sorted(zip(t.column("path").to_pylist(), t.column("start").to_pylist(),  # noqa: E731
                               (v.tobytes() for v in t.column("vector").to_numpy(zero_copy_only=False))))
    assert key(pq.read_table(again)) == key(table)
