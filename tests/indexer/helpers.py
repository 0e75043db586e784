"""Helpers the indexer tests share: building through the API and reading a store back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audioscan.indexer.build import BuildOptions, BuildReport, build
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow
from audioscan.indexer.store.store import Store


def build_once(store_path: Path, root: Path, **options) -> BuildReport:
    with Store.open(store_path, write=True) as store:
        return build(store, root, options=BuildOptions(**options))


def live_windows(store_path: Path) -> list[tuple[str, str, float, float]]:
    """Every live window as (set, path, start, end), sorted: what 'the same store' means."""
    with Store.open(store_path) as store, store.connect() as con:
        rows = con.execute("SELECT set_name, path, start_s, end_s FROM live_windows").fetchall()
    return sorted((s, p, round(a, 6), round(b, 6)) for s, p, a, b in rows)


def vectors_by_window(store_path: Path) -> dict[tuple[str, float], np.ndarray]:
    with Store.open(store_path) as store:
        info = store.find_set()
        snapshot = store.snapshot(info)
        ids, vectors = snapshot.ids, snapshot.vectors()
    rels = [snapshot.media[int(m)].rel for m in snapshot.media_ids]
    where = {int(i): (p, round(float(s), 6)) for i, p, s in zip(ids, rels, snapshot.starts)}
    return {where[int(i)]: v for i, v in zip(ids, vectors)}


def commit_synthetic(store: Store, path: str, n: int, seed: int = 0) -> None:
    """Commit ``n`` random vectors as the windows of one media file (no decoding, no model)."""
    info = store.find_set()
    media_id = store.new_media_id()
    root_id = store.ensure_root(store.path.parent)
    vectors = np.random.default_rng(seed).standard_normal((n, info.dim)).astype(np.float32)
    store.commit(Commit(media=[MediaRow(media_id, root_id, path=path, size=1, mtime_ns=1,
                                        fingerprint=f"fp{path}{seed}", duration=n + 7.0, status="ok")],
                        vectors=[FileVectors(media_id, info.id, starts=np.arange(n, dtype=float),
                                             ends=np.arange(n, dtype=float) + 8, vectors=vectors)]))
