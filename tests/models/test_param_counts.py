"""The parameter counts the specs declare (so ``models list`` needs no torch) are the
architectures' own: each is built on torch's meta device (no memory, no weights) and counted."""

from __future__ import annotations

import pytest
import torch
import torchaudio
from transformers import ASTConfig, ASTModel

from audioscan.models import eat, registry, wav2vec2
from audioscan.models.beats_net import BEATs, BeatsConfig
from audioscan.models.eat_net import EAT, EatConfig


def _architecture(name: str) -> torch.nn.Module:
    base = name.removesuffix("_ML")
    if base in wav2vec2.BUNDLES:
        return torchaudio.models.wav2vec2_model(**wav2vec2.architecture(base))
    if name == "BEATS":
        return BEATs(BeatsConfig())
    if name in eat.VARIANTS:
        return EAT(EatConfig(**eat.VARIANTS[name][1]))
    if base == "AST":
        return ASTModel(ASTConfig())
    raise AssertionError(f"no architecture known for {name}")


@pytest.mark.parametrize("name", [n for n in registry.names() if registry.spec(n).files])
def test_declared_parameter_count_is_the_architectures(name):
    with torch.device("meta"):
        counted = sum(p.numel() for p in _architecture(name).parameters())
    assert registry.spec(name).params == counted

