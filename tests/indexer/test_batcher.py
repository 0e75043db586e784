import numpy as np
import pytest

from audioscan.indexer.media.windows import StreamWindower
from audioscan.indexer.pipeline import Batcher
from audioscan.models import registry


class _PerWindow:
    """A model with no shared path: only ``embed``, as every neural family."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []

    def embed(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        return self.model.embed(batch)


@pytest.mark.parametrize("shared", [True, False])
def test_batches_across_files_give_each_window_its_own_vector(shared):
    """Windows of two files, cut into batches of 5 and embedded 7 at a time (so batches split
    and mix files), get the vectors their windows get alone, whichever path the model takes."""
    logmel = registry.load_model("LOGMEL")
    model = logmel if shared else _PerWindow(logmel)
    win, hop = 16_000, 4_000
    rng = np.random.default_rng(3)
    signals = [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in (52_000, 37_123)]
    batcher = Batcher(model, batch_size=7)
    out = {0: [], 1: []}
    for job, signal in enumerate(signals):
        cutter = StreamWindower(win, hop, batch_size=5)
        for windows in [*cutter.feed(signal), *cutter.finish()]:
            batcher.add(job, windows)
            for done in batcher.run(0, partial=False):
                out[done.job].append(done)
    for done in batcher.run(0, partial=True):
        out[done.job].append(done)
    for job, signal in enumerate(signals):
        starts = np.concatenate([d.starts for d in out[job]])
        vectors = np.concatenate([d.vectors for d in out[job]])
        alone = logmel.embed(np.stack([signal[s: s + win] for s in starts]))
        assert np.abs(vectors - alone).max() < 1e-4
        assert starts.tolist() == sorted(set(starts.tolist())) and starts[-1] + win == len(signal)
    if not shared:
        assert model.calls and max(model.calls) == 7  # one batch across files, as a GPU wants it
