"""Finding model weights offline first, identifying them, and fetching them on purpose.

Resolution order for a weight file: ``--weights PATH`` -> ``$AUDIOSCAN_WEIGHTS_DIR``
-> the torch hub / Hugging Face caches -> a download, only when the network answers.
"Answers" is decided by a 1.5 s connection probe (and never tried under
``HF_HUB_OFFLINE``/``AUDIOSCAN_OFFLINE``), so a machine without network gets a clear
sentence in well under 2 seconds instead of 30 seconds of hub retries.

A set records its weights' identity: the SHA-256 of the file.  Hugging Face stores
blobs under their SHA-256 already; other files are hashed once and the result is
remembered (keyed by path, size and mtime) in ``~/.cache/audioscan/checksums.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from audioscan.models.errors import ModelError

WEIGHTS_DIR_ENV = "AUDIOSCAN_WEIGHTS_DIR"
_PROBE_SECONDS = 1.5


@dataclass(frozen=True)
class WeightFile:
    """Where one file of a model's weights comes from.

    ``hf_repo`` set: the file lives in that Hugging Face repo; otherwise ``url`` is a
    plain download into the torch hub cache.
    """

    filename: str
    hf_repo: str | None = None
    url: str | None = None

    @property
    def host(self) -> str:
        if self.hf_repo:
            return "huggingface.co"
        return (self.url or "").split("/")[2]


def offline() -> bool:
    return any(os.environ.get(name, "").strip() not in ("", "0", "false", "False")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "AUDIOSCAN_OFFLINE"))


def network_reachable(host: str) -> bool:
    """True when ``host`` accepts a TCP connection within a second and a half."""
    if offline():
        return False
    try:
        with socket.create_connection((host, 443), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder by torch's own rule ($TORCH_HOME, else $XDG_CACHE_HOME/torch,
    else ~/.cache/torch; then hub/checkpoints), without importing torch: listing models and
    finding weights must not cost torch's two-second import."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def find_local(file: WeightFile, explicit: Path | None = None) -> Path | None:
    """The file from ``--weights``, the weights folder or a cache; None when absent."""
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if explicit.is_dir():
            explicit = explicit / file.filename
        if not explicit.is_file():
            raise ModelError(f"`weights` {explicit} does not exist; give the path of {file.filename}", value=explicit)
        return explicit
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if folder and (Path(folder).expanduser() / file.filename).is_file():
        return Path(folder).expanduser() / file.filename
    if file.hf_repo:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(file.hf_repo, file.filename)
        return Path(cached) if isinstance(cached, str) else None
    candidate = torch_hub_checkpoints() / file.filename
    return candidate if candidate.is_file() else None


def not_weights(model: str, path: Path, *, why: str) -> ModelError:
    """One sentence for a file that is not ``model``'s weights: which file, why, and what to give instead."""
    return ModelError(f"{path} is not weights of {model}: {why}; give `weights` the file "
                      f"'{fetch_command(model)}' fetches, or leave `weights` out", value=path)


@contextmanager
def reading(model: str, path: Path, *, failure: str) -> Iterator[None]:
    """Inside the block ``path`` is read (or its tensors loaded) for ``model``; whatever a file
    turns out to be instead (text, truncated, another model's state dict) ends as one sentence,
    :func:`not_weights` with ``failure`` ("it does not read as a PyTorch checkpoint"), never as
    the loader's traceback, whose advice (``weights_only=False``: run the file's code) must not
    reach a user.  Only the reading belongs in the block, so a fault of the model itself (out of
    GPU memory) is not taken for a bad file."""
    try:
        yield
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001  each loader has its own: pickle, zip, safetensors, json, torch
        raise not_weights(model, path, why=f"{failure} ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """The loader's own reason, short and in one clause; never torch's advice to unpickle code."""
    text = str(err).strip()
    if "weights_only" in text:  # torch's unpickler: its advice is to run the file's code
        return "not a file of plain tensors"
    line = text.splitlines()[0] if text else type(err).__name__
    return line.replace(". ", "; ")[:160].rstrip(" .:;")


def fetch_command(model: str) -> str:
    return f"audioscan models fetch {model}"


def missing_error(model: str, file: WeightFile) -> ModelError:
    where = f"the Hugging Face repo {file.hf_repo}" if file.hf_repo else file.url
    return ModelError(
        f"{model} needs the weights file {file.filename} (from {where}), which is not on this machine; "
        f"run '{fetch_command(model)}' on a connected machine (or put the file in ${WEIGHTS_DIR_ENV}, "
        "or give `weights` PATH)")


def download(file: WeightFile) -> Path:
    """Download ``file`` into its cache (huggingface_hub or torch hub); returns the path."""
    if file.hf_repo:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(file.hf_repo, file.filename))
    import torch

    if file.url is None:
        raise ModelError(f"{file.filename} names no place to download it from")
    target = torch_hub_checkpoints() / file.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(file.url, str(target), progress=True)
    return target


def resolve(model: str, file: WeightFile, *, explicit: Path | None = None, allow_download: bool = True) -> Path:
    """A local path to ``file``, downloading it only when allowed and the network answers."""
    local = find_local(file, explicit)
    if local is not None:
        return local
    if not allow_download or not network_reachable(file.host):
        raise missing_error(model, file)
    try:
        return download(file)
    except Exception as err:  # any network or hub failure ends as the same one sentence
        raise ModelError(f"downloading {file.filename} for {model} failed ({err}); "
                         f"run '{fetch_command(model)}' again when the network is back") from err


def _checksum_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audioscan" / "checksums.json"


def checksum(path: Path) -> str:
    """SHA-256 of a weight file, computed once per (path, size, mtime)."""
    real = Path(os.path.realpath(path))
    if real.parent.name == "blobs" and len(real.name) == 64:
        return real.name  # a Hugging Face blob is named by its SHA-256
    stat = real.stat()
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = _checksum_cache()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with open(real, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    known[key] = digest.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home only costs hashing again next time
    return known[key]
