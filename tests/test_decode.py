"""The image input edge: sources, formats, colour modes, EXIF orientation, limits and refusals.

Test images are generated with Pillow in memory or in tmp dirs from one known pattern: colour
blocks at known places, so a wrong channel order, flip or rotation changes a checked pixel.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFile

from facefaas.decode import DEFAULT_MAX_PIXELS, DecodedImage, load_image
from facefaas.errors import (
    FacefaasError,
    ImageDecodeError,
    InputError,
    ParameterError,
    TooLargeError,
)

Array = npt.NDArray[np.uint8]

H, W = 48, 64
BACKGROUND = (64, 64, 64)
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
# block colour -> (top, left) of a 16x16 block; centres are checked for lossy formats
BLOCKS = {RED: (8, 8), GREEN: (8, 40), BLUE: (28, 8)}


def pattern() -> Array:
    """``(48, 64, 3)`` RGB: dark gray with a red block top-left, green top-right, blue below red."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BACKGROUND
    for colour, (top, left) in BLOCKS.items():
        img[top : top + 16, left : left + 16] = colour
    return img


def encode(im: Image.Image, fmt: str, **save: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def block_centres(pixels: Array) -> dict[tuple[int, int, int], Array]:
    return {
        c: pixels[top + 6 : top + 10, left + 6 : left + 10] for c, (top, left) in BLOCKS.items()
    }


def assert_pattern(pixels: Array, expected: Array, tol: int) -> None:
    """Lossless (tol 0): every pixel; lossy: the centres of the blocks within ``tol``."""
    assert pixels.shape == expected.shape
    if tol == 0:
        np.testing.assert_array_equal(pixels, expected)
        return
    wanted = block_centres(expected)
    for colour, got in block_centres(pixels).items():
        diff = np.abs(got.astype(int) - wanted[colour]).max()
        assert diff <= tol, f"block {colour}: off by {diff}"


# --- the decoding matrix -------------------------------------------------------------------


def rgb_image() -> Image.Image:
    return Image.fromarray(pattern())


def gray_expected() -> Array:
    gray = np.asarray(rgb_image().convert("L"))
    return np.repeat(gray[:, :, None], 3, axis=2)


def palette_image() -> Image.Image:
    return rgb_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)


def red_as_gray() -> Array:
    return np.repeat(pattern()[:, :, :1], 3, axis=2)


def bilevel_expected() -> Array:
    bits = np.asarray(rgb_image().convert("L")) >= 128
    return np.repeat(np.where(bits, 255, 0).astype(np.uint8)[:, :, None], 3, axis=2)


# (format, mode, save options, tolerance, expected pixels)
MATRIX: list[tuple[str, str, dict[str, Any], int, Callable[[], Array]]] = [
    ("JPEG", "RGB", {"quality": 95, "subsampling": 0}, 12, pattern),
    ("JPEG", "L", {"quality": 95}, 12, gray_expected),
    ("JPEG", "CMYK", {"quality": 95}, 12, pattern),
    ("PNG", "RGB", {}, 0, pattern),
    ("PNG", "L", {}, 0, gray_expected),
    ("PNG", "P", {}, 0, pattern),
    ("PNG", "1", {}, 0, bilevel_expected),
    ("PNG", "RGBA", {}, 0, pattern),
    ("PNG", "LA", {}, 0, gray_expected),
    ("GIF", "P", {}, 0, pattern),
    ("GIF", "L", {}, 0, gray_expected),
    ("BMP", "RGB", {}, 0, pattern),
    ("BMP", "P", {}, 0, pattern),
    ("BMP", "1", {}, 0, bilevel_expected),
    ("WEBP", "RGB", {"lossless": True}, 0, pattern),
    ("WEBP", "RGBA", {"lossless": True}, 0, pattern),
    ("WEBP", "RGB", {"quality": 95}, 20, pattern),
    ("TIFF", "RGB", {}, 0, pattern),
    ("TIFF", "RGB", {"compression": "tiff_lzw"}, 0, pattern),
    ("TIFF", "RGBA", {}, 0, pattern),
    ("TIFF", "CMYK", {}, 0, pattern),
    ("TIFF", "L", {}, 0, gray_expected),
    ("TIFF", "P", {}, 0, pattern),
    ("TIFF", "1", {}, 0, bilevel_expected),
    ("PPM", "RGB", {}, 0, pattern),
    ("TGA", "RGB", {}, 0, pattern),
]


