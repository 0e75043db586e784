"""Reference fixtures: outputs of the official implementations on tiny random models, and
LOGMEL as first written.

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


class LogMelFramedAlone:
    """LOGMEL's recipes as first written: every window framed on its own with torchaudio's
    transforms, as builds ran them until frames were shared.  The model is held equal to this,
    and ``bench/index_bench.py`` measures its speed against this."""

    name, dim, sample_rate = "LOGMEL", 256, 16_000

    def __init__(self, recipe: str = "logmel-v2") -> None:
        import torchaudio

        self.recipe = recipe
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=16_000, n_fft=400, win_length=400, hop_length=160, f_min=50.0, f_max=8000.0, n_mels=64,
            power=2.0, center=True)
        self._deltas = torchaudio.transforms.ComputeDeltas(win_length=5)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            power = self._mel(torch.as_tensor(np.ascontiguousarray(batch, dtype=np.float32)))
            logmel = torch.log(power.clamp_min(1e-10))
            delta = self._deltas(logmel)
            if self.recipe == "logmel-v1":
                parts = [logmel.mean(-1), logmel.std(-1, unbiased=False), delta.mean(-1),
                         delta.std(-1, unbiased=False)]
            else:
                level = 10 * torch.log10(power.sum(1).clamp_min(1e-10))
                active = (level >= level.amax(-1, keepdim=True) - 20.0).float()[:, None, :]
                count = active.sum(-1, keepdim=True).clamp_min(1.0)

                def stats(values):
                    mean = (values * active).sum(-1, keepdim=True) / count
                    return mean[..., 0], ((((values - mean) ** 2) * active).sum(-1, keepdim=True) / count
                                          ).sqrt()[..., 0]

                mean, std = stats(logmel)
                parts = [mean, std, stats(delta)[1], logmel.amax(-1)]
            return torch.cat(parts, dim=1).numpy()
