"""Choosing ONNX Runtime execution providers."""

from __future__ import annotations

import pytest

from facefaas.errors import ProviderError
from facefaas.runtime.providers import resolve_providers

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        (None, [CPU], [CPU]),
        ("cpu", [CUDA, CPU], [CPU]),
        ("CUDA", [CUDA, CPU], [CUDA, CPU]),
        ("gpu", [CUDA, CPU], [CUDA, CPU]),
        ("auto", [CUDA, CPU], [CUDA, CPU]),
        ("auto", [CPU], [CPU]),
        ([CPU], [CPU], [CPU]),
    ],
)
def test_requests_resolve_to_provider_lists(requested, available, expected) -> None:  # type: ignore[no-untyped-def]
    assert resolve_providers(requested, available) == expected


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ("cuda", "CUDAExecutionProvider is not available"),
        ("tpu", "unknown execution provider"),
        ([CUDA], "not available"),
        ([], "empty"),
    ],
)
def test_unavailable_or_unknown_providers_are_refused(requested, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProviderError, match=message):
        resolve_providers(requested, [CPU])
