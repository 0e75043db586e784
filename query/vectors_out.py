"""Vectors out to the tools people already use: one Parquet row per window, or a perch-hoplite database.

The interchange shape (DESIGN.md, "From and to other tools"): ``root``, ``path`` (relative to the
root), ``start``, ``end`` (seconds), ``channel`` (0: the mono mix a set is indexed as by default; from 1,
each channel of a set built with ``--channels split``), ``id``
(the window's id in the store) and ``vector`` (a fixed-size list of float32, or float16 with
``half``), with the set - model, weights, window, hop, rate, dimension - and the audioscan version
in the schema's metadata under ``audioscan``, so pandas, DuckDB, polars or another store can read
what the numbers are.  ``audioscan vectors import`` reads it back.

The file is written segment by segment in row groups of :data:`CHUNK_ROWS`, so memory holds one
segment's live vectors at most, never the set; it is written under a temporary name and renamed,
so a reader never sees half a file.  Labels go to a file of their own (``labels_parquet``) with
the same keys (root, path, start, end) and each label's channel (0: the whole file).

The hoplite database (:func:`write_hoplite`, layout in ``indexer/store/hoplite.py``) holds a
deployment per library root (project and name: the root's folder name), or per site where
folders are named sites (the site's name, latitude and longitude), a recording per media
file named relative to its root (the dataset's ``base_path``) with its start time where known
(ISO 8601, in its zone), each window with ``[start, end]``
offsets, the labels as POSITIVE/NEGATIVE annotations with provenance ``audioscan``, the model and
cut in ``model_config`` and the set's description under ``audioscan``.  Its vectors are scaled to
unit length: hoplite ranks by inner product, and on unit vectors that is the cosine audioscan
ranks by, so the same query finds the same windows in both.  A split set is refused there: hoplite's
windows have no channel.
"""

from __future__ import annotations

import json
import os
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audioscan.indexer.store import hoplite
from audioscan.indexer.store.ann import unit_vectors
from audioscan.indexer.store.annotations import Label
from audioscan.indexer.store.journal import SiteEntry
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.snapshot import MediaInfo, Snapshot
from audioscan.query.errors import QueryError

# The schema metadata key that holds the set's description (JSON).
METADATA_KEY = b"audioscan"
CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class VectorsWritten:
    """What an export wrote: the vectors' file and row count, and the labels' file when asked."""

    path: Path
    rows: int
    _: KW_ONLY
    labels_path: Path | None = None
    labels: int = 0


def set_description(info: SetInfo, version: str) -> dict:
    """The set as the metadata of an exported file names it (what ``vectors import`` reads back)."""
    return {"set": info.name, "model": info.model, "weights_id": info.weights_id, "window": info.window,
            "hop": info.hop, "sample_rate": info.sample_rate, "dim": info.dim, "audioscan_version": version}


