import numpy as np
import pytest
import torch

from audioscan.models import beats, registry
from audioscan.models.base import LoadOptions
from audioscan.models.beats_net import BEATs, BeatsConfig, RelativeAttention, WeightNormConv1d
from audioscan.models.errors import ModelError
from tests.models.reference import load_reference, reference_waves
from tests.models.tiny import TINY_BEATS, assert_batch_invariant, seeded, waves


@pytest.fixture
def official_checkpoint(tmp_path, monkeypatch):
    """The reference model saved as the release is: {'cfg': ..., 'model': state dict}."""
    cfg, state, expected = load_reference("beats")
    torch.save({"cfg": cfg, "model": state}, tmp_path / "BEATs_iter3_plus_AS2M.pt")
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(tmp_path))
    return expected


def test_matches_the_official_implementation_through_the_real_loading_path(official_checkpoint):
    model = registry.load_model("BEATS", LoadOptions(device="cpu"))
    assert np.allclose(model.embed(reference_waves()), official_checkpoint, atol=1e-5)


def test_parameter_names_are_the_checkpoints():
    _, state, _ = load_reference("beats")
    assert set(BEATs(BeatsConfig.from_dict(TINY_BEATS)).state_dict()) == set(state)
    assert "encoder.pos_conv.0.weight_g" in state and "encoder.layers.0.self_attn.grep_a" in state


def test_weight_norm_convolution_equals_torchs():
    seeded()
    mine = WeightNormConv1d(8, 4, groups=2)
    with torch.no_grad():
        mine.weight_g.uniform_(0.5, 2)
    conv = torch.nn.Conv1d(8, 8, 4, padding=2, groups=2)
    conv = torch.nn.utils.parametrizations.weight_norm(conv, dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(mine.weight_g)
        conv.parametrizations.weight.original1.copy_(mine.weight_v)
        conv.bias.copy_(mine.bias)
    x = torch.randn(2, 8, 20)
    assert torch.allclose(mine(x), conv(x)[..., :-1], atol=1e-6)


def test_relative_position_buckets():
    attention = RelativeAttention(BeatsConfig(encoder_embed_dim=32, encoder_attention_heads=4, num_buckets=320,
                                              max_distance=800))
    buckets = attention._buckets(400, "cpu")
    assert buckets[0, 0] == 0 and buckets[5, 0] == 5 and buckets[0, 5] == 165  # near: exact, forward offset +160
    assert buckets[0, 79] == 239 and buckets[0, 80] == 240  # the log-spaced buckets start at distance 80
    assert buckets.max() <= 319 and buckets[399, 0] < 160


def test_rows_are_independent_and_short_windows_padded():
    seeded()
    model = beats.embedder(BEATs(BeatsConfig.from_dict(TINY_BEATS)).eval())
    batch = waves(3, 2.0)
    batch[2, 8000:] = 0
    assert_batch_invariant(model, batch)
    assert model.embed(batch).shape == (3, 32)


def test_a_checkpoint_that_is_not_beats_is_refused(tmp_path, monkeypatch):
    torch.save({"weights": {}}, tmp_path / "BEATs_iter3_plus_AS2M.pt")
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="not a BEATs checkpoint"):
        registry.load_model("BEATS")
