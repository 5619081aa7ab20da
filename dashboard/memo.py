"""The results cache: bounded in bytes, shared through Redis when configured, computed once per key.

* :class:`ByteBoundedCache` — the in-process default: a flask-caching backend whose bound is the
  total size of its entries in bytes (not their number: one stress cube can weigh 400 MB, another
  result 40 kB), least recently used evicted first, an entry larger than ``max_entry_bytes`` not
  kept at all.  Sizes are the pickled size (numpy buffers counted without copying them).
* Redis via flask-caching's ``RedisCache`` when ``PMDASH_REDIS_URL`` is set (several gunicorn
  workers or servers share one cache); a ``FileSystemCache`` under ``PMDASH_CACHE_DIR`` otherwise
  if that is set (:func:`cache_config`).
* :class:`SingleFlight` / :func:`single_flight` — concurrent calls for the same key wait for the
  one computation already running instead of starting their own (per process, thread-safe);
  :func:`memoised` combines it with a cache.

Environment: ``PMDASH_REDIS_URL`` (``redis://host:6379/0``), ``PMDASH_CACHE_DIR``,
``PMDASH_CACHE_MAX_MB`` (in-process bound per worker, default 256: what an edit keeps — revaluation and
prepared account model, ~6 MB for a 200-position book — for most of 50 users; the load test's p95
is 0.21–0.25 s at 512, 0.23–0.27 s at 256 and 0.84 s at 128).
"""
from __future__ import annotations

import functools
import os
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from flask_caching.backends.base import BaseCache

DEFAULT_MAX_BYTES = 256 * 2**20
DEFAULT_TIMEOUT = 3600


def size_of(value: Any) -> int:
    """Bytes ``value`` takes pickled; out-of-band buffers (numpy arrays) are counted, not copied."""
    head, buffers = _measure(value)
    return head + sum(buffers.values())


def _measure(value: Any) -> tuple[int, dict[tuple[int, int], int]]:
    """(bytes of ``value`` pickled without its out-of-band buffers, {buffer key: bytes}); a
    buffer's key is its memory address and length, so that arrays several values share (an
    analysis and the revaluation it was built from hold the same stress cube) are recognised."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    found: dict[tuple[int, int], int] = {}
    for b in buffers:
        raw = b.raw()
        found[(np.frombuffer(raw, dtype=np.uint8).ctypes.data if raw.nbytes else 0, raw.nbytes)] = raw.nbytes
    return len(head), found


class ByteBoundedCache(BaseCache):
    """In-process LRU cache bounded by the total size of its entries (bytes).

    ``max_bytes``: bound on the sum of :func:`size_of` over the entries, an array that several
    entries hold counted once (the memory they take together; its bytes are freed with the last
    entry holding it); ``max_entry_bytes`` (default a quarter of it): larger values are not cached
    (``set`` returns False), so one huge result cannot flush everything else.  Entries are kept as
    the objects themselves (no copy on ``get``); ``default_timeout`` seconds, 0 = never expire.
    Safe to use from many threads.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entry_bytes: int | None = None,
                 default_timeout: int = DEFAULT_TIMEOUT):
        super().__init__(default_timeout=default_timeout)
        self.max_bytes = int(max_bytes)
        self.max_entry_bytes = int(max_entry_bytes if max_entry_bytes is not None else max_bytes // 4)
        # key -> value, own bytes (pickled head), keys of its buffers, expires
        self._entries: OrderedDict[str, tuple[Any, int, tuple, float]] = OrderedDict()
        self._buffers: dict[tuple[int, int], list[int]] = {}  # buffer key -> [entries holding it, bytes]
        self._bytes = 0
        self._lock = threading.RLock()

    @classmethod
    def factory(cls, app, config, args, kwargs):
        """flask-caching entry point: ``CACHE_TYPE = "dashboard.memo.ByteBoundedCache"`` with
        ``CACHE_MAX_BYTES`` (and optionally ``CACHE_MAX_ENTRY_BYTES``)."""
        kwargs.pop("ignore_delete_many_errors", None)  # every delete here succeeds or reports False
        kwargs.update(max_bytes=config.get("CACHE_MAX_BYTES", DEFAULT_MAX_BYTES),
                      max_entry_bytes=config.get("CACHE_MAX_ENTRY_BYTES"))
        return cls(*args, **kwargs)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def _expiry(self, timeout) -> float:
        timeout = self._normalize_timeout(timeout)
        return time.monotonic() + timeout if timeout > 0 else float("inf")

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= entry[1]
        for b in entry[2]:
            held = self._buffers[b]
            held[0] -= 1
            if held[0] == 0:
                self._bytes -= held[1]
                del self._buffers[b]
        return True

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[3] <= time.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        head, buffers = _measure(value)
        with self._lock:
            self._drop(key)
            if head + sum(buffers.values()) > self.max_entry_bytes:
                return False
            self._entries[key] = (value, head, tuple(buffers), self._expiry(timeout))
            self._bytes += head
            for b, nbytes in buffers.items():
                held = self._buffers.setdefault(b, [0, nbytes])
                if held[0] == 0:
                    self._bytes += nbytes
                held[0] += 1
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))  # least recently used first
            return True

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        with self._lock:
            return False if self.has(key) else self.set(key, value, timeout)

    def has(self, key: str) -> bool:
        with self._lock:
            return self.get(key) is not None

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._drop(key)

    def clear(self) -> bool:
        with self._lock:
            self._entries.clear()
            self._buffers.clear()
            self._bytes = 0
        return True


