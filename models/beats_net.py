"""The BEATs network in torch: the architecture and checkpoint layout described in
``models.beats`` (matched against microsoft/unilm ``beats/`` at commit c68101b)."""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from audioscan.models.errors import ModelError
from audioscan.models.base import config_from
from audioscan.models.fbank import kaldi_fbank

SAMPLE_RATE = 16_000
FBANK_MEAN, FBANK_STD = 15.41663, 6.55582
_ALPHA = 32.0  # the reference's attention logit rescaling


@dataclass(frozen=True)
class BeatsConfig:
    """The checkpoint's ``cfg`` (defaults = BEATs iter3); unknown keys are ignored."""

    input_patch_size: int = 16
    embed_dim: int = 512
    _: KW_ONLY
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True

    from_dict = classmethod(config_from)


class RelativeAttention(nn.Module):
    """Multi-head self-attention with the reference's rescaling and gated relative bias."""

    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim, self.heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.head_dim = dim // self.heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.relative_position_embedding:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, self.heads)
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))

    def _buckets(self, length: int, device) -> torch.Tensor:
        position = torch.arange(length, device=device)
        relative = position[None, :] - position[:, None]
        half = self.num_buckets // 2
        buckets = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        far = exact + (torch.log(distance.clamp_min(1).float() / exact) / math.log(self.max_distance / exact)
                       * (half - exact)).long()
        return buckets + torch.where(distance < exact, distance, far.clamp_max(half - 1))

    def position_bias(self, length: int, device) -> torch.Tensor:
        """``[heads, T, T]`` bias of the bucketed relative positions."""
        return self.relative_attention_bias(self._buckets(length, device)).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        raw_q = split(self.q_proj(x))
        q = raw_q * (self.scaling / _ALPHA)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        logits = q @ k.transpose(-1, -2)
        logits = (logits - logits.amax(dim=-1, keepdim=True)) * _ALPHA
        if bias is None and hasattr(self, "relative_attention_bias"):
            bias = self.position_bias(length, x.device)
        if bias is not None:
            rel = bias
            if self.gru_rel_pos:
                gates = torch.sigmoid(self.grep_linear(raw_q).view(batch, self.heads, length, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)
                rel = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
            logits = logits + rel
        probs = F.softmax(logits.float(), dim=-1).type_as(logits)
        out = (probs @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.out_proj(out), bias


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = RelativeAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg.layer_norm_first
        self.residual_scale = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x).float()).type_as(x))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.layer_norm_first:
            attended, bias = self.self_attn(self.self_attn_layer_norm(x), bias)
            x = x + attended
            return x + self._ffn(self.final_layer_norm(x)), bias
        attended, bias = self.self_attn(x, bias)
        x = self.self_attn_layer_norm(x * self.residual_scale + attended)
        return self.final_layer_norm(x * self.residual_scale + self._ffn(x)), bias


class WeightNormConv1d(nn.Module):
    """A grouped Conv1d whose weight is ``g * v / |v|`` (norm over all but the kernel axis),
    keeping the ``weight_g`` / ``weight_v`` names of the checkpoint."""

    def __init__(self, channels: int, kernel: int, *, groups: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.padding, self.groups = kernel // 2, groups
        self.trim = 1 if kernel % 2 == 0 else 0  # the reference's SamePad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        out = F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)
        return out[..., : out.shape[-1] - self.trim]


class Encoder(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        self.pos_conv = nn.Sequential(WeightNormConv1d(cfg.encoder_embed_dim, cfg.conv_pos, groups=cfg.conv_pos_groups))
        layers = [EncoderLayer(cfg) for _ in range(cfg.encoder_layers)]
        if cfg.relative_position_embedding:  # one bias table, shared by every layer as in the reference
            for layer in layers[1:]:
                layer.self_attn.relative_attention_bias = layers[0].self_attn.relative_attention_bias
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(cfg.encoder_embed_dim)
        self.layer_norm_first = cfg.layer_norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2))).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        bias = None
        for layer in self.layers:
            x, bias = layer(x, bias)
        return self.layer_norm(x) if self.layer_norm_first else x


class BEATs(nn.Module):
    """The BEATs encoder (no tokenizer, no classification head)."""

    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        if cfg.activation_fn != "gelu":
            raise ModelError(f"this BEATs checkpoint uses activation '{cfg.activation_fn}', which audioscan "
                             "does not implement (only gelu, as in the released checkpoints)")
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=cfg.input_patch_size,
                                         stride=cfg.input_patch_size, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
                                  if cfg.embed_dim != cfg.encoder_embed_dim else None)
        self.encoder = Encoder(cfg)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """``[B, frames, 128]`` normalised fbank -> ``[B, patches, dim]`` encoder output."""
        patches = self.patch_embedding(fbank.unsqueeze(1))
        x = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)


def preprocess(batch: np.ndarray) -> torch.Tensor:
    bank = kaldi_fbank(batch, scale=2 ** 15, num_mel_bins=128, sample_frequency=SAMPLE_RATE,
                       frame_length=25, frame_shift=10)
    return (bank - FBANK_MEAN) / (2 * FBANK_STD)


def load_checkpoint(model: BEATs, state: dict) -> None:
    """Load the checkpoint's ``model`` dict; the head and shared-bias copies may be absent.

    Keys that do not fit raise ``ValueError`` naming them; the caller (``weights.reading``) names the file."""
    state = {k: v for k, v in state.items() if not k.startswith("predictor.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k.endswith("relative_attention_bias.weight")
                                          and not k.startswith("encoder.layers.0."))]
    if missing or unexpected:
        raise ValueError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
