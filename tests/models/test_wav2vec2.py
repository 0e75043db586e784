import hashlib

import numpy as np
import pytest
import torch
import torchaudio
from torchaudio.models import wav2vec2_model

from audioscan.models import registry, wav2vec2
from audioscan.models.base import LoadOptions
from audioscan.models.pooling import quartile_layers
from tests.models.tiny import TINY_W2V, assert_batch_invariant, seeded, waves


def test_quartile_layers_follow_the_plan():
    assert quartile_layers(48) == [11, 23, 35, 47]
    assert quartile_layers(12) == [2, 5, 8, 11]
    assert quartile_layers(24) == [5, 11, 17, 23]


def test_registry_dims_match_the_original_scan():
    dims = {n: registry.spec(n).dim for n in registry.names()}
    assert dims["HUBERT_XLARGE_ML"] == 5120 and dims["HUBERT_LARGE_ML"] == 4096
    assert dims["HUBERT_BASE_ML"] == dims["WAV2VEC2_BASE_ML"] == 3072
    assert (dims["WAV2VEC2_BASE"], dims["WAV2VEC2_LARGE"], dims["WAV2VEC2_LARGE_LV60K"]) == (768, 1024, 1024)
    assert (dims["HUBERT_BASE"], dims["HUBERT_LARGE"], dims["HUBERT_XLARGE"]) == (768, 1024, 1280)


def test_weight_files_and_normalisation_are_torchaudios():
    for name, (filename, dim, layers, normalize, _) in wav2vec2.BUNDLES.items():
        bundle = getattr(torchaudio.pipelines, name)
        assert bundle._path == filename and bundle._normalize_waveform == normalize
        assert bundle._params["encoder_embed_dim"] == dim and bundle._params["encoder_num_layers"] == layers


@pytest.mark.parametrize("layer_norm_first", [False, True])
def test_multi_layer_vector_is_the_quartile_layers_and_the_last_is_not_renormalised(layer_norm_first):
    seeded()
    module = wav2vec2_model(**{**TINY_W2V, "encoder_layer_norm_first": layer_norm_first}).eval()
    single = wav2vec2.embedder("T", module, normalize_waveform=False, multi_layer=False)
    multi = wav2vec2.embedder("T_ML", module, normalize_waveform=False, multi_layer=True)
    batch = waves(2)
    vectors = multi.embed(batch)
    assert vectors.shape == (2, 4 * 32)
    with torch.inference_mode():
        hidden, _ = module.extract_features(torch.from_numpy(batch))
        final, _ = module(torch.from_numpy(batch))
    expected = torch.cat([hidden[i].mean(1) for i in [1, 3, 5, 7]], dim=1).numpy()
    assert np.allclose(vectors, expected, atol=1e-5)
    assert np.allclose(single.embed(batch), final.mean(1).numpy(), atol=1e-5)
    # Pre-norm encoders apply their final LayerNorm only in forward(): the last _ML quarter differs.
    differs = not np.allclose(vectors[:, 96:], single.embed(batch), atol=1e-3)
    assert differs == layer_norm_first


def test_each_row_is_normalised_alone_so_batch_mates_do_not_matter():
    seeded()
    module = wav2vec2_model(**{**TINY_W2V, "encoder_layer_norm_first": True}).eval()
    model = wav2vec2.embedder("T", module, normalize_waveform=True, multi_layer=True)
    batch = waves(4)
    batch[1] *= 50  # a loud neighbour would shift a batch-wide normalisation
    batch[3, 8000:] = 0  # a zero-padded short window
    assert_batch_invariant(model, batch)
    assert np.isfinite(model.embed(batch)).all()


def test_the_real_loading_path_reads_an_official_checkpoint(tmp_path, monkeypatch):
    seeded(1)
    module = wav2vec2_model(**TINY_W2V).eval()
    path = tmp_path / "hubert_fairseq_large_ll60k.pth"
    torch.save(module.state_dict(), path)  # torchaudio's layout: a bare state dict
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr(wav2vec2, "architecture", lambda base: dict(TINY_W2V))
    loaded = registry.load_model("HUBERT_LARGE_ML", LoadOptions(device="cpu"))
    direct = wav2vec2.embedder("x", module, normalize_waveform=True, multi_layer=True)
    batch = waves(3, seed=2)
    assert np.allclose(loaded.embed(batch), direct.embed(batch), atol=1e-5)
    spec = registry.spec("HUBERT_LARGE_ML")
    assert spec.available() and spec.weights_id() == hashlib.sha256(path.read_bytes()).hexdigest()
