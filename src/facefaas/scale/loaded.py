"""`LoadedModel`: one model's detector on a detector replica, closed only once nobody uses it.

Ray Serve's model multiplexer (``@serve.multiplexed``) evicts the least recently used model of a
replica by calling its ``__del__``, possibly while requests still run on it; a
:class:`LoadedModel` then closes its detector when the last of them lets go, never under them
(the same :class:`~facefaas.server.detectors.LeasedDetector` as
:class:`~facefaas.server.detectors.DetectorCache` keeps in one process).

Models are multiplexed by :func:`model_key`, ``"<id>@<weights sha256>"``: new weights under the
same id are another key, so a replaced model is loaded afresh on its next call everywhere and
the old one ages out of each replica's cache.
"""

from __future__ import annotations

from facefaas.registry import ModelRecord
from facefaas.server.detectors import LeasedDetector

__all__ = ["LoadedModel", "model_key"]


def model_key(record: ModelRecord) -> str:
    """The multiplexed model id of ``record``'s current weights."""
    return f"{record.id}@{record.sha256}"


class LoadedModel(LeasedDetector):
    """A detector with leases (:class:`~facefaas.server.detectors.LeasedDetector`) that the
    multiplexer unloads by deleting it."""

    def __del__(self) -> None:
        # What the multiplexer calls on eviction (and the collector, later, which is a no-op).
        if hasattr(self, "_lock"):
            self.unload()
