"""The CLI reads the function table: --render offers every picture function (redact included),
and `models info` takes a model's several files like `import`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from facefaas import functions
from facefaas.cli import cli
from facefaas.cli.detect import RENDER_CHOICES
from facefaas.detector import Detector

REFERENCE = Path(__file__).resolve().parents[1] / "src/facefaas/data/reference/astronaut.jpg"


def test_render_choices_come_from_the_table() -> None:
    assert RENDER_CHOICES == ["box", "annotate", "blur", "pixelate", "redact", "none"]
    help_text = CliRunner().invoke(cli, ["detect", "--help"]).output
    assert "redact" in help_text and "--color" in help_text
    pictures = {f.name for f in functions.picture_functions() if f.encoding is None}
    assert pictures <= set(RENDER_CHOICES)


def test_render_redact_writes_the_faces_filled_with_the_colour(tmp_path: Path) -> None:
    out = tmp_path / "redacted.png"
    args = ["detect", str(REFERENCE), "-o", str(out), "--render", "redact", "--color", "#0000ff"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (box,) = Detector()(REFERENCE.read_bytes()).boxes
    x1, y1, x2, y2 = (int(v) for v in box)
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert (pixels[y1:y2, x1:x2] == (0, 0, 255)).all()
    assert "1 face" in result.output


def test_a_bad_colour_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["detect", str(REFERENCE), "--color", "blue"])
    assert result.exit_code == 2
    assert "#rrggbb" in result.output


def test_models_info_takes_a_models_several_files(shared: Path) -> None:
    folder = shared / "models" / "caffe-original"
    files = [str(folder / f"det{i}.caffemodel") for i in (1, 2, 3)]
    result = CliRunner().invoke(cli, ["models", "info", *files])
    assert result.exit_code == 0, result.output
    assert "caffe" in result.output
    assert "17a79f64" in result.output
