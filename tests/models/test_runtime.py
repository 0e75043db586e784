"""A torch/torchaudio pair that does not match is one sentence naming both, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audioscan.indexer.media.samples import make_demo

UNDEFINED = "libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace"


@pytest.fixture
def mismatched(tmp_path) -> dict[str, str]:
    """An environment whose torchaudio claims 2.11.1 and fails to load its library, as the
    registry's torchaudio 2.11.1 does against torch 2.11.0 (shadowing the real one on sys.path)."""
    shadow = tmp_path / "shadow"
    (shadow / "torchaudio").mkdir(parents=True)
    (shadow / "torchaudio" / "__init__.py").write_text(f"raise OSError({UNDEFINED!r})\n")
    info = shadow / "torchaudio-2.11.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchaudio\nVersion: 2.11.1\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}


def _audioscan(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioscan", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_build_with_a_mismatched_pair_says_so_in_one_sentence(mismatched, tmp_path):
    library, _ = make_demo(tmp_path / "demo")
    result = _audioscan(mismatched, "--store", str(tmp_path / "store"), "index", "build", str(library),
                        cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "torchaudio 2.11.1 does not load with torch 2.11.0" in lines[0]
    assert "undefined symbol" in lines[0]
    assert lines[0].endswith("pip install torch==2.11.0 torchaudio==2.11.0")


def test_doctor_reports_the_mismatch_and_fails(mismatched, tmp_path):
    result = _audioscan(mismatched, "doctor", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "torchaudio 2.11.1 does not load with torch 2.11.0" in result.stderr


def test_doctor_passes_on_the_locked_install(tmp_path):
    result = _audioscan(dict(os.environ), "doctor", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for library in ("torch", "torchaudio", "av", "faiss", "duckdb", "pyarrow", "scikit-learn"):
        assert f'"{library}"' in result.stdout
