"""The embedding models a library can be built with, and fetching their weights.

Nothing here imports torch: listing models reads their declared facts and looks for
weight files on disk.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, asdict, dataclass
from pathlib import Path
from typing import Iterator

from audioscan.models import registry, weights
from audioscan.models.base import LoadOptions
from audioscan.models.errors import ModelError

DEFAULT_MODEL = registry.DEFAULT_MODEL


@dataclass(frozen=True)
class ModelInfo:
    """One model as ``models list`` shows it."""

    name: str
    dim: int
    _: KW_ONLY
    sample_rate: int
    params: int
    available: bool  # runs offline now: needs no weights, or they are on this machine
    source: str
    licence: str = ""
    window: float = 8.0  # the cut a new set of it gets unless told otherwise

    def as_json(self) -> dict:
        return asdict(self)


def list_models() -> list[ModelInfo]:
    """Every registered model, in the registry's order."""
    options = LoadOptions()
    specs = [registry.spec(name) for name in registry.names()]
    return [ModelInfo(spec.name, spec.dim, sample_rate=spec.sample_rate, params=spec.params,
                      available=spec.available(options), source=spec.source, licence=spec.licence,
                      window=spec.window) for spec in specs]


def fetch_weights(names: list[str]) -> Iterator[tuple[str, str | None, Path | None]]:
    """Download the weights of each model into the local caches; yields (model, file, path) per
    file, and (model, None, None) for a model that has none.  Run on a connected machine."""
    for spec in dict.fromkeys(registry.spec(name) for name in names):
        spec.require_installed()  # a model inside an optional package comes with it, not from a hub
        if not spec.files:
            yield spec.name, None, None
            continue
        for file in spec.files:
            if weights.find_local(file) is None and not weights.network_reachable(file.host):
                raise ModelError(f"cannot reach {file.host} to download {file.filename} for {spec.name}; run "
                                 "this on a connected machine, then copy ~/.cache/huggingface and "
                                 "~/.cache/torch/hub (or set $AUDIOSCAN_WEIGHTS_DIR) here")
            yield spec.name, file.filename, weights.resolve(spec.name, file, allow_download=True)
