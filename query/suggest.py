"""Active learning: the unlabelled windows whose labels would teach the classifier most.

Those are the windows it is least sure about (probability nearest 0.5), spread over
files so one long file cannot take every slot, and never two overlapping windows of
one file: each suggestion is a different moment to listen to.
"""

from __future__ import annotations

import math

import numpy as np

from audioscan.query.labels import Label, marked_channels
from audioscan.query.rescore import Scored
from audioscan.query.moments import Moment


def suggest(scored: Scored, labels: list[Label], *, paths: dict[int, str], count: int) -> list[Moment]:
    labelled = np.zeros(len(scored.ids), dtype=bool)
    for item in labels:
        mine = (scored.media_ids == item.media.id) & marked_channels(item.channel, scored.channels)
        end = item.end if item.kind == "range" else item.start
        labelled |= mine & (scored.starts <= end) & (scored.ends >= item.start)
    candidates = np.flatnonzero(~labelled)
    candidates = candidates[np.argsort(np.abs(scored.scores[candidates] - 0.5), kind="stable")]
    files = len(np.unique(scored.media_ids[candidates])) if len(candidates) else 0
    picked: list[int] = []
    streams = scored.streams
    for cap in (max(1, math.ceil(count / max(files, 1))), count):  # spread first, then fill up
        per_file: dict[int, int] = {}
        for i in picked:
            per_file[int(scored.media_ids[i])] = per_file.get(int(scored.media_ids[i]), 0) + 1
        for candidate in candidates:
            i = int(candidate)
            if len(picked) == count:
                break
            media = int(scored.media_ids[i])
            if per_file.get(media, 0) >= cap or i in picked:
                continue
            if any(streams[j] == streams[i] and scored.starts[i] < scored.ends[j]
                   and scored.ends[i] > scored.starts[j] for j in picked):
                continue
            picked.append(i)
            per_file[media] = per_file.get(media, 0) + 1
    # A suggestion is one window: all that is known of where its sound is, is the window.
    return [Moment(paths[int(scored.media_ids[i])], float(scored.starts[i]), end=float(scored.ends[i]),
                   score=float(scored.scores[i]), peak=float(scored.starts[i] + scored.ends[i]) / 2,
                   onset=float(scored.starts[i]), offset=float(scored.ends[i]), decision=float(scored.decisions[i]),
                   channel=int(scored.channels[i]))
            for i in picked]
