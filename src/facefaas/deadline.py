"""`Deadline`: when a piece of work must stop, checked by the work itself between its steps.

The cascade calls :meth:`Deadline.check` between its stages, before every P-Net band and every
R-Net/O-Net chunk, so a request stops within one small step (tens of milliseconds) of its
deadline passing or of :meth:`Deadline.cancel` (its client went away, the server is shutting
down). Checking is a clock read and two attribute reads; a deadline is shared by the threads that
work for one request.
"""

from __future__ import annotations

import time

from facefaas.errors import CancelledError, DeadlineExceededError

__all__ = ["Deadline"]


class Deadline:
    """Stop work ``seconds`` from now (``None``: no time limit, only :meth:`cancel`)."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        self._at = None if seconds is None else time.monotonic() + seconds
        self._cancelled: str | None = None
        self._retry_after = 1.0

    @property
    def remaining(self) -> float | None:
        """Seconds left (``None``: no time limit); negative once passed."""
        return None if self._at is None else self._at - time.monotonic()

    @property
    def cancelled(self) -> bool:
        return self._cancelled is not None

    def cancel(self, reason: str, *, retry_after: float = 1.0) -> None:
        """Make the next :meth:`check` raise :class:`CancelledError` with ``reason``."""
        self._retry_after = retry_after
        self._cancelled = reason

    def check(self) -> None:
        """Raise if the work must stop.

        Raises:
            CancelledError: :meth:`cancel` was called (503).
            DeadlineExceededError: the deadline passed (504).
        """
        if self._cancelled is not None:
            raise CancelledError(self._cancelled, retry_after=self._retry_after)
        if self._at is not None and time.monotonic() > self._at:
            raise DeadlineExceededError(
                f"the request's deadline of {self.seconds:g} s passed before it finished"
            )
