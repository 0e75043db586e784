"""AST (Audio Spectrogram Transformer) from transformers, and ``AST_ML``.

Input: the ``ASTFeatureExtractor`` fbank (128 bins, padded or cut to 1024 frames,
then normalised).  AST always sees exactly 1024 frames, so every window costs the
same whatever its length.  ``AST`` = mean over all tokens of the last hidden state;
``AST_ML`` = the same mean of hidden states 3, 6, 9 and 12 (``hidden_states[0]`` is
the embedding output), concatenated, as the original plan specifies.

The checkpoint is ``MIT/ast-finetuned-audioset-10-10-0.4593``, an
``ASTForAudioClassification`` saved with transformers 4 key names under
``audio_spectrogram_transformer.``; transformers' own ``from_pretrained`` renames
them for the installed version, and the classifier head is ignored.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.engine import TorchEmbedder
from audioscan.models.pooling import mean_over_time, quartile_layers
from audioscan.models import weights
from audioscan.models.weights import WeightFile

REPO = "MIT/ast-finetuned-audioset-10-10-0.4593"
SAMPLE_RATE = 16_000
WEIGHTS, CONFIG = "model.safetensors", "config.json"


def embedder(name: str, module, *, multi_layer: bool, options: LoadOptions = LoadOptions()) -> TorchEmbedder:
    """Wrap a transformers ``ASTModel`` (real or tiny) as an embedding model."""
    import torch
    from transformers import ASTFeatureExtractor

    config = module.config
    extractor = ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    layers = [i + 1 for i in quartile_layers(config.num_hidden_layers)] if multi_layer else None

    def prepare(batch: np.ndarray):
        features = extractor(list(batch), sampling_rate=SAMPLE_RATE, return_tensors="np")["input_values"]
        return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))

    def forward(model, values):
        out = model(values, output_hidden_states=layers is not None)
        if layers is None:
            return mean_over_time(out.last_hidden_state)
        return torch.cat([mean_over_time(out.hidden_states[i]) for i in layers], dim=1)

    width = config.hidden_size * (4 if multi_layer else 1)
    return TorchEmbedder(name, width, sample_rate=SAMPLE_RATE, module=module, forward=forward, options=options,
                         prepare=prepare)


def load_encoder(name: str, files: dict[str, Path]):
    """``ASTModel`` ``name`` from a checkpoint and its config, wherever each file was found."""
    from transformers import ASTModel
    from transformers.utils import logging

    with tempfile.TemporaryDirectory() as folder:
        for filename, path in files.items():  # from_pretrained wants both files in one folder
            os.symlink(Path(path).resolve(), Path(folder) / filename)
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        try:
            with weights.reading(name, files[WEIGHTS], failure=f"it and the {CONFIG} beside it do not load as {name}"):
                loaded: Any = ASTModel.from_pretrained(folder, local_files_only=True, output_loading_info=True)
                module, info = loaded  # (model, loading info), which transformers' types do not say
        finally:
            logging.set_verbosity(verbosity)
            logging.enable_progress_bar()
    if info["missing_keys"]:
        raise weights.not_weights(name, files[WEIGHTS],
                                  why=f"not an AST checkpoint (missing {sorted(info['missing_keys'])[:3]})")
    return module


def _build(name: str, multi_layer: bool):
    def build(options: LoadOptions, files: dict[str, Path]):
        return embedder(name, load_encoder(name, files), multi_layer=multi_layer, options=options)
    return build


def specs() -> list[ModelSpec]:
    files = (WeightFile(WEIGHTS, hf_repo=REPO), WeightFile(CONFIG, hf_repo=REPO))
    return [ModelSpec(name=name, dim=768 * (4 if multi else 1), sample_rate=SAMPLE_RATE,
                      source=f"transformers ASTModel, {REPO}" + (" (hidden states 3, 6, 9, 12)" if multi else ""),
                      build=_build(name, multi), files=files, params=86_187_264)
            for name, multi in (("AST", False), ("AST_ML", True))]
