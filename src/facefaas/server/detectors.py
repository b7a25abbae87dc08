"""`DetectorCache`: loaded detectors by model, bounded, created once per model.

Keyed by ``(model id, weights sha256)``, so replacing a model's weights loads the new ones on the
next call while requests already running finish on the old detector. Creation is single-flight:
concurrent first calls for one model wait for a single load instead of loading it N times.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from facefaas.detector import Detector

__all__ = ["DetectorCache"]

Key = tuple[str, str]


class DetectorCache:
    """At most ``size`` detectors; the least recently used is dropped first."""

    def __init__(
        self,
        size: int,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        factory: Callable[[Path], Detector] | None = None,
    ) -> None:
        self.size = size
        # One name may be an alias ("cuda", "auto"); several are ONNX Runtime provider names.
        chosen: str | list[str] | None = None
        if providers:
            chosen = providers[0] if len(providers) == 1 else list(providers)
        self._factory = factory or (
            lambda path: Detector(str(path), providers=chosen, threads=threads)
        )
        self._items: OrderedDict[Key, Detector] = OrderedDict()
        self._loading: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Key, path: Path) -> Detector:
        """The detector of ``key``, loaded from the bundle at ``path`` if not cached."""
        with self._lock:
            detector = self._items.get(key)
            if detector is not None:
                self._items.move_to_end(key)
                return detector
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                detector = self._items.get(key)
            if detector is not None:
                return detector
            try:
                detector = self._factory(path)
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._items[key] = detector
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return detector

    def cached(self, key: Key) -> Detector | None:
        with self._lock:
            return self._items.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
