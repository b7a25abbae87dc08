"""The one error hierarchy of facefaas.

Every error the library raises on purpose derives from :class:`FacefaasError`. The HTTP layer maps
each class once to a status code (the ``status`` attribute) and a problem type (``code``); the CLI
maps them to exit codes. Nothing else decides how an error is reported.

::

    FacefaasError
    ├── InputError                  (ValueError)  the caller sent something unusable      400
    │   ├── ImageDecodeError          empty, truncated or non-image bytes                400
    │   ├── UnsupportedMediaError     a content type or image format we do not take      415
    │   ├── ParameterError            a parameter out of range or of the wrong type      422
    │   │   └── CostLimitError          the estimated cost is over the per-request limit   422
    │   ├── TooLargeError             bytes, pixels or model size over a limit           413
    │   ├── RequestTimeoutError       a request body too slow to arrive                  408
    │   ├── FetchRefusedError         a URL (or its content) the fetch guard refuses     422
    │   └── IdempotencyKeyReusedError an Idempotency-Key sent again with another request 422
    ├── ModelError                  anything about a model
    │   ├── ModelNotFoundError        no model with that id                              404
    │   ├── ModelFormatError          a model file we cannot read (or refuse to read)    422
    │   ├── ModelValidationError      readable, but not an MTCNN we can run              422
    │   └── ModelConflictError        the id is taken / the change conflicts             409
    │       └── IdempotencyConflictError  the same Idempotency-Key is still in progress  409
    ├── ProviderError               an execution provider asked for is not available     500
    ├── AuthError                   missing or wrong key                                 401
    │   └── ForbiddenError            a valid key that may not do this                   403
    │       └── QuotaExceededError          over the uploader's quota of models or bytes   403
    ├── RateLimitedError            too many requests for this client                    429
    ├── DeadlineExceededError       the request's deadline passed before it finished     504
    ├── StorageFullError            a server-wide storage cap is reached                 507
    ├── ValueNotFoundError          no ephemeral value with that key (or it expired)     404
    ├── UpstreamError               a fetched URL or callback target failed              502
    │   └── UpstreamTimeoutError      it did not answer in time                          504
    ├── OverloadedError             the inference queue is full / not ready              503
    │   └── CancelledError            stopped: the client left or the server is draining 503
    ├── JobNotFoundError            no such job, a wrong token, or its results expired   404
    ├── JobRunningError             the job has not ended yet (e.g. its zip)             409
    └── ServerUnreachableError      client side: no answer from the facefaas server      (503)

``ServerUnreachableError`` is raised only by :class:`facefaas.Client` (and the ``Job`` it
returns), never answered by the service: its status is what a gateway would answer.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "CancelledError",
    "CostLimitError",
    "DeadlineExceededError",
    "FacefaasError",
    "FetchRefusedError",
    "ForbiddenError",
    "IdempotencyConflictError",
    "IdempotencyKeyReusedError",
    "ImageDecodeError",
    "InputError",
    "JobNotFoundError",
    "JobRunningError",
    "ModelConflictError",
    "ModelError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelValidationError",
    "OverloadedError",
    "ParameterError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerUnreachableError",
    "StorageFullError",
    "TooLargeError",
    "UnsupportedMediaError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "ValueNotFoundError",
]


class FacefaasError(Exception):
    """Base of every error facefaas raises on purpose.

    ``status`` is the HTTP status the service answers with; ``code`` a short stable slug used as
    the problem type and in logs and metrics.
    """

    status: int = 500
    code: str = "internal-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Ray replicas answer with them); the default pickling
        # calls ``cls(*args)``, which the subclasses' keyword-only fields would refuse.
        return (_rebuilt, (type(self), self.message, dict(self.__dict__)))


def _rebuilt(cls: type[FacefaasError], message: str, state: dict[str, Any]) -> FacefaasError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InputError(FacefaasError, ValueError):
    """The caller sent something we cannot use."""

    status = 400
    code = "bad-input"


class ImageDecodeError(InputError):
    """The bytes are empty, truncated, or not an image we can decode."""

    status = 400
    code = "undecodable-image"


class UnsupportedMediaError(InputError):
    """The content type or the image format is not one we accept."""

    status = 415
    code = "unsupported-media-type"


class ParameterError(InputError):
    """A parameter is out of range or of the wrong type."""

    status = 422
    code = "invalid-parameter"


class TooLargeError(InputError):
    """A body, an image or a model exceeds a configured limit.

    ``limit`` is the limit that was exceeded and ``unit`` what it counts ("bytes", "pixels").
    """

    status = 413
    code = "too-large"

    def __init__(self, message: str, *, limit: int, unit: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.unit = unit


class RequestTimeoutError(InputError):
    """The request's body did not arrive in time (a stalled or trickling client)."""

    status = 408
    code = "request-timeout"


class CostLimitError(ParameterError):
    """A request whose estimated cost is over the per-request limit.

    ``estimate`` is the cost estimate as a JSON-ready dict; ``limit`` and ``unit`` the limit.
    """

    status = 422
    code = "over-cost-limit"

    def __init__(
        self, message: str, *, estimate: dict[str, float | int], limit: int, unit: str = "bytes"
    ) -> None:
        super().__init__(message)
        self.estimate = estimate
        self.limit = limit
        self.unit = unit


