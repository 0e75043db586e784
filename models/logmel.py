"""LOGMEL: the weight-free offline default.

Every command must work on a machine that can download nothing, so the default
embedding is plain signal processing: 64 log-mel bands at 16 kHz (25 ms frames,
10 ms hop), summarised over the window by the per-band mean and standard deviation
of the log energies and of their first differences (deltas) - 256 numbers that
capture timbre, loudness contour and how fast the sound changes.  It is
deterministic, runs anywhere torch runs, and stays finite on digital silence
because energies are floored before the logarithm.
"""

from __future__ import annotations

import numpy as np

from audioscan.models.base import LoadOptions, ModelSpec

NAME = "LOGMEL"
SAMPLE_RATE = 16_000
N_MELS = 64
DIM = 4 * N_MELS
# Bump when the feature recipe changes: it is the set identity of LOGMEL vectors.
RECIPE_VERSION = "logmel-v1"
_ENERGY_FLOOR = 1e-10


class LogMelModel:
    """Log-mel statistics pooling; see the module docstring for the recipe."""

    name = NAME
    dim = DIM
    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu") -> None:
        import torch
        import torchaudio

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
            logmel = torch.log(self._mel(wave).clamp_min(_ENERGY_FLOOR))  # [B, mels, frames]
            delta = self._deltas(logmel)
            parts = [logmel.mean(-1), logmel.std(-1, unbiased=False),
                     delta.mean(-1), delta.std(-1, unbiased=False)]
            return torch.cat(parts, dim=1).float().cpu().numpy()


def _build(options: LoadOptions, files: dict) -> LogMelModel:
    # Log-mel statistics are cheap enough that the CPU is never the bottleneck;
    # an explicit CUDA device is still honoured.
    device = options.device if options.device.startswith("cuda") else "cpu"
    return LogMelModel(device)


SPEC = ModelSpec(
    name=NAME,
    dim=DIM,
    sample_rate=SAMPLE_RATE,
    source="built in (torchaudio log-mel statistics, no weights)",
    build=_build,
    recipe=RECIPE_VERSION,
)
