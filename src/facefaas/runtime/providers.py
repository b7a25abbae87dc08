"""Choosing ONNX Runtime execution providers.

``"cpu"`` (the default) runs on the CPU; ``"cuda"`` requires CUDA (onnxruntime-gpu) and fails
loudly when it is not there; ``"auto"`` takes CUDA when available and the CPU otherwise. A list of
ORT provider names is passed through after the same check.
"""

from __future__ import annotations

from collections.abc import Sequence

from facefaas.errors import ProviderError

__all__ = ["PROVIDER_ALIASES", "resolve_providers"]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_ALIASES = {"cpu": [CPU], "cuda": [CUDA, CPU], "gpu": [CUDA, CPU]}


def resolve_providers(requested: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The provider list to give ONNX Runtime.

    Args:
        requested: ``None``/``"cpu"``, ``"cuda"``/``"gpu"``, ``"auto"``, or ORT provider names.
        available: what ``onnxruntime.get_available_providers()`` reports.
    Raises:
        ProviderError: a requested accelerator is not available, or the name is unknown.
    """
    if requested is None:
        return [CPU]
    if isinstance(requested, str):
        key = requested.strip().lower()
        if key == "auto":
            return [CUDA, CPU] if CUDA in available else [CPU]
        if key not in PROVIDER_ALIASES:
            names = ", ".join([*PROVIDER_ALIASES, "auto"])
            raise ProviderError(f"unknown execution provider {requested!r}; use one of {names}")
        wanted = PROVIDER_ALIASES[key]
    else:
        wanted = list(requested)
        if not wanted:
            raise ProviderError("the provider list is empty")
    missing = [p for p in wanted if p not in available]
    if missing:
        hint = (
            " (install facefaas[gpu], i.e. onnxruntime-gpu, and check the CUDA drivers)"
            if CUDA in missing
            else ""
        )
        raise ProviderError(
            f"execution provider {', '.join(missing)} is not available{hint}; "
            f"available: {', '.join(available)}"
        )
    return wanted
