"""The image input edge: any supported source in, an upright ``(H, W, 3)`` uint8 RGB array out.

Everything about images as files happens here, once: decoding, the EXIF orientation, colour
modes, transparency and size limits. The detector core only ever sees :class:`DecodedImage`.

Sources :func:`load_image` accepts:

* encoded bytes: ``bytes``, ``bytearray``, ``memoryview``;
* a path: ``str`` or ``os.PathLike``;
* a binary file object (anything with ``.read()`` returning bytes; read to the end);
* a ``PIL.Image.Image`` (not modified; its EXIF orientation is applied to a copy);
* a numpy array, ``(H, W)`` grayscale or ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8
  (uint16 is scaled with ``>> 8``; other dtypes are refused: convert floats yourself, e.g.
  ``(a * 255).round().astype(np.uint8)`` for 0..1 data). **OpenCV users:** ``cv2.imread``
  gives BGR, so pass ``channels="bgr"`` (BGRA for 4 channels); ``channels`` only applies to
  arrays, decoded files are always read in their true colours;
* a :class:`DecodedImage`, returned unchanged.

Files: every format Pillow reads (JPEG/MPO, PNG/APNG, GIF, BMP, WebP, TIFF, ...) except EPS,
refused because Pillow renders it with Ghostscript. Multi-frame files give their first frame.
The EXIF orientation tag (1..8, or the XMP ``tiff:Orientation``) is applied and recorded in
:attr:`DecodedImage.orientation`. Colour modes map to RGB as follows: grayscale and bilevel are
replicated to three channels; palette, CMYK and YCbCr are converted by Pillow (ICC profiles are
not applied); 16-bit grayscale (``I;16``, ``I;16B``) keeps its high byte (``v >> 8``) rather than
clipping; 32-bit integer ``I`` is read as 16-bit (clipped to 0..65535, then ``>> 8``); float
``F`` is read as 0..1 when no value exceeds 1, else as 0..255 (clipped, NaN as 0).
Transparency (an alpha channel, a transparent palette entry or colour key) is composited onto
white; fully opaque alpha is simply dropped.

Limits: ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`, 50 Mpx: a 14-Mpx photo passes, a
decompression bomb does not) is checked from the header, before any pixel is decoded, and also
applies to arrays and PIL images; ``max_bytes`` (default none) caps encoded input. Pillow's own
``Image.MAX_IMAGE_PIXELS`` and ``ImageFile.LOAD_TRUNCATED_IMAGES`` are neither relied on nor
changed: truncated files are refused as long as the application leaves the latter ``False``.

Errors (all from :mod:`facefaas.errors`): :class:`~facefaas.errors.ImageDecodeError` for empty,
truncated, corrupt or non-image input; :class:`~facefaas.errors.TooLargeError` (``unit`` is
``"pixels"`` or ``"bytes"``) over a limit; :class:`~facefaas.errors.UnsupportedMediaError` for a
colour mode that cannot be made RGB; :class:`~facefaas.errors.ParameterError` for a source of the
wrong type or an array of the wrong shape or dtype; :class:`~facefaas.errors.InputError` for a
path that cannot be opened.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from facefaas.errors import (
    FacefaasError,
    ImageDecodeError,
    InputError,
    ParameterError,
    TooLargeError,
    UnsupportedMediaError,
)

__all__ = ["DEFAULT_MAX_PIXELS", "DecodedImage", "image_size", "load_image"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
"""Default pixel limit (width x height): 3.5x a 14-Mpx photo, well below a decompression bomb."""

Channels = Literal["rgb", "bgr"]

_ORIENTATION_TAG = 0x0112
# The table of ImageOps.exif_transpose. We transpose ourselves because exif_transpose also
# re-serialises the EXIF block to drop the tag, which can fail on odd tags of a good photo.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_REFUSED_FORMATS = frozenset({"EPS"})  # Pillow runs Ghostscript to read it
_DEEP_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_WHITE = (255, 255, 255)
# What Pillow raises on malformed input besides OSError (truncated, unidentified) and
# SyntaxError (broken headers): plugins index, unpack and divide header values unchecked.
_PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    EOFError,
    RuntimeError,
    struct.error,
)


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An upright RGB image, ready for detection.

    Attributes:
        pixels: ``(H, W, 3)`` uint8 array, RGB, C-contiguous, read-only. Row ``y``, column ``x``.
            A writeable array given to the constructor is copied, so the image cannot change.
        format: Pillow's format name of the decoded file (``"JPEG"``, ``"PNG"``, ``"MPO"``, ...);
            ``None`` for arrays and for PIL images created in memory.
        orientation: the EXIF orientation (1..8) that was applied to get upright pixels; 1 when
            the file had none.
    """

    pixels: npt.NDArray[np.uint8]
    format: str | None = None
    orientation: int = 1

    def __post_init__(self) -> None:
        pixels = self.pixels
        if (
            not isinstance(pixels, np.ndarray)
            or pixels.dtype != np.uint8
            or pixels.ndim != 3
            or pixels.shape[2] != 3
            or pixels.shape[0] < 1
            or pixels.shape[1] < 1
        ):
            raise ParameterError("DecodedImage.pixels must be a non-empty (H, W, 3) uint8 array")
        if self.orientation not in range(1, 9):
            raise ParameterError(f"orientation must be 1..8, got {self.orientation!r}")
        if pixels.flags.writeable or not pixels.flags.c_contiguous:
            object.__setattr__(self, "pixels", _frozen(np.array(pixels, order="C", copy=True)))

    @property
    def width(self) -> int:
        """Width in pixels (columns)."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels (rows)."""
        return int(self.pixels.shape[0])


