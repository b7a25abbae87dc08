"""Smoke-test imported weights before anyone relies on them.

:func:`validate_model` runs the three networks on inputs cut from a built-in reference image
(NASA's public-domain astronaut portrait, one face; ``facefaas/data/reference``) and refuses
weights whose outputs are NaN or infinite (LNet's too, when the model has it). It then runs the
cascade with the seed's parameters and returns warnings, not errors, for a surprising result: a
retrained model may legitimately be tuned for other faces, but "no face on a clear portrait" is
what a wrong convention (BGR vs RGB, transposed kernels) usually looks like.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image

from facefaas.errors import ModelValidationError
from facefaas.models.onnx_build import network_bytes
from facefaas.models.weights import MtcnnWeights
from facefaas.params import DetectionParams

if TYPE_CHECKING:
    from facefaas.mtcnn.pipeline import Detections

__all__ = ["REFERENCE_FACE", "reference_image", "validate_model"]

# The face in reference/astronaut.jpg (256x256) as x1, y1, x2, y2 pixels (the built-in model's box).
REFERENCE_FACE = (89.5, 30.0, 133.8, 86.0)
_MIN_IOU = 0.5
_TITLES = {"pnet": "P-Net", "rnet": "R-Net", "onet": "O-Net", "lnet": "LNet"}


@cache
def reference_image() -> bytes:
    """The bytes of the reference JPEG (256x256 RGB, one face at :data:`REFERENCE_FACE`)."""
    return (resources.files("facefaas") / "data" / "reference" / "astronaut.jpg").read_bytes()


def _normalised(image: Image.Image, side: int | None = None) -> npt.NDArray[np.float32]:
    if side is not None:
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    return ((pixels - 127.5) / 128.0).transpose(2, 0, 1)[None]


def _check_finite_outputs(weights: MtcnnWeights) -> None:
    image = Image.open(BytesIO(reference_image())).convert("RGB")
    x1, y1, x2, y2 = (int(v) for v in REFERENCE_FACE)
    face = image.crop((x1, y1, x2, y2))
    inputs = {
        "pnet": _normalised(image),
        "rnet": _normalised(face, 24),
        "onet": _normalised(face, 48),
        "lnet": np.tile(_normalised(face, 24), (1, 5, 1, 1)),  # five patches' worth of input
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    for net, data in network_bytes(weights).items():
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        for name, value in zip(
            (o.name for o in session.get_outputs()),
            session.run(None, {"image": inputs[net]}),
            strict=True,
        ):
            if not np.all(np.isfinite(value)):
                raise ModelValidationError(
                    f"{_TITLES[net]} outputs NaN or infinite values ({name}) on the reference "
                    "image: the weights are unusable (overflow or corrupt values)"
                )


def _iou(a: npt.NDArray[np.float32], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _detect_reference(weights: MtcnnWeights) -> Detections:
    """The cascade with the seed's parameters on the reference image (no Detector: the model
    layer sits below it)."""
    from facefaas.mtcnn.pipeline import normalize, run_cascade
    from facefaas.runtime.sessions import OnnxCascade

    rgb = np.asarray(Image.open(BytesIO(reference_image())).convert("RGB"))
    with OnnxCascade(network_bytes(weights), threads=1) as ops:
        return run_cascade(normalize(rgb), ops, DetectionParams(), refine_landmarks=ops.has_lnet)


def validate_model(weights: MtcnnWeights) -> list[str]:
    """Warnings about how ``weights`` behave on the reference image (module docstring).

    Raises:
        ModelValidationError: a network outputs NaN or infinite values, or detection does.
    """
    _check_finite_outputs(weights)
    faces = _detect_reference(weights)
    arrays = (faces.boxes, faces.scores, faces.landmarks)
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ModelValidationError("detection on the reference image gives NaN or infinite values")
    if len(faces.scores) == 0:
        return [
            "detected no face on the reference image (a clear one-face portrait): the model may "
            "be mis-trained or in another convention (BGR vs RGB, transposed kernels)"
        ]
    warnings: list[str] = []
    if len(faces.scores) > 1:
        warnings.append(f"detected {len(faces.scores)} faces on the one-face reference image")
    best = max(_iou(box, REFERENCE_FACE) for box in faces.boxes)
    if best < _MIN_IOU:
        warnings.append(
            f"no detected box matches the reference image's face (best IoU {best:.2f}): boxes "
            "may be offset or in another convention"
        )
    return warnings
