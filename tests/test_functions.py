"""The function table, the typed request and redact: one entry and one renderer per function."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facefaas import functions
from facefaas.errors import ParameterError
from facefaas.faces import Faces
from facefaas.render import anonymize, parse_color
from facefaas.request import DetectionRequest, OutputOptions


def _faces(width: int = 40, height: int = 30) -> Faces:
    return Faces([[5.0, 4.0, 15.0, 14.0]], [0.99], np.zeros((1, 5, 2)), width=width, height=height)


def test_every_name_and_alias_selects_one_function() -> None:
    assert functions.names() == [
        "detect", "annotate", "blur", "pixelate", "redact", "crops", "infer"
    ]  # fmt: skip
    assert functions.get_function("box") is functions.get_function("annotate")
    with pytest.raises(ParameterError, match="detect, annotate, blur"):
        functions.get_function("sharpen")


def test_picture_functions_have_renderers_and_image_media_types() -> None:
    pictures = functions.picture_functions()
    assert [f.name for f in pictures] == ["annotate", "blur", "pixelate", "redact", "infer"]
    for function in pictures:
        assert function.render is not None
        assert all(t.startswith("image/") for t in function.media_types)
    assert functions.get_function("infer").media_types == ("image/jpeg",)
    assert functions.get_function("crops").media_types == ("application/json", "application/zip")
    with pytest.raises(ParameterError, match="does not draw a picture"):
        functions.get_function("detect").picture(None, _faces(), OutputOptions())  # type: ignore[arg-type]


def test_anonymizing_functions_are_blur_pixelate_and_redact() -> None:
    assert [f.name for f in functions.FUNCTIONS if f.anonymizes] == ["blur", "pixelate", "redact"]
    assert functions.get_function("redact").to_dict()["options"] == [
        "color", "margin", "format", "quality"
    ]  # fmt: skip


def test_redact_fills_each_face_with_a_solid_colour_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = np.asarray(
        anonymize(Image.fromarray(pixels), _faces(), method="redact", color=(255, 0, 9))
    )
    assert (out[4:14, 5:15] == (255, 0, 9)).all()  # the seed's rectangle: int(x1)..int(x2)-1
    outside = np.ones((30, 40), bool)
    outside[4:14, 5:15] = False
    np.testing.assert_array_equal(out[outside], pixels[outside])


def test_redact_defaults_to_black_and_grows_with_margin() -> None:
    white = Image.new("RGB", (40, 30), (255, 255, 255))
    out = np.asarray(anonymize(white, _faces(), method="redact", margin=0.5))
    assert (out[0:19, 0:20] == 0).all()  # 10-px box grown by 5 px a side, clipped at 0
    assert (out[20:, 21:] == 255).all()


def test_redact_through_the_table_uses_the_requested_colour() -> None:
    white = Image.new("RGB", (40, 30), (255, 255, 255))
    from facefaas.decode import load_image

    decoded = load_image(white)
    redact = functions.get_function("redact")
    out = np.asarray(redact.picture(decoded, _faces(), OutputOptions(color=(0, 0, 255))))
    assert (out[4:14, 5:15] == (0, 0, 255)).all()


def test_parse_color_reads_hex_and_refuses_anything_else() -> None:
    assert parse_color("#ff8000") == (255, 128, 0)
    assert parse_color("0a0B0c") == (10, 11, 12)
    assert parse_color("#f80") == (255, 136, 0)
    for bad in ("red", "#ff80", "#gg0000", ""):
        with pytest.raises(ParameterError, match="#rrggbb"):
            parse_color(bad)


def test_output_options_validate_format_and_quality() -> None:
    with pytest.raises(ParameterError, match="format"):
        OutputOptions(format="gif")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="quality"):
        OutputOptions(quality=0)


def test_a_request_reports_the_parameters_it_applies() -> None:
    from facefaas.params import DetectionParams

    request = DetectionRequest(
        functions.get_function("detect"), DetectionParams(min_size=30), max_faces=2
    )
    assert request.used_parameters() == {
        "min_size": 30.0, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709,
        "max_faces": 2, "score_threshold": 0.0,
    }  # fmt: skip


def test_the_model_layer_does_not_import_the_detector() -> None:
    code = (
        "import sys, facefaas.models.validate, facefaas.models.importing, facefaas.models.resolve;"
        "print('facefaas.detector' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
