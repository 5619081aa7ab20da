"""Issue 11, dashboard half: one computation per state, bounded cache, request size, distrusted stores."""
import threading
import time

import numpy as np
from flask import Flask

from dashboard import memo, state

MB = 2**20


def _app(config: dict) -> Flask:
    server = Flask(__name__)
    state.init_cache(server, config)
    return server


def test_concurrent_identical_requests_compute_once():
    """Eight threads ask for the same state at once: the engine runs once, all get its result."""
    server = _app(memo.cache_config({}))
    runs, results = [], []
    barrier = threading.Barrier(8)

    def compute():
        runs.append(1)
        time.sleep(0.2)  # long enough that every other thread arrives while it runs
        return {"value": 42}

    def request():
        with server.app_context():
            barrier.wait()
            results.append(state.memoise("test-once", ["same", 1], compute))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and results == [{"value": 42}] * 8
    with server.app_context():  # and a later request is a cache hit
        assert state.memoise("test-once", ["same", 1], lambda: runs.append(1)) == {"value": 42}
    assert len(runs) == 1


def test_state_cache_is_bounded_in_bytes():
    """With PMDASH_CACHE_MAX_MB=4, forty distinct ½ MB results leave at most 4 MB cached."""
    server = _app(memo.cache_config({"PMDASH_CACHE_MAX_MB": "4"}))
    with server.app_context():
        for k in range(40):
            state.memoise("blob", [k], lambda: np.zeros(MB // 16))
        backend = state._cache.cache
        assert isinstance(backend, memo.ByteBoundedCache)
        assert 3 * MB <= backend.total_bytes <= 4 * MB
        # the most recent entry is kept, the first ones are gone
        calls = []
        state.memoise("blob", [39], lambda: calls.append(1))
        assert not calls
