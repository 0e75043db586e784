"""LOGMEL: the weight-free offline default.

Every command must work on a machine that can download nothing, so the default
embedding is plain signal processing: 64 log-mel bands at 16 kHz (25 ms frames,
10 ms hop), summarised over the window.

Recipe ``logmel-v2`` (the default) hears short sounds: only frames within 20 dB of
the window's loudest frame are pooled, so a 1 s knock in an 8 s window is not
averaged away with the room noise around it (and the zero padding of a short file
or clip never counts).  Per band: the mean and standard deviation of those frames,
the standard deviation of their first differences (how fast the sound changes), and
the window's peak - 256 numbers.  The delta means of v1 are dropped (they carry
little but drift).  Its vectors are compared after centring on the set's mean
(``centred``), which spreads the cosine scores that raw log-mel statistics squash
near 1.  ``bench/detect_bench.py`` measures both recipes side by side.

Recipe ``logmel-v1`` (the first release: plain mean/std of log-mels and deltas over
every frame) stays loadable, so a store built with it keeps answering queries with
the same recipe; a new build makes a new, separate set.  Deterministic, finite on
digital silence (energies are floored before the logarithm).
"""

from __future__ import annotations

import numpy as np

from audioscan.models import runtime
from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.errors import ModelError

NAME = "LOGMEL"
SAMPLE_RATE = 16_000
N_MELS = 64
DIM = 4 * N_MELS
# The recipe is the set identity of LOGMEL vectors: bump it whenever the features change.
RECIPE_VERSION = "logmel-v2"
RECIPES = ("logmel-v1", "logmel-v2")
# Frames quieter than the window's loudest by more than this are not pooled (v2).
ACTIVE_RANGE_DB = 20.0
_ENERGY_FLOOR = 1e-10


class LogMelModel:
    """Log-mel statistics pooling; see the module docstring for the recipes."""

    name = NAME
    dim = DIM
    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu", recipe: str = RECIPE_VERSION) -> None:
        import torch

        torchaudio = runtime.torchaudio()

        if recipe not in RECIPES:
            raise ModelError(f"this store's LOGMEL set was made with recipe '{recipe}', which this audioscan "
                             "does not know; upgrade audioscan")
        self.recipe = recipe
        self._torch = torch
        self._device = torch.device(device)
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, win_length=400, hop_length=160,
            f_min=50.0, f_max=8000.0, n_mels=N_MELS, power=2.0, center=True,
        ).to(self._device)
        self._deltas = torchaudio.transforms.ComputeDeltas(win_length=5)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            wave = torch.as_tensor(np.ascontiguousarray(batch, dtype=np.float32), device=self._device)
            power = self._mel(wave)  # [B, mels, frames]
            logmel = torch.log(power.clamp_min(_ENERGY_FLOOR))
            delta = self._deltas(logmel)
            if self.recipe == "logmel-v1":
                parts = [logmel.mean(-1), logmel.std(-1, unbiased=False),
                         delta.mean(-1), delta.std(-1, unbiased=False)]
            else:
                level = 10 * torch.log10(power.sum(1).clamp_min(_ENERGY_FLOOR))  # [B, frames], dB
                active = (level >= level.amax(-1, keepdim=True) - ACTIVE_RANGE_DB).to(logmel.dtype)
                mean, std = _weighted_stats(logmel, active)
                _, delta_std = _weighted_stats(delta, active)
                parts = [mean, std, delta_std, logmel.amax(-1)]
            return torch.cat(parts, dim=1).float().cpu().numpy()


def _weighted_stats(values, weights):
    """Per-band mean and standard deviation over the frames whose weight is 1."""
    count = weights.sum(-1, keepdim=True).clamp_min(1.0)[:, None, :]  # [B, 1, 1]
    w = weights[:, None, :]
    mean = (values * w).sum(-1, keepdim=True) / count
    var = (((values - mean) ** 2) * w).sum(-1, keepdim=True) / count
    return mean[..., 0], var.clamp_min(0).sqrt()[..., 0]


def _device(options: LoadOptions) -> str:
    # Log-mel statistics are cheap enough that the CPU is never the bottleneck;
    # an explicit CUDA device is still honoured.
    return options.device if options.device.startswith("cuda") else "cpu"


def _build(options: LoadOptions, files: dict) -> LogMelModel:
    return LogMelModel(_device(options))


def _build_recipe(recipe: str, options: LoadOptions) -> LogMelModel:
    return LogMelModel(_device(options), recipe)


SPEC = ModelSpec(
    name=NAME,
    dim=DIM,
    sample_rate=SAMPLE_RATE,
    source="built in (torchaudio log-mel statistics, no weights)",
    build=_build,
    recipe=RECIPE_VERSION,
    build_recipe=_build_recipe,
    centred_recipes=frozenset({"logmel-v2"}),
    normalize="global",
)
