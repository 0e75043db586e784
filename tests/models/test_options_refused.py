"""Weights a model cannot honour are refused in one sentence, for every model of the registry:
weights given to a model without a weights file, and files that are not that model's weights
(text, truncated, another family's checkpoint).  Checkpoints are tiny ones written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file
from torchaudio.models import wav2vec2_model
from transformers import ASTConfig, ASTModel

from audioscan.models import registry, wav2vec2
from audioscan.models.base import LoadOptions
from audioscan.models.beats_net import BEATs, BeatsConfig
from audioscan.models.eat_net import EAT, EatConfig
from audioscan.models.errors import ModelError
from tests.models.tiny import TINY_BEATS, TINY_EAT, TINY_W2V

TINY_AST = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_length=128)


def _wav2vec2(folder: Path) -> Path:
    torch.save(wav2vec2_model(**TINY_W2V).state_dict(), folder / "w.pth")
    return folder / "w.pth"


def _beats(folder: Path) -> Path:
    torch.save({"cfg": TINY_BEATS, "model": BEATs(BeatsConfig.from_dict(TINY_BEATS)).state_dict()}, folder / "b.pt")
    return folder / "b.pt"


def _eat(folder: Path) -> Path:
    state = {f"model.{k}": v.contiguous() for k, v in EAT(EatConfig.from_dict(TINY_EAT)).state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({**TINY_EAT, "model_type": "eat"}))
    return folder / "model.safetensors"


def _ast(folder: Path) -> Path:
    ASTModel(ASTConfig(**TINY_AST)).save_pretrained(folder)
    return folder / "model.safetensors"


# Each family (the module that builds it): a tiny valid checkpoint of it, written into a folder.
CHECKPOINTS: dict[str, Callable[[Path], Path]] = {"wav2vec2": _wav2vec2, "beats": _beats, "eat": _eat, "ast": _ast}
# Another family whose checkpoints have this family's file format (the config beside stays this family's).
FOREIGN = {"wav2vec2": "beats", "beats": "wav2vec2", "eat": "ast", "ast": "eat"}


def _family(name: str) -> str:
    return registry.spec(name).build.__module__.rsplit(".", 1)[-1]


WITH_FILES = [name for name in registry.names() if registry.spec(name).files]
WITHOUT_FILES = [name for name in registry.names() if not registry.spec(name).files]


@pytest.fixture(autouse=True)
def tiny_architectures(monkeypatch):
    """torchaudio's bundles build full-size networks; these tests need only their loading path."""
    monkeypatch.setattr(wav2vec2, "architecture", lambda base: dict(TINY_W2V))


def test_every_family_with_weights_has_a_tiny_checkpoint_here():
    assert {_family(name) for name in WITH_FILES} == set(CHECKPOINTS)


def _assert_one_sentence(err: ModelError, path: Path) -> None:
    text = str(err)
    assert str(path) in text and "\n" not in text and "weights_only" not in text and "Traceback" not in text
    assert err.options == ("weights",)


@pytest.mark.parametrize("name", WITHOUT_FILES)
def test_weights_given_to_a_model_without_a_weights_file_are_refused(tmp_path, name):
    given = tmp_path / "some.csv"
    given.write_text("path,start,end\na.wav,1,2\n")
    options = LoadOptions(device="cpu", weights=given)
    for call in (lambda: registry.spec(name).weights_id(options), lambda: registry.load_model(name, options)):
        with pytest.raises(ModelError, match=f"cannot be used with {name}, which has no weights file") as raised:
            call()
        _assert_one_sentence(raised.value, given)


def _csv(folder: Path, good: Path) -> Path:
    (folder / "some.csv").write_text("path,start,end\na.wav,1,2\n")
    return folder / "some.csv"


def _truncated(folder: Path, good: Path) -> Path:
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return good


@pytest.mark.parametrize("bad", [_csv, _truncated, "foreign"], ids=["csv", "truncated", "foreign"])
@pytest.mark.parametrize("name", WITH_FILES)
def test_a_file_that_is_not_the_models_weights_is_one_sentence_naming_it(tmp_path, name, bad):
    family = _family(name)
    good = CHECKPOINTS[family](tmp_path)
    if bad == "foreign":  # another family's whole checkpoint, in the same file format (torch or safetensors)
        other = tmp_path / "other"
        other.mkdir()
        good.write_bytes(CHECKPOINTS[FOREIGN[family]](other).read_bytes())
        path = good
    else:
        path = bad(tmp_path, good)
    with pytest.raises(ModelError, match=f"is not weights of {name}") as raised:
        registry.load_model(name, LoadOptions(device="cpu", weights=path))
    _assert_one_sentence(raised.value, path)


def test_a_thread_count_far_beyond_the_cores_is_refused(monkeypatch):
    from click.testing import CliRunner

    from audioscan.cli import main
    from audioscan.models import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.delenv("AUDIOSCAN_THREADS", raising=False)
    with pytest.raises(ModelError, match=r"^threads 17 is more than 8 threads for each of the 2 core\(s\)"):
        threads.set_threads(17)
    assert threads._chosen is None  # nothing was changed
    for args in (["--threads", "1000", "index", "status"], ["index", "status", "--threads", "1000"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "Error: --threads 1000 is more than 8 threads" in result.output
        assert "Traceback" not in result.output
    monkeypatch.setenv("AUDIOSCAN_THREADS", "1000")
    with pytest.raises(ModelError, match="^AUDIOSCAN_THREADS=1000 is more than 8 threads .* give at most 16, or unset"):
        threads.count()


def test_birdnet_leaves_stderr_clean():
    """LiteRT's native INFO line (the XNNPACK delegate) must not pass --quiet."""
    import os
    import subprocess
    import sys

    if not registry.spec("BIRDNET").available():
        pytest.skip("BIRDNET is not installed here")
    code = ("import numpy as np; from audioscan.models import registry; "
            "print(registry.load_model('BIRDNET').embed(np.zeros((1, 48000), dtype=np.float32)).shape)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "(1, 1024)"
    assert done.stderr == ""