def cache_config(environ=None) -> dict:
    """flask-caching config from the environment: Redis if ``PMDASH_REDIS_URL``, else a
    ``FileSystemCache`` if ``PMDASH_CACHE_DIR``, else the in-process :class:`ByteBoundedCache`
    of ``PMDASH_CACHE_MAX_MB`` MB."""
    env = os.environ if environ is None else environ
    if url := env.get("PMDASH_REDIS_URL", "").strip():
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "pmdash:",
                "CACHE_DEFAULT_TIMEOUT": DEFAULT_TIMEOUT}
    if cache_dir := env.get("PMDASH_CACHE_DIR", "").strip():
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": cache_dir, "CACHE_THRESHOLD": 200,
                "CACHE_DEFAULT_TIMEOUT": DEFAULT_TIMEOUT}
    max_mb = float(env.get("PMDASH_CACHE_MAX_MB", DEFAULT_MAX_BYTES / 2**20))
    return {"CACHE_TYPE": "dashboard.memo.ByteBoundedCache", "CACHE_MAX_BYTES": int(max_mb * 2**20),
            "CACHE_DEFAULT_TIMEOUT": DEFAULT_TIMEOUT}


class _Call:
    __slots__ = ("done", "value", "error")

    def __init__(self):
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """At most one running computation per key: the first caller computes, callers arriving
    meanwhile wait and get its result (or its exception).  Per process; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: dict[Any, _Call] = {}

    def do(self, key, compute: Callable[[], Any]) -> Any:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
        assert call is not None
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.value
        try:
            call.value = compute()
            return call.value
        except BaseException as e:
            call.error = e
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._calls)


def single_flight(key: Callable[..., Any]):
    """Decorator: concurrent calls whose ``key(*args, **kwargs)`` is equal share one execution."""
    flight = SingleFlight()

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return flight.do(key(*args, **kwargs), lambda: fn(*args, **kwargs))

        wrapper.flight = flight  # type: ignore[attr-defined]
        return wrapper

    return wrap


def memoised(cache, key: str, compute: Callable[[], Any], flight: SingleFlight) -> Any:
    """``cache[key]``, or ``compute()`` run once however many threads ask at the same time, then
    stored (a None result is returned but not cached)."""
    result = cache.get(key)
    if result is not None:
        return result

    def once():
        # A caller that missed just as the previous computation finished finds it cached here.
        found = cache.get(key)
        if found is not None:
            return found
        value = compute()
        if value is not None:
            cache.set(key, value)
        return value

    return flight.do(key, once)
