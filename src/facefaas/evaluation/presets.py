"""Named detection parameter sets to choose from, measured in ``docs/evaluation.md``.

A preset is data: a frozen :class:`Preset` in the :data:`PRESETS` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from facefaas.errors import ParameterError
from facefaas.params import DetectionParams

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A named :class:`~facefaas.params.DetectionParams` and what it is for."""

    name: str
    params: DetectionParams
    description: str


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


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`~facefaas.errors.ParameterError` if there is none."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ParameterError(f"unknown preset {name!r}; presets: {known}") from None
