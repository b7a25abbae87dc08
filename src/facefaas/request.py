"""`DetectionRequest`: what to do with one image, built once at each edge and passed as it is.

An edge (the HTTP routes, the seed's routes, the CLI, the client) turns what it was given into
one typed request: the :class:`~facefaas.functions.Function` to run, the
:class:`~facefaas.params.DetectionParams`, which faces to keep, and the :class:`OutputOptions` of
the picture or chips. The library, the service and the runner read it and never re-parse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from facefaas.errors import ParameterError
from facefaas.params import DetectionParams

if TYPE_CHECKING:
    from facefaas.functions import Function

__all__ = ["DEFAULT_QUALITY", "DetectionRequest", "ImageFormat", "OutputOptions"]

ImageFormat = Literal["jpeg", "png"]
DEFAULT_QUALITY = 90


@dataclass(frozen=True)
class OutputOptions:
    """How a function's picture or chips are drawn and encoded; each function reads the fields
    its table entry lists (:attr:`facefaas.functions.Function.options`).

    Attributes:
        format: ``"jpeg"`` or ``"png"`` (a function with a fixed encoding ignores it).
        quality: JPEG quality, 1..100.
        thickness: annotate: box outline width, px (1..64).
        landmarks, scores: annotate: draw the five points, write each score.
        strength: blur/pixelate: how strongly, ``(0, 10]``.
        margin: blur/pixelate/redact/crops: grow each box by this fraction per side, 0..1.
        color: annotate's outline or redact's fill, RGB; ``None``: the function's default.
        size, align: crops: square chips of ``size`` px, rotated so the eyes are level.
        zip: crops: one zip of encoded chips instead of JSON.
    """

    format: ImageFormat = "jpeg"
    quality: int = DEFAULT_QUALITY
    thickness: int = 1
    landmarks: bool = False
    scores: bool = False
    strength: float = 1.0
    margin: float = 0.0
    color: tuple[int, int, int] | None = None
    size: int | None = None
    align: bool = False
    zip: bool = False

    def __post_init__(self) -> None:
        if self.format not in ("jpeg", "png"):
            raise ParameterError(f"format must be 'jpeg' or 'png', got {self.format!r}")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int):
            raise ParameterError(f"quality must be an integer, got {self.quality!r}")
        if not 1 <= self.quality <= 100:
            raise ParameterError(f"quality must be in [1, 100], got {self.quality}")


@dataclass(frozen=True)
class DetectionRequest:
    """One image's work: detect with ``params`` (of the model's family: :class:`DetectionParams`
    for MTCNN), keep the faces the filter allows, then run
    ``function`` with ``output`` options.

    ``max_faces`` keeps the largest N faces (``None``: all); ``score_threshold`` drops faces
    scoring below it (0..1). ``fit``: when the image's estimated cost is over the service's
    per-request limit, scale it down until it fits instead of refusing it (faces are still
    given in the original image's coordinates).
    """

    function: Function
    params: Any = field(default_factory=DetectionParams)
    max_faces: int | None = None
    score_threshold: float = 0.0
    output: OutputOptions = field(default_factory=OutputOptions)
    fit: bool = False

    def used_parameters(self) -> dict[str, Any]:
        """The detection parameters and filter as they were applied (for JSON answers)."""
        return {
            **self.params.to_dict(),
            "max_faces": self.max_faces,
            "score_threshold": self.score_threshold,
        }
