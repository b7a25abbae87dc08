"""Drawing boxes, anonymising faces and encoding the result (facefaas.render)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, JpegImagePlugin

from facefaas.errors import ParameterError
from facefaas.faces import Faces
from facefaas.render import annotate, anonymize, encode_image, face_rectangles

GREEN = np.array([0, 255, 0], np.uint8)
Array = npt.NDArray[np.uint8]


def noise_image(width: int, height: int, seed: int = 0) -> Array:
    """Random pixels with no pure green, so any green pixel was drawn."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[..., 1] = np.minimum(pixels[..., 1], 250)
    return pixels


def make_faces(boxes: list[list[float]], width: int, height: int, **extra: object) -> Faces:
    n = len(boxes)
    landmarks = extra.get("landmarks", np.zeros((n, 5, 2), np.float32))
    scores = extra.get("scores", np.linspace(0.9, 0.99, n, dtype=np.float32))
    return Faces(
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.asarray(scores, np.float32),
        landmarks=np.asarray(landmarks, np.float32),
        width=width,
        height=height,
    )


def seed_picture(pixels: Array, boxes: list[list[float]]) -> Array:
    """The seed's drawing, by hand: imageproc's hollow rect, pixels outside the image dropped."""
    out = pixels.copy()
    height, width = out.shape[:2]

    def put(x: int, y: int) -> None:
        if 0 <= x < width and 0 <= y < height:
            out[y, x] = GREEN

    for x1, y1, x2, y2 in boxes:
        left, top, right, bottom = int(x1), int(y1), int(x2) - 1, int(y2) - 1
        # Pixels outside the image are dropped one by one; only the loop bounds are clipped.
        for x in range(max(left, -1), min(right, width) + 1):
            put(x, top)
            put(x, bottom)
        for y in range(max(top, -1), min(bottom, height) + 1):
            put(left, y)
            put(right, y)
    return out