@pytest.mark.parametrize(
    ("fmt", "mode", "save", "tol", "expected"),
    MATRIX,
    ids=[f"{f}-{m}-{i}" for i, (f, m, *_rest) in enumerate(MATRIX)],
)
def test_format_and_mode_decode_to_the_known_rgb_pattern(
    fmt: str, mode: str, save: dict[str, Any], tol: int, expected: Callable[[], Array]
) -> None:
    if mode == "P":
        im = palette_image()
    elif mode == "1":
        im = rgb_image().convert("L").convert("1", dither=Image.Dither.NONE)
    else:
        im = rgb_image().convert(mode)
    decoded = load_image(encode(im, fmt, **save))
    assert decoded.format == fmt
    assert decoded.orientation == 1
    assert (decoded.width, decoded.height) == (W, H)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.flags.c_contiguous
    assert not decoded.pixels.flags.writeable
    assert_pattern(decoded.pixels, expected(), tol)


Make = Callable[[Image.Image], Image.Image]
IN_MEMORY: dict[str, tuple[Make, Callable[[], Array], int]] = {
    # mode: (make from the RGB pattern, expected pixels, tolerance of the round trip)
    "YCbCr": (lambda im: im.convert("YCbCr"), pattern, 2),
    "RGBX": (lambda im: im.convert("RGBX"), pattern, 0),
    "RGBa": (lambda im: im.convert("RGBA").convert("RGBa"), pattern, 0),
    "LA": (lambda im: im.convert("LA"), gray_expected, 0),
    "La": (lambda im: im.convert("LA").convert("La"), gray_expected, 0),
    "PA": (lambda im: palette_image().convert("PA"), pattern, 0),
    "HSV": (lambda im: im.convert("HSV"), pattern, 2),
    # mode I is read as 16-bit, so v * 257 comes back as v
    "I": (lambda im: Image.fromarray(pattern()[:, :, 0].astype(np.int32) * 257), red_as_gray, 0),
}


@pytest.mark.parametrize("mode", sorted(IN_MEMORY))
def test_in_memory_pil_modes_convert_to_rgb(mode: str) -> None:
    make, expected, tol = IN_MEMORY[mode]
    im = make(rgb_image())
    assert im.mode == mode
    decoded = load_image(im)
    assert decoded.format is None
    np.testing.assert_allclose(decoded.pixels, expected(), atol=tol)


# --- 16-bit and other deep samples ---------------------------------------------------------

DEEP = np.array([[0, 0x00FF, 0x0100, 0x1234, 0x8000, 0xFFFF]], np.uint16)
DEEP_AS_8BIT = np.array([[0, 0, 1, 0x12, 0x80, 0xFF]], np.uint8)  # high byte, never clipped


@pytest.mark.parametrize(
    ("fmt", "mode"), [("PNG", "I;16"), ("TIFF", "I;16"), ("TIFF", "I;16B"), ("TIFF", "I")]
)
def test_16_bit_grayscale_keeps_the_high_byte(fmt: str, mode: str) -> None:
    if mode == "I;16B":
        im = Image.frombytes(mode, (6, 1), DEEP.astype(">u2").tobytes())
    elif mode == "I":
        im = Image.fromarray(DEEP.astype(np.int32))
    else:
        im = Image.fromarray(DEEP)
    stored = Image.open(io.BytesIO(encode(im, fmt)))
    assert stored.mode == mode  # the file really is deep
    decoded = load_image(encode(im, fmt))
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[:, :, channel], DEEP_AS_8BIT)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0, float("nan")], [0, 128, 255, 0]),  # all <= 1: a 0..1 image
        ([0.0, 100.0, 255.0, 300.0], [0, 100, 255, 255]),  # else 0..255, clipped
    ],
)
def test_float_tiff_is_read_as_unit_or_byte_range(values: list[float], expected: list[int]) -> None:
    im = Image.fromarray(np.array([values], np.float32))
    decoded = load_image(encode(im, "TIFF"))
    np.testing.assert_array_equal(decoded.pixels[0, :, 1], expected)


# --- transparency ---------------------------------------------------------------------------


