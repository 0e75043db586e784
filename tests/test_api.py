"""The README's notebook example, run as written (with real media and the offline default model)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import audioscan
from audioscan.indexer.media.samples import scene, write_media


def test_the_readme_notebook_example(tmp_path, monkeypatch):
    media = tmp_path / "Videos"
    write_media(media / "ep01.mkv",
                scene(40, 48_000, background="rain", events=[("siren", 10, 20), ("siren", 28, 34)],
                      seed=1), rate=48_000)
    write_media(media / "ep02.wav", scene(30, 16_000, background="noise", events=[("knock", 5, 12)], seed=2),
                rate=16_000)
    write_media(tmp_path / "clip.wav", scene(4, 16_000, background="rain", events=[("siren", 0, 4)], seed=3),
                rate=16_000)
    monkeypatch.chdir(tmp_path)

    lib = audioscan.open("lib.idx")                 # read-only unless asked
    with pytest.raises(audioscan.UserError, match="no audioscan store"):
        lib.status()                                # opening created nothing
    seen = []
    report = lib.build(media, models=["LOGMEL"], progress=lambda files, windows: seen.append(files))
    assert report.files_indexed == 2 and seen and seen[-1] == 2
    hits = lib.search("clip.wav", k=3)
    assert any(h.path.endswith("ep01.mkv") and h.start < 20 and h.end > 10 for h in hits)
    again = lib.search(("ep01.mkv", 15.0), k=3)     # a stored window: no model runs
    assert again and all(h.score <= 1.0 for h in again)
    first = lib.labels.add("ep01.mkv", 10, end=20, label="siren")
    assert [item.id for item in lib.labels.list("siren")] == [first]
    assert lib.labels.add("ep01.mkv", 10, end=20, label="siren") is None   # the same label is not stored twice
    lib.labels.add("ep02.wav", 0, end=30, label="siren", negative=True)
    det = lib.train("siren")
    found = det.rescore(threshold=0.5)              # detections, best first
    assert found and found[0].path.endswith("ep01.mkv")
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    table = found.to_arrow()
    assert isinstance(table, pa.Table) and table.column_names == ["path", "start", "end", "score", "peak", "onset",
                                                                  "offset", "label", "decision", "datetime",
                                                                  "site", "channel"]
    row = table.to_pylist()[0]
    assert row.pop("datetime") == found[0].iso_start()
    assert row == {field: getattr(found[0], field) for field in row}
    X, windows = lib.vectors("LOGMEL")              # vectors + a pyarrow table of windows
    assert X.shape == (windows.num_rows, lib.set("LOGMEL").dim) and np.isfinite(X).all()
    assert set(windows.column_names) == {"id", "path", "start", "end", "channel"}
    assert lib.detectors()[0]["name"] == "siren" and lib.check() == ([], [])