def test_annotate_default_matches_a_hand_drawn_small_rectangle() -> None:
    pixels = np.zeros((6, 8, 3), np.uint8)
    faces = make_faces([[1.9, 1.2, 5.99, 4.0]], 8, 6)  # columns 1..4, rows 1..3
    drawn = np.asarray(annotate(Image.fromarray(pixels), faces))
    expected_mask = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 1, 0, 0, 0],
            [0, 1, 0, 0, 1, 0, 0, 0],
            [0, 1, 1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(drawn[expected_mask], np.tile(GREEN, (expected_mask.sum(), 1)))
    assert not drawn[~expected_mask].any()


@pytest.mark.parametrize(
    "boxes",
    [
        pytest.param([[10.7, 5.2, 40.9, 30.01]], id="inside"),
        pytest.param([[-3.7, 2.9, 8.2, 9.99]], id="negative-x-truncates-toward-zero"),
        pytest.param([[50.5, -12.0, 90.0, 20.5]], id="cut-by-top-and-right"),
        pytest.param([[-20.0, -20.0, 100.0, 80.0]], id="larger-than-image"),
        pytest.param([[200.0, 10.0, 260.0, 40.0]], id="entirely-outside"),
        pytest.param([[2.0, 3.0, 30.0, 40.0], [20.0, 25.0, 60.0, 50.0]], id="overlapping"),
        pytest.param([[1e9, -1e9, 2e9, 3.0]], id="absurd-coordinates"),
    ],
)
def test_annotate_default_reproduces_the_seed_pixels(boxes: list[list[float]]) -> None:
    pixels = noise_image(64, 48)
    drawn = np.asarray(annotate(Image.fromarray(pixels), make_faces(boxes, 64, 48)))
    np.testing.assert_array_equal(drawn, seed_picture(pixels, boxes))


def test_annotate_leaves_the_callers_image_alone() -> None:
    pixels = noise_image(32, 32)
    image = Image.fromarray(pixels)
    out = annotate(image, make_faces([[2, 2, 20, 20]], 32, 32))
    np.testing.assert_array_equal(np.asarray(image), pixels)
    assert out is not image and out.mode == "RGB"


def test_annotate_without_faces_returns_an_identical_image() -> None:
    pixels = noise_image(20, 10)
    out = annotate(pixels, Faces.empty(20, 10))
    np.testing.assert_array_equal(np.asarray(out), pixels)


def test_annotate_accepts_encoded_bytes() -> None:
    pixels = noise_image(30, 20)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    boxes = [[3.5, 4.5, 25.0, 15.0]]
    drawn = np.asarray(annotate(buffer.getvalue(), make_faces(boxes, 30, 20)))
    np.testing.assert_array_equal(drawn, seed_picture(pixels, boxes))


def test_annotate_thickness_grows_the_outline_inward() -> None:
    pixels = np.zeros((40, 40, 3), np.uint8)
    drawn = np.asarray(annotate(pixels, make_faces([[5, 6, 30, 32]], 40, 40), thickness=3))
    expected = np.zeros((40, 40), bool)
    expected[6:32, 5:30] = True  # the seed rectangle, columns 5..29, rows 6..31
    expected[9:29, 8:27] = False  # minus its interior three pixels in
    np.testing.assert_array_equal(drawn.any(axis=2), expected)


def test_annotate_draws_in_the_requested_color() -> None:
    drawn = np.asarray(
        annotate(
            np.zeros((20, 20, 3), np.uint8),
            make_faces([[2, 2, 15, 15]], 20, 20),
            color=(255, 0, 128),
        )
    )
    assert tuple(drawn[2, 5]) == (255, 0, 128)
    assert not (drawn == GREEN).all(axis=2).any()


def test_annotate_landmarks_puts_a_dot_on_each_point() -> None:
    points = [[20.0, 20.0], [40.0, 20.0], [30.0, 30.0], [22.0, 40.0], [38.0, 40.0]]
    faces = make_faces([[10, 10, 50, 50]], 60, 60, landmarks=[points])
    plain = np.asarray(annotate(np.zeros((60, 60, 3), np.uint8), faces))
    dotted = np.asarray(annotate(np.zeros((60, 60, 3), np.uint8), faces, landmarks=True))
    changed = (plain != dotted).any(axis=2)
    for x, y in points:
        assert (dotted[int(y), int(x)] == GREEN).all()
        assert changed[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4].sum() >= 9
    ys, xs = np.nonzero(changed)
    distances = np.min(
        np.hypot(xs[:, None] - np.array(points)[:, 0], ys[:, None] - np.array(points)[:, 1]), axis=1
    )
    assert distances.max() <= 3.5  # dots are small and only at the landmarks


def test_annotate_landmarks_outside_the_image_draw_nothing() -> None:
    points = [[-1e30, 5.0], [1e30, 5.0], [float("nan"), 5.0], [5.0, float("inf")], [-50.0, -50.0]]
    faces = make_faces([[0, 0, 10, 10]], 20, 20, landmarks=[points])
    plain = np.asarray(annotate(np.zeros((20, 20, 3), np.uint8), faces))
    dotted = np.asarray(annotate(np.zeros((20, 20, 3), np.uint8), faces, landmarks=True))
    np.testing.assert_array_equal(plain, dotted)


@pytest.mark.parametrize(
    ("box", "label_rows"),
    [
        pytest.param([20, 30, 60, 70], slice(0, 30), id="above-the-box"),
        pytest.param([20, 0, 60, 70], slice(1, 25), id="inside-when-touching-the-top"),
    ],
)
def test_annotate_scores_writes_a_readable_label(box: list[float], label_rows: slice) -> None:
    faces = make_faces([box], 100, 100)
    plain = np.asarray(annotate(np.full((100, 100, 3), 128, np.uint8), faces))
    labelled = np.asarray(annotate(np.full((100, 100, 3), 128, np.uint8), faces, scores=True))
    changed = (plain != labelled).any(axis=2)
    assert changed[label_rows, 20:60].sum() > 30
    assert not changed[75:, :].any() and not changed[:, 65:].any()
    label = labelled[label_rows, 20:60][changed[label_rows, 20:60]]
    assert (label == GREEN).all(axis=1).any()  # the label's background is the box colour
    assert (label.max(axis=1) < 40).sum() >= 10  # dark text on green: readable


def test_annotate_scores_uses_white_text_on_a_dark_colour() -> None:
    faces = make_faces([[20, 30, 60, 70]], 100, 100)
    labelled = np.asarray(
        annotate(np.zeros((100, 100, 3), np.uint8), faces, color=(0, 0, 128), scores=True)
    )
    assert (labelled[:30, 20:60].min(axis=2) > 215).sum() >= 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"color": (0, 255)},
        {"color": (256, 0, 0)},
        {"color": "green"},
        {"thickness": 0},
        {"thickness": 65},
        {"thickness": True},
        {"thickness": 1.5},
    ],
)
def test_annotate_rejects_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        annotate(np.zeros((10, 10, 3), np.uint8), make_faces([[1, 1, 5, 5]], 10, 10), **kwargs)  # type: ignore[arg-type]


def test_annotate_rejects_faces_of_another_image_size() -> None:
    with pytest.raises(ParameterError, match="10x20"):
        annotate(np.zeros((10, 10, 3), np.uint8), make_faces([[1, 1, 5, 5]], 10, 20))


def test_face_rectangles_keeps_at_least_one_pixel() -> None:
    faces = make_faces([[5.2, 7.9, 5.8, 8.1], [-0.5, -0.5, 3.0, 3.0]], 10, 10)
    assert face_rectangles(faces) == [(5, 7, 5, 7), (0, 0, 2, 2)]


def test_anonymize_blur_destroys_detail_only_inside_the_box() -> None:
    pixels = noise_image(120, 100)
    box = [30.0, 20.0, 90.0, 85.0]
    out = np.asarray(anonymize(pixels, make_faces([box], 120, 100), method="blur"))
    inside = np.zeros((100, 120), bool)
    inside[20:85, 30:90] = True
    np.testing.assert_array_equal(out[~inside], pixels[~inside])
    before = pixels[inside].astype(float).var(axis=0).mean()
    after = out[inside].astype(float).var(axis=0).mean()
    assert after < 0.02 * before


