"""Runner, presets, report files and plots, on a tiny synthetic set and a fake detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facefaas.errors import ParameterError
from facefaas.evaluation import (
    PRESETS,
    Dataset,
    ImageTruth,
    RunSpec,
    detect_dataset,
    get_preset,
    read_wider_detections,
    run_specs,
    write_report,
)
from facefaas.evaluation.presets import params_label, parse_params
from facefaas.faces import Faces
from facefaas.params import DetectionParams


def _dataset(tmp_path: Path) -> Dataset:
    images = []
    for i, boxes in enumerate([[[10, 10, 40, 40], [60, 10, 90, 40]], [[20, 20, 70, 70]]]):
        path = tmp_path / "images" / "ev" / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (100 + i, 80), (i * 40, 0, 0)).save(path)
        array = np.array(boxes, float)
        masks = {
            "easy": np.array([True] + [False] * (len(boxes) - 1)),
            "hard": np.ones(len(boxes), bool),
        }
        images.append(ImageTruth(f"ev/img{i}", path, array, masks))
    return Dataset("wider", ("easy", "hard"), tuple(images), "synthetic")


class FakeDetector:
    """Finds the first face of each image exactly, plus one false positive; records its calls.

    Images are told apart by their width (100 + image index, see ``_dataset``).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.first_face = {100 + i: im.boxes[0] for i, im in enumerate(dataset.images)}
        self.calls: list[dict[str, Any]] = []
        self.provider = "FakeProvider"

    def __call__(self, image: Any, **params: Any) -> Faces:
        self.calls.append(params)
        boxes = np.array([self.first_face[image.width], [0, 60, 10, 70]], np.float32)
        scores = np.array([0.9, 0.2], np.float32)
        return Faces(boxes, scores, np.zeros((2, 5, 2), np.float32), image.width, image.height)


def test_presets_are_valid_and_include_the_required_ones() -> None:
    assert PRESETS["default"].params == DetectionParams()
    assert PRESETS["high-recall"].params == DetectionParams(
        min_size=10, factor=0.79, thresholds=(0.5, 0.5, 0.3)
    )
    assert all(name == preset.name and preset.description for name, preset in PRESETS.items())
    with pytest.raises(ParameterError, match="unknown preset"):
        get_preset("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min_size=12 factor=0.8", DetectionParams(min_size=12, factor=0.8)),
        ("thresholds=0.5,0.6,0.7", DetectionParams(thresholds=(0.5, 0.6, 0.7))),
        ("fast", PRESETS["fast"].params),
    ],
)
def test_parse_params_reads_key_value_pairs(text: str, expected: DetectionParams) -> None:
    assert parse_params(text) == expected


@pytest.mark.parametrize("text", ["min_size", "speed=3", "min_size=2", "factor=abc"])
def test_parse_params_rejects_bad_input(text: str) -> None:
    with pytest.raises(ParameterError):
        parse_params(text)


def test_params_label_is_short_and_readable() -> None:
    assert params_label(DetectionParams(min_size=12, factor=0.8)) == "min12 f0.8 t0.6/0.7/0.7"


def test_detect_dataset_times_each_image_and_warms_up_once(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    fake = FakeDetector(dataset)
    calls: list[DetectionParams] = []

    def detect(image: Any, params: DetectionParams) -> Faces:
        calls.append(params)
        return fake(image)

    run = detect_dataset(dataset, detect, DetectionParams(min_size=15), progress=False)
    assert len(calls) == 3  # one untimed warm-up call, then one per image
    assert set(run.seconds) == {"ev/img0", "ev/img1"}
    assert all(s >= 0 for s in run.seconds.values())
    timing = run.timing()
    assert timing["images"] == 2 and timing["mean_ms"] is not None
    np.testing.assert_array_equal(run.detections["ev/img1"].boxes[0], [20, 20, 70, 70])


def _results(tmp_path: Path) -> tuple[Dataset, list[Any], FakeDetector]:
    dataset = _dataset(tmp_path)
    fake = FakeDetector(dataset)
    specs = [
        RunSpec("default", "fake", DetectionParams(), "default"),
        RunSpec("small", "fake", DetectionParams(min_size=10)),
    ]
    return (
        dataset,
        run_specs(dataset, specs, make_detector=lambda model: fake, progress=False),
        fake,
    )


def test_run_specs_passes_each_runs_parameters_to_one_detector(tmp_path: Path) -> None:
    _, results, fake = _results(tmp_path)
    assert [c["min_size"] for c in fake.calls] == [20.0] * 3 + [10.0] * 3
    easy = results[0].evaluation.settings["easy"]
    hard = results[0].evaluation.settings["hard"]
    assert easy.ap == pytest.approx(1.0)
    assert (hard.faces, hard.tp, hard.fp) == (3, 2, 2)
    assert results[0].run.model_info["provider"] == "FakeProvider"


def test_write_report_produces_json_markdown_plots_and_detections(tmp_path: Path) -> None:
    dataset, results, _ = _results(tmp_path)
    files = write_report(tmp_path / "out", dataset, results, command="facefaas eval wider --x")
    report = json.loads(files.json.read_text())
    assert report["command"] == "facefaas eval wider --x"
    assert report["dataset"]["faces"] == {"easy": 2, "hard": 3}
    run = report["runs"][0]
    assert run["label"] == "default" and run["params"]["min_size"] == 20.0
    assert run["settings"]["easy"]["ap"] == 1.0
    assert len(run["curves"]["hard"]["precision"]) == 1000
    assert run["images"][0]["counts"]["hard"] == {"faces": 2, "tp": 1, "fp": 1, "ignored": 0}
    assert run["images"][0]["ms"] is not None and run["timing"]["images"] == 2
    summary = files.markdown.read_text()
    assert "| default | fake | min 20, factor 0.709, thresholds 0.6/0.7/0.7 | 1.000 |" in summary
    assert [p.name for p in files.plots] == ["pr_easy.png", "pr_hard.png"]
    for png in files.plots:
        with Image.open(png) as img:
            img.load()
            assert img.format == "PNG" and img.width > 300
    written = read_wider_detections(tmp_path / "out" / "detections" / "small")
    np.testing.assert_allclose(written["ev/img0"].boxes[0], [10, 10, 40, 40])


def test_report_writes_nan_as_null(tmp_path: Path) -> None:
    dataset, results, _ = _results(tmp_path)
    empty = Dataset(
        "wider",
        ("easy", "hard"),
        tuple(
            ImageTruth(
                im.key,
                im.path,
                im.boxes,
                {"easy": np.zeros(len(im), bool), "hard": im.counted["hard"]},
            )
            for im in dataset.images
        ),
    )
    files = write_report(
        tmp_path / "out",
        empty,
        run_specs(
            empty, [results[0].spec], make_detector=lambda m: FakeDetector(empty), progress=False
        ),
        plots=False,
    )
    report = json.loads(files.json.read_text())
    assert report["runs"][0]["settings"]["easy"]["ap"] is None
    assert "n/a" in files.markdown.read_text()
    assert files.plots == ()


def test_public_api_names_all_resolve_and_are_unique() -> None:
    import facefaas.evaluation as evaluation

    assert len(set(evaluation.__all__)) == len(evaluation.__all__)
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None, name


def test_importing_the_package_does_not_import_scipy_or_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys, facefaas.evaluation, facefaas.cli.evaluate; "
        "print(any(m.split('.')[0] in ('scipy', 'matplotlib') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
