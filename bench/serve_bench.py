"""Web page benchmark: search latency through the local server at 100k windows, HTTP included,
beside the CLI's start-to-answer time for the same search.

Target: p50 <= 20 ms end to end through the server (the vectors stay loaded).

    .venv/bin/python bench/serve_bench.py [--windows 100000] [--dim 768] [--requests 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from query_bench import make_store  # noqa: E402

from audioscan.api import Library  # noqa: E402
from audioscan.web.app import create_app  # noqa: E402
from audioscan.web.gate import CSRF_HEADER  # noqa: E402
from tests.web.conftest import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        make_store(store, args.windows, args.dim)
        app = create_app(Library(store))
        clock = time.perf_counter()
        app.state.web.library.load()
        print(f"{args.windows} windows x {args.dim}: vectors loaded in {time.perf_counter() - clock:.2f} s")
        media = sorted(app.state.web.library.media())
        rng = np.random.default_rng(0)
        with Server(app) as server:
            times = []
            for i in range(args.requests):
                body = urllib.parse.urlencode({"media_id": int(rng.choice(media)), "at": float(rng.uniform(10, 900)),
                                               "k": 10}).encode()
                request = urllib.request.Request(f"{server.url}/api/search", data=body, method="POST",
                                                 headers={CSRF_HEADER: app.state.web.csrf})
                start = time.perf_counter()
                with urllib.request.urlopen(request) as response:
                    response.read()
                times.append(time.perf_counter() - start)
        p50, p99 = np.percentile(times[5:], 50) * 1e3, np.percentile(times[5:], 99) * 1e3
        print(f"server search (HTTP, k=10): p50 {p50:.1f} ms, p99 {p99:.1f} ms over {args.requests} requests")
        cli = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), "-q", "search", "--from",
                            f"f{media[0]}.wav", "--at", "100", "-k", "10"], check=True, capture_output=True)
            cli.append(time.perf_counter() - start)
        print(f"CLI search, start to answer: median {np.median(cli):.2f} s "
              f"({np.median(cli) * 1e3 / p50:.0f}x the server's p50)")


if __name__ == "__main__":
    main()