def test_anonymize_pixelate_gives_constant_blocks_of_the_mean_colour() -> None:
    pixels = noise_image(100, 100)
    out = np.asarray(anonymize(pixels, make_faces([[10, 20, 60, 70]], 100, 100), method="pixelate"))
    # A 50-pixel face in 10 blocks: 5x5 blocks starting at the box corner.
    for by in range(20, 70, 5):
        for bx in range(10, 60, 5):
            block = out[by : by + 5, bx : bx + 5].reshape(-1, 3)
            assert (block == block[0]).all()
            mean = pixels[by : by + 5, bx : bx + 5].reshape(-1, 3).mean(axis=0)
            assert np.abs(block[0] - mean).max() <= 0.5
    outside = np.ones((100, 100), bool)
    outside[20:70, 10:60] = False
    np.testing.assert_array_equal(out[outside], pixels[outside])


def test_anonymize_pixelate_keeps_the_grid_of_a_face_cut_by_the_border() -> None:
    pixels = noise_image(40, 40)
    out = np.asarray(anonymize(pixels, make_faces([[-5, -5, 45, 45]], 40, 40), method="pixelate"))
    # Blocks of 5 start at -5, so the first full block is columns 0..4.
    for start in (0, 5, 35):
        block = out[start : start + 5, start : start + 5].reshape(-1, 3)
        assert (block == block[0]).all()
    assert not (out[0:5, 0:10].reshape(-1, 3) == out[0, 0]).all()


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_anonymize_margin_grows_the_hidden_area(method: str) -> None:
    pixels = noise_image(100, 100)
    faces = make_faces([[30, 30, 70, 70]], 100, 100)
    plain = np.asarray(anonymize(pixels, faces, method=method))  # type: ignore[arg-type]
    wider = np.asarray(anonymize(pixels, faces, method=method, margin=0.25))  # type: ignore[arg-type]
    assert (plain[25:30, 25:75] == pixels[25:30, 25:75]).all()
    assert (wider[20:30, 20:80] != pixels[20:30, 20:80]).any(axis=2).mean() > 0.9
    np.testing.assert_array_equal(wider[:20], pixels[:20])


def test_anonymize_stronger_pixelation_uses_bigger_blocks() -> None:
    pixels = noise_image(100, 100)
    faces = make_faces([[0, 0, 100, 100]], 100, 100)
    out = np.asarray(anonymize(pixels, faces, method="pixelate", strength=2.5))  # 4 blocks of 25
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 16


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "mosaic"},
        {"strength": 0},
        {"strength": 11},
        {"strength": float("nan")},
        {"margin": 1.5},
    ],
)
def test_anonymize_rejects_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        anonymize(np.zeros((10, 10, 3), np.uint8), make_faces([[1, 1, 5, 5]], 10, 10), **kwargs)  # type: ignore[arg-type]


def test_encode_image_png_round_trips_exactly() -> None:
    pixels = noise_image(33, 17)
    data = encode_image(Image.fromarray(pixels), format="PNG")
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG"
        np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), pixels)


def test_encode_image_defaults_to_the_seeds_jpeg_quality_80() -> None:
    image = Image.fromarray(noise_image(64, 64))
    default = encode_image(image)
    assert default[:3] == b"\xff\xd8\xff"
    assert default == encode_image(image, format="jpg", quality=80)
    assert (
        len(encode_image(image, quality=20)) < len(default) < len(encode_image(image, quality=95))
    )
    with Image.open(io.BytesIO(default)) as decoded:
        assert decoded.size == (64, 64)
        assert JpegImagePlugin.get_sampling(decoded) == 0  # 4:4:4, as the seed's encoder


def test_encode_image_jpeg_keeps_a_one_pixel_green_line_green() -> None:
    pixels = np.full((32, 32, 3), 120, np.uint8)
    pixels[:, 15] = GREEN
    with Image.open(io.BytesIO(encode_image(Image.fromarray(pixels)))) as decoded:
        line = np.asarray(decoded.convert("RGB")).astype(int)[:, 15]
    assert (line[:, 1] > 220).all() and (line[:, [0, 2]] < 60).all()


def test_encode_image_writes_rgba_as_rgb_jpeg() -> None:
    data = encode_image(Image.new("RGBA", (8, 8), (10, 200, 30, 100)))
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "RGB"


@pytest.mark.parametrize(
    ("format", "quality"),
    [("gif", 80), ("", 80), ("jpeg", 0), ("jpeg", 101), ("png", True), ("jpeg", 80.0)],
)
def test_encode_image_rejects_bad_format_or_quality(format: str, quality: int) -> None:
    with pytest.raises(ParameterError):
        encode_image(Image.new("RGB", (4, 4)), format=format, quality=quality)
