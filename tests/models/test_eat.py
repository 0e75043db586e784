import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audioscan.models import eat, registry
from audioscan.models.base import LoadOptions
from audioscan.models.eat_net import EAT, EatConfig, encoder_state, preprocess
from tests.models.reference import load_reference, reference_waves
from tests.models.tiny import TINY_EAT, assert_batch_invariant, seeded, waves


@pytest.fixture
def release_folder(tmp_path, monkeypatch):
    """The reference encoder saved as the Hugging Face release is: model.* keys plus a head."""
    cfg, state, expected = load_reference("eat")
    state = {key: value.contiguous() for key, value in state.items()}
    state["model.fc_norm.weight"], state["model.head.weight"] = torch.ones(32), torch.zeros(527, 32)
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "eat", "model_variant": "finetune"}))
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(tmp_path))
    return state, expected


def test_matches_the_release_through_the_real_loading_path(release_folder):
    state, expected = release_folder
    model = registry.load_model("EAT", LoadOptions(device="cpu"))
    assert np.allclose(model.embed(reference_waves()), expected, atol=1e-5)
    # The position table is the checkpoint's, not a recomputed one.
    assert torch.equal(model.module.fixed_positional_encoder.positions, state["model.fixed_positional_encoder.positions"])


def test_input_follows_the_plan():
    bank = preprocess(waves(2, 8.0))
    assert bank.shape == (2, 1, 1024, 128)
    # 8 s give 798 frames; the padding frames hold the normalised zero: (0 + 4.268) / (4.569 * 2).
    assert torch.allclose(bank[0, 0, 900], torch.full((128,), 4.268 / 9.138), atol=1e-6)
    assert preprocess(waves(1, 12.0)).shape == (1, 1, 1024, 128)  # longer input is cut


def test_embedding_skips_the_cls_token_and_rows_are_independent():
    seeded()
    module = EAT(EatConfig.from_dict(TINY_EAT)).eval()
    model = eat.embedder("EAT", module)
    batch = waves(3, 2.0)
    with torch.inference_mode():
        tokens = module(preprocess(batch))
    assert np.allclose(model.embed(batch), tokens[:, 1:].mean(1).numpy(), atol=1e-5)
    assert tokens.shape[1] == 1 + 64 * 8
    assert_batch_invariant(model, batch)


def test_release_keys_load_without_remote_code():
    keys = {f"model.{k}" for k in EAT(EatConfig.from_dict(TINY_EAT)).state_dict()}
    assert {"model.extra_tokens", "model.fixed_positional_encoder.positions", "model.pre_norm.weight",
            "model.blocks.0.attn.qkv.weight", "model.local_encoder.proj.weight"} <= keys
    assert set(encoder_state({**{k: 0 for k in keys}, "model.head.bias": 0})) == {k[6:] for k in keys}
