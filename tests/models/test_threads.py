import os
import subprocess
import sys

import pytest

from audioscan.models import threads
from audioscan.models.errors import ModelError


@pytest.fixture
def pools(monkeypatch):
    """Leaves the process's thread settings as it found them."""
    import faiss
    import torch

    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.delenv("AUDIOSCAN_THREADS", raising=False)
    for name in threads._LOAD_TIME:  # restored afterwards, whatever the test sets
        monkeypatch.setenv(name, os.environ.get(name, str(threads.usable_cores())))
    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


def test_the_cgroup_quota_caps_the_cores(tmp_path):
    v2, quota, period = tmp_path / "cpu.max", tmp_path / "quota", tmp_path / "period"
    v2.write_text("max 100000\n")
    assert threads._quota(v2, (quota, period)) is None  # unlimited
    v2.write_text("150000 100000\n")
    assert threads._quota(v2, (quota, period)) == 2  # 1.5 CPUs: two threads, one of them part-time
    v2.unlink()
    quota.write_text("-1\n"), period.write_text("100000\n")
    assert threads._quota(v2, (quota, period)) is None  # cgroup v1, unlimited
    quota.write_text("50000\n")
    assert threads._quota(v2, (quota, period)) == 1
    period.unlink()
    assert threads._quota(v2, (quota, period)) is None  # no cgroup to read: the affinity mask decides


def test_the_count_comes_from_the_call_then_the_environment_then_the_cores(pools, monkeypatch):
    assert threads.count() == threads.usable_cores() <= (os.cpu_count() or 1)
    monkeypatch.setenv("AUDIOSCAN_THREADS", "3")
    assert threads.count() == 3
    threads.set_threads(1)
    assert threads.count() == 1


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_a_bad_environment_value_is_one_sentence(pools, monkeypatch, text):
    monkeypatch.setenv("AUDIOSCAN_THREADS", text)
    with pytest.raises(ModelError, match="AUDIOSCAN_THREADS=.* is not a number of threads; give a whole number"):
        threads.count()


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_a_bad_count_is_refused(pools, value):
    with pytest.raises(ModelError, match=r"^threads .* is not a number of threads") as raised:
        threads.set_threads(value)
    assert raised.value.options == ("threads",)  # the CLI spells it --threads


def test_setting_threads_reaches_the_libraries_already_loaded(pools):
    import faiss
    import torch
    from threadpoolctl import threadpool_info

    threads.set_threads(1)
    assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert os.environ["OMP_NUM_THREADS"] == "1"  # and those loaded later (or in child processes)


def _fresh(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "AUDIOSCAN_THREADS",
                                                             *threads._LOAD_TIME)}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_audioscan_makes_waiting_threads_sleep_before_openmp_loads():
    shown = "import os; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OMP_NUM_THREADS'))"
    assert _fresh(f"import audioscan; {shown}") == f"PASSIVE {threads.usable_cores()}"
    assert _fresh(f"import audioscan; {shown}", AUDIOSCAN_THREADS="1") == "PASSIVE 1"
    # What a user exported stays as it is.
    assert _fresh(f"import audioscan; {shown}", OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="3") == "ACTIVE 3"
    # FAISS's OpenMP runtime, loaded after, sizes itself by it.
    assert _fresh("import audioscan, faiss; print(faiss.omp_get_max_threads())", AUDIOSCAN_THREADS="1") == "1"



def test_faiss_on_this_thread_alone_leaves_other_threads_and_the_caller_as_they_were():
    import threading

    import faiss

    from audioscan.models.threads import faiss_on_this_thread_alone

    def in_another_thread() -> int:
        seen = []
        other = threading.Thread(target=lambda: seen.append(faiss.omp_get_max_threads()))
        other.start()
        other.join()
        return seen[0]

    before, others_before = faiss.omp_get_max_threads(), in_another_thread()
    with faiss_on_this_thread_alone():
        assert faiss.omp_get_max_threads() == 1
        assert in_another_thread() == others_before
    assert faiss.omp_get_max_threads() == before
