"""The contract every embedding model honours, so the indexer and query layers never
need to know which family they are talking to."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, fields
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from audioscan.models import weights
from audioscan.models.errors import ModelError
from audioscan.models.weights import WeightFile


class EmbeddingModel(Protocol):
    """A loaded model: turns equal-length mono waveforms into one vector each.

    A model whose windows can share work when they overlap (LOGMEL frames a signal once)
    also offers ``embed_pieces(pieces, win)``, the vectors of the windows of
    :func:`embed_windows`'s pieces, equal to :meth:`embed`'s; callers reach either through
    :func:`embed_windows`.
    """

    name: str
    dim: int
    sample_rate: int

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Embed ``batch`` (float32 ``[B, samples]`` at ``sample_rate``) into float32 ``[B, dim]``.

        Vectors are pooled over time, and each row depends only on its own waveform
        (never on its batch mates), so a window's vector is the same in any batch.
        """
        ...


def embed_windows(model: EmbeddingModel, pieces: Sequence[tuple[np.ndarray, np.ndarray]], *, win: int) -> np.ndarray:
    """The vectors of the windows ``signal[o: o + win]`` of each ``(signal, offsets)`` piece, in order.

    Every window must lie within its signal.  A model that shares work between
    overlapping windows gets the signals whole; any other gets the windows as one batch.
    Either way a batch is embedded together whichever files it came from (one transform,
    or one pass of the GPU).
    """
    shared = getattr(model, "embed_pieces", None)
    if shared is not None:
        return shared(pieces, win)
    return model.embed(np.concatenate([np.lib.stride_tricks.sliding_window_view(signal, win)[offsets]
                                       for signal, offsets in pieces]))


def config_from(cls, values: dict):
    """A config dataclass from a checkpoint's config dict, ignoring the keys it does not use."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: where it runs, at what precision, from which weights."""

    device: str = "auto"
    precision: str = "auto"
    weights: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What the store and the CLI need to know about a model without loading it.

    ``files`` are the weight files it needs (the first is the one ``--weights`` names);
    a model without files (LOGMEL) is identified by ``recipe`` alone.  ``build`` makes
    the model from resolved local files; it is the only place that imports heavy
    libraries.  ``params`` is the architecture's parameter count, declared so that
    ``models list`` and batch sizing need no torch (tests/models/test_param_counts.py
    builds every architecture on torch's meta device and holds each figure to it).
    """

    name: str
    dim: int
    _: KW_ONLY
    sample_rate: int
    source: str
    build: Callable[[LoadOptions, dict[str, Path]], EmbeddingModel]
    files: tuple[WeightFile, ...] = ()
    recipe: str = ""
    params: int = 0
    # For weight-free models: builds an older recipe, so sets made with it keep working.
    build_recipe: Callable[[str, LoadOptions], EmbeddingModel] | None = None
    # Recipes (or weights ids) whose vectors are compared after centring on their set's mean.
    centred_recipes: frozenset[str] = frozenset()
    # How detectors z-score this model's features by default: per media file or over the set.
    normalize: str = "file"
    licence: str = ""
    # The cut a new set gets when none is asked for: the model's own input where it has one.
    window: float = 8.0
    hop: float = 1.0
    # For a model that ships in an optional package: whether it is installed, and what to do if not.
    installed: Callable[[], bool] | None = None
    missing: str = ""

    def _explicit(self, file: WeightFile, options: LoadOptions) -> Path | None:
        if options.weights is None:
            return None
        given = Path(options.weights).expanduser()
        if given.is_dir() or file is self.files[0]:
            return given
        return given.parent  # companion files (config.json) sit beside the weights file

    def local_files(self, options: LoadOptions) -> dict[str, Path] | None:
        """Every weight file found without any download, or None if one is missing."""
        found = {}
        for file in self.files:
            path = weights.find_local(file, self._explicit(file, options))
            if path is None:
                return None
            found[file.filename] = path
        return found

    def resolve(self, options: LoadOptions, allow_download: bool = True) -> dict[str, Path]:
        return {file.filename: weights.resolve(self.name, file, explicit=self._explicit(file, options),
                                               allow_download=allow_download)
                for file in self.files}

    def available(self, options: LoadOptions = LoadOptions()) -> bool:
        if self.installed is not None and not self.installed():
            return False
        try:
            return self.local_files(options) is not None
        except ModelError:
            return False

    def require_installed(self) -> None:
        """One sentence saying what to install, for a model whose optional package is missing."""
        if self.installed is not None and not self.installed():
            raise ModelError(f"{self.name} is not installed; {self.missing}")

    def refuse_foreign_weights(self, options: LoadOptions) -> None:
        """One sentence for `weights` given to a model that has no weights file (LOGMEL computes its
        features, BIRDNET's network ships inside its package): ignoring it would build a set the user
        believes came from their file."""
        if options.weights is not None and not self.files:
            raise ModelError(f"`weights` {options.weights} cannot be used with {self.name}, which has no weights "
                             "file to give; leave `weights` out", value=options.weights)

    def weights_id(self, options: LoadOptions = LoadOptions()) -> str:
        """The identity of the exact weights (and recipe) an embedding set was made with."""
        self.refuse_foreign_weights(options)
        self.require_installed()
        if not self.files:
            return self.recipe
        primary = self.resolve(options)[self.files[0].filename]
        return weights.checksum(primary)

    def load(self, options: LoadOptions = LoadOptions(), weights_id: str | None = None) -> EmbeddingModel:
        """The model; for a weight-free model, the recipe ``weights_id`` names (an older set's)."""
        self.refuse_foreign_weights(options)
        self.require_installed()
        if weights_id and self.build_recipe is not None and weights_id != self.recipe:
            return self.build_recipe(weights_id, options)
        return self.build(options, self.resolve(options))

    def centred(self, weights_id: str) -> bool:
        """Whether vectors of this identity are compared after centring on their set's mean."""
        return weights_id in self.centred_recipes
