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
    │   ├── TooLargeError             bytes, pixels or model size over a limit           413
    │   └── RequestTimeoutError       a request body too slow to arrive                  408
    ├── ModelError                  anything about a model
    │   ├── ModelNotFoundError        no model with that id                              404
    │   ├── ModelFormatError          a model file we cannot read (or refuse to read)    422
    │   ├── ModelValidationError      readable, but not an MTCNN we can run              422
    │   └── ModelConflictError        the id is taken / the change conflicts             409
    ├── ProviderError               an execution provider asked for is not available     500
    ├── AuthError                   missing or wrong key                                 401
    │   └── ForbiddenError            a valid key that may not do this                   403
    ├── RateLimitedError            too many requests for this client                    429
    └── OverloadedError             the inference queue is full / not ready              503
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "FacefaasError",
    "ForbiddenError",
    "ImageDecodeError",
    "InputError",
    "ModelConflictError",
    "ModelError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelValidationError",
    "OverloadedError",
    "ParameterError",
    "ProviderError",
    "RateLimitedError",
    "RequestTimeoutError",
    "TooLargeError",
    "UnsupportedMediaError",
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
    """The server cannot take the request now; ``retry_after`` is in seconds."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