class ModelError(FacefaasError):
    """Something is wrong with a model."""

    status = 422
    code = "model-error"


class ModelNotFoundError(ModelError):
    """No model has that id."""

    status = 404
    code = "model-not-found"


class ModelFormatError(ModelError):
    """A model file we cannot read, or refuse to read (e.g. a pickle asking to run code)."""

    status = 422
    code = "model-format"


class ModelValidationError(ModelError):
    """The file is readable but is not an MTCNN with the signature we run."""

    status = 422
    code = "model-invalid"


class ModelConflictError(ModelError):
    """The change conflicts with the registry's state (e.g. the model already exists)."""

    status = 409
    code = "conflict"


class ProviderError(FacefaasError):
    """An ONNX Runtime execution provider that was asked for is not available."""

    status = 500
    code = "provider-unavailable"


class AuthError(FacefaasError):
    """A key is missing or wrong."""

    status = 401
    code = "unauthorized"


class ForbiddenError(AuthError):
    """The key is valid but may not do this."""

    status = 403
    code = "forbidden"


class RateLimitedError(FacefaasError):
    """Too many requests from this client; ``retry_after`` is in seconds."""

    status = 429
    code = "rate-limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverloadedError(FacefaasError):
    """The server cannot take the request now; ``retry_after`` is in seconds (what the
    ``Retry-After`` header says, whole seconds, at least the server's floor) and
    ``retry_after_ms`` the expected wait in milliseconds, when known."""

    status = 503
    code = "overloaded"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, retry_after_ms: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retry_after_ms = retry_after * 1000 if retry_after_ms is None else retry_after_ms


class DeadlineExceededError(FacefaasError):
    """The request's deadline passed before its work finished; the work was stopped."""

    status = 504
    code = "deadline-exceeded"


class CancelledError(OverloadedError):
    """The work was stopped before it finished: its client went away, or the server is
    shutting down and could not finish it within its grace period."""

    code = "cancelled"


class IdempotencyKeyReusedError(InputError):
    """An ``Idempotency-Key`` already used for a different request (other files or fields)."""

    status = 422
    code = "idempotency-key-reused"


class IdempotencyConflictError(ModelConflictError):
    """A request with the same ``Idempotency-Key`` is still in progress; retry after it."""

    code = "idempotency-in-progress"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceededError(ForbiddenError):
    """The uploader already keeps as many models, or bytes of models, as it may.

    ``limit`` is the quota and ``unit`` what it counts (``"models"``, ``"bytes"``).
    """

    status = 403
    code = "quota-exceeded"

    def __init__(self, message: str, *, limit: int, unit: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.unit = unit


class StorageFullError(FacefaasError):
    """A server-wide storage cap is reached: all uploaded models together are at ``limit``
    bytes, or the ephemeral storage holds ``limit`` values. Nothing new fits until some are
    deleted (or expire). Not the caller's fault, so not a 4xx."""

    status = 507
    code = "storage-full"

    def __init__(self, message: str, *, limit: int, unit: str = "bytes") -> None:
        super().__init__(message)
        self.limit = limit
        self.unit = unit


class FetchRefusedError(InputError):
    """The fetch guard refuses a URL: its scheme, its credentials, its address (loopback,
    private, link-local, metadata, ...: :mod:`facefaas.fetch`), or content that is not an image.

    ``reason`` is a short slug (``scheme``, ``credentials``, ``invalid-url``, ``invalid-host``,
    ``address``, ``not-an-image``, ``callback``).
    """

    status = 422
    code = "fetch-refused"

    def __init__(self, message: str, *, reason: str = "refused") -> None:
        super().__init__(message)
        self.reason = reason


class UpstreamError(FacefaasError):
    """A server we fetched from or called back failed: no address, no connection, a broken or
    non-success answer, too many redirects. ``reason`` is a short slug (``dns``, ``connect``,
    ``protocol``, ``status``, ``too-many-redirects``, ``timeout``); ``upstream_status`` the
    status it answered, when it answered."""

    status = 502
    code = "upstream-failed"

    def __init__(
        self, message: str, *, reason: str = "failed", upstream_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.upstream_status = upstream_status


class UpstreamTimeoutError(UpstreamError):
    """A server we fetched from or called back did not connect, answer or finish in time."""

    status = 504
    code = "upstream-timeout"


class ValueNotFoundError(FacefaasError):
    """No ephemeral value has that key: it never existed, was deleted or expired."""

    status = 404
    code = "value-not-found"


class JobNotFoundError(FacefaasError):
    """No job has that id, its token is not the one presented, or its results expired."""

    status = 404
    code = "job-not-found"


class JobRunningError(FacefaasError):
    """The job has not ended yet, and what was asked for needs it ended (its zip)."""

    status = 409
    code = "job-running"


class ServerUnreachableError(FacefaasError):
    """The client got no answer from the facefaas server at ``url``: the connection was refused
    or broken, the name did not resolve, or the server did not answer in time.

    Raised by :class:`facefaas.Client` only, never answered by the service. ``reason`` is a
    short slug (``connect``, ``timeout``, ``protocol``, ``url``).
    """

    status = 503
    code = "server-unreachable"

    def __init__(self, message: str, *, url: str = "", reason: str = "connect") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason
