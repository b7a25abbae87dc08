"""`LoadedModel`: one model's detector on a detector replica, closed only once nobody uses it.

Ray Serve's model multiplexer (``@serve.multiplexed``) evicts the least recently used model of a
replica by calling its ``__del__``, possibly while requests still run on it; a
:class:`LoadedModel` then closes its detector when the last of them lets go, never under them
(as :class:`~facefaas.server.detectors.DetectorCache` does in one process).

Models are multiplexed by :func:`model_key`, ``"<id>@<weights sha256>"``: new weights under the
same id are another key, so a replaced model is loaded afresh on its next call everywhere and
the old one ages out of each replica's cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from facefaas.detector import Detector
from facefaas.registry import ModelRecord

__all__ = ["LoadedModel", "model_key"]


def model_key(record: ModelRecord) -> str:
    """The multiplexed model id of ``record``'s current weights."""
    return f"{record.id}@{record.sha256}"


class LoadedModel:
    """A detector with leases: :meth:`unload` closes it now or when its last lease ends."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._lock = threading.Lock()
        self._leases = 0
        self._unloaded = False

    @contextmanager
    def lease(self) -> Iterator[Detector]:
        """The detector, kept open until the ``with`` block ends."""
        with self._lock:
            self._leases += 1
        try:
            yield self.detector
        finally:
            with self._lock:
                self._leases -= 1
                close = self._unloaded and self._leases == 0
            if close:
                self.detector.close()

    def unload(self) -> None:
        with self._lock:
            if self._unloaded:
                return
            self._unloaded = True
            close = self._leases == 0
        if close:
            self.detector.close()

    def __del__(self) -> None:
        # What the multiplexer calls on eviction (and the collector, later, which is a no-op).
        if hasattr(self, "_lock"):
            self.unload()
