"""audioscan: a local embedding cache and vector search engine for the audio in media libraries.

>>> import audioscan
>>> lib = audioscan.open("lib.idx")          # read-only unless asked
>>> hits = lib.search("clip.wav", k=10)

The API lives in :mod:`audioscan.api`; it is loaded on first use so that importing a
subpackage (``audioscan.models``, say) does not pull in the whole engine.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from audioscan.errors import UserError
from audioscan.models import threads

# Before anything here loads an OpenMP runtime (FAISS, torch): waiting threads sleep, and
# every pool is sized by one number (``audioscan.models.threads``).
threads.prepare_runtime()

try:
    __version__ = metadata.version("audioscan")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from audioscan.api import Detection, Detector, Library, RayOptions, Results, open, set_threads

_API = ("open", "Library", "Detector", "Results", "Detection", "RayOptions", "set_threads")


def __getattr__(name: str) -> Any:
    if name in _API:
        from audioscan import api

        return getattr(api, name)
    raise AttributeError(f"module 'audioscan' has no attribute {name!r}")


__all__ = ["UserError", "__version__", *_API]
