import numpy as np

from audioscan.indexer.store.ann import build_ann, load_ann
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from audioscan.query.search import SetIndex
from tests.conftest import tone_file
from tests.indexer.helpers import build_once


def test_a_derived_hnsw_index_serves_search_until_the_set_changes(world):
    with Store.open(world / "store", write=True) as store:
        info = store.find_set()
        assert build_ann(store, info, centred=True, minimum=10)
        assert not build_ann(store, info, centred=True, minimum=10)  # fresh: nothing to do
    with Store.open(world / "store", write=True) as store:  # a writer keeps the listed ANN file
        assert store.unlisted_files() == [] and check_store(store) == []
        index = SetIndex(store.snapshot(info, stats=True))
        assert index.ann is not None
        query = store.snapshot(info).vectors()[5]
        ann_top, ann_scores = index.top_windows(query, 10)
        exact_top, exact_scores = index.top_windows(query, 10, exact=True)
        assert len(set(ann_top) & set(exact_top)) >= 9 and np.allclose(ann_scores[0], exact_scores[0], atol=1e-5)
        assert index.search(query, 3)[0].score > 0.99
    tone_file(world / "media" / "new.wav", 9, "siren")
    build_once(world / "store", world / "media")  # the set changes: the old graph no longer applies
    with Store.open(world / "store") as store:
        assert load_ann(store.snapshot(info, stats=True), centred=True) is None
        assert SetIndex(store.snapshot(info, stats=True)).ann is None
