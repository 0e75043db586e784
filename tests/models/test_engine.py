import numpy as np
import pytest
import torch

from audioscan.models.base import LoadOptions
from audioscan.models.engine import TorchEmbedder, autocast_dtype, default_batch_size, resolve_device
from audioscan.models.errors import ModelError


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA GPU"):
            resolve_device("cuda:0")


def test_precision_is_autocast_on_cuda_and_fp32_on_cpu():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert autocast_dtype(cuda, "auto") is torch.float16 and autocast_dtype(cuda, "bf16") is torch.bfloat16
    assert autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "fp16") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    with pytest.raises(ModelError):
        autocast_dtype(cpu, "int8")


def test_default_batch_sizes_shrink_with_model_size():
    assert default_batch_size(0, "cpu") == default_batch_size(0, "cuda") == 64  # LOGMEL frames a span once
    assert default_batch_size(90_000_000, "cpu") > default_batch_size(900_000_000, "cpu")


def _linear_embedder(precision: str) -> TorchEmbedder:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(100, 16))
    return TorchEmbedder("T", 16, sample_rate=16_000, module=module, forward=lambda m, x: m(x),
                         options=LoadOptions(device="cpu", precision=precision))


def test_inference_runs_without_gradients_and_returns_float32():
    model = _linear_embedder("auto")
    out = model.embed(np.ones((3, 100), np.float32))
    assert out.dtype == np.float32 and out.shape == (3, 16)
    assert not model.module.training


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    batch = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    full, half = _linear_embedder("fp32").embed(batch), _linear_embedder("bf16").embed(batch)
    assert np.allclose(full, half, atol=0.05)
