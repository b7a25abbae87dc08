"""Fuzz `facefaas.decode.load_image` with mutated small images of every common format.

Property: any bytes give an upright RGB `DecodedImage` within the pixel cap, or one of
`facefaas.errors`; never another exception, never more pixels than the cap.

Why hypothesis and not atheris: atheris installs here (a manylinux wheel), but it is a libFuzzer
loop that owns the process (one target per process, ``sys.exit`` at the end, its own corpus
folders), its coverage guidance sees only Python bytecode (Pillow's decoders are C, built without
its instrumentation), and its runs are not reproducible from a seed inside pytest. Hypothesis
runs inside pytest, replays exactly in CI (``derandomize``), shrinks a failure to a small input,
and schemathesis (the API conformance test) is built on it already.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from PIL import Image

from facefaas.decode import DecodedImage, load_image
from facefaas.errors import FacefaasError
from fuzz.mutate import budget, mutated

MAX_PIXELS = 1_000_000  # the service tests' cap: large enough for headers to claim more


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@cache
def image_seeds() -> tuple[bytes, ...]:
    """Small valid files: PNG (RGB, RGBA, palette, 16-bit gray), JPEG (with an EXIF rotation),
    GIF (two frames), WebP (lossy, lossless with alpha), TIFF (raw, LZW), BMP, and a few formats
    Pillow also reads (ICO, TGA, PPM, PCX)."""
    y, x = np.mgrid[0:12, 0:16]
    rgb = Image.fromarray(np.stack([x * 16, y * 20, (x + y) * 8], axis=2).astype(np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray((x * 16).astype(np.uint8)))
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [rgb.convert("P"), rgb.rotate(90).convert("P")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=10)
    return (
        _encode(rgb, "PNG"),
        _encode(rgba, "PNG"),
        _encode(rgb.convert("P"), "PNG", transparency=0),
        _encode(Image.fromarray((x * 4000).astype(np.uint16)), "PNG"),
        _encode(rgb, "JPEG", quality=80, exif=exif.tobytes()),
        _encode(rgb.convert("L"), "JPEG", progressive=True),
        gif.getvalue(),
        _encode(rgb, "WEBP", quality=50),
        _encode(rgba, "WEBP", lossless=True),
        _encode(rgb, "TIFF"),
        _encode(rgba, "TIFF", compression="tiff_lzw"),
        _encode(rgb, "BMP"),
        _encode(rgb, "ICO"),
        _encode(rgb, "TGA"),
        _encode(rgb, "PPM"),
        _encode(rgb, "PCX"),
    )


def check_decodes_or_refuses(data: bytes) -> None:
    """The fuzz property, also used by the regression tests."""
    try:
        decoded = load_image(data, max_pixels=MAX_PIXELS)
    except FacefaasError:
        return
    assert isinstance(decoded, DecodedImage)
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape[2] == 3
    assert decoded.width * decoded.height <= MAX_PIXELS


def test_seeds_decode() -> None:
    for seed in image_seeds():
        assert load_image(seed).width in (16, 12)


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on corrupt metadata
@budget(4000)
@given(mutated(image_seeds()))
def test_mutated_images_decode_within_the_cap_or_raise_our_errors(data: bytes) -> None:
    check_decodes_or_refuses(data)