def load_image(
    source: Any,
    *,
    channels: Channels = "rgb",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
) -> DecodedImage:
    """Decode ``source`` into an upright RGB :class:`DecodedImage`.

    Args:
        source: encoded bytes, a path, a binary file object, a ``PIL.Image.Image``, a numpy
            array or a :class:`DecodedImage` (returned unchanged); see the module docstring.
        channels: channel order of a 3- or 4-channel *array* source: ``"rgb"`` or ``"bgr"``
            (OpenCV). Ignored for other sources.
        max_pixels: largest accepted width x height, checked before decoding pixels.
        max_bytes: largest accepted encoded size in bytes (bytes, paths, file objects); ``None``
            for no limit.

    Raises:
        ImageDecodeError: empty, truncated, corrupt or unrecognised input.
        TooLargeError: over ``max_pixels`` (``unit="pixels"``) or ``max_bytes`` (``"bytes"``).
        UnsupportedMediaError: a colour mode that cannot be converted to RGB.
        ParameterError: a bad source type, array shape or dtype, or a bad limit.
        InputError: a path that does not exist or cannot be read.
    """
    if isinstance(source, DecodedImage):
        return source
    _check_options(channels, max_pixels, max_bytes)
    if isinstance(source, np.ndarray):
        return _from_array(source, channels, max_pixels)
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels, owned=False)
    if isinstance(source, bytes | bytearray | memoryview):
        _check_bytes(source.nbytes if isinstance(source, memoryview) else len(source), max_bytes)
        return _from_bytes(bytes(source), max_pixels, max_bytes)
    if isinstance(source, str | os.PathLike):
        return _from_path(source, max_pixels, max_bytes)
    if callable(getattr(source, "read", None)):
        return _from_bytes(_read_file_object(source, max_bytes), max_pixels, max_bytes)
    raise ParameterError(
        f"cannot load an image from {type(source).__name__}: pass bytes, a path, a binary file "
        "object, a PIL image or a numpy array"
    )


def _check_options(channels: object, max_pixels: object, max_bytes: object) -> None:
    if channels not in ("rgb", "bgr"):
        raise ParameterError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ParameterError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
    ):
        raise ParameterError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")


def _check_bytes(size: int, max_bytes: int | None) -> None:
    if size == 0:
        raise ImageDecodeError("the image is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise TooLargeError(
            f"the image is {size} bytes, over the limit of {max_bytes} bytes",
            limit=max_bytes,
            unit="bytes",
        )


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise ImageDecodeError(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise TooLargeError(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} pixels",
            limit=max_pixels,
            unit="pixels",
        )


def _read_file_object(fileobj: Any, max_bytes: int | None) -> bytes:
    """Read to the end, or to one byte past ``max_bytes``: enough to know it is exceeded."""
    limit = None if max_bytes is None else max_bytes + 1
    chunks: list[bytes] = []
    total = 0
    while limit is None or total < limit:
        try:
            # raw streams may return short reads, so read(n) is repeated until EOF
            data = fileobj.read() if limit is None else fileobj.read(limit - total)
        except OSError as exc:
            raise InputError(f"cannot read the image from the file object: {exc}") from exc
        if isinstance(data, str):
            raise ParameterError("the file object is in text mode; open it in binary mode ('rb')")
        if data is not None and not isinstance(data, bytes | bytearray | memoryview):
            raise ParameterError(f"the file object's read() gave {type(data).__name__}, not bytes")
        if not data:
            break
        chunks.append(bytes(data))
        total += len(chunks[-1])
        if limit is None:
            break
    return b"".join(chunks)


