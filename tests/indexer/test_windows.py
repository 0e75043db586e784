import numpy as np
import pytest

from audioscan.indexer.media.windows import StreamWindower, WindowSpec, window_starts


def test_twenty_seconds_give_thirteen_windows():
    win, hop = WindowSpec(8.0, 1.0).samples(16_000)
    starts = window_starts(20 * 16_000, win, hop=hop)
    assert len(starts) == 13
    assert starts[-1] + win == 20 * 16_000


def test_tail_is_covered_by_a_window_ending_at_the_end():
    starts = window_starts(1050, 100, hop=30)
    assert starts[-1] == 950 and starts[-2] == 930


def test_short_signal_gives_one_window_and_no_signal_none():
    assert window_starts(50, 100, hop=10).tolist() == [0]
    assert window_starts(0, 100, hop=10).tolist() == []


def test_bad_spec_is_refused():
    with pytest.raises(ValueError):
        WindowSpec(0, 1)


@pytest.mark.parametrize("total,win,hop,block", [(20_000, 800, 100, 333), (1050, 100, 30, 7),
                                                 (5000, 100, 250, 64), (60, 100, 10, 16), (800, 800, 100, 800)])
def test_streaming_cutter_matches_the_whole_file_rule(total, win, hop, block):
    signal = np.random.default_rng(0).standard_normal(total).astype(np.float32)
    cutter = StreamWindower(win, hop, batch_size=5)
    batches = []
    for i in range(0, total, block):
        batches += list(cutter.feed(signal[i: i + block]))
    batches += list(cutter.finish())
    starts = np.concatenate([b.starts for b in batches])
    assert starts.tolist() == window_starts(total, win, hop=hop).tolist()
    audio = np.concatenate([np.lib.stride_tricks.sliding_window_view(b.span, win)[b.offsets] for b in batches])
    ends = np.concatenate([b.ends for b in batches])
    for s, e, row in zip(starts, ends, audio):
        assert e == min(s + win, total)
        assert np.array_equal(row[: e - s], signal[s:e])
        assert not row[e - s:].any()  # zero padding only past the end of a short signal
    assert all(len(b.starts) <= 5 and len(b.span) == b.offsets[-1] + win for b in batches)


def test_a_split_batch_keeps_each_window_its_samples():
    signal = np.arange(1000, dtype=np.float32)
    cutter = StreamWindower(100, 30, batch_size=10)
    whole = next(iter(cutter.feed(signal)))
    head, rest = whole.split(4)
    assert head.starts.tolist() == [0, 30, 60, 90] and rest.starts.tolist() == [120, 150, 180, 210, 240, 270]
    for part in (head, rest):
        assert len(part.span) == part.offsets[-1] + 100
        for start, offset in zip(part.starts, part.offsets):
            assert np.array_equal(part.span[offset: offset + 100], signal[start: start + 100])
