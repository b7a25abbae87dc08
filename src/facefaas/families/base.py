"""`Family`: what turns an image into faces with one kind of network.

A family is one entry of :data:`facefaas.families.FAMILIES` with its own module: its parameters
(a frozen dataclass validated on construction), how a model of it is stored (its network files),
how its files are recognised and checked on upload, what a detection will cost, and how to load
a model into a :class:`Runner`. Everything else in facefaas (the :class:`~facefaas.Detector`,
the service, the CLI, the evaluation, the web page) works on any family and on the one
:class:`~facefaas.faces.Faces` result: boxes, scores and five landmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facefaas.cost import Cost

__all__ = ["Check", "Family", "Found", "Runner"]

F32 = npt.NDArray[np.float32]
Check = Callable[[], None]


@dataclass(frozen=True)
class Found:
    """Raw detections in image pixels: boxes ``(n, 4)`` x1, y1, x2, y2, scores ``(n,)``,
    landmarks ``(n, 5, 2)`` (left eye, right eye, nose, mouth left, mouth right)."""

    boxes: F32
    scores: F32
    landmarks: F32


class Runner(Protocol):
    """A loaded model of a family: sessions ready to run, safe to call from many threads."""

    provider: str
    """The ONNX Runtime execution provider in use."""

    def detect(self, rgb: npt.NDArray[np.uint8], params: Any, check: Check) -> Found:
        """Faces in an ``(H, W, 3)`` uint8 RGB image; ``check`` is called between steps and
        may raise to stop the work."""
        ...

    def close(self) -> None:
        """Stop threads this runner started and free its sessions."""
        ...


@dataclass(frozen=True)
class Family:
    """One detector family (module docstring).

    Attributes:
        name: its id (``"mtcnn"``, ``"centerface"``), in manifests and ``/api/models``.
        title: for people (``"MTCNN"``).
        summary: one line.
        bundle_format: the ``format`` of its ``manifest.json``.
        network_files: ``{network name: file name}`` of a stored model.
        optional_networks: those of ``network_files`` a model may lack (MTCNN's LNet).
        parameter_names: the detection parameters it takes (HTTP, CLI, config).
        params_type: the frozen dataclass of those parameters (its defaults are the family's),
            with ``from_mapping(values, base)`` (unknown keys are an error) and ``to_dict()``.
        load: a :class:`Runner` from ``{network: ONNX bytes}``, providers, threads, a pool.
        estimate: the :class:`~facefaas.cost.Cost` of an image's detection.
        input_convention: how an image is fed to the network (written into manifests).
    """

    name: str
    title: str
    summary: str
    bundle_format: str
    network_files: Mapping[str, str]
    parameter_names: tuple[str, ...]
    params_type: type
    load: Callable[[Mapping[str, bytes], Any, int | None, Executor | None], Runner]
    estimate: Callable[[int, int, Any], Cost]
    input_convention: Mapping[str, Any]
    optional_networks: tuple[str, ...] = ()

    @property
    def required_networks(self) -> tuple[str, ...]:
        return tuple(n for n in self.network_files if n not in self.optional_networks)

    def default_params(self) -> Any:
        return self.params_type()

    def params(self, values: Mapping[str, Any] | None = None, base: Any = None) -> Any:
        """This family's parameters: ``values`` over ``base`` (default: the family's)."""
        base = base if base is not None else self.params_type()
        return self.params_type.from_mapping(values or {}, base)  # type: ignore[attr-defined]

    def describe(self) -> dict[str, Any]:
        """The family as ``/api/info`` shows it."""
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "parameters": list(self.parameter_names),
            "defaults": self.default_params().to_dict(),
        }
