"""A perch-hoplite (or BirdNET-Analyzer) database in as window vectors: :class:`~vectors_in.Incoming`
for ``vectors_in.import_vectors``, like a Parquet file.

Recordings are named relative to their dataset's ``base_path`` (hoplite's ``audio_sources``
metadata); the deployment's project names the dataset.  With ``media_root`` every file name is read
under that folder instead.  A database audioscan wrote carries its set's description (metadata key
``audioscan``) and comes back as that set's model and cut; another tool's gives its model key, window
and hop.  Either way the set is one audioscan does not compute itself (``SetInfo.foreign``): the
vectors are what the database holds (float16; unit length and centred, as audioscan ranks them,
when audioscan wrote them), not what a model run here would give.  Annotations come
back as labels, POSITIVE and NEGATIVE exactly; UNCERTAIN ones are counted and left out, since a
label here is one or the other.
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

import numpy as np

from audioscan.indexer.store import hoplite
from audioscan.indexer.store.records import FOREIGN_WEIGHTS
from audioscan.indexer.store.segments import content_id
from audioscan.indexer.vectors_in import Incoming, IncomingLabel, VectorsError


def read_hoplite(folder: Path) -> Incoming:
    """Every window of the database in ``folder`` with its place, checked: the index agrees with the
    tables, and every vector is finite."""
    reader = hoplite.HopliteReader(folder)
    try:
        recordings = reader.recordings()
        windows = reader.windows()
        annotations = reader.annotations()
    finally:
        reader.close()
    bases = _base_paths(reader.metadata)
    _check_finite(reader, windows.ids)
    unknown = sorted(set(windows.recording_ids.tolist()) - set(recordings))
    if unknown:
        raise VectorsError(f"{folder}: windows name recording {unknown[0]}, which the recordings table does not "
                           "hold; the database is inconsistent")
    places = _places(recordings, bases)
    rows = windows.recording_ids.tolist()
    labels = [IncomingLabel(*places[a.recording_id], start=a.start, end=a.end, label=a.label,
                            positive=a.label_type == hoplite.POSITIVE)
              for a in annotations if a.label_type in (hoplite.POSITIVE, hoplite.NEGATIVE)
              and a.recording_id in recordings]
    return Incoming(source=folder, roots=[places[rid][0] for rid in rows], paths=[places[rid][1] for rid in rows],
                    starts=windows.starts, ends=windows.ends, dim=reader.dim,
                    description={**_description(reader.metadata, folder), "hoplite_metadata": reader.metadata},
                    fetch=lambda positions: reader.vectors(windows.ids[positions]),
                    labels=tuple(labels), uncertain=len(annotations) - len(labels))


def _base_paths(metadata: dict) -> dict[str, str]:
    """Each dataset's base path, from ``audio_sources``; a dataset without one reads under ``media_root``."""
    sources = metadata.get("audio_sources")
    globs = sources.get("audio_globs") if isinstance(sources, dict) else None
    return {str(item["dataset_name"]): str(item["base_path"]) for item in globs or []
            if isinstance(item, dict) and item.get("dataset_name") is not None and item.get("base_path")}


def _places(recordings: dict[int, hoplite.Recording], bases: dict[str, str]) -> dict[int, tuple[str | None, str]]:
    """(root, path) of each recording: under its dataset's base path; a file named by its absolute
    path (as BirdNET-Analyzer names them) under the folder all such files share; else no root (the
    import then needs ``media_root``)."""
    absolute = [rec.filename for rec in recordings.values()
                if bases.get(rec.project) is None and PurePosixPath(rec.filename).is_absolute()]
    shared = posixpath.commonpath(absolute) if absolute else "/"
    shared = posixpath.dirname(shared) if shared in absolute else shared
    places: dict[int, tuple[str | None, str]] = {}
    for rid, rec in recordings.items():
        base = bases.get(rec.project)
        if base is None and PurePosixPath(rec.filename).is_absolute():
            places[rid] = (shared, posixpath.relpath(rec.filename, shared))
        else:
            places[rid] = (base, rec.filename)
    return places


def _check_finite(reader: hoplite.HopliteReader, ids: np.ndarray) -> None:
    for first in range(0, len(ids), hoplite.FETCH_ROWS):
        part = ids[first:first + hoplite.FETCH_ROWS]
        finite = np.isfinite(reader.vectors(part)).all(axis=1)
        if not finite.all():
            raise VectorsError(f"{reader.folder}: window {int(part[np.flatnonzero(~finite)[0]])} has a vector with "
                               "NaN or infinite values; nothing was imported")


def _description(metadata: dict, folder: Path) -> dict:
    """The set the vectors make: as audioscan described it when it wrote the database, else from
    hoplite's ``model_config`` (a model audioscan does not run: its weights are the database's)."""
    ours = metadata.get("audioscan")
    if isinstance(ours, dict) and ours.get("model") and ours.get("weights_id"):
        # The vectors are as search ranked them (centred, unit length), not as the model gave them:
        # the set keeps its model and cut but is one no build adds to.
        weights = str(ours["weights_id"])
        return {**ours, "weights_id": weights if weights.startswith(FOREIGN_WEIGHTS) else FOREIGN_WEIGHTS + weights}
    config = metadata.get("model_config")
    config = config if isinstance(config, dict) else {}
    nested = config.get("model_config")
    inner = nested if isinstance(nested, dict) else {}
    key = str(config.get("model_key") or "hoplite")
    return {"set": folder.name, "model": f"HOPLITE-{key}", "window": inner.get("window_size_s"),
            "hop": inner.get("hop_size_s"), "sample_rate": inner.get("sample_rate"),
            "weights_id": f"{FOREIGN_WEIGHTS}{key}-{content_id(folder / hoplite.SQLITE_NAME)[:12]}"}
