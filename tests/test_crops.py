"""Face chips: plain, square, padded and eye-aligned (facefaas.crops)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from facefaas.crops import EYE_POSITIONS, alignment_matrix, crop_faces
from facefaas.errors import ParameterError
from facefaas.faces import Faces

Array = npt.NDArray[np.uint8]


def noise_image(width: int, height: int) -> Array:
    pixels = np.random.default_rng(1).integers(1, 256, (height, width, 3), dtype=np.uint8)
    return pixels  # never 0, so black padding is recognisable


def make_faces(
    boxes: list[list[float]], width: int, height: int, landmarks: object = None
) -> Faces:
    n = len(boxes)
    return Faces(
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.ones(n, np.float32),
        landmarks=np.zeros((n, 5, 2), np.float32) if landmarks is None else landmarks,
        width=width,
        height=height,
    )


def test_crop_without_size_is_the_box_rounded_to_pixels() -> None:
    pixels = noise_image(80, 60)
    chips = crop_faces(pixels, make_faces([[10.2, 20.7, 40.4, 50.0], [0, 0, 80, 60]], 80, 60))
    np.testing.assert_array_equal(np.asarray(chips[0]), pixels[21:50, 10:40])
    np.testing.assert_array_equal(np.asarray(chips[1]), pixels)
    assert [chip.mode for chip in chips] == ["RGB", "RGB"]


def test_crop_margin_grows_each_side_by_that_fraction() -> None:
    pixels = noise_image(80, 60)
    (chip,) = crop_faces(pixels, make_faces([[20, 20, 40, 36]], 80, 60), margin=0.5)
    np.testing.assert_array_equal(np.asarray(chip), pixels[12:44, 10:50])


def test_crop_pads_black_where_the_box_leaves_the_image() -> None:
    pixels = noise_image(40, 30)
    (chip,) = crop_faces(pixels, make_faces([[-10, -5, 20, 15]], 40, 30))
    out = np.asarray(chip)
    assert out.shape == (20, 30, 3)
    assert not out[:5].any() and not out[:, :10].any()
    np.testing.assert_array_equal(out[5:, 10:], pixels[0:15, 0:20])


@pytest.mark.parametrize("size", [16, 112, 160])
def test_crop_with_size_gives_square_chips_without_stretching(size: int) -> None:
    # A red 40x20 box on blue: the chip is the 40x40 square around it, red only in the middle.
    pixels = np.zeros((100, 100, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[40:60, 30:70] = (255, 0, 0)
    (chip,) = crop_faces(pixels, make_faces([[30, 40, 70, 60]], 100, 100), size=size)
    out = np.asarray(chip).astype(int)
    assert out.shape == (size, size, 3)
    red_rows = np.nonzero(out[:, size // 2, 0] > 128)[0]
    assert abs(red_rows[0] - size / 4) <= 1 and abs(red_rows[-1] + 1 - 3 * size / 4) <= 1
    assert (out[size // 2, :, 0] > 128).all()  # the full width is the box


def test_crop_with_size_pads_black_outside_the_image() -> None:
    pixels = np.full((50, 50, 3), 200, np.uint8)
    (chip,) = crop_faces(pixels, make_faces([[-25, 0, 25, 50]], 50, 50), size=32)
    out = np.asarray(chip).astype(int)
    assert out[:, :14].max() < 30 and out[:, 18:].min() > 170


def gaussian_dots(
    width: int, height: int, centres: list[tuple[float, float]], sigma: float
) -> Array:
    """White Gaussian blobs centred at continuous coordinates (pixel i spans [i, i + 1))."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    total = np.zeros((height, width))
    for cx, cy in centres:
        total += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    gray = np.clip(np.rint(255 * total), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def centroids(chip: Image.Image) -> list[tuple[float, float]]:
    """Brightness centroid of the chip's left and right halves, continuous coordinates."""
    gray = np.asarray(chip).astype(float)[:, :, 0]
    size = gray.shape[1]
    ys, xs = np.mgrid[0 : gray.shape[0], 0:size] + 0.5
    points = []
    for half in (xs < size / 2, xs >= size / 2):
        weight = gray * half
        points.append(((weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()))
    return points


@pytest.mark.parametrize(
    ("left_eye", "angle_deg", "distance", "size", "margin"),
    [
        pytest.param((150.0, 180.0), 0.0, 60.0, 112, 0.0, id="level"),
        pytest.param((150.0, 180.0), -27.0, 80.0, 112, 0.0, id="tilted-up"),
        pytest.param((120.3, 90.6), 35.0, 50.0, 160, 0.0, id="tilted-down-160"),
        pytest.param((100.0, 300.0), 20.0, 300.0, 112, 0.0, id="large-face-reduced-first"),
        pytest.param((40.0, 40.0), -15.0, 12.0, 64, 0.0, id="small-face-upscaled"),
        pytest.param((150.0, 180.0), 10.0, 60.0, 112, 0.5, id="margin"),
    ],
)
def test_align_puts_a_tilted_eye_pair_level_at_the_template_positions(
    left_eye: tuple[float, float], angle_deg: float, distance: float, size: int, margin: float
) -> None:
    angle = math.radians(angle_deg)
    right_eye = (left_eye[0] + distance * math.cos(angle), left_eye[1] + distance * math.sin(angle))
    pixels = gaussian_dots(500, 500, [left_eye, right_eye], sigma=max(distance / 15, 1.0))
    landmarks = np.zeros((1, 5, 2), np.float32)
    landmarks[0, 0], landmarks[0, 1] = left_eye, right_eye
    faces = make_faces([[0, 0, 10, 10]], 500, 500, landmarks)
    (chip,) = crop_faces(pixels, faces, size=size, align=True, margin=margin)
    assert chip.size == (size, size)
    zoom = 1 / (1 + 2 * margin)
    for (x, y), (fx, fy) in zip(centroids(chip), EYE_POSITIONS, strict=True):
        expected = (size / 2 + (fx - 0.5) * size * zoom, size / 2 + (fy - 0.5) * size * zoom)
        assert abs(x - expected[0]) <= 1.0 and abs(y - expected[1]) <= 1.0, (x, y, expected)


def test_align_without_size_makes_112_pixel_chips() -> None:
    landmarks = np.array([[[30, 40], [60, 40], [45, 55], [35, 70], [55, 70]]], np.float32)
    chips = crop_faces(
        noise_image(100, 100), make_faces([[20, 20, 70, 80]], 100, 100, landmarks), align=True
    )
    assert [chip.size for chip in chips] == [(112, 112)]


def test_align_pads_black_beyond_the_image() -> None:
    landmarks = np.array([[[2, 5], [22, 5], [12, 12], [5, 20], [19, 20]]], np.float32)
    faces = make_faces([[-8, -10, 30, 30]], 40, 40, landmarks)
    (chip,) = crop_faces(np.full((40, 40, 3), 200, np.uint8), faces, size=64, align=True)
    out = np.asarray(chip)
    assert out[:5].max() < 30  # above the image: black
    assert out[40:, 25:40].min() > 150  # below the eyes, inside: image pixels


def test_alignment_matrix_sends_the_template_eyes_to_the_landmarks() -> None:
    a, b, c, d, e, f = alignment_matrix((10.0, 20.0), (50.0, 50.0), 112)
    for (fx, fy), eye in zip(EYE_POSITIONS, [(10.0, 20.0), (50.0, 50.0)], strict=True):
        u, v = fx * 112, fy * 112
        assert a * u + b * v + c == pytest.approx(eye[0])
        assert d * u + e * v + f == pytest.approx(eye[1])
    assert (a, b) == pytest.approx((e, -d))  # a similarity: rotation and uniform scale


def test_crop_faces_without_faces_is_an_empty_list() -> None:
    assert crop_faces(noise_image(20, 20), Faces.empty(20, 20), size=112, align=True) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 15},
        {"size": 1025},
        {"size": True},
        {"size": 112.0},
        {"margin": -0.1},
        {"margin": 1.5},
        {"margin": float("nan")},
        {"margin": "0.1"},
    ],
)
def test_crop_faces_rejects_bad_size_or_margin(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        crop_faces(noise_image(20, 20), make_faces([[1, 1, 9, 9]], 20, 20), **kwargs)  # type: ignore[arg-type]


def test_align_rejects_coinciding_eyes() -> None:
    faces = make_faces([[1, 1, 9, 9]], 20, 20)  # all landmarks at (0, 0)
    with pytest.raises(ParameterError, match="coincide"):
        crop_faces(noise_image(20, 20), faces, align=True)


def test_crop_faces_rejects_faces_of_another_image_size() -> None:
    with pytest.raises(ParameterError):
        crop_faces(noise_image(20, 20), make_faces([[1, 1, 9, 9]], 30, 20))


@pytest.mark.parametrize("align", [False, True])
def test_large_faces_are_antialiased_when_shrunk(align: bool) -> None:
    # A 1-pixel checkerboard shrunk ~10x must come out an even grey, not a moire pattern.
    pixels = np.repeat(
        ((np.indices((1200, 1200)).sum(axis=0) % 2) * 255).astype(np.uint8)[:, :, None], 3, 2
    )
    landmarks = np.array([[[500, 550], [700, 550], [600, 650], [520, 750], [680, 750]]], np.float32)
    faces = make_faces([[100, 100, 1100, 1100]], 1200, 1200, landmarks)
    (chip,) = crop_faces(pixels, faces, size=112, align=align)
    out = np.asarray(chip).astype(float)
    assert out.shape == (112, 112, 3)
    assert abs(out.mean() - 127.5) < 10 and out.std() < 12


@pytest.mark.parametrize("size", [None, 32])
def test_absurd_boxes_give_bounded_black_chips(size: int | None) -> None:
    faces = make_faces([[-1e9, -1e9, 1e9, 1e9], [5e8, 5e8, 5e8 + 30, 5e8 + 30]], 40, 30)
    chips = crop_faces(noise_image(40, 30), faces, size=size)
    assert len(chips) == 2
    assert all(chip.width <= 120 and chip.height <= 90 for chip in chips)
    assert not np.asarray(chips[1]).any()  # far outside: all black
