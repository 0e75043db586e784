"""LOGMEL: the weight-free offline default.

Every command must work on a machine that can download nothing, so the default
embedding is plain signal processing: 64 log-mel bands at 16 kHz (25 ms frames,
10 ms hop), summarised over the window.

Recipe ``logmel-v2`` (the default) hears short sounds: only frames within 20 dB of
the window's loudest frame are pooled, so a 1 s knock in an 8 s window is not
averaged away with the room noise around it (and the zero padding of a short file
or clip never counts).  Per band: the mean and standard deviation of those frames,
the standard deviation of their first differences (how fast the sound changes), and
the window's peak - 256 numbers.  The delta means of v1 are dropped (they carry
little but drift).  Its vectors are compared after centring on the set's mean
(``centred``), which spreads the cosine scores that raw log-mel statistics squash
near 1.  ``bench/detect_bench.py`` measures both recipes side by side.

Recipe ``logmel-v1`` (the first release: plain mean/std of log-mels and deltas over
every frame) stays loadable, so a store built with it keeps answering queries with
the same recipe; a new build makes a new, separate set.  Deterministic, finite on
digital silence (energies are floored before the logarithm).
"""

from __future__ import annotations

import numpy as np

from audioscan.models import runtime
from audioscan.models.base import LoadOptions, ModelSpec
from audioscan.models.errors import ModelError

