"""Reference fixtures: outputs of the official implementations on tiny random models.

``tests/fixtures/beats_reference.npz`` was made by running microsoft/unilm
``beats/BEATs.py`` (commit c68101b) and ``eat_reference.npz`` the Hugging Face EAT
release's encoder (via its published port) with the original plan's preprocessing,
each on a tiny random configuration and the two waveforms of :func:`reference_waves`.
Each file holds the checkpoint (keys under ``model/``), its config and the expected
embeddings; none of that code is part of this project.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def reference_waves() -> np.ndarray:
    return (np.random.default_rng(123).standard_normal((2, 16_000 * 3)) * 0.1).astype(np.float32)


def load_reference(name: str) -> tuple[dict, dict, np.ndarray]:
    """(config, state dict of torch tensors, expected embeddings) of one fixture."""
    with np.load(FIXTURES / f"{name}_reference.npz", allow_pickle=False) as data:
        state = {key[len("model/"):]: torch.from_numpy(data[key]) for key in data.files if key.startswith("model/")}
        return json.loads(str(data["cfg"])), state, data["expected"]
