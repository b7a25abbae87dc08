"""What crosses a process boundary (Ray replicas, import workers) arrives whole.

A detector replica answers with :class:`~facefaas.errors.FacefaasError` values and receives
:class:`~facefaas.request.DetectionRequest` objects that name a function of the table.
"""

from __future__ import annotations

import pickle

import pytest

from facefaas import errors, functions
from facefaas.request import DetectionRequest, OutputOptions

_ERRORS = [
    errors.ImageDecodeError("not an image"),
    errors.TooLargeError("too big", limit=3, unit="pixels"),
    errors.CostLimitError("too costly", estimate={"peak_bytes": 5}, limit=4),
    errors.OverloadedError("full", retry_after=3, retry_after_ms=2500),
    errors.CancelledError("client left", retry_after=2),
    errors.QuotaExceededError("over quota", limit=2, unit="models"),
    errors.StorageFullError("full disk", limit=10),
    errors.FetchRefusedError("private address", reason="private"),
    errors.RateLimitedError("slow down", retry_after=7),
    errors.DeadlineExceededError("late"),
]


@pytest.mark.parametrize("error", _ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_pickles_with_its_class_message_and_fields(error: errors.FacefaasError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and copy.message == error.message
    assert copy.__dict__ == error.__dict__
    assert (copy.status, copy.code) == (error.status, error.code)


@pytest.mark.parametrize("name", functions.names())
def test_a_table_function_pickles_as_the_same_entry(name: str) -> None:
    entry = functions.get_function(name)
    assert pickle.loads(pickle.dumps(entry)) is entry


def test_a_detection_request_pickles_equal() -> None:
    request = DetectionRequest(
        function=functions.get_function("redact"),
        max_faces=3,
        score_threshold=0.5,
        output=OutputOptions(format="png"),
    )
    assert pickle.loads(pickle.dumps(request)) == request
