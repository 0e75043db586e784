"""A refused cut names the default of the model it is for, whichever model that is."""

from __future__ import annotations

import pytest

from audioscan.indexer.build import build_targets
from audioscan.indexer.errors import MediaError
from audioscan.models import registry


@pytest.mark.parametrize("name", registry.names())
def test_a_refused_window_or_hop_names_the_models_own_default(name):
    spec = registry.spec(name)
    with pytest.raises(MediaError, match=rf"\(default {spec.window:g}\)"):
        build_targets([], [name], window=0.0001, hop=None)
    with pytest.raises(MediaError, match=rf"\(default {spec.hop:g}\)"):
        build_targets([], [name], window=None, hop=1000.0 if spec.window < 1000 else 0.0)
