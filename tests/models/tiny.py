"""Tiny random-initialised configurations of the real architectures (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import torch

TINY_W2V = dict(
    extractor_mode="group_norm", extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 2, 2)],
    extractor_conv_bias=False, encoder_embed_dim=32, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4, encoder_num_layers=8, encoder_num_heads=4, encoder_attention_dropout=0.0,
    encoder_ff_interm_features=64, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
    encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)

TINY_BEATS = dict(input_patch_size=16, embed_dim=24, encoder_layers=4, encoder_embed_dim=32,
                  encoder_ffn_embed_dim=64, encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4,
                  num_buckets=32, max_distance=64, deep_norm=True, layer_norm_first=False,
                  relative_position_embedding=True, gru_rel_pos=True, finetuned_model=False)

TINY_EAT = dict(embed_dim=32, depth=4, num_heads=4, max_length=64, mlp_ratio=2.0, model_variant="finetune")


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)


def waves(n: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, int(seconds * 16_000))) * 0.1).astype(np.float32)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_batch_invariant(model, batch: np.ndarray) -> None:
    """Each row's vector alone equals its vector in the batch (cosine >= 0.9999)."""
    together = model.embed(batch)
    alone = np.concatenate([model.embed(batch[i: i + 1]) for i in range(len(batch))])
    assert cosine_rows(together, alone).min() >= 0.9999
