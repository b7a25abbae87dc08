"""LNet (the authors' ``det4``): imported from Caffe, stored as ``lnet.onnx``, run after O-Net."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from facefaas import Detector
from facefaas.errors import ModelValidationError, ParameterError
from facefaas.models.bundle import read_bundle, write_bundle
from facefaas.models.importing import ImportedModel, import_model
from facefaas.models.onnx_build import build_networks
from facefaas.models.validate import reference_image
from facefaas.models.weights import LNET_LAYOUT, MtcnnWeights
from facefaas.mtcnn.lnet import patch_boxes, patch_sizes, refine_points
from facefaas.mtcnn.pipeline import normalize
from facefaas.runtime.reference import ReferenceCascade
from facefaas.runtime.sessions import OnnxCascade

BUILTIN_ID = "17a79f6483f583c2fb62e3c0274be3bfed84a17ac24105a1767b57185aa6668f"
FACES = "eval/dlib-faces/2008_004176.jpg"


@pytest.fixture(scope="module")
def caffe(shared: Path) -> ImportedModel:
    return import_model(shared / "models" / "caffe-original", validate=False)


@pytest.fixture(scope="module")
def builtin() -> MtcnnWeights:
    return read_bundle(Path(__file__).parents[1] / "src/facefaas/data/models/mtcnn").weights()


def _still_lnet(weights: MtcnnWeights) -> MtcnnWeights:
    """``weights`` with an LNet whose every output is exactly 0.5 (no move)."""
    lnet = {name: np.zeros(shape, np.float32) for name, shape in LNET_LAYOUT.items()}
    for k in range(1, 6):
        lnet[f"fc5_{k}.bias"] = np.full(2, 0.5, np.float32)
    return replace(weights, lnet=lnet)


@pytest.mark.parametrize(
    ("box", "side"),
    [
        ((0, 0, 39, 39), 10),  # 40 / 4
        ((0, 0, 42, 30), 10),  # 10.75 truncated
        ((5, 5, 52, 20), 12),  # 48 / 4 = 12
        ((0, 0, 46, 46), 12),  # 11.75 -> 11, odd -> 12
        ((10.5, 0, 30, 50.9), 12),  # the longer side counts: 51.9 / 4 -> 12
    ],
)
def test_patch_side_is_an_even_quarter_of_the_longer_box_side(
    box: tuple[float, ...], side: int
) -> None:
    assert patch_sizes(np.array([box], np.float32)).tolist() == [side]


def test_patch_boxes_start_at_the_truncated_corner_face_by_face() -> None:
    points = np.zeros((2, 5, 2), np.float32)
    points[0, 0] = (10.7, 20.2)
    points[1, 4] = (2.0, 3.5)
    boxes = patch_boxes(points, np.array([10, 12], np.float32))
    assert boxes.shape == (10, 4)
    np.testing.assert_array_equal(boxes[0], [5, 15, 15, 25])
    np.testing.assert_array_equal(boxes[9], [-4, -2, 8, 10])  # truncated towards zero


@pytest.mark.parametrize(
    ("fraction", "moved"),
    [
        ((0.5, 0.5), (0.0, 0.0)),
        ((0.8, 0.5), (3.0, 0.0)),
        ((0.2, 0.6), (-3.0, 1.0)),
        ((0.84, 0.5), (3.4, 0.0)),
        ((0.86, 0.6), (0.0, 0.0)),  # x too far: the point stays
        ((0.6, 0.1), (0.0, 0.0)),  # y too far: the point stays
    ],
)
def test_refined_point_moves_by_the_fraction_off_centre_times_the_patch_side(
    fraction: tuple[float, float], moved: tuple[float, float]
) -> None:
    points = np.full((1, 5, 2), 100.0, np.float32)
    fractions = np.full((1, 10), 0.5, np.float32)
    fractions[0, 2], fractions[0, 7] = fraction
    refined = refine_points(points, fractions, np.array([10], np.float32))
    np.testing.assert_allclose(refined[0, 2] - 100, moved, atol=1e-5)
    np.testing.assert_array_equal(np.delete(refined[0], 2, axis=0), 100)


def test_caffe_det4_is_kept_as_lnet_and_round_trips_through_a_bundle(
    caffe: ImportedModel, tmp_path: Path
) -> None:
    weights = caffe.weights
    assert weights.lnet is not None
    assert weights.lnet["fc4.weight"].shape == (256, 5, 64, 3, 3)
    assert "lnet" not in caffe.extra_networks
    assert any("det4.caffemodel is the landmark-refinement net" in w for w in caffe.warnings)
    assert replace(weights, lnet=None).digest() == BUILTIN_ID  # det1-det3 are the seed's model
    assert caffe.manifest.weights_sha256 == weights.digest() != BUILTIN_ID

    path = write_bundle(tmp_path / "with-lnet", weights, caffe.manifest)
    assert (path / "lnet.onnx").is_file()
    assert read_bundle(path).weights().digest() == weights.digest()
    again = import_model(path)  # validated: the smoke detection runs LNet too
    assert again.warnings == []
    assert again.manifest.weights_sha256 == weights.digest()
    assert again.weights.lnet is not None
    for name, value in weights.lnet.items():
        np.testing.assert_array_equal(again.weights.lnet[name], value, err_msg=name)


def test_model_without_lnet_keeps_its_id_and_writes_no_lnet_file(
    builtin: MtcnnWeights, tmp_path: Path
) -> None:
    from facefaas.models.manifest import ModelManifest

    assert builtin.lnet is None and builtin.digest() == BUILTIN_ID
    path = write_bundle(tmp_path / "plain", builtin, ModelManifest("plain", ""))
    assert not (path / "lnet.onnx").exists()
    assert "lnet" not in read_bundle(path).networks


def test_lnet_moves_only_landmarks_and_by_little(shared: Path, caffe: ImportedModel) -> None:
    image = shared / FACES
    refined = Detector(caffe.weights, threads=1)
    plain = Detector(caffe.weights, refine_landmarks=False, threads=1)
    assert (refined.refine_landmarks, plain.refine_landmarks) == (True, False)
    a, b = refined(image), plain(image)
    assert len(a) == 8
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    moves = np.linalg.norm(a.landmarks - b.landmarks, axis=2)
    sides = np.maximum(a.boxes[:, 2] - a.boxes[:, 0], a.boxes[:, 3] - a.boxes[:, 1])
    assert (moves > 0.05).mean() > 0.9, moves
    assert (moves.max(axis=1) < 0.1 * sides).all(), moves.max(axis=1) / sides


def test_refine_landmarks_false_equals_the_model_without_lnet(
    shared: Path, caffe: ImportedModel
) -> None:
    image = shared / FACES
    off = Detector(caffe.weights, refine_landmarks=False, threads=1)(image)
    seed = Detector(threads=1)(image)
    assert len(seed) == 8
    for got, want in zip(off.to_dict()["faces"], seed.to_dict()["faces"], strict=True):
        assert got == want


def test_refine_landmarks_true_needs_a_model_with_lnet(builtin: MtcnnWeights) -> None:
    with pytest.raises(ParameterError, match="LNet"):
        Detector(refine_landmarks=True)
    assert Detector().refine_landmarks is False
    assert Detector(_still_lnet(builtin), refine_landmarks=True).refine_landmarks is True


def test_lnet_answering_the_patch_centre_leaves_points_unchanged(builtin: MtcnnWeights) -> None:
    refined = Detector(_still_lnet(builtin), threads=1)
    assert refined.refine_landmarks
    a, b = refined(reference_image()), Detector(builtin, threads=1)(reference_image())
    assert len(a) == 1
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_fused_patches_match_the_numpy_reference(shared: Path, caffe: ImportedModel) -> None:
    from facefaas.decode import load_image

    networks = {net: m.SerializeToString() for net, m in build_networks(caffe.weights).items()}
    faces = Detector(caffe.weights, refine_landmarks=False, threads=1)(shared / FACES)
    source = normalize(load_image(shared / FACES).pixels)
    sizes = patch_sizes(faces.boxes)
    fused = OnnxCascade(networks, threads=1).lnet(source, faces.landmarks, sizes)
    reference = ReferenceCascade(networks).lnet(source, faces.landmarks, sizes)
    assert fused.shape == (8, 10)
    np.testing.assert_allclose(fused, reference, atol=1e-3)


def test_bundle_importer_refuses_an_lnet_graph_facefaas_does_not_build(
    caffe: ImportedModel, tmp_path: Path
) -> None:
    path = write_bundle(tmp_path / "b", caffe.weights, caffe.manifest)
    model = onnx.load(path / "lnet.onnx")
    for node in model.graph.node:
        if node.op_type == "Concat" and node.output[0] == "offsets":
            node.input[:] = list(reversed(node.input))  # y before x
    onnx.save(model, path / "lnet.onnx")
    with pytest.raises(ModelValidationError, match="not the LNet graph"):
        import_model(path, validate=False)
    assert isinstance(caffe.weights, MtcnnWeights)