def test_transparent_png_pixels_are_composited_onto_white() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0] = [(255, 0, 0, 255), (255, 0, 0, 0), (255, 0, 0, 128)]
    rgba[1] = [(0, 0, 255, 255), (0, 255, 0, 0), (0, 0, 0, 51)]
    decoded = load_image(encode(Image.fromarray(rgba), "PNG"))
    expected = [
        [(255, 0, 0), (255, 255, 255), (255, 127, 127)],
        [(0, 0, 255), (255, 255, 255), (204, 204, 204)],
    ]
    np.testing.assert_allclose(decoded.pixels, expected, atol=1)


def test_rgb_png_colour_key_becomes_white() -> None:
    decoded = load_image(encode(rgb_image(), "PNG", transparency=BACKGROUND))
    expected = pattern()
    expected[(expected == BACKGROUND).all(axis=2)] = 255
    np.testing.assert_array_equal(decoded.pixels, expected)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_transparent_palette_entry_becomes_white(fmt: str) -> None:
    im = palette_image()
    red_index = im.getpixel((BLOCKS[RED][1], BLOCKS[RED][0]))
    decoded = load_image(encode(im, fmt, transparency=red_index))
    red = block_centres(decoded.pixels)[RED]
    assert (red == 255).all()
    assert tuple(decoded.pixels[16, 48]) == GREEN


# --- EXIF orientation -----------------------------------------------------------------------


def asymmetric() -> Array:
    """Stored pixels: a 2x3 image whose 6 pixels all differ, scaled up 8x for JPEG."""
    cells = np.array(
        [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), (255, 0, 255)]],
        np.uint8,
    )
    return np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)


# Orientation n, from the EXIF spec's "0th row / 0th column" definitions, as numpy on the
# stored pixels S (not Pillow's table): 1 top/left, 2 top/right, 3 bottom/right,
# 4 bottom/left, 5 left/top, 6 right/top, 7 right/bottom, 8 left/bottom.
UPRIGHT: dict[int, Callable[[Array], Array]] = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],
    3: lambda s: s[::-1, ::-1],
    4: lambda s: s[::-1],
    5: lambda s: s.swapaxes(0, 1),
    6: lambda s: np.rot90(s, -1),  # rotate 90 degrees clockwise to display
    7: lambda s: np.rot90(s.swapaxes(0, 1), 2),
    8: lambda s: np.rot90(s, 1),  # rotate 90 degrees counter-clockwise to display
}


def with_orientation(fmt: str, orientation: int, **save: Any) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(asymmetric()), fmt, exif=exif, **save)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied_and_recorded(fmt: str, orientation: int) -> None:
    decoded = load_image(with_orientation(fmt, orientation, quality=95, subsampling=0))
    expected = UPRIGHT[orientation](asymmetric())
    assert decoded.orientation == orientation
    assert decoded.pixels.shape == expected.shape
    # compare the centre of each 8x8 cell (exact for PNG, JPEG within its error)
    centres = (slice(4, None, 8), slice(4, None, 8))
    diff = np.abs(decoded.pixels[centres].astype(int) - expected[centres]).max()
    assert diff <= (0 if fmt == "PNG" else 12)


@pytest.mark.parametrize("value", [0, 9, 255])
def test_out_of_range_orientation_is_ignored(value: int) -> None:
    decoded = load_image(with_orientation("PNG", value))
    assert decoded.orientation == 1
    np.testing.assert_array_equal(decoded.pixels, asymmetric())


def test_pil_image_source_is_oriented_without_being_modified() -> None:
    im = Image.open(io.BytesIO(with_orientation("PNG", 6)))
    decoded = load_image(im)
    assert decoded.orientation == 6
    assert decoded.format == "PNG"
    np.testing.assert_array_equal(decoded.pixels, UPRIGHT[6](asymmetric()))
    assert im.size == (24, 16)
    assert im.getexif()[0x0112] == 6


# --- sources --------------------------------------------------------------------------------


