"""Is this installation whole?  Every native library audioscan uses, loaded and run once.

A wheel built for another ABI (a torchaudio for another torch, a FAISS for another
numpy) usually imports, then fails on first use, deep inside a command that has
already done work.  ``make demo``/``make test`` run this before they call an install
finished, and ``audioscan doctor`` runs it for anyone who installed by hand.  Each
check is imported inside the guard, so a library that cannot even load is named in a
sentence rather than crashing this module's own import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from audioscan.errors import UserError

# (what a user reads, the module that owns that library and has a ``self_check``)
_CHECKS = (
    ("torch + torchaudio", "audioscan.models.runtime"),
    ("PyAV (FFmpeg)", "audioscan.indexer.media.decode"),
    ("FAISS", "audioscan.indexer.store.segments"),
    ("DuckDB + pyarrow", "audioscan.indexer.store.catalog"),
    ("scikit-learn", "audioscan.query.classifier"),
)


class InstallationError(UserError):
    """A native library audioscan needs does not load or computes wrongly."""


@dataclass(frozen=True)
class Component:
    """One library that loaded and answered: its name and version."""

    name: str
    version: str


def check_installation() -> list[Component]:
    """Load and exercise every native library, in the order a build uses them.

    Raises the owning package's :class:`UserError` (or :class:`InstallationError` for a
    library that does not import at all) on the first failure.
    """
    found: list[Component] = []
    for label, module_name in _CHECKS:
        try:
            versions = importlib.import_module(module_name).self_check()
        except UserError:
            raise
        except (ImportError, OSError, RuntimeError, AttributeError) as err:
            detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise InstallationError(f"{label} does not load ({detail}); reinstall audioscan's locked "
                                    "dependencies (make demo in a checkout, or pip install audioscan into "
                                    "a fresh environment)") from err
        found += [Component(name, version) for name, version in versions.items()]
    return found
