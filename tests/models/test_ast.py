import numpy as np
import torch
from transformers import ASTConfig, ASTForAudioClassification, ASTModel

from audioscan.models import ast, registry
from audioscan.models.base import LoadOptions
from tests.models.tiny import assert_batch_invariant, seeded, waves

TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64, max_length=128)


def test_ast_ml_reads_hidden_states_3_6_9_12_of_twelve_layers():
    seeded()
    module = ASTModel(ASTConfig(**{**TINY, "num_hidden_layers": 12})).eval()
    model = ast.embedder("AST_ML", module, multi_layer=True)
    batch = waves(2)
    vectors = model.embed(batch)
    assert vectors.shape == (2, 4 * 32)
    with torch.inference_mode():
        out = module(model.prepare(batch), output_hidden_states=True)
    expected = torch.cat([out.hidden_states[i].mean(1) for i in (3, 6, 9, 12)], dim=1).numpy()
    assert np.allclose(vectors, expected, atol=1e-5)
    single = ast.embedder("AST", module, multi_layer=False).embed(batch)
    assert np.allclose(single, out.last_hidden_state.mean(1).numpy(), atol=1e-5)


def test_every_window_is_padded_to_the_same_frames_and_rows_are_independent():
    seeded()
    model = ast.embedder("AST", ASTModel(ASTConfig(**TINY)).eval(), multi_layer=False)
    short, long = waves(1, 0.5), waves(1, 3.0)
    assert model.prepare(short).shape == model.prepare(long).shape == (1, 128, 128)
    assert_batch_invariant(model, waves(3, 1.0, seed=4))


def test_the_official_classification_checkpoint_loads_through_the_registry(tmp_path, monkeypatch):
    seeded(2)
    config = ASTConfig(**TINY, num_labels=5)
    ASTForAudioClassification(config).save_pretrained(tmp_path)  # keys under audio_spectrogram_transformer.
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(tmp_path))
    loaded = registry.load_model("AST_ML", LoadOptions(device="cpu"))
    reference = ASTForAudioClassification.from_pretrained(tmp_path).audio_spectrogram_transformer.eval()
    direct = ast.embedder("AST_ML", reference, multi_layer=True)
    batch = waves(2, seed=3)
    assert np.allclose(loaded.embed(batch), direct.embed(batch), atol=1e-5)
