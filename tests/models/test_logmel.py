import numpy as np
import pytest

from audioscan.models import registry
from audioscan.models.base import LoadOptions
from audioscan.models.errors import ModelError
from tests.models.reference import LogMelFramedAlone


def test_logmel_contract_dims_and_determinism():
    model = registry.load_model("LOGMEL")
    batch = np.random.default_rng(0).standard_normal((3, 16_000 * 2)).astype(np.float32) * 0.1
    out = model.embed(batch)
    assert out.shape == (3, model.dim) == (3, 256) and out.dtype == np.float32
    assert np.array_equal(out, registry.load_model("logmel", LoadOptions(device="cpu")).embed(batch))


def test_logmel_is_finite_on_silence():
    out = registry.load_model("LOGMEL").embed(np.zeros((2, 16_000), np.float32))
    assert np.isfinite(out).all()


def test_a_row_does_not_depend_on_its_batch_mates():
    model = registry.load_model("LOGMEL")
    batch = np.random.default_rng(1).standard_normal((5, 8_000)).astype(np.float32)
    alone = np.concatenate([model.embed(batch[i: i + 1]) for i in range(5)])
    assert np.allclose(alone, model.embed(batch), atol=1e-5)


def test_unknown_model_names_what_exists():
    try:
        registry.spec("NOPE")
    except ModelError as err:
        assert "LOGMEL" in str(err) and "models list" in str(err)
    else:
        raise AssertionError("no error")


def _recorded_like(seconds: float, seed: int) -> np.ndarray:
    """Noise whose loudness jumps every 60 ms, with a silent stretch: frames the gate keeps and drops."""
    rng = np.random.default_rng(seed)
    total = int(seconds * 16_000)
    gain = np.exp(2 * rng.standard_normal(total // 1000 + 1)).repeat(1000)[:total]
    signal = (rng.standard_normal(total) * gain * 0.05).astype(np.float32)
    signal[total // 3: total // 3 + 8_000] = 0.0
    return signal


@pytest.mark.parametrize("recipe", ["logmel-v2", "logmel-v1"])
@pytest.mark.parametrize("seconds,window,hop", [(30.3037, 8.0, 1.0), (5.0, 1.0, 0.25), (1.3, 0.1, 0.01),
                                                (2.5, 0.08, 0.02), (2.6, 1.00006, 0.1)])
def test_windows_of_one_signal_equal_windows_framed_alone(recipe, seconds, window, hop):
    """Frames computed once per signal give every window the vector it gets when framed on its own:
    8 s / 1 s as built, windows shorter than the edge frames, and a window off the frame grid."""
    from audioscan.indexer.media.windows import window_starts
    from audioscan.models.logmel import LogMelModel

    model = LogMelModel(recipe=recipe)
    signal = _recorded_like(seconds, seed=int(seconds * 10))
    win, step = round(window * 16_000), round(hop * 16_000)
    offsets = window_starts(len(signal), win, hop=step)
    alone = LogMelFramedAlone(recipe).embed(np.stack([signal[o: o + win] for o in offsets]))
    shared = model.embed_pieces([(signal, offsets)], win)
    assert np.abs(shared - alone).max() < 1e-4 * max(1.0, np.abs(alone).max())
    assert np.abs(model.embed(np.stack([signal[o: o + win] for o in offsets])) - alone).max() < 1e-3


def test_windows_in_any_order_get_their_own_vectors():
    from audioscan.models.logmel import LogMelModel

    model = LogMelModel()
    signal = _recorded_like(6.0, seed=7)
    offsets = np.array([32_000, 0, 16_000, 16_000, 48_000, 1_600])
    alone = LogMelFramedAlone("logmel-v2").embed(np.stack([signal[o: o + 16_000] for o in offsets]))
    assert np.abs(model.embed_pieces([(signal, offsets)], 16_000) - alone).max() < 1e-3


def test_a_batch_of_several_signals_grids_and_gaps_is_framed_as_one_span(monkeypatch):
    """A build's batch mixes files, the off-grid window that ends each file, and (in refine) windows
    far apart: all are laid on one grid and transformed once, and each keeps its own vector."""
    from audioscan.models.logmel import LogMelModel

    model = LogMelModel()
    first, second = _recorded_like(20.0, seed=11), _recorded_like(9.5, seed=12)
    pieces = [(first, np.array([0, 16_000, 32_000, 12 * 16_000 + 37, 150_000, 4 * 16_000 + 80])),
              (second, np.array([len(second) - 64_000, 0, 8_000])), (first, np.array([], dtype=np.int64))]
    transforms = []
    real = model._frames
    monkeypatch.setattr(model, "_frames", lambda wave, padded=True: transforms.append(padded) or real(wave, padded))
    shared = model.embed_pieces(pieces, 64_000)
    alone = LogMelFramedAlone().embed(np.stack([signal[o: o + 64_000] for signal, offsets in pieces
                                                for o in offsets]))
    assert shared.shape == (9, 256)
    assert np.abs(shared - alone).max() < 1e-4 * max(1.0, np.abs(alone).max())
    assert transforms == [False]  # one transform of the one span (the padded edge frames are cut apart)


@pytest.mark.parametrize("samples", [201, 300, 519, 800, 1279])
def test_rows_too_short_for_frames_of_their_own_are_embedded_as_before(samples):
    """A row shorter than one unpadded frame (and a window with no frames between its edges)."""
    from audioscan.models.logmel import LogMelModel

    rows = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32)
    for recipe in ("logmel-v2", "logmel-v1"):
        model = LogMelModel(recipe=recipe)
        assert np.abs(model.embed(rows[:1]) - LogMelFramedAlone(recipe).embed(rows[:1])).max() < 1e-3
        assert np.abs(model.embed(rows) - LogMelFramedAlone(recipe).embed(rows)).max() < 1e-3


def test_a_read_only_signal_is_embedded_without_a_warning(recwarn):
    """Ray hands a batch's samples over as a read-only buffer."""
    from audioscan.models.logmel import LogMelModel

    signal = _recorded_like(3.0, seed=3)
    signal.setflags(write=False)
    assert LogMelModel().embed_pieces([(signal, np.array([0, 16_000]))], 32_000).shape == (2, 256)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
