"""Vectors out to Parquet or a perch-hoplite database and back in: seconds, MB/s and peak memory at N x 768.

A store of N random 768-d windows over 1,000 files is made through the store's own commit
protocol (no model runs); then, each in a fresh process so its peak resident memory is its own:
``vectors export`` (float32, then ``--half``) and ``vectors import`` into a new store, then the same
with ``--format hoplite``, beside perch-hoplite's own insert of the same vectors (when it is
installed, as ``make test`` installs it).  The baseline, in the same run, is reading the same
vectors out of the store into memory (``Library.vectors``), which any export has to do at least.

Run: ``.venv/bin/python bench/vectors_bench.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.store.records import Commit, FileVectors, MediaRow  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402

FILES, DIM = 1000, 768


def make_store(store: Path, media: Path, rows: int) -> None:
    media.mkdir(parents=True)
    per_file = rows // FILES
    rng = np.random.default_rng(0)
    with Store.open(store, write=True) as opened:
        info = opened.ensure_set("LOGMEL", "bench", window=8.0, hop=1.0, sample_rate=16_000, dim=DIM)
        root = opened.ensure_root(media.resolve())
        batch = Commit()
        for number in range(FILES):
            name = f"take{number:04d}.wav"
            (media / name).write_bytes(b"")  # a file to match; its bytes are never decoded
            media_id = opened.new_media_id()
            starts = np.arange(per_file, dtype=float)
            batch.media.append(MediaRow(media_id, root, path=name, size=0, mtime_ns=0, fingerprint=f"fp{number}",
                                        duration=per_file + 7.0, status="ok"))
            batch.vectors.append(FileVectors(media_id, info.id, starts=starts, ends=starts + 8,
                                             vectors=rng.standard_normal((per_file, DIM)).astype(np.float32)))
            if batch.windows() >= 100_000:
                opened.commit(batch)
                batch = Commit()
        if batch:
            opened.commit(batch)


_STEP = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, {root!r})
    import audioscan
    started = time.perf_counter()
    {body}
    seconds = time.perf_counter() - started
    print(json.dumps({{"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
""")


def step(body: str) -> dict:
    code = _STEP.format(root=str(Path(__file__).resolve().parents[1]), body=body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


_HOPLITE_INSERT = """
from perch_hoplite.db import sqlite_usearch_impl as impl
import numpy as np
db = impl.SQLiteUSearchDB.create({db!r}, usearch_cfg=impl.get_default_usearch_config({dim}))
deployment = db.insert_deployment(name="media", project="media")
rng = np.random.default_rng(0)
for number in range({files}):
    recording = db.insert_recording(filename=f"take{{number:04d}}.wav", deployment_id=deployment)
    db.insert_windows_batch([{{"recording_id": recording, "offsets": [float(s),
                                                                      float(s + 8)]}} for s in range({per_file})],
                            rng.standard_normal(({per_file}, {dim})).astype(np.float32), handle_duplicates="allow")
db.commit()
"""


def hoplite_installed() -> bool:
    try:
        import perch_hoplite.db.sqlite_usearch_impl  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        make_store(base / "store", base / "media", args.rows)
        rows = args.rows // FILES * FILES
        vector_mb = rows * DIM * 4 / 1e6
        print(f"{rows:,} windows x {DIM} ({vector_mb:.0f} MB of float32 vectors), {FILES} files")
        print(f"{'step':<28}{'seconds':>9}{'MB/s':>8}{'peak MB':>9}{'x read':>8}", flush=True)
        store, media = repr(str(base / "store")), repr(str(base / "media"))
        read = step(f"audioscan.open({store}).vectors()")
        steps = [("read into memory (baseline)", None),
                 ("export parquet float32", f"audioscan.open({store}).export_vectors({str(base / 'v.parquet')!r})"),
                 ("export parquet --half",
                  f"audioscan.open({store}).export_vectors({str(base / 'h.parquet')!r}, half=True)"),
                 ("import parquet", f"audioscan.open({str(base / 'new')!r}).import_vectors("
                                    f"{str(base / 'v.parquet')!r}, media_root={media})"),
                 ("export hoplite", f"audioscan.open({store}).export_vectors({str(base / 'hop')!r}, fmt='hoplite')"),
                 ("import hoplite", f"audioscan.open({str(base / 'new2')!r}).import_vectors("
                                    f"{str(base / 'hop')!r}, fmt='hoplite', media_root={media})")]
        if hoplite_installed():
            steps.append(("perch-hoplite's own insert", _HOPLITE_INSERT.format(
                db=str(base / "theirs"), dim=DIM, files=FILES, per_file=rows // FILES)))
        for name, body in steps:  # each printed as it ends: a long run's figures are never all lost
            figures = read if body is None else step(body)
            print(f"{name:<28}{figures['seconds']:>9.2f}{vector_mb / figures['seconds']:>8.0f}"
                  f"{figures['peak_mb']:>9.0f}{figures['seconds'] / read['seconds']:>8.2f}", flush=True)
        sizes = {name: (base / name).stat().st_size / 1e6 for name in ("v.parquet", "h.parquet")}
        sizes["hoplite"] = sum(p.stat().st_size for p in (base / "hop").iterdir()) / 1e6
        print(f"file sizes: float32 {sizes['v.parquet']:.0f} MB, float16 {sizes['h.parquet']:.0f} MB, "
              f"hoplite {sizes['hoplite']:.0f} MB")


if __name__ == "__main__":
    main()
