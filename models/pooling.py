"""Which layers multi-layer (``_ML``) variants read, and how frames become one vector."""

from __future__ import annotations


def quartile_layers(n: int) -> list[int]:
    """0-based indices of the layers ending each quarter of an ``n``-layer stack.

    ``[n//4-1, n//2-1, 3n//4-1, n-1]``, as the original scan chose: HUBERT_XLARGE's 48
    layers give 11, 23, 35, 47; a 12-layer model gives 2, 5, 8, 11.  Index i is the
    output of transformer layer i+1 (for AST's ``hidden_states``, which start with the
    embeddings, that is index i+1: 3, 6, 9, 12).
    """
    if n < 4:
        raise ValueError(f"a multi-layer variant needs at least 4 layers, this model has {n}")
    return [n // 4 - 1, n // 2 - 1, 3 * n // 4 - 1, n - 1]


def mean_over_time(frames):
    """``[B, T, C]`` -> ``[B, C]``: the original scan's pooling."""
    return frames.mean(dim=1)
