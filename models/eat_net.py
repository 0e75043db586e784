"""The EAT network in torch: the architecture and checkpoint layout described in
``models.eat`` (matched against the Hugging Face release's ``modeling_eat.py``)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from audioscan.models.base import config_from
from audioscan.models.fbank import kaldi_fbank

SAMPLE_RATE = 16_000
TARGET_FRAMES = 1024
FBANK_MEAN, FBANK_STD = -4.268, 4.569
_PREFIX = "model."
_IGNORED = ("fc_norm.", "head.")


@dataclass(frozen=True)
class EatConfig:
    """The fields of the release's ``config.json`` that shape the encoder."""

    embed_dim: int = 768
    depth: int = 12
    _: KW_ONLY
    num_heads: int = 12
    patch_size: int = 16
    stride: int = 16
    in_chans: int = 1
    mel_bins: int = 128
    max_length: int = 768
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_first: bool = False
    norm_eps: float = 1e-6

    from_dict = classmethod(config_from)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class FixedPositions(nn.Module):
    """Holds the checkpoint's position table ``[1, max_length * (mel_bins / patch), dim]``."""

    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        count = cfg.max_length * (cfg.mel_bins // cfg.patch_size)
        self.positions = nn.Parameter(torch.zeros(1, count, cfg.embed_dim), requires_grad=False)


class Attention(nn.Module):
    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        self.heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim, bias=cfg.qkv_bias)
        self.proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class Mlp(nn.Module):
    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        hidden = int(cfg.embed_dim * cfg.mlp_ratio)
        self.fc1, self.fc2 = nn.Linear(cfg.embed_dim, hidden), nn.Linear(hidden, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg)
        self.layer_norm_first = cfg.layer_norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class EAT(nn.Module):
    def __init__(self, cfg: EatConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.local_encoder = PatchEmbed(cfg)
        self.extra_tokens = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.fixed_positional_encoder = FixedPositions(cfg)
        self.pre_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """``[B, 1, frames, mel_bins]`` -> ``[B, 1 + patches, dim]`` (CLS first)."""
        x = self.local_encoder(fbank)
        x = x + self.fixed_positional_encoder.positions[:, : x.shape[1]]
        x = torch.cat([self.extra_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pre_norm(x)
        for block in self.blocks:
            x = block(x)
        return x


def preprocess(batch: np.ndarray) -> torch.Tensor:
    bank = kaldi_fbank(batch, frames=TARGET_FRAMES, htk_compat=True, sample_frequency=SAMPLE_RATE,
                       use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    return ((bank - FBANK_MEAN) / (FBANK_STD * 2)).unsqueeze(1)


def encoder_state(state: dict) -> dict:
    """The encoder's weights from a release checkpoint (``model.`` prefix, head dropped)."""
    stripped = {k[len(_PREFIX):] if k.startswith(_PREFIX) else k: v for k, v in state.items()}
    return {k: v for k, v in stripped.items() if not k.startswith(_IGNORED)}
