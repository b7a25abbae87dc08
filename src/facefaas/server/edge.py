"""From HTTP parameters to the typed :class:`~facefaas.request.DetectionRequest`, once.

A run's parameters come from three places, each overriding the one before: the model's
recommended parameters (its manifest), its run defaults set by its admin (``config``, the seed's
per-function state), and the request's own (query string, multipart fields or JSON, validated by
:class:`~facefaas.server.schemas.RunParams`). :func:`detection_request` merges them field by field
into the one request the service and the library read.
"""

from __future__ import annotations

from typing import TypeVar

from facefaas.functions import Function
from facefaas.params import DetectionParams
from facefaas.registry import ModelRecord
from facefaas.render import parse_color
from facefaas.request import DEFAULT_QUALITY, DetectionRequest, ImageFormat, OutputOptions
from facefaas.server.schemas import ModelConfig, RunParams

__all__ = ["detection_request"]

T = TypeVar("T")


def _first(*values: T | None) -> T | None:
    return next((v for v in values if v is not None), None)


def detection_request(
    function: Function, params: RunParams, record: ModelRecord, accepted: ImageFormat | None
) -> DetectionRequest:
    """The request of one run of ``function`` on ``record``'s model.

    ``accepted`` is the image format the ``Accept`` header prefers (``None``: no preference);
    an explicit ``format`` parameter wins over it, and JPEG is the default.
    """
    config = ModelConfig.model_validate(record.config)
    recommended = DetectionParams.from_mapping(record.parameters)
    min_size = _first(params.min_size, config.min_size)
    thresholds = _first(params.thresholds, config.thresholds)
    factor = _first(params.factor, config.factor)
    detection = DetectionParams(
        min_size if min_size is not None else recommended.min_size,
        tuple(thresholds) if thresholds is not None else recommended.thresholds,  # type: ignore[arg-type]
        factor if factor is not None else recommended.factor,
    )
    fmt: ImageFormat = "png" if (params.format or accepted) == "png" else "jpeg"
    output = OutputOptions(
        format=fmt,
        quality=params.quality or DEFAULT_QUALITY,
        thickness=params.thickness or 1,
        landmarks=params.landmarks,
        scores=params.scores,
        strength=params.strength if params.strength is not None else 1.0,
        margin=params.margin or 0.0,
        color=parse_color(params.color) if params.color else None,
        size=params.size,
        align=params.align,
        zip=params.zip,
    )
    return DetectionRequest(
        function=function,
        params=detection,
        max_faces=_first(params.max_faces, config.max_faces),
        score_threshold=_first(params.score_threshold, config.score_threshold) or 0.0,
        output=output,
        fit=params.fit,
    )
