"""`UsageBuffer`: per-model usage counted in memory and written to the registry in batches.

Writing one row update per request would serialise every request on the database; instead each
worker sums its counts and the service flushes them every few seconds (and before answering a
request that shows usage). A kill loses at most those few seconds of counts, never a model.
The sums are added in the database (``col = col + n``), so every process's counts add up there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["UsageBuffer", "UsageCounts"]


@dataclass
class UsageCounts:
    """Counts of one model since the last flush; ``latency_ms`` sums successful calls."""

    calls: int = 0
    faces: int = 0
    errors: int = 0
    latency_ms: float = 0.0


class UsageBuffer:
    """Thread-safe counters keyed by model id."""

    def __init__(self) -> None:
        self._counts: dict[str, UsageCounts] = {}
        self._lock = threading.Lock()

    def add(self, model_id: str, *, faces: int, latency_ms: float, error: bool = False) -> None:
        """One call: a success (``calls += 1``) or a failure (``errors += 1``)."""
        with self._lock:
            counts = self._counts.setdefault(model_id, UsageCounts())
            if error:
                counts.errors += 1
            else:
                counts.calls += 1
                counts.faces += faces
                counts.latency_ms += latency_ms

    def drain(self) -> dict[str, UsageCounts]:
        """Everything counted so far, leaving the buffer empty."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts
