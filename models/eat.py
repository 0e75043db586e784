"""EAT (Efficient Audio Transformer), implemented natively: no ``trust_remote_code``.

Matched against the Hugging Face release (``worstchan/EAT-base_epoch30_finetune_AS2M``
and ``-large_epoch20_finetune_AS2M``: ``modeling_eat.py`` wrapping ``EAT`` under the
attribute ``model``, so every safetensors key starts with ``model.``): a 16x16 patch
embedding of a ``[B, 1, 1024, 128]`` fbank, plus the fixed 2-D sin-cos position table
*stored in the checkpoint* (loaded, never recomputed), a CLS token in front, a
LayerNorm (``pre_norm``), then post-norm blocks with fused qkv, no padding mask.
The classification head (``fc_norm``, ``head``) is ignored.

Input, as in the original plan: Kaldi fbank with 128 bins, 10 ms shift, Hanning
window, no dither, HTK-compatible, padded or cut to 1024 frames, then normalised
``(x + 4.268) / (4.569 * 2)``.  Embedding: the mean of the tokens after CLS.
"""

from __future__ import annotations

import json
from pathlib import Path

from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.engine import TorchEmbedder
from audioscan.models import weights
from audioscan.models.weights import WeightFile

SAMPLE_RATE = 16_000
WEIGHTS, CONFIG = "model.safetensors", "config.json"
# name: (Hugging Face repo, encoder shape for counting parameters without weights)
# name: (Hugging Face repository, architecture, parameters)
VARIANTS = {
    "EAT": ("worstchan/EAT-base_epoch30_finetune_AS2M", dict(embed_dim=768, depth=12, num_heads=12), 89_972_736),
    "EAT_LARGE": ("worstchan/EAT-large_epoch20_finetune_AS2M", dict(embed_dim=1024, depth=24, num_heads=16),
                  308_867_072),
}


def embedder(name: str, module, *, options: LoadOptions = LoadOptions()) -> TorchEmbedder:
    """Wrap a :class:`models.eat_net.EAT` (real or tiny) as an embedding model."""
    from audioscan.models.eat_net import preprocess

    return TorchEmbedder(name, module.cfg.embed_dim, sample_rate=SAMPLE_RATE, module=module,
                         forward=lambda model, bank: model(bank)[:, 1:].mean(dim=1), options=options,
                         prepare=preprocess)


def _build(name: str):
    def build(options: LoadOptions, files: dict[str, Path]) -> TorchEmbedder:
        from safetensors.torch import load_file

        from audioscan.models.eat_net import EAT, EatConfig, encoder_state

        with weights.reading(name, files[CONFIG], failure=f"it does not read as the JSON config of {name}"):
            config = EatConfig.from_dict(json.loads(Path(files[CONFIG]).read_text()))
        with weights.reading(name, files[WEIGHTS], failure="it does not read as safetensors"):
            state = encoder_state(load_file(str(files[WEIGHTS])))
        model = EAT(config)
        with weights.reading(name, files[WEIGHTS], failure=f"its tensors are not those of {name}"):
            missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise weights.not_weights(name, files[WEIGHTS], why=f"not an EAT checkpoint (missing {missing[:3]}, "
                                      f"unexpected {unexpected[:3]})")
        return embedder(name, model, options=options)
    return build


def specs() -> list[ModelSpec]:
    return [ModelSpec(name=name, dim=shape["embed_dim"], sample_rate=SAMPLE_RATE,
                      source=f"Hugging Face {repo} (native implementation)", build=_build(name),
                      files=(WeightFile(WEIGHTS, hf_repo=repo), WeightFile(CONFIG, hf_repo=repo)),
                      params=params)
            for name, (repo, shape, params) in VARIANTS.items()]
