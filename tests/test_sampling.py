"""TensorFlow's sampling rules, and the fused ONNX Runtime graphs that must follow them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facefaas.models.builtin import builtin_path
from facefaas.models.bundle import read_bundle
from facefaas.mtcnn.sampling import crop_and_resize, resize_bilinear
from facefaas.runtime.graphs import face_probability, pnet_logits
from facefaas.runtime.reference import ReferenceCascade
from facefaas.runtime.sessions import OnnxCascade


def _tf_resize_pixel(image: np.ndarray, out_h: int, out_w: int, c: int, y: int, x: int) -> float:
    """One output pixel of TF's legacy ResizeBilinear, written out literally (float64)."""
    in_h, in_w = image.shape[1:]
    fy = y * (in_h / out_h)
    fx = x * (in_w / out_w)
    y0, x0 = math.floor(fy), math.floor(fx)
    y1, x1 = min(math.ceil(fy), in_h - 1), min(math.ceil(fx), in_w - 1)
    ly, lx = fy - y0, fx - x0
    top = image[c, y0, x0] + (image[c, y0, x1] - image[c, y0, x0]) * lx
    bottom = image[c, y1, x0] + (image[c, y1, x1] - image[c, y1, x0]) * lx
    return float(top + (bottom - top) * ly)


