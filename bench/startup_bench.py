"""Start-up benchmark: from process start to answer for the commands that run no model.

`index status`, `search --from` (a stored vector), `labels list` and `models list` are typed
many times a session; each should cost the interpreter plus what it truly needs, never
torch or transformers.  Each command runs in a fresh process (median of --repeat runs) on a
small demo store, beside the import time of each heavy package alone and a bare
``python -c pass`` as the baseline, all measured in this one run.

Run: ``.venv/bin/python bench/startup_bench.py [--repeat 5] [--source DIR]``.  ``--source``
runs the audioscan of another checkout (e.g. a ``git worktree`` of an older commit, with
``audioscan/{indexer,query,models}`` linked to its top-level folders) for a before/after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "torchaudio", "transformers", "sklearn", "faiss", "duckdb", "av", "pyarrow")
_REPORT_HEAVY = f"""
import atexit, sys
atexit.register(lambda: print("HEAVY " + " ".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))
sys.argv = ["audioscan", *sys.argv[1:]]
from audioscan.cli import main
main(prog_name="audioscan")
"""


def _median_seconds(argv: list[str], env: dict[str, str], cwd: Path, repeat: int) -> tuple[float, str]:
    times, heavy = [], ""
    for _ in range(repeat):
        clock = time.perf_counter()
        result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        times.append(time.perf_counter() - clock)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
        heavy = next((line[6:] for line in result.stderr.splitlines() if line.startswith("HEAVY ")), heavy)
    return statistics.median(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", type=Path, default=None, help="checkout whose audioscan to time")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "-m", "audioscan.indexer.media.samples", str(folder / "demo")], env=env,
                       check=True, capture_output=True, timeout=300)
        store = str(folder / "store")
        subprocess.run([sys.executable, "-m", "audioscan", "--store", store, "index", "build", "-q",
                        str(folder / "demo" / "library")], env=env, check=True, capture_output=True, timeout=600)
        baseline, _ = _median_seconds([sys.executable, "-c", "pass"], env, folder, args.repeat)
        print(f"python -c pass (baseline): {baseline * 1000:.0f} ms\n")
        print(f"{'command':44s} {'median':>8s} {'x base':>7s}  heavy packages imported")
        commands = [["models", "list"], ["--store", store, "index", "status"],
                    ["--store", store, "search", "--from", "door.mp3", "--at", "3", "-k", "3"],
                    ["--store", store, "labels", "list"], ["--version"]]
        for command in commands:
            seconds, heavy = _median_seconds([sys.executable, "-c", _REPORT_HEAVY, *command], env, folder,
                                             args.repeat)
            shown = " ".join(c for c in command if c not in ("--store", store))
            print(f"audioscan {shown:34s} {seconds * 1000:6.0f} ms {seconds / baseline:6.1f}x  {heavy or '-'}")
        print(f"\n{'import alone':44s} {'median':>8s}")
        for package in HEAVY:
            seconds, _ = _median_seconds([sys.executable, "-c", f"import {package}"], env, folder, args.repeat)
            print(f"import {package:37s} {max(0.0, seconds - baseline) * 1000:6.0f} ms  (beyond the baseline)")


if __name__ == "__main__":
    main()