NAME = "LOGMEL"
SAMPLE_RATE = 16_000
N_MELS = 64
DIM = 4 * N_MELS
# The recipe is the set identity of LOGMEL vectors: bump it whenever the features change.
RECIPE_VERSION = "logmel-v2"
RECIPES = ("logmel-v1", "logmel-v2")
# Frames quieter than the window's loudest by more than this are not pooled (v2).
ACTIVE_RANGE_DB = 20.0
_ENERGY_FLOOR = 1e-10
N_FFT = 400
HOP = 160  # samples between frames (10 ms); frame j of a window is centred on its sample j * HOP
DELTA_REACH = 2  # frames each side a delta reads (a 5-frame regression, torchaudio's compute_deltas)
# Frames at each edge of a window that differ from the signal's own frames there: the first and
# last frames read the window's reflection padding, and the deltas of the next ones read those.
_PADDED = -(-(N_FFT // 2) // HOP)
_EDGE = _PADDED + DELTA_REACH


class LogMelModel:
    """Log-mel statistics pooling; see the module docstring for the recipes.

    Overlapping windows share most of their frames (at 8 s every 1 s each sample lies in
    8 windows), so frames are computed once over a whole signal and each window's
    statistics are sums over its stretch of them.  Only the ``_EDGE`` frames at either
    end of a window differ from the signal's frames there (the first and last read the
    window's own reflection padding, and the deltas beside them read those), so they are
    framed from the window's own head and tail.  The result is what framing every window
    on its own gives, to float rounding (tests/models/test_logmel.py holds both equal),
    at the cost of one transform of the signal instead of one per window.
    """

    name = NAME
    dim = DIM
    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu", recipe: str = RECIPE_VERSION) -> None:
        import torch

        torchaudio = runtime.torchaudio()

        if recipe not in RECIPES:
            raise ModelError(f"this store's LOGMEL set was made with recipe '{recipe}', which this audioscan "
                             "does not know; upgrade audioscan")
        self.recipe = recipe
        self._torch = torch
        self._functional = torchaudio.functional
        self._device = torch.device(device)
        self._window = torch.hann_window(N_FFT, device=self._device)
        self._banks = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, f_min=50.0, f_max=8000.0, n_mels=N_MELS, sample_rate=SAMPLE_RATE).to(self._device)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Each row on its own: the rows are laid end to end on the frame grid and embedded as windows."""
        batch = np.asarray(batch, dtype=np.float32)
        count, win = batch.shape
        stride = -(-win // HOP) * HOP
        laid = np.zeros((count, stride), dtype=np.float32)
        laid[:, :win] = batch
        return self.embed_windows(laid.reshape(-1), np.arange(count, dtype=np.int64) * stride, win)

    def embed_windows(self, signal: np.ndarray, offsets: np.ndarray, win: int) -> np.ndarray:
        """The vector of ``signal[o: o + win]`` for each of ``offsets``, as if each were embedded alone.

        Windows whose start is off the frame grid go through :meth:`embed`, which lays them on it.
        """
        offsets = np.asarray(offsets, dtype=np.int64)
        on_grid = offsets % HOP == 0
        out = np.empty((len(offsets), DIM), dtype=np.float32)
        if not on_grid.all():
            out[~on_grid] = self.embed(np.stack([signal[o: o + win] for o in offsets[~on_grid]]))
        if on_grid.any():
            torch = self._torch
            with torch.inference_mode():
                grid = offsets[on_grid]
                first = int(grid.min())
                # A copy: the signal may be a read-only buffer (a Ray batch), which torch will not wrap.
                span = torch.tensor(signal[first: int(grid.max()) + win], dtype=torch.float32, device=self._device)
                out[on_grid] = self._windows(span, (grid - first) // HOP, win)
        return out

    def _frames(self, wave, padded: bool = True):
        """Frames of ``wave [..., samples]``: log-mels ``[..., frames, mels]`` and levels in dB.

        Frame ``j`` is centred on sample ``j * HOP``.  ``padded``: from frame 0, reading reflection
        padding at both ends; otherwise from frame ``_PADDED``, the first that needs none, to the
        last that needs none (a span's frames: windows read only those).
        """
        torch = self._torch
        flat = wave.reshape(-1, wave.shape[-1])
        if not padded:
            flat = flat[:, _PADDED * HOP - N_FFT // 2:]
        spec = torch.stft(flat, N_FFT, HOP, N_FFT, self._window, center=padded, pad_mode="reflect",
                          return_complex=True)
        real, imag = spec.real, spec.imag
        power = (real * real + imag * imag).transpose(-1, -2)  # [rows, frames, bins]
        mels = (power @ self._banks).reshape(wave.shape[:-1] + (-1, N_MELS))
        level = 10 * torch.log10(mels.sum(-1).clamp_min(_ENERGY_FLOOR))
        return torch.log(mels.clamp_min(_ENERGY_FLOOR)), level

    def _deltas(self, logmel):
        """Deltas along the frames of ``logmel [..., frames, mels]`` (edges replicated)."""
        return self._functional.compute_deltas(logmel.transpose(-1, -2), win_length=2 * DELTA_REACH + 1
                                               ).transpose(-1, -2)

    def _edges(self, span, frames, win: int):
        """Each window's own frames where they differ from the span's: log-mels, deltas, levels.

        Returns them for the first and last ``_EDGE`` frames of every window (or for all its
        frames, when the window is too short to have others), with the window frame
        indices they stand for.
        """
        torch = self._torch
        last = win // HOP
        starts = torch.as_tensor(frames * HOP, device=self._device)[:, None]
        if last < 2 * _EDGE:
            logmel, level = self._frames(span[starts + torch.arange(win, device=self._device)])
            return logmel, self._deltas(logmel), level, np.arange(last + 1)
        # Each window's head and tail, framed with its padding: the same length, so they are framed
        # together; the tail starts on the window's frame grid and ends where the window ends, and
        # both are long enough for the frames their deltas read.
        tail = (last - _EDGE - DELTA_REACH - _PADDED + 1) * HOP
        reach = torch.arange(win - tail, device=self._device)
        logmel, level = self._frames(torch.stack([span[starts + reach], span[starts + tail + reach]]))
        deltas = self._deltas(logmel)
        merged = [torch.cat([x[0, :, :_EDGE], x[1, :, -_EDGE:]], dim=1) for x in (logmel, deltas, level)]
        return (*merged, np.r_[0:_EDGE, last - _EDGE + 1: last + 1])

    def _table(self, logmel):
        """Per span frame: log-mels and deltas, and their squares, to sum per window; and the centre
        subtracted first.  Centred on the span's means and in float64, so variances from sums of
        squares lose no precision (the standard deviation of a near-constant window is the square
        root of a near-zero difference)."""
        torch = self._torch
        table = torch.empty((len(logmel), 4 * N_MELS), dtype=torch.float64, device=self._device)
        table[:, :N_MELS], table[:, N_MELS: 2 * N_MELS] = logmel, self._deltas(logmel)
        centre = table[:, : 2 * N_MELS].mean(0)
        table[:, : 2 * N_MELS] -= centre
        torch.square(table[:, : 2 * N_MELS], out=table[:, 2 * N_MELS:])
        return table, centre

    def _windows(self, span, frames: np.ndarray, win: int) -> np.ndarray:
        """The recipe's statistics of the windows starting at span frames ``frames``."""
        torch = self._torch
        last = win // HOP
        edge_logmel, edge_deltas, edge_level, edge_at = self._edges(span, frames, win)
        inner = np.setdiff1d(np.arange(last + 1), edge_at)  # window frames the span's frames stand for
        edge_table = torch.cat([edge_logmel, edge_deltas], dim=2).double()
        window_level, centre = edge_level, edge_table.mean((0, 1))
        if len(inner):
            logmel, level = self._frames(span, padded=False)
            frames = frames - _PADDED  # rows of the span's frames, which start at frame _PADDED
            table, centre = self._table(logmel)
            index = torch.as_tensor(frames[:, None] + inner[None, :], device=self._device)
            window_level = torch.cat([edge_level, level[index]], dim=1)
        edge_table = edge_table - centre
        edge_table = torch.cat([edge_table, edge_table.square()], dim=2)
        if self.recipe == "logmel-v1":
            active = torch.ones_like(window_level, dtype=torch.float64)
        else:
            active = (window_level >= window_level.amax(1, keepdim=True) - ACTIVE_RANGE_DB).double()
        edge_active, inner_active = active[:, : len(edge_at)], active[:, len(edge_at):]
        sums = torch.einsum("wf,wfc->wc", edge_active, edge_table)
        peaks = edge_logmel.amax(1)
        if len(inner):
            # Each run of evenly spaced windows reads its stretches of the span's frames as one
            # strided view: no copies, one batched product.
            first, width = int(inner[0]), len(inner)
            for run, step in _even_runs(frames):
                at = int(frames[run.start]) + first
                rows = len(range(*run.indices(len(frames))))
                stretches = table[at:].as_strided((rows, width, table.shape[1]), (step * table.shape[1],
                                                                                   table.shape[1], 1))
                sums[run] += torch.bmm(inner_active[run, None, :], stretches)[:, 0]
                loudest = logmel[at:].as_strided((rows, width, N_MELS), (step * N_MELS, N_MELS, 1)).amax(1)
                peaks[run] = torch.maximum(peaks[run], loudest)
        count = active.sum(1, keepdim=True).clamp_min(1.0)
        shifted = sums[:, : 2 * N_MELS] / count
        stds = (sums[:, 2 * N_MELS:] / count - shifted.square()).clamp_min(0).sqrt()
        means = shifted + centre
        if self.recipe == "logmel-v1":
            parts = [means[:, :N_MELS], stds[:, :N_MELS], means[:, N_MELS:], stds[:, N_MELS:]]
        else:
            parts = [means[:, :N_MELS], stds[:, :N_MELS], stds[:, N_MELS:], peaks.double()]
        return torch.cat(parts, dim=1).float().cpu().numpy()


def _even_runs(starts: np.ndarray):
    """``(slice, step)`` for each stretch of ``starts`` rising evenly (a cut's windows do, but for
    the one that ends a file)."""
    begin = 0
    while begin < len(starts):
        end = begin + 1
        step = int(starts[end] - starts[begin]) if end < len(starts) else 1
        if step <= 0:  # out of order or repeated: a stretch of one
            yield slice(begin, end), 1
            begin = end
            continue
        while end < len(starts) and starts[end] - starts[end - 1] == step:
            end += 1
        yield slice(begin, end), step
        begin = end


def _device(options: LoadOptions) -> str:
    # Log-mel statistics are cheap enough that the CPU is never the bottleneck;
    # an explicit CUDA device is still honoured.
    return options.device if options.device.startswith("cuda") else "cpu"


def _build(options: LoadOptions, files: dict) -> LogMelModel:
    return LogMelModel(_device(options))


def _build_recipe(recipe: str, options: LoadOptions) -> LogMelModel:
    return LogMelModel(_device(options), recipe)


SPEC = ModelSpec(
    name=NAME,
    dim=DIM,
    sample_rate=SAMPLE_RATE,
    source="built in (torchaudio log-mel statistics, no weights)",
    build=_build,
    recipe=RECIPE_VERSION,
    build_recipe=_build_recipe,
    centred_recipes=frozenset({"logmel-v2"}),
    normalize="global",
)