class Unseekable(io.RawIOBase):
    """A socket-like stream: no seek, and short reads of at most 100 bytes when sized."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._inner.read()
        return self._inner.read(min(size, 100))


def test_every_source_kind_gives_the_same_pixels(tmp_path: Path) -> None:
    data = encode(rgb_image(), "PNG")
    path = tmp_path / "pattern.png"
    path.write_bytes(data)
    sources: list[Any] = [
        data,
        bytearray(data),
        memoryview(data),
        str(path),
        path,
        io.BytesIO(data),
        Unseekable(data),
        Image.open(io.BytesIO(data)),
        pattern(),
    ]
    for source in sources:
        decoded = load_image(source)
        np.testing.assert_array_equal(decoded.pixels, pattern(), err_msg=type(source).__name__)


def test_short_reads_of_a_stream_are_joined_under_a_byte_limit() -> None:
    data = encode(rgb_image(), "BMP")
    assert len(data) > 1000  # so the stream needs many 100-byte reads
    decoded = load_image(Unseekable(data), max_bytes=len(data))
    np.testing.assert_array_equal(decoded.pixels, pattern())


def test_a_decoded_image_is_returned_unchanged() -> None:
    decoded = load_image(pattern())
    assert load_image(decoded, channels="bgr", max_pixels=1) is decoded


def test_multi_frame_gif_and_tiff_give_the_first_frame() -> None:
    red = Image.new("RGB", (8, 8), RED)
    blue = Image.new("RGB", (8, 8), BLUE)
    for fmt in ("GIF", "TIFF", "WEBP"):
        data = encode(red, fmt, save_all=True, append_images=[blue], lossless=True)
        assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
        assert (load_image(data).pixels == RED).all(), fmt


# --- arrays ---------------------------------------------------------------------------------


def test_bgr_array_is_reordered_to_rgb() -> None:
    bgr = np.ascontiguousarray(pattern()[:, :, ::-1])
    np.testing.assert_array_equal(load_image(bgr, channels="bgr").pixels, pattern())
    assert tuple(load_image(bgr).pixels[16, 16]) == BLUE  # taken as RGB when not told


def test_bgra_array_is_reordered_and_composited() -> None:
    bgra = np.zeros((1, 2, 4), np.uint8)
    bgra[0] = [(255, 0, 0, 255), (255, 0, 0, 0)]  # opaque blue, transparent
    decoded = load_image(bgra, channels="bgr")
    np.testing.assert_array_equal(decoded.pixels[0], [BLUE, (255, 255, 255)])


@pytest.mark.parametrize("shape", [(H, W), (H, W, 1)])
def test_grayscale_array_is_replicated(shape: tuple[int, ...]) -> None:
    gray = np.arange(H * W, dtype=np.uint8).reshape(shape)
    decoded = load_image(gray)
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[:, :, channel], gray.reshape(H, W))


def test_rgba_array_drops_opaque_alpha_and_whitens_transparency() -> None:
    rgba = np.dstack([pattern(), np.full((H, W), 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba).pixels, pattern())
    rgba[0:8, :, 3] = 0
    decoded = load_image(rgba)
    assert (decoded.pixels[0:8] == 255).all()
    np.testing.assert_array_equal(decoded.pixels[8:], pattern()[8:])


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_uint16_array_keeps_the_high_byte(dtype: str) -> None:
    decoded = load_image(np.repeat(DEEP[:, :, None], 3, axis=2).astype(dtype))
    np.testing.assert_array_equal(decoded.pixels[:, :, 0], DEEP_AS_8BIT)


def test_array_pixels_are_a_read_only_copy() -> None:
    source = pattern()
    decoded = load_image(source)
    source[:] = 0
    np.testing.assert_array_equal(decoded.pixels, pattern())
    with pytest.raises(ValueError):
        decoded.pixels[0, 0, 0] = 1


def test_non_contiguous_array_view_is_accepted() -> None:
    wide = np.zeros((H, 2 * W, 3), np.uint8)
    wide[:, ::2] = pattern()
    decoded = load_image(wide[:, ::2])
    assert decoded.pixels.flags.c_contiguous
    np.testing.assert_array_equal(decoded.pixels, pattern())


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((4, 4, 3), np.float32), "float32"),
        (np.zeros((4, 4, 3), np.float64), "float64"),
        (np.zeros((4, 4, 3), bool), "bool"),
        (np.zeros((4, 4, 3), np.int32), "int32"),
        (np.zeros((4, 4, 2), np.uint8), "(4, 4, 2)"),
        (np.zeros((4, 4, 5), np.uint8), "(4, 4, 5)"),
        (np.zeros((16,), np.uint8), "(16,)"),
        (np.zeros((1, 4, 4, 3), np.uint8), "(1, 4, 4, 3)"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_bad_array_is_refused_naming_the_problem(array: Any, words: str) -> None:
    with pytest.raises(ParameterError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_image(array)


def test_decoded_image_constructor_validates_and_freezes() -> None:
    with pytest.raises(ParameterError):
        DecodedImage(np.zeros((4, 4), np.uint8))
    with pytest.raises(ParameterError):
        DecodedImage(np.zeros((4, 4, 3), np.uint8), orientation=0)
    source = pattern()
    image = DecodedImage(source)
    source[:] = 0
    assert not image.pixels.flags.writeable
    np.testing.assert_array_equal(image.pixels, pattern())


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [b"", bytearray(), io.BytesIO(b"")])
def test_empty_input_is_refused(source: Any) -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(source)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.6])
def test_truncated_file_is_refused(fmt: str, keep: float) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy), fmt)
    with pytest.raises(ImageDecodeError, match=r"truncated|corrupt|recognised"):
        load_image(data[: int(len(data) * keep)])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_jpeg_missing_its_end_marker_is_refused() -> None:
    data = encode(Image.fromarray(pattern()), "JPEG")
    with pytest.raises(ImageDecodeError, match="JPEG image: truncated"):
        load_image(data[:-2])


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b"hello, this is plain text and not a picture\n" * 10,
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS: refused (Ghostscript)
    ],
    ids=["random", "text", "svg", "eps"],
)
def test_non_image_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="not in a recognised image format"):
        load_image(data)


def png_declaring(width: int, height: int) -> bytes:
    """A small valid 1x1 PNG whose IHDR is rewritten to claim ``width x height``."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = data[12:29]  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# 8000x7000 is over our 50 Mpx only; 10000x9000 also trips Pillow's warning (89 Mpx); the
