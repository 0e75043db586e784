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

from typing import Sequence

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
    end of a window differ from the signal's frames there: the first and last ``_PADDED``
    read the window's own reflection padding, so they are cut from its samples and framed
    apart, and the deltas beside them read those.  The result is what framing every window
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
        self._device = torch.device(device)
        self._window = torch.hann_window(N_FFT, device=self._device)
        self._banks = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, f_min=50.0, f_max=8000.0, n_mels=N_MELS, sample_rate=SAMPLE_RATE).to(self._device)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Each row on its own: every row is a piece of one window."""
        batch = np.asarray(batch, dtype=np.float32)
        start = np.zeros(1, dtype=np.int64)
        return self.embed_pieces([(row, start) for row in batch], batch.shape[1])

    def embed_pieces(self, pieces: Sequence[tuple[np.ndarray, np.ndarray]], win: int) -> np.ndarray:
        """The vector of ``signal[o: o + win]`` for each offset of each ``(signal, offsets)`` piece, in
        order, as if each window were embedded alone.

        Every window of the batch is laid on one frame grid (:func:`_lay`) and framed as one span:
        a batch costs one transform however many files and frame grids its windows come from (the
        window that ends a file is off the grid of the ones before it).
        """
        laid, frames = _lay(pieces, win)
        if not len(frames):
            return np.empty((0, DIM), dtype=np.float32)
        with self._torch.inference_mode():
            return self._windows(self._torch.from_numpy(laid).to(self._device), frames, win)

    def _frames(self, wave, padded: bool = True):
        """Frames of ``wave [..., samples]``: log-mels ``[..., frames, mels]`` and levels in dB.

        Frame ``j`` is centred on sample ``j * HOP``.  ``padded``: from frame 0, reading reflection
        padding at both ends; otherwise from frame ``_PADDED``, the first that needs none, to the
        last that needs none (a span's frames: windows read only those).
        """
        flat = wave.reshape(-1, wave.shape[-1])
        if not padded:
            flat = flat[:, _PADDED * HOP - N_FFT // 2:]
        spec = self._torch.stft(flat, N_FFT, HOP, N_FFT, self._window, center=padded, pad_mode="reflect",
                                return_complex=True)
        logmel, level = self._logmels(spec.transpose(-1, -2))
        return logmel.reshape(wave.shape[:-1] + logmel.shape[-2:]), level.reshape(wave.shape[:-1] + level.shape[-1:])

    def _logmels(self, spec):
        """Log-mels and levels in dB of the spectra ``spec [..., frames, bins]``."""
        torch = self._torch
        power = spec.real.square()
        power.addcmul_(spec.imag, spec.imag)  # |X|^2, without the square root of abs()
        mels = power @ self._banks
        level = 10 * torch.log10(mels.sum(-1).clamp_min(_ENERGY_FLOOR))
        return torch.log(mels.clamp_min(_ENERGY_FLOOR)), level

    def _deltas(self, values):
        """Deltas along the frames of ``values [..., frames, mels]``: torchaudio's ``compute_deltas``
        (a regression over ``DELTA_REACH`` frames each side, edges replicated), as sums of shifted
        slices, which cost a fraction of the convolution it runs."""
        torch = self._torch
        count, reach = values.shape[-2], DELTA_REACH
        edge = values.shape[:-2] + (reach, values.shape[-1])
        padded = torch.cat([values[..., :1, :].expand(edge), values, values[..., -1:, :].expand(edge)], dim=-2)
        total = None
        for k in range(1, reach + 1):
            step = padded[..., reach + k: reach + k + count, :] - padded[..., reach - k: reach - k + count, :]
            total = step if total is None else total.add_(step, alpha=k)
        return total.div_(2 * sum(k * k for k in range(1, reach + 1)))

    def _edges(self, span, logmel, level, frames: np.ndarray, win: int):
        """The first and last ``_EDGE`` frames of the windows starting at span frames ``frames``, as
        each window framed alone has them: log-mels, deltas and levels ``[windows, 2 * _EDGE, ...]``.

        Only the first and last ``_PADDED`` frames read a window's own reflection padding: they are
        framed here, four short frames a window in one batched transform.  The others are the
        span's frames (``logmel``, ``level``, which start at span frame ``_PADDED``), and the deltas
        beside the padded frames read both.
        """
        torch = self._torch
        last = win // HOP
        own = np.r_[0:_PADDED, last - _PADDED + 1: last + 1]
        reads = np.abs(own[:, None] * HOP + np.arange(N_FFT) - N_FFT // 2)  # reflected at the start ...
        reads = np.where(reads > win - 1, 2 * (win - 1) - reads, reads)  # ... and at the end
        samples = span[torch.as_tensor(frames * HOP, device=self._device)[:, None, None]
                       + torch.as_tensor(reads, device=self._device)]
        own_logmel, own_level = self._logmels(torch.fft.rfft(samples * self._window))

        def spans(first: int, stop: int):  # window frames first .. stop - 1, as rows of the span's frames
            return torch.as_tensor(frames[:, None] - _PADDED + np.arange(first, stop), device=self._device)

        reach = _EDGE + DELTA_REACH  # frames a window's edge and the deltas beside it read
        head = torch.cat([own_logmel[:, :_PADDED], logmel[spans(_PADDED, reach)]], dim=1)
        tail = torch.cat([logmel[spans(last + 1 - reach, last + 1 - _PADDED)], own_logmel[:, _PADDED:]], dim=1)
        logmels = torch.cat([head[:, :_EDGE], tail[:, -_EDGE:]], dim=1)
        deltas = torch.cat([self._deltas(head)[:, :_EDGE], self._deltas(tail)[:, -_EDGE:]], dim=1)
        levels = torch.cat([own_level[:, :_PADDED], level[spans(_PADDED, _EDGE)],
                            level[spans(last + 1 - _EDGE, last + 1 - _PADDED)], own_level[:, _PADDED:]], dim=1)
        return logmels, deltas, levels

    def _table(self, logmel):
        """Per span frame: log-mels and deltas, and their squares, to sum per window; and the centre
        subtracted first.  Centred and in float64, so variances from sums of squares lose no
        precision (the standard deviation of a near-constant window is the square root of a
        near-zero difference).  The log-mels are centred on the span's means; the deltas, which
        average near zero, are not."""
        torch = self._torch
        table = torch.empty((len(logmel), 4 * N_MELS), dtype=torch.float64, device=self._device)
        centre = logmel.mean(0)
        table[:, :N_MELS] = logmel - centre
        table[:, N_MELS: 2 * N_MELS] = self._deltas(logmel)
        torch.square(table[:, : 2 * N_MELS], out=table[:, 2 * N_MELS:])
        return table, torch.cat([centre.double(), torch.zeros_like(centre, dtype=torch.float64)])

    def _windows(self, span, frames: np.ndarray, win: int) -> np.ndarray:
        """The recipe's statistics of the windows starting at span frames ``frames``."""
        torch = self._torch
        last = win // HOP
        inner = np.arange(_EDGE, last + 1 - _EDGE)  # window frames the span's frames stand for
        if len(inner):
            logmel, level = self._frames(span, padded=False)
            edge_logmel, edge_deltas, edge_level = self._edges(span, logmel, level, frames, win)
            edges = 2 * _EDGE
            table, centre = self._table(logmel)
            frames = frames - _PADDED  # rows of the span's frames, which start at frame _PADDED
            index = torch.as_tensor(frames[:, None] + inner[None, :], device=self._device)
            window_level = torch.cat([edge_level, level[index]], dim=1)
        else:  # no frames between the edges: each window is framed whole
            starts = torch.as_tensor(frames * HOP, device=self._device)[:, None]
            edge_logmel, window_level = self._frames(span[starts + torch.arange(win, device=self._device)])
            edge_deltas, edges = self._deltas(edge_logmel), last + 1
        edge_table = torch.cat([edge_logmel, edge_deltas], dim=2).double()
        if not len(inner):
            centre = edge_table.mean((0, 1))
        edge_table = edge_table - centre
        edge_table = torch.cat([edge_table, edge_table.square()], dim=2)
        if self.recipe == "logmel-v1":
            active = torch.ones_like(window_level, dtype=torch.float64)
        else:
            active = (window_level >= window_level.amax(1, keepdim=True) - ACTIVE_RANGE_DB).double()
        edge_active, inner_active = active[:, :edges], active[:, edges:]
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


def _lay(pieces: Sequence[tuple[np.ndarray, np.ndarray]], win: int) -> tuple[np.ndarray, np.ndarray]:
    """One signal holding every window of ``pieces``, each starting on its frame grid, and the frame
    at which each window starts in it (in the order of the pieces and their offsets).

    A piece's windows on one grid that overlap or touch keep sharing their samples, and so their
    frames; a window off that grid, or past a gap, gets a stretch of its own.  A window reads only
    its own samples (see :class:`LogMelModel`), so what is laid beside it never changes its vector.
    """
    stretches, frames, laid = [], [], 0  # laid: samples so far, always a whole number of frames
    for signal, offsets in pieces:
        offsets = np.asarray(offsets, dtype=np.int64)
        order = np.lexsort((offsets, offsets % HOP))
        ranked = offsets[order]
        breaks = np.flatnonzero((np.diff(ranked % HOP) != 0) | (np.diff(ranked) > win)) + 1
        starts = np.empty(len(offsets), dtype=np.int64)
        for group in np.split(np.arange(len(ranked)), breaks) if len(ranked) else ():
            first, length = int(ranked[group[0]]), int(ranked[group[-1]]) + win - int(ranked[group[0]])
            starts[order[group]] = (laid + ranked[group] - first) // HOP
            stretches.append((laid, signal[first: first + length]))
            laid += -(-length // HOP) * HOP
        frames.append(starts)
    signal = np.empty(laid, dtype=np.float32)  # not zeros: a fresh zeroed block is faulted in page by page
    for (at, stretch), (stop, _) in zip(stretches, stretches[1:] + [(laid, None)]):
        signal[at: at + len(stretch)] = stretch
        signal[at + len(stretch): stop] = 0.0  # the rounding to a whole frame: read by no window, but finite
    return signal, np.concatenate(frames) if frames else np.empty(0, dtype=np.int64)


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
