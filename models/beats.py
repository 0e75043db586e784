"""BEATs, implemented natively so the official checkpoint loads without foreign code.

Matched against microsoft/unilm ``beats/BEATs.py`` and ``beats/backbone.py`` (commit
c68101b, the version the original scan copies in ``core/beats_*.py``): 16x16 patch
embedding of a 128-bin Kaldi fbank (waveform x 2^15, 25 ms / 10 ms, normalised with
mean 15.41663 and std 6.55582 x 2), LayerNorm, projection to the encoder width, a
weight-normalised convolutional position embedding, then post-norm transformer
layers with DeepNorm residual scaling and gated relative position bias (bucketed,
computed once in the first layer and shared).  Module and parameter names are the
checkpoint's, so ``BEATs_iter3_plus_AS2M.pt``'s ``model`` state dict loads unchanged.

The embedding is the encoder output averaged over time, as in the original scan
(which passed an all-false padding mask, i.e. none).
"""

from __future__ import annotations

from pathlib import Path

from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.engine import TorchEmbedder
from audioscan.models.pooling import mean_over_time
from audioscan.models import weights
from audioscan.models.weights import WeightFile

REPO, FILENAME = "lpepino/beats_ckpts", "BEATs_iter3_plus_AS2M.pt"
SAMPLE_RATE = 16_000


def embedder(module, options: LoadOptions = LoadOptions()) -> TorchEmbedder:
    """Wrap a :class:`models.beats_net.BEATs` (real or tiny) as an embedding model."""
    from audioscan.models.beats_net import preprocess

    return TorchEmbedder("BEATS", module.cfg.encoder_embed_dim, sample_rate=SAMPLE_RATE, module=module,
                         forward=lambda model, bank: mean_over_time(model(bank)), options=options, prepare=preprocess)


def _build(options: LoadOptions, files: dict[str, Path]) -> TorchEmbedder:
    import torch

    from audioscan.models.beats_net import BEATs, BeatsConfig, load_checkpoint

    path = files[FILENAME]
    with weights.reading("BEATS", path, failure="it does not read as a PyTorch checkpoint"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise weights.not_weights("BEATS", path, why="not a BEATs checkpoint (it has no 'model' state dict)")
    with weights.reading("BEATS", path, failure="its tensors are not those of BEATS"):
        model = BEATs(BeatsConfig.from_dict(checkpoint.get("cfg") or {}))
        load_checkpoint(model, checkpoint["model"])
    return embedder(model, options)


def specs() -> list[ModelSpec]:
    return [ModelSpec(name="BEATS", dim=768, sample_rate=SAMPLE_RATE,
                      source=f"BEATs iter3+ AS2M, Hugging Face {REPO}/{FILENAME} (native implementation)",
                      build=_build, files=(WeightFile(FILENAME, hf_repo=REPO),), params=90_311_792)]