# others Pillow's hard error (179 Mpx). All must end as the same TooLargeError, silently.
BOMBS = [
    ("png-56M", png_declaring(8000, 7000)),
    ("png-90M", png_declaring(10_000, 9000)),
    ("png-10G", png_declaring(100_000, 100_000)),
    ("gif-90M", gif_declaring(10_000, 9000)),
    ("gif-4G", gif_declaring(65_535, 65_535)),
    ("jpeg-90M", jpeg_declaring(10_000, 9000)),
    ("jpeg-4G", jpeg_declaring(65_000, 65_000)),
]


@pytest.mark.parametrize("data", [b for _, b in BOMBS], ids=[n for n, _ in BOMBS])
def test_decompression_bomb_is_refused_from_its_header(data: bytes) -> None:
    assert len(data) < 1000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TooLargeError) as excinfo:
            load_image(data)
    assert (excinfo.value.limit, excinfo.value.unit) == (DEFAULT_MAX_PIXELS, "pixels")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_fourteen_megapixel_header_is_under_the_default_limit() -> None:
    with pytest.raises(ImageDecodeError):  # gets past the limit, then fails on the missing data
        load_image(png_declaring(4600, 3061))


def test_pixel_limit_is_ours_not_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.new("RGB", (20, 20)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(TooLargeError, match="20x20 = 400 pixels") as excinfo:
        load_image(data, max_pixels=399)
    assert (excinfo.value.limit, excinfo.value.unit) == (399, "pixels")
    assert load_image(data, max_pixels=400).width == 20
    for source in (np.zeros((20, 20, 3), np.uint8), Image.new("RGB", (20, 20))):
        with pytest.raises(TooLargeError):
            load_image(source, max_pixels=399)


def test_a_limit_above_pillows_warning_level_decodes_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 px: Pillow would warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = load_image(encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=1000)
    assert decoded.width == 20
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_too_many_bytes_is_refused_for_every_byte_source(tmp_path: Path) -> None:
    data = encode(rgb_image(), "PNG")
    path = tmp_path / "p.png"
    path.write_bytes(data)
    for source in (data, memoryview(data), path, io.BytesIO(data), Unseekable(data)):
        with pytest.raises(TooLargeError, match=f"{len(data)} bytes") as excinfo:
            load_image(source, max_bytes=len(data) - 1)
        assert (excinfo.value.limit, excinfo.value.unit) == (len(data) - 1, "bytes")
        if isinstance(source, io.IOBase):
            source.seek(0) if source.seekable() else None
    assert load_image(data, max_bytes=len(data)).width == W


def test_missing_path_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match=r"nope\.jpg"):
        load_image(missing)
    with pytest.raises(InputError, match="cannot open"):
        load_image(tmp_path)  # a directory
    with pytest.raises(InputError) as excinfo:
        load_image("iVBORw0KGgo" * 1000)  # base64 passed as a path: not echoed whole
    assert len(str(excinfo.value)) < 200


