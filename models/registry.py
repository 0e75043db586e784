"""The one registry of embedding models: names to specs, and the single entry point
that loads a model (tests replace ``load_model`` to prove a path runs no model)."""

from __future__ import annotations

from audioscan.models import ast, beats, birdnet, eat, logmel, wav2vec2
from audioscan.models.base import EmbeddingModel, LoadOptions, ModelSpec
from audioscan.models.errors import ModelError

DEFAULT_MODEL = logmel.NAME

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (logmel.SPEC, *wav2vec2.specs(), *beats.specs(), *ast.specs(), *eat.specs(),
                                 birdnet.SPEC)}


def names() -> list[str]:
    """All registered model names, in a stable order."""
    return list(_SPECS)


def spec(name: str) -> ModelSpec:
    """The spec of ``name`` (case-insensitive), or a clear error listing what exists."""
    found = _SPECS.get(name.upper())
    if found is None:
        raise ModelError(f"unknown model '{name}'; choose one of: {', '.join(_SPECS)} "
                         "(see 'audioscan models list')")
    return found


def load_model(name: str, options: LoadOptions = LoadOptions(), *, weights_id: str | None = None) -> EmbeddingModel:
    """Build the model ``name``: the only place in the program that constructs one.

    The device is checked first for every model, LOGMEL included: a user who asks for
    a GPU that is not there is told so, not silently served by the CPU.
    """
    found = spec(name)
    if options.device.lower() != "auto":
        from audioscan.models.engine import resolve_device

        resolve_device(options.device)
    return found.load(options, weights_id)
