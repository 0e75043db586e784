"""Vectors out to the tools people already use: one Parquet row per window.

The interchange shape (DESIGN.md, "From and to other tools"): ``root``, ``path`` (relative to the
root), ``start``, ``end`` (seconds), ``channel`` (0: the mono mix every set is indexed as), ``id``
(the window's id in the store) and ``vector`` (a fixed-size list of float32, or float16 with
``half``), with the set - model, weights, window, hop, rate, dimension - and the audioscan version
in the schema's metadata under ``audioscan``, so pandas, DuckDB, polars or another store can read
what the numbers are.  ``audioscan vectors import`` reads it back.

The file is written segment by segment in row groups of :data:`CHUNK_ROWS`, so memory holds one
segment's live vectors at most, never the set; it is written under a temporary name and renamed,
so a reader never sees half a file.  Labels go to a file of their own (``labels_parquet``) with
the same keys (root, path, start, end).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioscan.indexer.store.annotations import Label
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.snapshot import Snapshot

# The schema metadata key that holds the set's description (JSON).
METADATA_KEY = b"audioscan"
CHUNK_ROWS = 65_536
MONO_MIX = 0


@dataclass(frozen=True)
class VectorsWritten:
    """What an export wrote: the vectors' file and row count, and the labels' file when asked."""

    path: Path
    rows: int
    labels_path: Path | None = None
    labels: int = 0


def set_description(info: SetInfo, version: str) -> dict:
    """The set as the metadata of an exported file names it (what ``vectors import`` reads back)."""
    return {"set": info.name, "model": info.model, "weights_id": info.weights_id, "window": info.window,
            "hop": info.hop, "sample_rate": info.sample_rate, "dim": info.dim, "audioscan_version": version}


def vector_schema(dim: int, half: bool, description: dict) -> pa.Schema:
    value = pa.float16() if half else pa.float32()
    return pa.schema([("root", pa.string()), ("path", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                      ("channel", pa.int16()), ("id", pa.int64()), ("vector", pa.list_(value, dim))],
                     metadata={METADATA_KEY: json.dumps(description).encode("utf-8")})


def write_parquet(snapshot: Snapshot, out: Path, *, half: bool, version: str) -> VectorsWritten:
    """Every live window of ``snapshot`` with its vector, to ``out`` (see the module docstring)."""
    info = snapshot.info
    schema = vector_schema(info.dim, half, set_description(info, version))
    roots = {mid: media.root for mid, media in snapshot.media.items()}
    rels = {mid: media.rel for mid, media in snapshot.media.items()}
    dtype = np.float16 if half else np.float32
    rows = 0
    tmp = out.with_name(out.name + ".tmp")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for positions, ids, vectors in snapshot.iter_segments():
                for first in range(0, len(positions), CHUNK_ROWS):
                    part = slice(first, first + CHUNK_ROWS)
                    media_ids = snapshot.media_ids[positions[part]]
                    flat = np.ascontiguousarray(vectors[part], dtype=dtype).reshape(-1)
                    writer.write_table(pa.table({
                        "root": pa.array([roots[int(m)] for m in media_ids], pa.string()),
                        "path": pa.array([rels[int(m)] for m in media_ids], pa.string()),
                        "start": pa.array(snapshot.starts[positions[part]], pa.float64()),
                        "end": pa.array(snapshot.ends[positions[part]], pa.float64()),
                        "channel": pa.array(np.full(len(media_ids), MONO_MIX, np.int16), pa.int16()),
                        "id": pa.array(ids[part], pa.int64()),
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat), info.dim),
                    }, schema=schema))
                    rows += len(media_ids)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return VectorsWritten(path=out, rows=rows)


def labels_path(out: Path) -> Path:
    """Where the labels of an export to ``out`` go: beside it, ``NAME.labels.parquet``."""
    return out.with_name(out.name.removesuffix(".parquet") + ".labels.parquet")


def write_labels_parquet(labels: list[Label], out: Path) -> int:
    """The labels, one row each, keyed as the vectors are (root, path, start, end)."""
    table = pa.table({
        "root": pa.array([item.media.root for item in labels], pa.string()),
        "path": pa.array([item.media.rel for item in labels], pa.string()),
        "start": pa.array([item.start for item in labels], pa.float64()),
        "end": pa.array([item.end for item in labels], pa.float64()),
        "label": pa.array([item.label for item in labels], pa.string()),
        "negative": pa.array([not item.positive for item in labels], pa.bool_()),
        "kind": pa.array([item.kind for item in labels], pa.string()),
        "source": pa.array([item.source for item in labels], pa.string()),
    })
    tmp = out.with_name(out.name + ".tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(labels)
