"""Detector families in the library: one table, a Detector for each, manifests and bundles of
each, their parameters, costs and presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from facefaas.centerface import CenterFace, CenterFaceParams, builtin_onnx
from facefaas.cli import cli
from facefaas.detector import Detector
from facefaas.errors import ModelFormatError, ParameterError
from facefaas.families import FAMILIES, family_of, get_family
from facefaas.models.bundle import read_bundle
from facefaas.models.manifest import ModelManifest
from facefaas.params import DetectionParams

REFERENCE = Path(__file__).resolve().parents[1] / "src/facefaas/data/reference/astronaut.jpg"


def test_the_table_holds_mtcnn_first_then_centerface() -> None:
    assert list(FAMILIES) == ["mtcnn", "centerface"]
    assert family_of(DetectionParams()).name == "mtcnn"
    assert family_of(CenterFaceParams()).name == "centerface"
    with pytest.raises(ParameterError, match="mtcnn, centerface"):
        get_family("scrfd")
    assert get_family("mtcnn").required_networks == ("pnet", "rnet", "onet")


def test_a_centerface_detector_equals_the_family_core(tmp_path: Path) -> None:
    image = REFERENCE.read_bytes()
    with Detector("centerface") as detector, CenterFace(builtin_onnx()) as core:
        from facefaas.decode import load_image

        boxes, scores, landmarks = core.detect(load_image(image).pixels, CenterFaceParams())
        faces = detector(image)
        assert detector.family.name == "centerface" and len(faces) == 1 == len(scores)
        np.testing.assert_array_equal(faces.boxes, boxes)
        np.testing.assert_array_equal(faces.landmarks, landmarks)
        assert len(detector(image, threshold=1.0)) == 0
        assert detector.params == CenterFaceParams()


def test_family_parameters_are_checked_against_the_models_family() -> None:
    with pytest.raises(ParameterError, match="threshold, nms_threshold, input_size"):
        Detector("centerface", min_size=30)
    with Detector("centerface") as detector:
        with pytest.raises(ParameterError, match="CenterFaceParams"):
            detector.detect(REFERENCE.read_bytes(), DetectionParams())
        with pytest.raises(ParameterError, match="unknown CenterFace parameter"):
            detector.detect(REFERENCE.read_bytes(), factor=0.8)
    with Detector() as mtcnn, pytest.raises(ParameterError, match="unknown detection parameter"):
        mtcnn.detect(REFERENCE.read_bytes(), threshold=0.3)


def test_centerface_parameters_read_query_strings_and_full_resolution() -> None:
    params = CenterFaceParams.from_mapping({"threshold": "0.4", "input_size": "640"})
    assert params == CenterFaceParams(threshold=0.4, input_size=640)
    assert CenterFaceParams.from_mapping({"input_size": "full"}, params).input_size is None
    assert CenterFaceParams.from_mapping(params.to_dict()) == params


def test_manifests_name_their_family_and_round_trip() -> None:
    root = Path(__file__).resolve().parents[1] / "src/facefaas/data/models"
    for name in FAMILIES:
        manifest = ModelManifest.from_json((root / name / "manifest.json").read_text())
        assert manifest.family == name
        assert ModelManifest.from_json(manifest.to_json()) == manifest
        bundle = read_bundle(root / name)
        assert set(bundle.networks) == set(get_family(name).required_networks)


def test_a_centerface_onnx_file_imports_exports_and_detects(tmp_path: Path) -> None:
    source = tmp_path / "mine.onnx"
    source.write_bytes(builtin_onnx())
    out = tmp_path / "bundle"
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "import", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["centerface.onnx", "manifest.json"]
    info = runner.invoke(cli, ["models", "info", str(source), "--json"])
    assert '"format": "centerface-onnx"' in info.output
    zipped = tmp_path / "again.zip"
    assert runner.invoke(cli, ["models", "export", str(out), "-o", str(zipped)]).exit_code == 0
    with Detector(str(out)) as detector:
        assert detector.family.name == "centerface" and len(detector(REFERENCE.read_bytes())) == 1
    with Detector(str(source)) as from_file:
        assert from_file.manifest.weights_sha256.startswith("09189dea")


def test_an_onnx_file_of_no_family_is_refused_naming_the_families(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    from facefaas.models.importing import import_model

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )  # fmt: skip
    with pytest.raises(ModelFormatError, match=r"mtcnn .* centerface"):
        import_model({"other.onnx": helper.make_model(graph).SerializeToString()})


def test_centerface_cost_follows_its_input_size() -> None:
    estimate = get_family("centerface").estimate
    full = estimate(4000, 3000, CenterFaceParams())
    small = estimate(4000, 3000, CenterFaceParams(input_size=640))
    assert full.peak_bytes > 2 * 1024**3 > 8 * (small.peak_bytes - 4000 * 3000 * 18)
    assert full.pyramid_pixels == 4000 * 3008  # rounded up to multiples of 32


def test_evaluation_presets_are_per_family() -> None:
    from facefaas.cli.evaluate import _build_specs

    specs = _build_specs(["mtcnn", "centerface"], ["default", "input-960"], [])
    assert [(s.label, type(s.params).__name__) for s in specs] == [
        ("mtcnn/default", "DetectionParams"),
        ("centerface/default", "CenterFaceParams"),
        ("centerface/input-960", "CenterFaceParams"),
    ]
    assert specs[1].params == CenterFaceParams(threshold=0.05)
    with pytest.raises(ParameterError, match=r"unknown preset .nonsense. of mtcnn"):
        _build_specs(["mtcnn"], ["nonsense"], [])


def test_a_centerface_bundle_zip_imports_again(tmp_path: Path) -> None:
    zipped = tmp_path / "cf.zip"
    runner = CliRunner()
    assert runner.invoke(cli, ["models", "export", "centerface", "-o", str(zipped)]).exit_code == 0
    info = runner.invoke(cli, ["models", "info", str(zipped), "--json"])
    assert info.exit_code == 0, info.output
    assert '"family": "centerface"' in info.output and '"name": "centerface"' in info.output
    with Detector(str(zipped)) as detector:
        assert detector.family.name == "centerface"
        assert detector.manifest.weights_sha256.startswith("09189dea")
        assert len(detector(REFERENCE.read_bytes())) == 1
