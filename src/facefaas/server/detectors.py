"""`DetectorCache`: loaded detectors by model, bounded, created once per model, closed when dropped.

Keyed by ``(model id, weights sha256)``, so replacing a model's weights loads the new ones on the
next call while requests already running finish on the old detector. Creation is single-flight:
concurrent first calls for one model wait for a single load instead of loading it N times.

Detectors are used through :meth:`DetectorCache.lease`: a detector evicted (least recently used
first) or dropped while requests still hold it is closed when the last of them lets go, never
under them. Every detector of the cache runs its pyramid levels and crop chunks on one shared
thread pool, so the number of threads does not grow with the number of models.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from facefaas.detector import Detector

__all__ = ["DetectorCache", "LeasedDetector"]

Key = tuple[str, str]
Factory = Callable[[Path, Executor], Detector]


class LeasedDetector:
    """A detector with leases: :meth:`unload` closes it now, or when its last lease ends.

    What :class:`DetectorCache` keeps per model, and what a Ray detector replica's model
    multiplexer keeps (:class:`facefaas.scale.loaded.LoadedModel`).
    """

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._lock = threading.Lock()
        self._leases = 0
        self._unloaded = False

    def acquire(self) -> Detector:
        with self._lock:
            self._leases += 1
        return self.detector

    def release(self) -> None:
        with self._lock:
            self._leases -= 1
            close = self._unloaded and self._leases == 0
        if close:
            self.detector.close()

    @contextmanager
    def lease(self) -> Iterator[Detector]:
        """The detector, kept open until the ``with`` block ends."""
        detector = self.acquire()
        try:
            yield detector
        finally:
            self.release()

    def unload(self) -> None:
        with self._lock:
            if self._unloaded:
                return
            self._unloaded = True
            close = self._leases == 0
        if close:
            self.detector.close()


class DetectorCache:
    """At most ``size`` detectors; the least recently used is dropped (and closed) first.

    ``threads`` sizes the shared cascade pool (default: all cores). :meth:`close` closes every
    detector and the pool.
    """

    def __init__(
        self,
        size: int,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        factory: Factory | None = None,
    ) -> None:
        self.size = size
        # One name may be an alias ("cuda", "auto"); several are ONNX Runtime provider names.
        chosen: str | list[str] | None = None
        if providers:
            chosen = providers[0] if len(providers) == 1 else list(providers)
        workers = threads or (os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="facefaas-cascade")
        self._factory: Factory = factory or (
            lambda path, pool: Detector(str(path), providers=chosen, pool=pool)
        )
        self._items: OrderedDict[Key, LeasedDetector] = OrderedDict()
        self._loading: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def lease(self, key: Key, path: Path) -> Iterator[Detector]:
        """The detector of ``key`` (loaded from the bundle at ``path`` if not cached), kept open
        until the ``with`` block ends even if it is evicted meanwhile."""
        entry = self._acquire(key, path)  # leased already
        try:
            yield entry.detector
        finally:
            entry.release()

    def _acquire(self, key: Key, path: Path) -> LeasedDetector:
        with self._lock:
            entry = self._take(key)
            if entry is not None:
                return entry
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                entry = self._take(key)
            if entry is not None:
                return entry
            try:
                detector = self._factory(path, self._pool)
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            entry = LeasedDetector(detector)
            entry.acquire()
            with self._lock:
                self._items[key] = entry
                self._loading.pop(key, None)
                evicted = self._evict(self.size)
            self._unload(evicted)
            return entry

    def _take(self, key: Key) -> LeasedDetector | None:
        """The cached entry with one more lease (the caller holds the lock)."""
        entry = self._items.get(key)
        if entry is not None:
            self._items.move_to_end(key)
            entry.acquire()  # under the cache's lock: it cannot be evicted in between
        return entry

    def _evict(self, keep: int) -> list[LeasedDetector]:
        """Drop the least recently used entries beyond ``keep`` (the caller holds the lock, and
        unloads them after letting it go: no one can lease them any more)."""
        dropped = []
        while len(self._items) > keep:
            dropped.append(self._items.popitem(last=False)[1])
        return dropped

    @staticmethod
    def _unload(entries: list[LeasedDetector]) -> None:
        for entry in entries:
            entry.unload()  # closed now, or when its last request ends

    def cached(self, key: Key) -> Detector | None:
        with self._lock:
            entry = self._items.get(key)
            return entry.detector if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def close(self) -> None:
        """Close every detector not in use (the rest close when their requests end), then the
        shared pool (waiting for work on it to finish)."""
        with self._lock:
            dropped = self._evict(0)
            self._closed = True
        self._unload(dropped)
        self._pool.shutdown(wait=True)
