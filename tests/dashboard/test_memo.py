"""dashboard/memo.py: the byte-bounded cache, single flight, and the cache configuration."""
import threading
import time

import numpy as np
import pytest
from flask import Flask
from flask_caching import Cache

from dashboard.memo import ByteBoundedCache, SingleFlight, cache_config, memoised, single_flight, size_of

MB = 2**20


def blob(mb: float) -> np.ndarray:
    return np.zeros(int(mb * MB) // 8)


def test_size_counts_array_bytes():
    """An 8 MB float array weighs 8 MB plus a pickle header of well under a kilobyte."""
    assert 8 * MB <= size_of(blob(8)) < 8 * MB + 1024


def test_byte_bound_evicts_least_recently_used():
    cache = ByteBoundedCache(max_bytes=10 * MB, max_entry_bytes=5 * MB)
    for key in "abc":
        assert cache.set(key, blob(3))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.set("d", blob(3))             # 12 MB > 10 MB: b, the least recently used, goes
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in "acd")
    assert 9 * MB < cache.total_bytes <= 10 * MB and len(cache) == 3


def test_many_small_entries_fit_where_a_count_bound_would_not():
    cache = ByteBoundedCache(max_bytes=1 * MB)
    for k in range(500):
        cache.set(str(k), np.arange(10.0))
    assert len(cache) == 500


def test_oversize_entry_not_cached_and_evicts_nothing():
    cache = ByteBoundedCache(max_bytes=10 * MB, max_entry_bytes=4 * MB)
    cache.set("small", blob(1))
    assert cache.set("huge", blob(5)) is False
    assert cache.get("huge") is None and cache.get("small") is not None
    assert cache.total_bytes < 2 * MB


def test_replacing_a_key_keeps_the_byte_count_right():
    cache = ByteBoundedCache(max_bytes=16 * MB)
    cache.set("a", blob(3))
    cache.set("a", blob(1))
    assert MB <= cache.total_bytes < 1.1 * MB
    cache.delete("a")
    assert cache.total_bytes == 0 and not cache.has("a")


def test_an_array_two_entries_share_is_counted_once_and_freed_with_the_last():
    """An analysis and the revaluation it was built from hold the same stress cube: the memory they
    take together is one cube, and it is freed only when neither is cached any more."""
    cache = ByteBoundedCache(max_bytes=16 * MB, max_entry_bytes=8 * MB)
    cube = blob(4)
    cache.set("revaluation", {"cube": cube})
    cache.set("analysis", {"cube": cube, "total": cube.sum(axis=0)})
    assert 4 * MB < cache.total_bytes < 4.1 * MB
    cache.delete("revaluation")
    assert 4 * MB < cache.total_bytes < 4.1 * MB  # the analysis still holds the cube
    cache.delete("analysis")
    assert cache.total_bytes == 0
    cache.set("a", cube[: len(cube) // 2])  # a view of half the buffer is its own 2 MB
    cache.set("b", cube)
    assert 6 * MB <= cache.total_bytes < 6.1 * MB


def test_timeout_expires_entries():
    cache = ByteBoundedCache(max_bytes=MB, default_timeout=1)
    cache.set("a", 1)
    cache.set("b", 2, timeout=0)  # never expires
    assert cache.get("a") == 1
    cache._entries["a"] = (*cache._entries["a"][:3], time.monotonic() - 1)  # as if a second passed
    assert cache.get("a") is None and cache.get("b") == 2


def test_flask_caching_backend_by_import_path():
    app = Flask(__name__)
    cache = Cache(app, config=cache_config({"PMDASH_CACHE_MAX_MB": "3"}))
    with app.app_context():
        cache.set("k", {"x": 1})
        assert cache.get("k") == {"x": 1}
        backend = cache.cache
        assert isinstance(backend, ByteBoundedCache) and backend.max_bytes == 3 * MB


def test_cache_config_choices():
    redis = cache_config({"PMDASH_REDIS_URL": "redis://cache:6379/0", "PMDASH_CACHE_DIR": "/tmp/x"})
    assert redis["CACHE_TYPE"] == "RedisCache" and redis["CACHE_REDIS_URL"] == "redis://cache:6379/0"
    files = cache_config({"PMDASH_CACHE_DIR": "/tmp/x"})
    assert files["CACHE_TYPE"] == "FileSystemCache" and files["CACHE_DIR"] == "/tmp/x"
    default = cache_config({})
    assert default["CACHE_TYPE"] == "dashboard.memo.ByteBoundedCache" and default["CACHE_MAX_BYTES"] == 256 * MB


def _race(n_threads, target):
    start = threading.Barrier(n_threads)
    results, errors = [], []

    def run():
        start.wait()
        try:
            results.append(target())
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results, errors


def test_threads_racing_on_one_key_compute_once():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return object()

    cache, flight = ByteBoundedCache(max_bytes=MB), SingleFlight()
    results, errors = _race(12, lambda: memoised(cache, "state", slow, flight))
    assert not errors and len(calls) == 1 and len(results) == 12
    assert all(r is results[0] for r in results)
    assert flight.in_flight() == 0
    assert memoised(cache, "state", slow, flight) is results[0] and len(calls) == 1  # now from the cache


def test_different_keys_run_in_parallel():
    flight = SingleFlight()
    both_in = threading.Barrier(2, timeout=5)

    def compute():
        both_in.wait()  # would time out if the second key waited for the first
        return 1

    results = []
    threads = [threading.Thread(target=lambda k=k: results.append(flight.do(k, compute))) for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [1, 1]


def test_error_reaches_every_waiter_and_is_not_cached():
    calls = []

    @single_flight(key=lambda x: x)
    def failing(x):
        calls.append(x)
        time.sleep(0.2)
        raise ValueError("bad state")

    results, errors = _race(6, lambda: failing("k"))
    assert not results and len(errors) == 6 and all(str(e) == "bad state" for e in errors)
    assert len(calls) == 1
    with pytest.raises(ValueError):
        failing("k")  # the next call computes again
    assert len(calls) == 2
