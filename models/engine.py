"""Running a torch module over window batches: device, precision, batching, transfers.

Every neural family shares this so GPU behaviour is decided in one place: ``auto``
picks CUDA when torch sees one; on CUDA the batch goes through pinned memory with a
non-blocking copy and runs under fp16 (or bf16) autocast; on the CPU everything is
fp32.  Inference runs under ``torch.inference_mode`` and the module in eval mode.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable

import numpy as np

from audioscan.models.base import LoadOptions
from audioscan.models.errors import ModelError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def resolve_device(name: str):
    """``auto`` -> CUDA when available, else CPU; explicit CUDA without a GPU is a clear error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"`device` {name} was asked for but torch sees no CUDA GPU here; use `device` cpu",
                             value=name)
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"`device` {name}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                             value=name)
        return device
    if name == "cpu":
        return torch.device("cpu")
    raise ModelError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")


def autocast_dtype(device, precision: str):
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32)."""
    import torch

    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        return {"auto": torch.float16, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[precision]
    if precision == "bf16":
        return torch.bfloat16
    return None  # fp16 autocast on the CPU is slow and lossy: the CPU always runs fp32 otherwise


def default_batch_size(params: int, device_name: str = "auto") -> int:
    """A batch that keeps a GPU busy without running out of memory, and small on the CPU."""
    if params == 0:  # signal processing: LOGMEL frames a batch's span once (bench/models_bench.py)
        return 64
    try:
        import torch

        on_gpu = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    except ImportError:
        on_gpu = False
    if on_gpu:
        return 64 if params < 150e6 else 16
    return 16 if params < 150e6 else 4


@dataclass
class TorchEmbedder:
    """An :class:`~models.base.EmbeddingModel` around a module and a pooled forward function.

    ``prepare(batch)`` turns the float32 ``[B, samples]`` array into the model's input
    tensor on the CPU (a spectrogram, say; the default is the waveform itself);
    ``forward(module, inputs)`` runs on the device and returns ``[B, dim]``.  This
    class does the transfers, precision and bookkeeping.
    """

    name: str
    dim: int
    _: KW_ONLY
    sample_rate: int
    module: Any  # a torch module (torch is imported only when a model loads)
    forward: Callable
    options: LoadOptions = LoadOptions()
    prepare: Callable | None = None

    def __post_init__(self) -> None:
        import torch

        self.device = resolve_device(self.options.device)
        self.dtype = autocast_dtype(self.device, self.options.precision)
        self.module = self.module.to(self.device).eval()
        self._torch = torch

    def embed(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self.prepare is None:
                inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            else:
                inputs = self.prepare(batch)
            if self.device.type == "cuda":
                inputs = inputs.pin_memory().to(self.device, non_blocking=True)
            if self.dtype is None:
                out = self.forward(self.module, inputs)
            else:
                with torch.autocast(device_type=self.device.type, dtype=self.dtype):
                    out = self.forward(self.module, inputs)
        return out.float().cpu().numpy()
