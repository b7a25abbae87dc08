"""From HTTP parameters to the typed :class:`~facefaas.request.DetectionRequest`, once.

A run's parameters come from three places, each overriding the one before: the model's
recommended parameters (its manifest), its run defaults set by its admin (``config``, the seed's
per-function state), and the request's own (query string, multipart fields or JSON, validated by
:class:`~facefaas.server.schemas.RunParams`). :func:`detection_request` merges them field by field
into the one request the service and the library read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from facefaas.errors import ParameterError
from facefaas.families import FAMILIES, Family, get_family
from facefaas.functions import Function
from facefaas.registry import ModelRecord
from facefaas.render import parse_color
from facefaas.request import DEFAULT_QUALITY, DetectionRequest, ImageFormat, OutputOptions
from facefaas.server.schemas import ModelConfig, RunParams

__all__ = ["detection_request"]

T = TypeVar("T")


def _first(*values: T | None) -> T | None:
    return next((v for v in values if v is not None), None)


def family_params(
    family: Family, params: ModelConfig, config: ModelConfig, recommended: dict[str, Any]
) -> Any:
    """The family's parameters: the request's over the admin's run defaults over the model's
    recommended ones, field by field. Another family's parameter is a 422 naming both."""
    foreign = sorted(
        name
        for other in FAMILIES.values()
        if other is not family
        for name in other.parameter_names
        if name not in family.parameter_names and getattr(params, name) is not None
    )
    if foreign:
        raise ParameterError(
            f"{', '.join(foreign)}: not parameters of this {family.title} model (its "
            f"parameters: {', '.join(family.parameter_names)})"
        )
    values = {
        name: value
        for name in family.parameter_names
        if (value := _first(getattr(params, name), getattr(config, name))) is not None
    }
    return family.params(values, base=family.params(recommended))


def detection_request(
    function: Function, params: RunParams, record: ModelRecord, accepted: ImageFormat | None
) -> DetectionRequest:
    """The request of one run of ``function`` on ``record``'s model.

    ``accepted`` is the image format the ``Accept`` header prefers (``None``: no preference);
    an explicit ``format`` parameter wins over it, and JPEG is the default.
    """
    config = ModelConfig.model_validate(record.config)
    family = get_family(record.family)
    detection = family_params(family, params, config, record.parameters)
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
