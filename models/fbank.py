"""Kaldi-compatible filter banks, one row at a time (so no row depends on its batch mates)."""

from __future__ import annotations

import numpy as np

from audioscan.models import runtime


def kaldi_fbank(batch: np.ndarray, scale: float = 1.0, *, frames: int | None = None, **options):
    """``[B, samples]`` float32 -> ``[B, frames, bins]`` log mel filter banks (torch, CPU).

    ``scale`` multiplies the waveform first (BEATs feeds 16-bit magnitudes); ``frames``
    zero-pads or truncates every row to that many frames (EAT and AST see 1024).
    """
    import torch

    kaldi = runtime.torchaudio().compliance.kaldi

    rows = []
    for wave in np.asarray(batch, dtype=np.float32):
        bank = kaldi.fbank(torch.from_numpy(wave * scale).unsqueeze(0), **options)
        if frames is not None:
            bank = torch.nn.functional.pad(bank, (0, 0, 0, max(0, frames - bank.shape[0])))[:frames]
        rows.append(bank)
    return torch.stack(rows)
