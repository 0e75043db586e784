import numpy as np
import pytest

from audioscan.models import registry
from audioscan.models.base import LoadOptions
from audioscan.models.errors import ModelError


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


def _framed_alone(batch: np.ndarray, recipe: str) -> np.ndarray:
    """The recipe as first written: every window framed on its own (torchaudio's transforms)."""
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16_000, n_fft=400, win_length=400, hop_length=160,
                                               f_min=50.0, f_max=8000.0, n_mels=64, power=2.0, center=True)
    with torch.inference_mode():
        power = mel(torch.as_tensor(batch))
        logmel = torch.log(power.clamp_min(1e-10))
        delta = torchaudio.transforms.ComputeDeltas(win_length=5)(logmel)
        if recipe == "logmel-v1":
            parts = [logmel.mean(-1), logmel.std(-1, unbiased=False), delta.mean(-1), delta.std(-1, unbiased=False)]
        else:
            level = 10 * torch.log10(power.sum(1).clamp_min(1e-10))
            active = (level >= level.amax(-1, keepdim=True) - 20.0).float()[:, None, :]
            count = active.sum(-1, keepdim=True).clamp_min(1.0)

            def stats(values):
                mean = (values * active).sum(-1, keepdim=True) / count
                return mean[..., 0], ((((values - mean) ** 2) * active).sum(-1, keepdim=True) / count).sqrt()[..., 0]

            mean, std = stats(logmel)
            parts = [mean, std, stats(delta)[1], logmel.amax(-1)]
        return torch.cat(parts, dim=1).numpy()


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
    offsets = window_starts(len(signal), win, step)
    alone = _framed_alone(np.stack([signal[o: o + win] for o in offsets]), recipe)
    shared = model.embed_windows(signal, offsets, win)
    assert np.abs(shared - alone).max() < 1e-4 * max(1.0, np.abs(alone).max())
    assert np.abs(model.embed(np.stack([signal[o: o + win] for o in offsets])) - alone).max() < 1e-3


def test_windows_in_any_order_get_their_own_vectors():
    from audioscan.models.logmel import LogMelModel

    model = LogMelModel()
    signal = _recorded_like(6.0, seed=7)
    offsets = np.array([32_000, 0, 16_000, 16_000, 48_000, 1_600])
    alone = _framed_alone(np.stack([signal[o: o + 16_000] for o in offsets]), "logmel-v2")
    assert np.abs(model.embed_windows(signal, offsets, 16_000) - alone).max() < 1e-3


@pytest.mark.parametrize("samples", [201, 300, 519, 800, 1279])
def test_rows_too_short_for_frames_of_their_own_are_embedded_as_before(samples):
    """A row shorter than one unpadded frame (and a window with no frames between its edges)."""
    from audioscan.models.logmel import LogMelModel

    rows = np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32)
    for recipe in ("logmel-v2", "logmel-v1"):
        model = LogMelModel(recipe=recipe)
        assert np.abs(model.embed(rows[:1]) - _framed_alone(rows[:1], recipe)).max() < 1e-3
        assert np.abs(model.embed(rows) - _framed_alone(rows, recipe)).max() < 1e-3


def test_a_read_only_signal_is_embedded_without_a_warning(recwarn):
    """Ray hands a batch's samples over as a read-only buffer."""
    from audioscan.models.logmel import LogMelModel

    signal = _recorded_like(3.0, seed=3)
    signal.setflags(write=False)
    assert LogMelModel().embed_windows(signal, np.array([0, 16_000]), 32_000).shape == (2, 256)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
