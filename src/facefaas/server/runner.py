"""The work of one request, run on an inference thread: library calls only.

``decode -> detect -> filter -> render/encode``, with :func:`facefaas.decode.load_image`,
:class:`~facefaas.detector.Detector`, :mod:`facefaas.render` and :mod:`facefaas.crops`. The
result is either a JSON-ready dict or encoded bytes with their media type.
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Literal

from facefaas.crops import crop_faces
from facefaas.decode import DecodedImage, load_image
from facefaas.detector import Detector
from facefaas.errors import FacefaasError
from facefaas.faces import Faces
from facefaas.params import DetectionParams
from facefaas.render import SEED_COLOR, SEED_JPEG_QUALITY, annotate, anonymize, encode_image

__all__ = ["Function", "RunOutput", "RunSpec", "run_batch", "run_one"]

Function = Literal["detect", "annotate", "blur", "pixelate", "crops", "seed"]
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
DEFAULT_QUALITY = 90


@dataclass(frozen=True)
class RunSpec:
    """Everything a job needs besides the image and the detector.

    ``format`` is ``"png"`` or ``"jpeg"``; ``quality`` 1..100 (JPEG only). ``function="seed"``
    is the seed's picture: 1-px green boxes, JPEG quality 80, whatever ``format`` says.
    """

    function: Function
    model_id: str
    params: DetectionParams
    max_pixels: int
    max_faces: int | None = None
    score_threshold: float = 0.0
    format: str = "jpeg"
    quality: int = DEFAULT_QUALITY
    thickness: int | None = None
    landmarks: bool = False
    scores: bool = False
    strength: float | None = None
    margin: float | None = None
    size: int | None = None
    align: bool = False
    zip: bool = False

    def used_parameters(self) -> dict[str, Any]:
        return {
            **self.params.to_dict(),
            "max_faces": self.max_faces,
            "score_threshold": self.score_threshold,
        }


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
    detector: Detector, data: bytes, spec: RunSpec
) -> tuple[DecodedImage, Faces, dict[str, float]]:
    start = time.perf_counter()
    decoded = load_image(data, max_pixels=spec.max_pixels)
    decoded_at = time.perf_counter()
    faces = detector(decoded, **spec.params.to_dict())
    faces = faces.filter(score_threshold=spec.score_threshold, max_faces=spec.max_faces)
    detected_at = time.perf_counter()
    timings = {"decode": _ms(decoded_at - start), "detect": _ms(detected_at - decoded_at)}
    return decoded, faces, timings


def detection_json(
    decoded: DecodedImage, faces: Faces, spec: RunSpec, timings: dict[str, float]
) -> dict[str, Any]:
    """The JSON of a detection: ``Faces.to_dict()`` plus model, image, parameters, timings."""
    return {
        "model_id": spec.model_id,
        **faces.to_dict(),
        "image": {
            "width": decoded.width,
            "height": decoded.height,
            "format": decoded.format,
            "orientation": decoded.orientation,
            "orientation_applied": decoded.orientation != 1,
        },
        "parameters": spec.used_parameters(),
        "timings_ms": timings,
    }


def run_one(detector: Detector, data: bytes, spec: RunSpec) -> RunOutput:
    """Run ``spec.function`` on one encoded image."""
    start = time.perf_counter()
    decoded, faces, timings = _detect(detector, data, spec)
    rendered_at = time.perf_counter()
    output = RunOutput(faces=faces, timings_ms=timings)
    if spec.function == "detect":
        timings["total"] = _ms(time.perf_counter() - start)
        output.body = detection_json(decoded, faces, spec, timings)
        return output
    if spec.function == "crops":
        chips = crop_faces(
            decoded, faces, size=spec.size, align=spec.align, margin=spec.margin or 0.0
        )
        encoded = [encode_image(chip, spec.format, spec.quality) for chip in chips]
        timings["render"] = _ms(time.perf_counter() - rendered_at)
        timings["total"] = _ms(time.perf_counter() - start)
        body = detection_json(decoded, faces, spec, timings)
        if spec.zip:
            output.content = _zip(encoded, spec.format, body)
            output.media_type = "application/zip"
            output.filename = "faces.zip"
        else:
            body["crops"] = [
                {"index": i, "width": chip.width, "height": chip.height,
                 "media_type": MEDIA_TYPES[spec.format],
                 "data": base64.b64encode(data).decode("ascii")}
                for i, (chip, data) in enumerate(zip(chips, encoded, strict=True))
            ]  # fmt: skip
            output.body = body
        return output
    output.content, output.media_type = _picture(decoded, faces, spec)
    timings["render"] = _ms(time.perf_counter() - rendered_at)
    timings["total"] = _ms(time.perf_counter() - start)
    return output


def _picture(decoded: DecodedImage, faces: Faces, spec: RunSpec) -> tuple[bytes, str]:
    if spec.function == "seed":
        picture = annotate(decoded, faces, color=SEED_COLOR, thickness=1)
        return encode_image(picture, "jpeg", SEED_JPEG_QUALITY), "image/jpeg"
    if spec.function == "annotate":
        options: dict[str, Any] = {"landmarks": spec.landmarks, "scores": spec.scores}
        if spec.thickness is not None:
            options["thickness"] = spec.thickness
        picture = annotate(decoded, faces, **options)
    else:
        method: Literal["blur", "pixelate"] = "blur" if spec.function == "blur" else "pixelate"
        picture = anonymize(
            decoded, faces, method=method,
            strength=spec.strength if spec.strength is not None else 1.0,
            margin=spec.margin or 0.0,
        )  # fmt: skip
    return encode_image(picture, spec.format, spec.quality), MEDIA_TYPES[spec.format]


def _zip(chips: list[bytes], fmt: str, body: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    extension = "png" if fmt == "png" else "jpg"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, data in enumerate(chips):
            archive.writestr(f"face_{i:03d}.{extension}", data)
        archive.writestr("faces.json", json.dumps(body, indent=2))
    return buffer.getvalue()


def run_batch(
    detector: Detector, files: list[tuple[str | None, bytes]], spec: RunSpec
) -> list[RunOutput | FacefaasError]:
    """Detect in each image; an image that fails gives its error instead of stopping the batch."""
    results: list[RunOutput | FacefaasError] = []
    for _name, data in files:
        try:
            start = time.perf_counter()
            decoded, faces, timings = _detect(detector, data, spec)
            timings["total"] = _ms(time.perf_counter() - start)
            body = detection_json(decoded, faces, spec, timings)
            results.append(RunOutput(faces=faces, timings_ms=timings, body=body))
        except FacefaasError as exc:
            results.append(exc)
    return results
