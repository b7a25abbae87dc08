"""`RayInference`: the service's :class:`~facefaas.server.inference.Inference` on Ray replicas.

The ingress (the unchanged FastAPI app) has checked keys, read the body, built the typed request
and planned its cost; this sends the planned work to the detector deployment through its
DeploymentHandle with ``multiplexed_model_id`` set to the model's key, so Serve's router prefers
the replicas that already hold the model. What comes back is the plain service's
:class:`~facefaas.server.runner.RunOutput`, or the :class:`~facefaas.errors.FacefaasError` the
replica answered with, raised here so it gets its own status.

A replica that dies under a request (a node lost, a replica killed) leaves that request without
an answer, never with a wrong one; detection has no side effects, so it is sent again, to
another replica, while its deadline allows (``_ATTEMPTS`` times at most). If no replica can take
it, the answer is a 503 with ``Retry-After``: :class:`~facefaas.errors.OverloadedError`. The
request's deadline is the replica's deadline too; if the client leaves (the deadline is
cancelled), the replica's work is cancelled with it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar, cast

from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RequestCancelledError,
)
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from facefaas.deadline import Deadline
from facefaas.errors import FacefaasError, OverloadedError
from facefaas.registry import ModelRecord
from facefaas.request import DetectionRequest
from facefaas.scale.loaded import model_key
from facefaas.server.runner import RunOutput

__all__ = ["RayInference"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_ATTEMPTS = 3  # a request is sent at most this many times when replicas die under it
_POLL_SECONDS = 0.1  # how often a waiting request looks at its deadline (client gone, draining)
_GONE = (RayActorError, ReplicaUnavailableError, RequestCancelledError)


class RayInference:
    """Runs planned images on the detector deployment behind ``handle``."""

    def __init__(self, handle: DeploymentHandle[Any], *, retry_after: float = 1.0) -> None:
        self.handle = handle
        self.retry_after = retry_after

    def refuse_if_full(self) -> None:
        """Nothing to refuse here: the handle's queue bound (``ray_max_queued_requests``)
        refuses with a 503 when the replicas are full."""

    async def run(
        self,
        record: ModelRecord,
        data: bytes,
        request: DetectionRequest,
        *,
        scale: float,
        cost: int,
        deadline: Deadline,
    ) -> RunOutput:
        result = await self._call("run", record, deadline, data, request, scale, cost)
        return cast(RunOutput, _raised(result))

    async def run_batch(
        self,
        record: ModelRecord,
        images: list[tuple[bytes, float]],
        request: DetectionRequest,
        *,
        cost: int,
        deadline: Deadline,
    ) -> list[RunOutput | FacefaasError]:
        result = await self._call("run_batch", record, deadline, images, request, cost)
        return cast(list[RunOutput | FacefaasError], _raised(result))

    async def load(self, record: ModelRecord) -> str:
        result = await self._call("load", record, Deadline(None))
        return cast(str, _raised(result))

    async def _call(self, method: str, record: ModelRecord, deadline: Deadline, *args: Any) -> Any:
        """``method(record, *args, seconds left)`` on a replica holding the model if there is
        one; sent again if the replica dies under it."""
        handle = self.handle.options(multiplexed_model_id=model_key(record))
        for attempt in range(1, _ATTEMPTS + 1):
            deadline.check()
            # The deadline travels as the seconds left; load has none (None: no limit).
            extra = () if method == "load" else (deadline.remaining,)
            response = getattr(handle, method).remote(record, *args, *extra)
            try:
                return await _answer(response, deadline)
            except BackPressureError:
                raise OverloadedError(
                    "every detector replica is busy and their queue is full; retry shortly",
                    retry_after=self.retry_after,
                ) from None
            except DeploymentUnavailableError:
                raise OverloadedError(
                    "the detector deployment is not available", retry_after=self.retry_after
                ) from None
            except _GONE as exc:
                if deadline.cancelled:
                    deadline.check()
                log.warning(
                    "a detector replica went away under a request (attempt %d of %d): %s",
                    attempt, _ATTEMPTS, type(exc).__name__,
                )  # fmt: skip
        raise OverloadedError(
            f"the detector replicas went away {_ATTEMPTS} times under this request; retry",
            retry_after=self.retry_after,
        )


async def _answer(response: DeploymentResponse[Any], deadline: Deadline) -> Any:
    """The response's result; cancels it (and raises the deadline's error) if the deadline
    is cancelled or passes first."""

    async def result() -> Any:
        return await response

    task = asyncio.ensure_future(result())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_POLL_SECONDS)
            if done:
                return task.result()
            deadline.check()
    except BaseException:
        if not task.done():
            response.cancel()  # type: ignore[no-untyped-call]
            task.cancel()
        raise


def _raised(result: T | FacefaasError) -> T:
    if isinstance(result, FacefaasError):
        raise result
    return result
