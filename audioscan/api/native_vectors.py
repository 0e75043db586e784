"""Another tool's BirdNET V2.4 vectors as audioscan's own BIRDNET set, when they are the same vectors.

perch-hoplite (model key ``birdnet``, class list ``birdnet_v2_4``) and BirdNET-Analyzer (metadata
``birdnet_analyzer_settings``) run the model audioscan runs as ``BIRDNET``, with 3-second windows.
If BIRDNET here gives the same vectors for a few of the stored windows (re-embedded from the media,
cosine at least :data:`SAME_COSINE`: the database keeps float16, and hoplite's preset runs the FP16
model), the set is a native BIRDNET set: ``search CLIP`` embeds for it and later builds keep it up
to date.  Otherwise it stays a set of that tool's vectors, and the reason is kept for the report:
a bandpass or speed-up the tool applied, other weights, files that cannot be read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from audioscan.errors import UserError
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.vectors_in import Incoming
from audioscan.models import registry
from audioscan.query.search import embed_clip

SAME_COSINE = 0.99
CHECKED_WINDOWS = 3
BIRDNET_WINDOW = 3.0
# BirdNET-Analyzer's defaults: no speed-up, the full band (its SIG_FMIN/SIG_FMAX).
ANALYZER_DEFAULTS = {"AUDIO_SPEED": 1.0, "BANDPASS_FMIN": 0, "BANDPASS_FMAX": 15000}


def claims_birdnet(metadata: dict) -> str | None:
    """What in the database says BirdNET V2.4 made its vectors, or None."""
    settings = metadata.get("birdnet_analyzer_settings")
    if isinstance(settings, dict):
        changed = [key for key, value in ANALYZER_DEFAULTS.items() if settings.get(key, value) != value]
        return None if changed else "BirdNET-Analyzer"
    config = metadata.get("model_config")
    inner = config.get("model_config") if isinstance(config, dict) else None
    if isinstance(config, dict) and config.get("model_key") == "birdnet" and isinstance(inner, dict) and \
            (inner.get("class_list_name") == "birdnet_v2_4" or "V2.4" in str(inner.get("model_path", ""))):
        return "perch-hoplite's BirdNET V2.4"
    return None


def as_native_birdnet(incoming: Incoming, media_root: Path | None) -> tuple[Incoming, str | None]:
    """``incoming`` as a BIRDNET set when its vectors are BIRDNET's (see the module docstring), and
    None; else ``incoming`` unchanged and the sentence that says why not (None when nothing claimed
    BirdNET)."""
    claimed = claims_birdnet(incoming.description.get("hoplite_metadata") or {})
    if claimed is None:
        return incoming, None
    spec = registry.spec("BIRDNET")
    window = round(float(np.median(incoming.ends - incoming.starts)), 6) if len(incoming.starts) else 0.0
    if incoming.dim != spec.dim or window != BIRDNET_WINDOW:
        return incoming, (f"the vectors claim {claimed} but have {incoming.dim} dimensions and {window:g} s windows, "
                          f"not BIRDNET's {spec.dim} and {BIRDNET_WINDOW:g} s")
    try:
        weights = spec.weights_id()
    except UserError as err:
        return incoming, f"BIRDNET cannot run here to check them ({err.template})"
    info = SetInfo(id=0, name="check", model="BIRDNET", weights_id=weights, window=BIRDNET_WINDOW,
                   hop=BIRDNET_WINDOW, sample_rate=spec.sample_rate, dim=spec.dim, dtype="float32")
    rows = np.linspace(0, len(incoming.starts) - 1, num=min(CHECKED_WINDOWS, len(incoming.starts))).astype(int)
    stored = incoming.vectors_at(rows)
    for row, vector in zip(rows.tolist(), stored):
        root = media_root if media_root is not None else Path(incoming.roots[row] or "")
        try:
            again = embed_clip(root / incoming.paths[row], info, start=float(incoming.starts[row]),
                               end=float(incoming.ends[row]))
        except UserError as err:
            return incoming, f"a stored window could not be embedded again to check them ({err.template})"
        cosine = float(again @ vector / max(np.linalg.norm(again) * np.linalg.norm(vector), 1e-12))
        if cosine < SAME_COSINE:
            return incoming, (f"BIRDNET here gives other vectors for {incoming.paths[row]} at "
                              f"{incoming.starts[row]:g} s (cosine {cosine:.3f}): they are not the same model's")
    description = {**incoming.description, "model": "BIRDNET", "weights_id": weights, "window": BIRDNET_WINDOW,
                   "sample_rate": spec.sample_rate}
    return replace(incoming, description=description), None
