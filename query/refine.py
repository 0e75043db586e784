"""``--refine``: place each found sound more finely by embedding its moment again, at a finer hop.

The library's windows start every ``hop``, so a moment's peak is known to about a hop.
Refining decodes a window and a hop on each side of the moment's peak, cuts that with
the set's window length every ``hop / FINE_STEPS`` (0.25 s for 8 s / 1 s), embeds those
windows with the set's model, scores them the way the moment was scored (cosine to the
query, or the detector's decision value) and locates the sound from the windows that hold
the coarse peak, against the lowest of them all - as the coarse moment was located.

The windows keep the set's length on purpose: their vectors are what the model gives
for the library and what a detector was trained on, only more closely spaced, so the
scores mean the same (a shorter window would feed the detector vectors it never saw).
The cost is the model's time for about 41 windows a moment at 8 s / 1 s (18 s of audio
cut every 0.25 s) and decoding those 18 s: about 0.4 s a moment with LOGMEL on a loaded
2-core machine (README); with a neural model, 41 times its per-window time
(``bench/models_bench.py``).  Only the moments returned are refined,
never the library; a moment whose file cannot be read now keeps its coarse place.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from audioscan.indexer.errors import MediaError
from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.store.records import SetInfo
from audioscan.models import registry
from audioscan.models.base import LoadOptions, embed_windows
from audioscan.models.engine import default_batch_size
from audioscan.query.moments import Moment
from audioscan.query.runs import locate

FINE_STEPS = 4

# Scores of a moment's fine windows' vectors, on the scale its windows were ranked by.
ScoreOf = Callable[[np.ndarray, Moment], np.ndarray]


def refine(found: list[Moment], info: SetInfo, *, score: ScoreOf, load: LoadOptions = LoadOptions()) -> list[Moment]:
    """``found`` with each peak, onset and offset placed from windows ``hop / FINE_STEPS`` apart."""
    if not found:
        return found
    model = registry.load_model(info.model, load, weights_id=info.weights_id)
    win, hop = info.window_samples()
    step = max(1, hop // FINE_STEPS)
    batch = default_batch_size(registry.spec(info.model).params, load.device)
    out = []
    for moment in found:
        # From a window's length before the peak to one after it, so the fine windows run from
        # some that miss the sound through those that hold it to some that miss it again.
        begin = max(0.0, moment.centre - info.window - info.hop)
        try:
            audio = decode_all(Path(moment.path), info.sample_rate, start=begin,
                               end=moment.centre + info.window + info.hop)
        except MediaError:
            out.append(moment)  # gone or unreadable now: the coarse place stands
            continue
        if len(audio) <= win:
            out.append(moment)  # one window: nothing finer to compare
            continue
        cuts = np.arange(0, len(audio) - win + 1, step)
        vectors = np.concatenate([embed_windows(model, [(audio, cuts[i: i + batch])], win=win)
                                  for i in range(0, len(cuts), batch)])
        ranks = np.asarray(score(vectors, moment), dtype=np.float64)
        starts = begin + cuts / info.sample_rate
        ends = starts + info.window
        # Only windows holding the coarse peak are evidence of this sound; the rest give the floor.
        holding = (starts <= moment.centre) & (ends >= moment.centre)
        if not holding.any():
            out.append(moment)
            continue
        placed = locate(starts[holding], ends[holding], ranks=ranks[holding], background=float(ranks.min()))
        peak, onset, offset = (float(np.clip(x, moment.start, moment.end)) for x in placed)
        out.append(replace(moment, peak=peak, onset=onset, offset=offset))
    return out