def vector_schema(dim: int, half: bool, *, description: dict) -> pa.Schema:
    value = pa.float16() if half else pa.float32()
    return pa.schema([("root", pa.string()), ("path", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
                      ("channel", pa.int16()), ("id", pa.int64()), ("vector", pa.list_(value, dim))],
                     metadata={METADATA_KEY: json.dumps(description).encode("utf-8")})


def write_parquet(snapshot: Snapshot, out: Path, *, half: bool, version: str) -> VectorsWritten:
    """Every live window of ``snapshot`` with its vector, to ``out`` (see the module docstring)."""
    info = snapshot.info
    schema = vector_schema(info.dim, half, description=set_description(info, version))
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
                        "channel": pa.array(snapshot.channels[positions[part]], pa.int16()),
                        "id": pa.array(ids[part], pa.int64()),
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat), info.dim),
                    }, schema=schema))
                    rows += len(media_ids)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return VectorsWritten(path=out, rows=rows)


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
        "channel": pa.array([item.channel for item in labels], pa.int16()),
    })
    tmp = out.with_name(out.name + ".tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(labels)


PROVENANCE = "audioscan"
# hoplite's model key for the one model both run (perch_hoplite/zoo/model_configs.py: BirdNET V2.4).
HOPLITE_MODEL_KEYS = {"BIRDNET": "birdnet"}


def _datasets(roots: list[str]) -> dict[str, str]:
    """A dataset (and deployment) name per root: its folder name, made unique with a number."""
    names: dict[str, str] = {}
    for root in roots:
        base = Path(root).name or "library"
        name, number = base, 2
        while name in names.values():
            name, number = f"{base}-{number}", number + 1
        names[root] = name
    return names


def hoplite_metadata(info: SetInfo, datasets: dict[str, str], *, version: str) -> dict:
    """``model_config``, ``audio_sources`` and our own ``audioscan`` entry, as hoplite's metadata holds them."""
    model: dict[str, object] = {"window_size_s": info.window, "hop_size_s": info.hop, "sample_rate": info.sample_rate}
    if info.model == "BIRDNET":
        model["class_list_name"] = "birdnet_v2_4"
    globs = [{"dataset_name": name, "base_path": root, "file_glob": "**/*", "min_audio_len_s": 0.0,
              "target_sample_rate_hz": -2, "shard_len_s": None, "max_shards_per_file": None}
             for root, name in datasets.items()]
    return {"model_config": {"model_key": HOPLITE_MODEL_KEYS.get(info.model, f"audioscan_{info.model.lower()}"),
                             "embedding_dim": info.dim, "model_config": model, "logits_key": None,
                             "logits_idxes": None},
            "audio_sources": {"audio_globs": globs},
            "audioscan": set_description(info, version)}


def write_hoplite(snapshot: Snapshot, labels: list[Label], *, out: Path, centre: np.ndarray | None,
                  version: str, sites: Sequence[SiteEntry] = ()) -> VectorsWritten:
    """Every live window of ``snapshot`` and ``labels`` as a perch-hoplite database in the new folder
    ``out`` (see the module docstring); built beside it and moved into place whole.  ``centre``: the
    set's mean, subtracted first where search compares a set's vectors centred (LOGMEL)."""
    if out.exists():
        raise QueryError(f"{out} is already there; a hoplite database is written to a new folder - give another `out`")
    info = snapshot.info
    if info.split:
        raise QueryError(f"set {info.name} hears each channel apart, and a hoplite database has no place for a "
                         "window's channel; export it as Parquet (its rows say the channel), or a mixed set as hoplite")
    roots = sorted({media.root for media in snapshot.media.values()} | {item.media.root for item in labels})
    datasets = _datasets(roots)
    writer = hoplite.HopliteWriter(out, info.dim, metadata=hoplite_metadata(info, datasets, version=version))
    try:
        located = {site.name: site for site in sites}
        deployments: dict[tuple[str, str | None], int] = {}
        recordings: dict[tuple[str, str], int] = {}

        def deployment(media: MediaInfo) -> int:
            if (media.root, media.site) not in deployments:
                project, place = datasets[media.root], located.get(media.site or "")
                deployments[(media.root, media.site)] = writer.deployment(
                    media.site or project, project, latitude=place.latitude if place else None,
                    longitude=place.longitude if place else None)
            return deployments[(media.root, media.site)]

        def recording(media: MediaInfo) -> int:
            if (media.root, media.rel) not in recordings:
                started = None if media.recorded is None else media.recorded.at(0).isoformat()
                recordings[(media.root, media.rel)] = writer.recording(media.rel, deployment(media), datetime=started)
            return recordings[(media.root, media.rel)]

        rows = 0
        for positions, _, vectors in snapshot.iter_segments():
            media_ids = snapshot.media_ids[positions]
            places = {int(m): recording(snapshot.media[int(m)])
                      for m in np.unique(media_ids)}
            writer.windows(np.asarray([places[int(m)] for m in media_ids], dtype=np.int64), snapshot.starts[positions],
                           ends=snapshot.ends[positions],
                           vectors=unit_vectors(vectors if centre is None else vectors - centre))
            rows += len(positions)
        written = writer.annotations(
            hoplite.Annotation(recording_id=recording(item.media), start=item.start,
                               end=item.end if item.kind == "range" else item.start, label=item.label,
                               label_type=hoplite.POSITIVE if item.positive else hoplite.NEGATIVE,
                               provenance=PROVENANCE)
            for item in labels)
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
    return VectorsWritten(path=out, rows=rows, labels_path=out if labels else None, labels=written)
