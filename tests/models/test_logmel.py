import numpy as np

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
