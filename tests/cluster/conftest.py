"""The local build every Ray test compares with, made once per test process."""

from __future__ import annotations

import pytest

from tests.indexer.helpers import build_once


@pytest.fixture(scope="session")
def local(tmp_path_factory, library_template):
    store = tmp_path_factory.mktemp("local") / "store"
    build_once(store, library_template, batch_size=4)
    return store
