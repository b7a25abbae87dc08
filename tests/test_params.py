"""Detection parameters: validation and the seed's pyramid."""

from __future__ import annotations

import pytest

from facefaas.errors import ParameterError
from facefaas.params import DetectionParams


def test_defaults_are_the_seeds() -> None:
    assert DetectionParams().to_dict() == {
        "min_size": 20.0,
        "thresholds": [0.6, 0.7, 0.7],
        "factor": 0.709,
    }


def test_solvay_pyramid_has_the_graphs_eleven_levels() -> None:
    scales = DetectionParams().scales(661, 960)
    assert len(scales) == 11
    assert scales[0] == pytest.approx(0.6)
    assert scales[-1] * 661 > 12 >= scales[-1] * 0.709 * 661


@pytest.mark.parametrize(
    "values",
    [{"min_size": 5}, {"min_size": float("nan")}, {"factor": 0.1}, {"factor": 0.96},
     {"thresholds": [0.5, 0.5]}, {"thresholds": [0.5, 0.5, 1.0]}, {"thresholds": "a,b,c"},
     {"min_size": "big"}, {"unknown": 1}],
)  # fmt: skip
def test_invalid_values_raise_parameter_error(values: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ParameterError):
        DetectionParams.from_mapping(values)


def test_from_mapping_keeps_base_values_and_parses_threshold_strings() -> None:
    base = DetectionParams(min_size=40)
    params = DetectionParams.from_mapping({"thresholds": "0.5, 0.6,0.9"}, base=base)
    assert params == DetectionParams(min_size=40, thresholds=(0.5, 0.6, 0.9))
