"""The work of one request, run on an inference thread: library calls only.

``decode -> detect -> filter -> function``, with :func:`facefaas.decode.load_image`,
:class:`~facefaas.detector.Detector` and the request's :class:`~facefaas.functions.Function`
(its renderer, or the crops of :mod:`facefaas.crops`). What happens depends on the function's
kind of output, never on its name. The result is a JSON-ready dict or encoded bytes with their
media type.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facefaas.crops import crop_faces
from facefaas.deadline import Deadline
from facefaas.decode import DecodedImage, load_image
from facefaas.detector import Detector
from facefaas.errors import FacefaasError
from facefaas.faces import Faces
from facefaas.render import encode_image
from facefaas.request import DetectionRequest

__all__ = ["MEDIA_TYPES", "RunOutput", "detection_json", "run_batch", "run_one"]

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass
class RunOutput:
    """A job's result: ``body`` (JSON-ready) or ``content`` bytes of ``media_type``."""

    faces: Faces
    timings_ms: dict[str, float]
    body: dict[str, Any] | None = None
    content: bytes | None = None
    media_type: str = "application/json"
    filename: str | None = field(default=None)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _detect(
    detector: Detector,
    data: bytes,
    request: DetectionRequest,
    max_pixels: int,
    scale: float = 1.0,
    deadline: Deadline | None = None,
) -> tuple[DecodedImage, Faces, dict[str, float]]:
    start = time.perf_counter()
    decoded = load_image(data, max_pixels=max_pixels)
    decoded_at = time.perf_counter()
    if scale < 1.0:
        faces = _detect_scaled(detector, decoded, request, scale, deadline)
    else:
        faces = detector.detect(decoded, request.params, deadline=deadline)
    faces = faces.filter(score_threshold=request.score_threshold, max_faces=request.max_faces)
    detected_at = time.perf_counter()
    timings = {"decode": _ms(decoded_at - start), "detect": _ms(detected_at - decoded_at)}
    return decoded, faces, timings


def _detect_scaled(
    detector: Detector,
    decoded: DecodedImage,
    request: DetectionRequest,
    scale: float,
    deadline: Deadline | None,
) -> Faces:
    """Detect on the image resized by ``scale`` (antialiased), faces mapped back to it."""
    from PIL import Image

    width, height = decoded.width, decoded.height
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small = Image.fromarray(decoded.pixels).resize(size, Image.Resampling.BILINEAR)
    found = detector.detect(small, request.params, deadline=deadline)
    factor = np.array([width / size[0], height / size[1]], np.float32)
    return Faces(
        found.boxes * np.tile(factor, 2),
        found.scores,
        found.landmarks * factor,
        width=width,
        height=height,
    )


def detection_json(
    decoded: DecodedImage,
    faces: Faces,
    request: DetectionRequest,
    timings: dict[str, float],
    model_id: str,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The JSON of a detection: ``Faces.to_dict()`` plus model, image, parameters, timings
    (and ``scale`` when the image was scaled down to fit the cost limit)."""
    body = {
        "model_id": model_id,
        **faces.to_dict(),
        "image": {
            "width": decoded.width,
            "height": decoded.height,
            "format": decoded.format,
            "orientation": decoded.orientation,
            "orientation_applied": decoded.orientation != 1,
        },
        "parameters": request.used_parameters(),
        "timings_ms": timings,
    }
    if scale < 1.0:
        body["scale"] = round(scale, 6)
    return body


def run_one(
    detector: Detector,
    data: bytes,
    request: DetectionRequest,
    *,
    model_id: str,
    max_pixels: int,
    scale: float = 1.0,
    deadline: Deadline | None = None,
) -> RunOutput:
    """Run ``request.function`` on one encoded image (detected at ``scale``; see
    :mod:`facefaas.server.admission`), stopping when ``deadline`` says so."""
    start = time.perf_counter()
    decoded, faces, timings = _detect(detector, data, request, max_pixels, scale, deadline)
    rendered_at = time.perf_counter()
    output = RunOutput(faces=faces, timings_ms=timings)
    function, options = request.function, request.output

    def finish() -> None:
        if function.output != "json":
            timings["render"] = _ms(time.perf_counter() - rendered_at)
        timings["total"] = _ms(time.perf_counter() - start)

    if function.output == "json":
        finish()
        output.body = detection_json(decoded, faces, request, timings, model_id, scale)
    elif function.output == "crops":
        chips = crop_faces(decoded, faces, size=options.size, align=options.align,
                           margin=options.margin)  # fmt: skip
        encoded = [encode_image(chip, options.format, options.quality) for chip in chips]
        finish()
        body = detection_json(decoded, faces, request, timings, model_id, scale)
        if options.zip:
            output.content = _zip(encoded, options.format, body)
            output.media_type, output.filename = "application/zip", "faces.zip"
        else:
            body["crops"] = [
                {"index": i, "width": chip.width, "height": chip.height,
                 "media_type": MEDIA_TYPES[options.format],
                 "data": base64.b64encode(data).decode("ascii")}
                for i, (chip, data) in enumerate(zip(chips, encoded, strict=True))
            ]  # fmt: skip
            output.body = body
    else:
        fmt, quality = function.encoding or (options.format, options.quality)
        output.content = encode_image(function.picture(decoded, faces, options), fmt, quality)
        output.media_type = MEDIA_TYPES[fmt]
        finish()
    return output


def _zip(chips: list[bytes], fmt: str, body: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    extension = "png" if fmt == "png" else "jpg"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, data in enumerate(chips):
            archive.writestr(f"face_{i:03d}.{extension}", data)
        archive.writestr("faces.json", json.dumps(body, indent=2))
    return buffer.getvalue()


def run_batch(
    detector: Detector,
    images: list[tuple[bytes, float]],
    request: DetectionRequest,
    *,
    model_id: str,
    max_pixels: int,
    deadline: Deadline | None = None,
) -> list[RunOutput | FacefaasError]:
    """Detect in each ``(image, scale)``; an image that fails gives its error instead of
    stopping the batch (a passed deadline stops the rest: each gets that error)."""
    results: list[RunOutput | FacefaasError] = []
    for data, scale in images:
        try:
            start = time.perf_counter()
            decoded, faces, timings = _detect(detector, data, request, max_pixels, scale, deadline)
            timings["total"] = _ms(time.perf_counter() - start)
            body = detection_json(decoded, faces, request, timings, model_id, scale)
            results.append(RunOutput(faces=faces, timings_ms=timings, body=body))
        except FacefaasError as exc:
            results.append(exc)
    return results
