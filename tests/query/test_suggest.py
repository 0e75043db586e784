import numpy as np

from audioscan.query.labels import Label, Media
from audioscan.query.rescore import Scored
from audioscan.query.suggest import suggest


def test_suggestions_are_uncertain_unlabelled_spread_and_distinct():
    media = np.array([1] * 6 + [2] * 3)
    starts = np.array([0.0, 1, 2, 20, 40, 60, 0, 20, 40])
    scores = np.array([0.5, 0.51, 0.49, 0.52, 0.9, 0.1, 0.3, 0.6, 0.05])
    scored = Scored(np.arange(9), media, starts=starts, ends=starts + 8, scores=scores, decisions=scores,
                    channels=np.zeros(9, np.int16))
    labelled = [Label(1, Media(1, "/r", rel="a.wav", duration=100.0, status="ok"), label="x", start=18.0, end=30.0,
                      kind="range", positive=True, source=None)]
    picks = suggest(scored, labelled, paths={1: "a", 2: "b"}, count=4)
    assert [(p.path, p.start) for p in picks] == [("a", 0.0), ("b", 20.0), ("b", 0.0), ("a", 40.0)]