def _from_bytes(data: bytes, max_pixels: int, max_bytes: int | None) -> DecodedImage:
    _check_bytes(len(data), max_bytes)
    return _decode_stream(io.BytesIO(data), max_pixels)


def _from_path(
    path: str | os.PathLike[str], max_pixels: int, max_bytes: int | None
) -> DecodedImage:
    shown = os.fsdecode(path)
    if len(shown) > 200:  # a long "path" may be image data passed as str: keep it out of logs
        shown = shown[:100] + "..."
    try:
        file = open(path, "rb")  # noqa: SIM115 -- closed by the with below, after decoding
    except FileNotFoundError:
        raise InputError(f"image file not found: {shown!r}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot open image file {shown!r}: {type(exc).__name__}") from exc
    with file:
        try:
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            raise InputError(f"cannot read image file {shown!r}: {exc.strerror}") from exc
        _check_bytes(size, max_bytes)
        return _decode_stream(file, max_pixels)


@contextlib.contextmanager
def _quiet_bomb_warnings() -> Iterator[None]:
    """Keep Pillow's DecompressionBombWarning from printing: our own limit decides.

    Before Python 3.14 ``catch_warnings`` swaps the process-wide filter list, so threads
    decoding at once can leave this one "ignore" filter installed after they finish (harmless:
    the warning is never wanted), or undo a filter another thread adds at that very moment.
    We accept that rather than change ``Image.MAX_IMAGE_PIXELS`` or any other Pillow global.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        yield


def _decode_stream(stream: IO[bytes], max_pixels: int) -> DecodedImage:
    with _opened(stream, max_pixels) as im:
        return _from_pil(im, max_pixels, owned=True)


@contextlib.contextmanager
def _opened(stream: IO[bytes], max_pixels: int) -> Iterator[Image.Image]:
    """The image in ``stream``, opened lazily by an allowed plugin; Pillow's errors (here or in
    the caller's block) become ours."""
    Image.init()  # registers every plugin, so the allow-list below is complete
    formats = tuple(f for f in Image.ID if f not in _REFUSED_FORMATS)
    try:
        with _quiet_bomb_warnings(), Image.open(stream, formats=formats) as im:
            yield im
    except FacefaasError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("the data is not in a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise _pillow_bomb_error(max_pixels) from exc
    except _PILLOW_ERRORS as exc:
        raise ImageDecodeError(f"cannot read the image header: corrupt ({exc})") from exc


def _from_pil(im: Image.Image, max_pixels: int, *, owned: bool) -> DecodedImage:
    """Decode an opened (possibly lazy) PIL image; ``owned`` ones are closed early to save memory.

    An image that is not ``owned`` (the caller's) is loaded but otherwise left as it was.
    """
    fmt = im.format
    what = f"{fmt} image" if fmt else "image"
    try:
        with _quiet_bomb_warnings():
            _check_pixels(im.width, im.height, max_pixels)
            im.load()
            _check_pixels(im.width, im.height, max_pixels)  # a few plugins learn it on load
            orientation = _orientation(im)
            if orientation != 1:
                upright = im.transpose(_TRANSPOSE[orientation])
                if owned:
                    im.close()  # frees the sideways copy now rather than on return
                im = upright
            pixels = _to_rgb(im)
    except FacefaasError:
        raise
    except Image.DecompressionBombError as exc:
        raise _pillow_bomb_error(max_pixels) from exc
    except _PILLOW_ERRORS as exc:
        raise ImageDecodeError(f"cannot decode the {what}: truncated or corrupt ({exc})") from exc
    return DecodedImage(_frozen(pixels), format=fmt, orientation=orientation)


def _pillow_bomb_error(max_pixels: int) -> TooLargeError:
    # Pillow refused on its own (hard) limit, twice Image.MAX_IMAGE_PIXELS, before ours could
    # run: report whichever limit is lower, i.e. the one that was certainly exceeded.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    limit = max_pixels if pillow_limit is None else min(max_pixels, 2 * pillow_limit)
    return TooLargeError(
        f"the image's declared size is over the limit of {limit} pixels",
        limit=limit,
        unit="pixels",
    )


def _orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) orientation of ``im``, 1 when absent, unreadable or out of range."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except _PILLOW_ERRORS as exc:
        # Broken metadata should not cost the picture; say so instead of failing.
        logger.warning("ignoring unreadable EXIF metadata (%s)", type(exc).__name__)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _to_rgb(im: Image.Image) -> npt.NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB pixels of a loaded image of any mode."""
    if im.mode in _DEEP_GRAY_MODES:
        return _gray_to_rgb(_deep_to_uint8(np.asarray(im)))
    if im.has_transparency_data:
        return _flatten_rgba(im.convert("LA") if im.mode == "La" else im)
    if im.mode == "RGB":
        return np.asarray(im)  # one copy, into a read-only bytes-backed array
    try:
        return np.asarray(im.convert("RGB"))
    except ValueError as exc:
        raise UnsupportedMediaError(f"cannot convert colour mode {im.mode} to RGB") from exc


def _flatten_rgba(im: Image.Image) -> npt.NDArray[np.uint8]:
    """Composite an image with transparency onto white; opaque alpha is just dropped."""
    rgba = im if im.mode == "RGBA" else im.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return np.asarray(rgba.convert("RGB"))
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=alpha)
    return np.asarray(background)


def _deep_to_uint8(gray: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """8-bit grayscale from 16-bit, 32-bit integer or float samples (rules in the module doc)."""
    high: npt.NDArray[np.uint8]
    if gray.dtype.kind == "u" and gray.dtype.itemsize == 2:
        high = np.right_shift(gray, 8).astype(np.uint8)
        return high
    if gray.dtype.kind in "iu":
        high = np.right_shift(np.clip(gray, 0, 65535), 8).astype(np.uint8)
        return high
    if gray.dtype.kind == "f":
        values = np.nan_to_num(gray.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)
    raise UnsupportedMediaError(f"cannot convert {gray.dtype} samples to 8 bits")


def _gray_to_rgb(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.repeat(gray[:, :, np.newaxis], 3, axis=2)


def _from_array(array: npt.NDArray[Any], channels: Channels, max_pixels: int) -> DecodedImage:
    """Normalise an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array."""
    shape = array.shape
    if array.ndim not in (2, 3) or (array.ndim == 3 and shape[2] not in (1, 3, 4)):
        raise ParameterError(
            f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {shape}"
        )
    if shape[0] < 1 or shape[1] < 1:
        raise ParameterError(f"the image array is empty: shape {shape}")
    if array.dtype.kind != "u" or array.dtype.itemsize not in (1, 2):
        raise ParameterError(
            f"an image array must be uint8 (or uint16), got {array.dtype}; convert it first, "
            "e.g. (a * 255).round().astype(np.uint8) for floats in 0..1"
        )
    _check_pixels(int(shape[1]), int(shape[0]), max_pixels)
    samples = array if array.dtype.itemsize == 1 else np.right_shift(array, 8).astype(np.uint8)
    if samples.ndim == 2 or samples.shape[2] == 1:
        rgb = _gray_to_rgb(samples.reshape(shape[0], shape[1]))
    else:
        order = [2, 1, 0] if channels == "bgr" else [0, 1, 2]
        if samples.shape[2] == 4 and not bool((samples[:, :, 3] == 255).all()):
            rgba = np.ascontiguousarray(samples[:, :, [*order, 3]])
            rgb = _flatten_rgba(Image.fromarray(rgba))
        else:
            rgb = samples[:, :, order] if channels == "bgr" else samples[:, :, :3]
    if np.may_share_memory(rgb, array):
        rgb = np.array(rgb, order="C", copy=True)
    return DecodedImage(_frozen(rgb))


def _frozen(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``pixels`` as a C-contiguous read-only array (copied only if not contiguous)."""
    pixels = np.ascontiguousarray(pixels)
    pixels.flags.writeable = False
    return pixels


def image_size(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of encoded image bytes, read from the header alone (no pixels are
    decoded), as stored: EXIF orientation may swap them, which changes no cost.

    Raises:
        ImageDecodeError: not an image we can read.
        TooLargeError: over ``max_pixels``.
    """
    with _opened(io.BytesIO(data), max_pixels) as im:
        width, height = im.size
    _check_pixels(width, height, max_pixels)
    return width, height
