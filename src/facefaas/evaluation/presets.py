"""Named detection parameter sets to choose from, measured in ``docs/evaluation.md``.

A preset is data: a frozen :class:`Preset` in the :data:`PRESETS` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from facefaas.errors import ParameterError
from facefaas.params import DetectionParams

__all__ = ["PRESETS", "Preset", "get_preset", "params_label", "parse_params"]


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


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`~facefaas.errors.ParameterError` if there is none."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ParameterError(f"unknown preset {name!r}; presets: {known}") from None


def parse_params(text: str, base: DetectionParams | None = None) -> DetectionParams:
    """Parameters from ``"min_size=12 factor=0.8 thresholds=0.6,0.7,0.7"`` (space-separated
    ``key=value`` pairs over ``base``, default the seed's); a preset name alone is accepted too."""
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text].params
    values: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ParameterError(f"expected key=value pairs, got {item!r}")
        values[key.strip().replace("-", "_")] = value
    return DetectionParams.from_mapping(values, base=base)


def params_label(params: DetectionParams) -> str:
    """A short label for a parameter set, e.g. ``"min12 f0.8 t0.6/0.7/0.7"``."""
    thresholds = "/".join(f"{t:g}" for t in params.thresholds)
    return f"min{params.min_size:g} f{params.factor:g} t{thresholds}"
