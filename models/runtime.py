"""The torch stack, imported through one door.

torch and torchaudio are built as a pair: a torchaudio released for another torch
imports, then fails to load its native library with an ``undefined symbol`` deep in
a traceback.  Every model reaches torchaudio through :func:`torchaudio`, which turns
that failure into one sentence naming both installed versions and the pair this
audioscan is tested with, read from its own installed requirements so the advice
never drifts from ``pyproject.toml``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata
from types import ModuleType

from audioscan.models.errors import ModelError

_PAIR = ("torch", "torchaudio")


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` without importing it, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def tested_pair() -> dict[str, str]:
    """The exact torch/torchaudio versions audioscan declares (``==`` pins), by name."""
    try:
        requirements = metadata.requires("audioscan") or []
    except metadata.PackageNotFoundError:
        return {}
    pins = {}
    for requirement in requirements:
        found = re.match(r"^\s*(torch|torchaudio)\s*==\s*([\w.+]+)\s*(;.*)?$", requirement)
        if found:
            pins[found.group(1)] = found.group(2)
    return pins


def mismatch_sentence(cause: BaseException) -> str:
    """One sentence for a torch stack that does not load: what is installed, what to install."""
    installed = {name: installed_version(name) or "(not installed)" for name in _PAIR}
    pins = tested_pair()
    fix = " ".join(f"{name}=={pins[name]}" for name in _PAIR if name in pins) or "torch torchaudio"
    detail = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else type(cause).__name__
    return (f"torchaudio {installed['torchaudio']} does not load with torch {installed['torch']} "
            f"(they must come from the same release; {detail}); install the pair audioscan is tested "
            f"with: pip install {fix}")


@lru_cache(maxsize=1)
def torchaudio() -> ModuleType:
    """``import torchaudio`` with its native ops loaded, or a ModelError naming the installed pair."""
    try:
        import torch  # noqa: F401  (a torch that does not load is reported the same way)
        import torchaudio as module
        import torchaudio.compliance.kaldi  # noqa: F401  (the fbank ops BEATs, EAT and AST use)
    except (ImportError, OSError, RuntimeError) as err:
        raise ModelError(mismatch_sentence(err)) from err
    return module


def self_check() -> dict[str, str]:
    """Load the torch pair and run the filter banks every model uses once (``audioscan doctor``)."""
    module = torchaudio()
    import torch

    wave = torch.zeros(1, 16_000)
    try:
        module.compliance.kaldi.fbank(wave, num_mel_bins=64, sample_frequency=16_000)
        module.transforms.MelSpectrogram(sample_rate=16_000, n_mels=64)(wave)
    except RuntimeError as err:
        raise ModelError(mismatch_sentence(err)) from err
    return {"torch": torch.__version__, "torchaudio": module.__version__}
