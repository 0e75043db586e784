"""wav2vec 2.0 and HuBERT from torchaudio, single-layer and multi-layer (``_ML``).

Single-layer vectors are the mean over time of ``model(wave)``, the encoder output;
``_ML`` vectors concatenate the time-means of the 4 quartile layers returned by
``extract_features`` (matched against torchaudio 2.11's ``wav2vec2_model``).

Two deliberate differences from calling the torchaudio bundle as it comes:

* The LV60K / LARGE / XLARGE bundles layer-normalise the waveform over the *whole
  batch* (padding and batch mates included), so a window's vector would change with
  its neighbours.  We normalise each row on its own and call the inner model.
* For the pre-norm models (``encoder_layer_norm_first``: LV60K, HUBERT_LARGE,
  HUBERT_XLARGE) the encoder's final LayerNorm runs only in ``forward``;
  ``extract_features`` returns the last layer un-normalised.  We keep that, as the
  original scan did, so ``_ML`` vectors match its caches; the single-layer vectors
  (from ``forward``) are normalised.  Both are tested.
"""

from __future__ import annotations

from pathlib import Path

from audioscan.models import runtime, weights
from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.engine import TorchEmbedder
from audioscan.models.pooling import mean_over_time, quartile_layers
from audioscan.models.weights import WeightFile

SAMPLE_RATE = 16_000
_URL = "https://download.pytorch.org/torchaudio/models/"
# name: (weight file, dim, layers, the bundle normalises its input waveform, parameters)
BUNDLES = {
    "WAV2VEC2_BASE": ("wav2vec2_fairseq_base_ls960.pth", 768, 12, False, 94_370_944),
    "WAV2VEC2_LARGE": ("wav2vec2_fairseq_large_ls960.pth", 1024, 24, False, 315_427_968),
    "WAV2VEC2_LARGE_LV60K": ("wav2vec2_fairseq_large_lv60k.pth", 1024, 24, True, 315_437_696),
    "HUBERT_BASE": ("hubert_fairseq_base_ls960.pth", 768, 12, False, 94_370_944),
    "HUBERT_LARGE": ("hubert_fairseq_large_ll60k.pth", 1024, 24, True, 315_434_112),
    "HUBERT_XLARGE": ("hubert_fairseq_xlarge_ll60k.pth", 1280, 48, True, 962_492_544),
}
MULTI_LAYER = ("WAV2VEC2_BASE", "HUBERT_BASE", "HUBERT_LARGE", "HUBERT_XLARGE")


def architecture(base: str) -> dict:
    """The ``wav2vec2_model`` keyword arguments of a torchaudio bundle."""
    return dict(getattr(runtime.torchaudio().pipelines, base)._params)


def embedder(name: str, module, *, normalize_waveform: bool, multi_layer: bool,
             options: LoadOptions = LoadOptions()) -> TorchEmbedder:
    """Wrap a torchaudio ``Wav2Vec2Model`` (real or tiny) as an embedding model."""
    import torch

    width = module.encoder.feature_projection.projection.out_features
    layers = quartile_layers(len(module.encoder.transformer.layers)) if multi_layer else None

    def forward(model, wave):
        if normalize_waveform:
            wave = torch.nn.functional.layer_norm(wave, wave.shape[-1:])
        if layers is None:
            frames, _ = model(wave)
            return mean_over_time(frames)
        hidden, _ = model.extract_features(wave)
        return torch.cat([mean_over_time(hidden[i]) for i in layers], dim=1)

    return TorchEmbedder(name, width * (4 if multi_layer else 1), sample_rate=SAMPLE_RATE, module=module,
                         forward=forward, options=options)


def _build(name: str, base: str, multi_layer: bool):
    def build(options: LoadOptions, files: dict[str, Path]):
        import torch

        filename, _, _, normalize, _ = BUNDLES[base]
        path = files[filename]
        with weights.reading(name, path, failure="it does not read as a PyTorch checkpoint"):
            state = torch.load(path, map_location="cpu", weights_only=True)  # before building: a bad file fails fast
        module = runtime.torchaudio().models.wav2vec2_model(**architecture(base))
        with weights.reading(name, path, failure=f"its tensors are not those of {name}"):
            module.load_state_dict(state)
        return embedder(name, module, normalize_waveform=normalize, multi_layer=multi_layer, options=options)
    return build


def specs() -> list[ModelSpec]:
    out = []
    for base, (filename, dim, _, _, params) in BUNDLES.items():
        for multi in (False, True) if base in MULTI_LAYER else (False,):
            name = f"{base}_ML" if multi else base
            out.append(ModelSpec(
                name=name, dim=dim * (4 if multi else 1), sample_rate=SAMPLE_RATE,
                source=f"torchaudio.pipelines.{base}" + (" (4 quartile layers)" if multi else ""),
                build=_build(name, base, multi), files=(WeightFile(filename, url=_URL + filename),),
                params=params))
    return out