@pytest.mark.parametrize(
    "source", [None, 42, 3.5, ["a.jpg"], {"path": "a.jpg"}, io.StringIO("text")]
)
def test_wrong_source_type_is_a_parameter_error(source: Any) -> None:
    with pytest.raises(ParameterError):
        load_image(source)


@pytest.mark.parametrize(
    "options",
    [
        {"channels": "rgba"},
        {"channels": "RGB"},
        {"max_pixels": 0},
        {"max_pixels": True},
        {"max_pixels": 1.5e6},
        {"max_bytes": 0},
        {"max_bytes": "10"},
    ],
)
def test_bad_options_are_parameter_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        load_image(pattern(), **options)


@pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")  # Pillow, on bad TIFF tags
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "WEBP"])
def test_corrupted_bytes_never_escape_as_anything_but_our_errors(fmt: str) -> None:
    rng = np.random.default_rng(7)
    data = encode(palette_image() if fmt == "GIF" else rgb_image(), fmt)
    for _ in range(40):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data), 4):
            mutated[position] = int(rng.integers(0, 256))
        try:
            decoded = load_image(bytes(mutated))
        except FacefaasError:
            continue
        assert decoded.pixels.ndim == 3


# --- real files from ../shared -------------------------------------------------------------


def raw_pixels(path: Path) -> Array:
    """The stored pixels as Pillow decodes them, orientation not applied."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize(
    ("name", "orientation", "upright"),
    [
        ("pillow__hopper_orientation_6.jpg", 6, UPRIGHT[6]),
        ("pillow__hopper_orientation_8.jpg", 8, UPRIGHT[8]),
        ("exif-orientation-examples__Portrait_6.jpg", 6, UPRIGHT[6]),
    ],
)
def test_exif_rotated_photos_come_out_upright(
    shared: Path, name: str, orientation: int, upright: Callable[[Array], Array]
) -> None:
    path = shared / "eval" / "photos" / name
    decoded = load_image(path)
    assert (decoded.format, decoded.orientation) == ("JPEG", orientation)
    np.testing.assert_array_equal(decoded.pixels, upright(raw_pixels(path)))


def test_both_rotated_hoppers_show_the_same_upright_picture(shared: Path) -> None:
    photos = shared / "eval" / "photos"
    six = load_image(photos / "pillow__hopper_orientation_6.jpg").pixels.astype(int)
    eight = load_image(photos / "pillow__hopper_orientation_8.jpg").pixels.astype(int)
    assert np.abs(six - eight).mean() < 3  # JPEG noise only
    assert np.abs(six - np.rot90(eight, 2)).mean() > 20  # not merely both rotated alike


def test_rgba_png_photo_drops_its_opaque_alpha(shared: Path) -> None:
    path = shared / "eval" / "photos" / "face_recognition__32bit.png"
    decoded = load_image(path)
    assert (decoded.format, decoded.width, decoded.height) == ("PNG", 626, 1200)
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(decoded.pixels, np.asarray(im)[:, :, :3])


@pytest.mark.parametrize("name", ["pillow__hopper_gray.jpg", "scikit-image__camera.png"])
def test_grayscale_photo_has_three_equal_channels(shared: Path, name: str) -> None:
    path = shared / "eval" / "photos" / name
    decoded = load_image(path)
    with Image.open(path) as im:
        assert im.mode == "L"
        gray = np.asarray(im)
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[:, :, channel], gray)


def test_fourteen_megapixel_photo_passes_the_default_limit(shared: Path) -> None:
    decoded = load_image(shared / "eval" / "photos" / "deepface__img40.jpg")
    assert (decoded.width, decoded.height) == (3061, 4600)
    assert decoded.width * decoded.height < DEFAULT_MAX_PIXELS