@pytest.mark.parametrize(("out_h", "out_w"), [(7, 9), (13, 5), (20, 30), (10, 10)])
def test_resize_bilinear_samples_at_i_times_in_over_out(out_h: int, out_w: int) -> None:
    image = np.random.default_rng(out_h * out_w).uniform(-1, 1, (3, 10, 12)).astype(np.float32)
    out = resize_bilinear(image, out_h, out_w)
    assert out.shape == (3, out_h, out_w)
    for c, y, x in [(0, 0, 0), (1, out_h - 1, out_w - 1), (2, out_h // 2, out_w // 3)]:
        assert out[c, y, x] == pytest.approx(
            _tf_resize_pixel(image, out_h, out_w, c, y, x), abs=1e-5
        )


def test_crop_and_resize_of_the_whole_image_is_the_image() -> None:
    image = np.random.default_rng(1).uniform(-1, 1, (3, 24, 24)).astype(np.float32)
    # TF maps the normalised box 0..1 to pixels 0..H-1: a box of 0..24 px covers the image.
    crops = crop_and_resize(image, np.array([[0, 0, 24, 24]], np.float32), 24)
    np.testing.assert_allclose(crops[0], image, atol=1e-6)


def test_crop_and_resize_fills_samples_outside_the_image_with_zero() -> None:
    image = np.ones((3, 20, 20), np.float32)
    crops = crop_and_resize(image, np.array([[-20, -20, 19.5, 19.5]], np.float32), 24)
    assert crops[0, :, 0, 0].tolist() == [0, 0, 0]
    assert crops[0, :, -1, -1].tolist() == [1, 1, 1]
    assert 0 < (crops == 0).mean() < 1


@pytest.fixture(scope="module")
def cascades() -> tuple[OnnxCascade, ReferenceCascade]:
    path = builtin_path("mtcnn")
    assert path is not None
    networks = read_bundle(path).networks
    return OnnxCascade(networks, threads=1), ReferenceCascade(networks)


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    rng = np.random.default_rng(7)
    smooth = rng.uniform(-1, 1, (1, 3, 30, 40)).astype(np.float32)
    return np.ascontiguousarray(np.kron(smooth, np.ones((1, 1, 4, 4), np.float32)))


def test_fused_pyramid_level_equals_the_reference(cascades, source) -> None:  # type: ignore[no-untyped-def]
    fast, reference = cascades
    for height, width in [(120, 160), (85, 113), (60, 80), (14, 19)]:
        for a, b in zip(
            fast.pnet(source, [(height, width)])[0],
            reference.pnet(source, [(height, width)])[0],
            strict=True,
        ):
            np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("stage", ["rnet", "onet"])
def test_fused_crops_equal_the_reference_inside_and_across_the_border(
    cascades, source, stage: str
) -> None:  # type: ignore[no-untyped-def]
    fast, reference = cascades
    boxes = np.array(
        [
            [10, 10, 50, 50],
            [-15, -8, 30, 37],
            [140, 90, 175, 125],
            [60.3, 20.7, 83.9, 44.3],
            [0, 0, 159, 119],
        ],
        np.float32,
    )
    for a, b in zip(
        getattr(fast, stage)(source, boxes), getattr(reference, stage)(source, boxes), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=5e-4)


def test_fused_nms_keeps_the_same_boxes_in_the_same_order(cascades) -> None:  # type: ignore[no-untyped-def]
    fast, reference = cascades
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 200, (300, 2)).astype(np.float32)
    boxes = np.concatenate(
        [corners, corners + rng.uniform(8, 40, (300, 2)).astype(np.float32)], axis=1
    )
    scores = rng.choice(np.array([1.0, 0.99, 0.9, 0.7], np.float32), 300)  # many ties
    for threshold in (0.5, 0.7, 0.6):
        np.testing.assert_array_equal(
            fast.nms(boxes, scores, threshold, 1000), reference.nms(boxes, scores, threshold, 1000)
        )
    np.testing.assert_array_equal(
        fast.nms(boxes, scores, 0.5, 7), reference.nms(boxes, scores, 0.5, 7)
    )


def test_large_levels_run_in_bands_with_the_same_result(cascades) -> None:  # type: ignore[no-untyped-def]
    fast, reference = cascades
    rng = np.random.default_rng(11)
    coarse = rng.uniform(-1, 1, (1, 3, 120, 130)).astype(np.float32)
    big = np.ascontiguousarray(np.kron(coarse, np.ones((1, 1, 8, 8), np.float32)))  # 960 x 1040
    size = (901, 977)  # ~880k level pixels: several bands
    banded = fast.pnet(big, [size])[0]
    # The whole level in one run of the fused graph: bands must not change a value.
    whole_logits, whole_reg = fast._sessions["pnet"].run(
        None, {"source": big, "sizes": np.array([1, 3, *size], np.int64)}
    )
    np.testing.assert_allclose(banded[0], face_probability(whole_logits[0]), atol=1e-5)
    np.testing.assert_allclose(banded[1], whole_reg[0], atol=1e-5)
    for a, b in zip(banded, reference.pnet(big, [size])[0], strict=True):
        np.testing.assert_allclose(a, b, atol=5e-4)


def test_face_probability_is_the_softmax_of_the_logits_even_where_they_are_extreme() -> None:
    logits = np.array([[[0.0, 3.0, -200.0, 200.0]], [[0.0, -1.0, 200.0, -200.0]]], np.float32)
    exact = np.exp(logits[1].astype(np.float64)) / np.exp(logits.astype(np.float64)).sum(axis=0)
    with np.errstate(all="raise"):  # no overflow warning for +-200
        np.testing.assert_allclose(face_probability(logits), exact, rtol=1e-6, atol=1e-30)


def test_pnet_logits_gives_the_pure_networks_softmax_and_offsets() -> None:
    import onnx
    import onnxruntime as ort

    path = builtin_path("mtcnn")
    assert path is not None
    pure = read_bundle(path).networks["pnet"]
    image = np.random.default_rng(5).uniform(-1, 1, (1, 3, 40, 50)).astype(np.float32)

    def run(model: bytes) -> list[np.ndarray]:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        return session.run(None, {"image": image})  # type: ignore[no-any-return]

    prob, reg = run(pure)
    logits, heads_reg = run(pnet_logits(onnx.load_from_string(pure)).SerializeToString())
    np.testing.assert_allclose(face_probability(logits[0]), prob[0, 1], atol=1e-6)
    np.testing.assert_array_equal(heads_reg, reg)  # one convolution for both heads: same sums
