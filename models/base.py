"""The contract every embedding model honours, so the indexer and query layers never
need to know which family they are talking to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np


class EmbeddingModel(Protocol):
    """A loaded model: turns equal-length mono waveforms into one vector each."""

    name: str
    dim: int
    sample_rate: int

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Embed ``batch`` (float32 ``[B, samples]`` at ``sample_rate``) into float32 ``[B, dim]``.

        Vectors are pooled over time, and each row depends only on its own waveform
        (never on its batch mates), so a window's vector is the same in any batch.
        """
        ...


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: where it runs, at what precision, from which weights."""

    device: str = "auto"
    precision: str = "auto"
    weights: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What the store needs to know about a model without loading it.

    ``weights_id`` names the exact weights (a checksum for neural models) and is part
    of an embedding set's identity, so vectors of different weights never share a set.
    ``load`` builds the model; it is the only place that may import heavy libraries
    or read weight files.
    """

    name: str
    dim: int
    sample_rate: int
    params: int
    source: str
    weights_id: Callable[[LoadOptions], str]
    available: Callable[[LoadOptions], bool]
    load: Callable[[LoadOptions], EmbeddingModel]
