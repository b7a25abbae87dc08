"""Pictures of a detection: boxes drawn on the image, faces blurred or pixelated, encoded bytes.

Every function takes the image in any form :func:`facefaas.decode.load_image` accepts (bytes, a
path, a binary file, a PIL image, an ``(H, W, 3)`` array), or a ``DecodedImage``, and works on the
*oriented* RGB image, the one the coordinates of :class:`~facefaas.faces.Faces` refer to. The
caller's image is never modified; a new ``PIL.Image.Image`` (mode ``RGB``) is returned.

Pixel conventions follow the seed: a box ``(x1, y1, x2, y2)`` covers the pixel columns
``int(x1) .. int(x2) - 1`` and rows ``int(y1) .. int(y2) - 1`` (``int`` truncates toward zero, like
the seed's Rust ``as i32``); whatever falls outside the image is clipped away.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from facefaas.errors import ParameterError
from facefaas.faces import Faces

__all__ = [
    "ANONYMIZE_METHODS",
    "AnonymizeMethod",
    "annotate",
    "anonymize",
    "as_image",
    "encode_image",
    "face_rectangles",
    "parse_color",
]

Color = tuple[int, int, int]
Rect = tuple[int, int, int, int]  # left, top, right, bottom: inclusive pixel indices
Box = tuple[int, int, int, int]  # left, top, right, bottom: half-open, as PIL's crop takes

SEED_COLOR: Color = (0, 255, 0)
SEED_JPEG_QUALITY = 80
MAX_THICKNESS = 64

# Anonymisation at strength 1: a Gaussian whose sigma is this fraction of the face's longer side
# (features smaller than ~a quarter of the face, i.e. eyes, nose and mouth, are gone), or this
# many blocks across the face's longer side.
BLUR_SIGMA_PER_SIDE = 0.12
PIXELATE_BLOCKS = 10
MAX_STRENGTH = 10.0
REDACT_COLOR: Color = (0, 0, 0)

AnonymizeMethod = Literal["blur", "pixelate", "redact"]
ANONYMIZE_METHODS: tuple[AnonymizeMethod, ...] = ("blur", "pixelate", "redact")


def as_image(image: Any) -> Image.Image:
    """The oriented RGB image of ``image`` as a new PIL image (mode ``RGB``).

    ``image`` is a ``DecodedImage`` or anything :func:`facefaas.decode.load_image` accepts; it is
    decoded with that function's defaults (limits included).
    """
    from facefaas.decode import DecodedImage, load_image

    decoded = image if isinstance(image, DecodedImage) else load_image(image)
    # Pillow stores RGB in 4-byte pixels, so this is always a copy: drawing never writes through.
    return Image.fromarray(decoded.pixels).convert("RGB")


def _check_size(img: Image.Image, faces: Faces) -> None:
    if not isinstance(faces, Faces):
        raise ParameterError(f"faces must be a Faces result, got {type(faces).__name__}")
    if (faces.width, faces.height) != img.size:
        raise ParameterError(
            f"the faces refer to a {faces.width}x{faces.height} image but the image is "
            f"{img.width}x{img.height} (pass the oriented image the faces were detected on)"
        )


def face_rectangles(faces: Faces, *, margin: float = 0.0) -> list[Rect]:
    """The seed's pixel rectangle of each face, ``(left, top, right, bottom)`` inclusive.

    ``left = int(x1)``, ``right = int(x2) - 1``, likewise for rows; a box under one pixel wide
    (where the seed crashed) keeps one column (row): ``right >= left``. With
    ``margin`` each side first moves out by ``margin`` times the box's width (height). Rectangles
    are not clipped; coordinates far outside the image are clamped to just outside it.
    """
    limit = 4 * max(faces.width, faces.height) + 2 * MAX_THICKNESS  # beyond this nothing changes
    rects: list[Rect] = []
    for x1, y1, x2, y2 in faces.boxes.tolist():
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise ParameterError("a face box has a non-finite coordinate")
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        x1, y1, x2, y2 = (min(max(v, -limit), limit) for v in (x1 - dx, y1 - dy, x2 + dx, y2 + dy))
        left, top = int(x1), int(y1)
        rects.append((left, top, max(left, int(x2) - 1), max(top, int(y2) - 1)))
    return rects


def _check_color(color: Sequence[int]) -> Color:
    values = tuple(color) if isinstance(color, Sequence) and not isinstance(color, str) else ()
    if len(values) != 3 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values
    ):
        raise ParameterError(f"color must be three integers 0..255 (R, G, B), got {color!r}")
    return (values[0], values[1], values[2])


def parse_color(text: str) -> Color:
    """``"#ff8000"``, ``"ff8000"`` or ``"#f80"`` as an RGB tuple (else :class:`ParameterError`)."""
    value = text.strip().removeprefix("#") if isinstance(text, str) else ""
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ParameterError(f"a colour is written #rrggbb (hex), got {text!r}")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def annotate(
    image: Any,
    faces: Faces,
    *,
    color: Sequence[int] = SEED_COLOR,
    thickness: int = 1,
    landmarks: bool = False,
    scores: bool = False,
) -> Image.Image:
    """The image with a hollow rectangle drawn around every face.

    The defaults give the seed's picture exactly: a 1-pixel pure green outline from
    ``(int(x1), int(y1))`` to ``(int(x2) - 1, int(y2) - 1)``, clipped to the image, nothing else
    drawn. ``thickness`` (pixels, 1..64) grows the outline inward; ``landmarks`` adds a filled dot
    on each of the five points; ``scores`` writes the score (three decimals, truncated) in
    Pillow's default font (larger on images over 600 px) on a label in the box colour, with black
    or white text whichever contrasts more, above the box (inside it when there is no room).
    """
    img = as_image(image)
    _check_size(img, faces)
    rgb = _check_color(color)
    width = _check_int("thickness", thickness, 1, MAX_THICKNESS)
    draw = ImageDraw.Draw(img)
    rects = face_rectangles(faces)
    for rect in rects:
        draw.rectangle(rect, outline=rgb, width=width)
    if landmarks:
        radius = width + 1
        for points in faces.landmarks.tolist():
            for x, y in points:
                # Dots entirely outside the image (or not finite) have nothing to draw.
                if -radius < x < img.width + radius and -radius < y < img.height + radius:
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=rgb)
    if scores:
        font = _label_font(img.size)
        for rect, score in zip(rects, faces.scores.tolist(), strict=True):
            # Truncated, not rounded: 0.9996 reads 0.999, never a score of 1.000 it did not get.
            text = f"{math.floor(score * 1000) / 1000:.3f}" if math.isfinite(score) else "?"
            _draw_label(draw, rect, text, rgb, font)
    return img


def _label_font(image_size: tuple[int, int]) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font, 10 px tall up to 600 px images, growing with larger ones."""
    from PIL import features

    size = max(10, min(image_size) // 60)
    if size > 10 and features.check("freetype2"):
        return ImageFont.load_default(size)
    return ImageFont.load_default()


def _draw_label(
    draw: ImageDraw.ImageDraw,
    rect: Rect,
    text: str,
    color: Color,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_w, text_h = right - left, bottom - top
    pad = 1
    label_h = text_h + 2 * pad
    # Above the box when there is room, else just inside its top edge.
    y0 = rect[1] - label_h if rect[1] - label_h >= 0 else rect[1]
    x0 = rect[0]
    draw.rectangle((x0, y0, x0 + text_w + 2 * pad - 1, y0 + label_h - 1), fill=color)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    ink = (0, 0, 0) if luminance >= 128 else (255, 255, 255)
    draw.text((x0 + pad - left, y0 + pad - top), text, fill=ink, font=font)


def anonymize(
    image: Any,
    faces: Faces,
    *,
    method: AnonymizeMethod = "blur",
    strength: float = 1.0,
    margin: float = 0.0,
    color: Sequence[int] = REDACT_COLOR,
) -> Image.Image:
    """The image with every face blurred, pixelated or redacted beyond recognition.

    Each face's seed rectangle (see :func:`face_rectangles`), grown by ``margin`` (a fraction of
    the box size per side, 0..1), clipped to the image, is replaced; pixels outside all of them
    are unchanged.

    - ``"blur"``: a Gaussian with sigma ``0.12 * strength`` times the face's longer side
      (computed with the surrounding pixels as context, so the patch blends in).
    - ``"pixelate"``: blocks of the mean colour, about ``10 / strength`` blocks across the face's
      longer side (at least 2), aligned with the rectangle's top-left corner.
    - ``"redact"``: filled with the solid ``color`` (RGB, black by default). Unlike a light blur
      or coarse blocks, nothing of the face is left to recover.

    ``strength`` is in ``(0, 10]``: higher hides more (blur and pixelate).
    """
    if method not in ANONYMIZE_METHODS:
        methods = ", ".join(repr(m) for m in ANONYMIZE_METHODS)
        raise ParameterError(f"method must be one of {methods}, got {method!r}")
    fill = _check_color(color)
    strength = _check_fraction("strength", strength, 0.0, MAX_STRENGTH, low_open=True)
    margin = _check_fraction("margin", margin, 0.0, 1.0)
    img = as_image(image)
    _check_size(img, faces)
    for left, top, right, bottom in face_rectangles(faces, margin=margin):
        side = max(right - left, bottom - top) + 1
        box = (max(left, 0), max(top, 0), min(right + 1, img.width), min(bottom + 1, img.height))
        if box[0] >= box[2] or box[1] >= box[3]:
            continue  # entirely outside the image
        if method == "blur":
            _blur(img, box, BLUR_SIGMA_PER_SIDE * strength * side)
        elif method == "redact":
            img.paste(fill, box)
        else:
            blocks = max(2, round(PIXELATE_BLOCKS / strength))
            _pixelate(img, box, (left, top), max(1, math.ceil(side / blocks)))
    return img


def _check_fraction(
    name: str, value: object, low: float, high: float, *, low_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number > high or number < low or (low_open and number == low):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ParameterError(f"{name} must be in {interval}, got {value!r}")
    return number


def _blur(img: Image.Image, box: Box, sigma: float) -> None:
    """Blur the half-open ``box`` (left, top, right, bottom) of ``img`` in place."""
    context = math.ceil(3 * sigma)
    outer = (
        max(box[0] - context, 0),
        max(box[1] - context, 0),
        min(box[2] + context, img.width),
        min(box[3] + context, img.height),
    )
    blurred = img.crop(outer).filter(ImageFilter.GaussianBlur(sigma))
    inner = (box[0] - outer[0], box[1] - outer[1], box[2] - outer[0], box[3] - outer[1])
    img.paste(blurred.crop(inner), box[:2])


def _pixelate(img: Image.Image, box: Box, origin: tuple[int, int], block: int) -> None:
    """Replace the half-open ``box`` with ``block``-pixel squares of their mean colour.

    The block grid starts at ``origin`` (the unclipped rectangle's corner), so a face cut by the
    border keeps the blocks it would have had.
    """
    import numpy as np

    region = np.asarray(img.crop(box))  # uint8; sums are taken in uint64, block by block
    height, width = region.shape[:2]
    first_x = (origin[0] - box[0]) % block
    first_y = (origin[1] - box[1]) % block
    xs = np.unique(np.r_[0, np.arange(first_x, width, block)])
    ys = np.unique(np.r_[0, np.arange(first_y, height, block)])
    sums = np.add.reduceat(np.add.reduceat(region, ys, axis=0, dtype=np.uint64), xs, axis=1)
    counts = np.outer(np.diff(np.r_[ys, height]), np.diff(np.r_[xs, width]))[:, :, None]
    means = np.rint(sums / counts).astype(np.uint8)
    rows = np.repeat(np.arange(len(ys)), np.diff(np.r_[ys, height]))
    cols = np.repeat(np.arange(len(xs)), np.diff(np.r_[xs, width]))
    img.paste(Image.fromarray(means[rows][:, cols], mode="RGB"), box[:2])


def encode_image(img: Image.Image, format: str = "jpeg", quality: int = SEED_JPEG_QUALITY) -> bytes:
    """``img`` as JPEG (``quality`` 1..100, the seed's 80 by default; 4:4:4 chroma, no
    subsampling, as the seed wrote it) or lossless PNG bytes.

    ``format`` is ``"jpeg"`` (or ``"jpg"``) or ``"png"``, any case. ``quality`` is validated for
    both but used only by JPEG. Images with alpha or a palette are converted to RGB for JPEG.
    """
    if not isinstance(img, Image.Image):
        raise ParameterError(f"img must be a PIL image, got {type(img).__name__}")
    name = format.lower() if isinstance(format, str) else ""
    if name not in ("jpeg", "jpg", "png"):
        raise ParameterError(f"format must be 'jpeg' or 'png', got {format!r}")
    _check_int("quality", quality, 1, 100)
    buffer = io.BytesIO()
    if name == "png":
        img.save(buffer, format="PNG")
    else:
        rgb = img if img.mode in ("RGB", "L") else img.convert("RGB")
        # 4:4:4 chroma, like the seed's encoder: subsampled chroma smears 1-pixel coloured lines.
        rgb.save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()
