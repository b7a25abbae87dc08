"""`ModelManifest`: what a model bundle says about itself (``manifest.json``).

Every text a manifest carries is bounded (:data:`TEXT_LIMITS`, the same limits as the upload's
form fields): a ``manifest.json`` over them is refused (422), never truncated, so what is stored
is what the uploader wrote.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from facefaas.errors import ModelValidationError
from facefaas.params import DetectionParams

__all__ = ["BUNDLE_FORMAT", "INPUT_CONVENTION", "TEXT_LIMITS", "ModelManifest"]

BUNDLE_FORMAT = "facefaas-mtcnn-onnx"
BUNDLE_VERSION = 1
INPUT_CONVENTION: dict[str, Any] = {
    "layout": "NCHW",
    "channels": "RGB",
    "mean": 127.5,
    "scale": 1 / 128,
    "description": "float32 (pixel - 127.5) / 128, RGB, images in normal orientation",
}
# Characters each text may have; ``extra`` counts its compact JSON text.
TEXT_LIMITS: dict[str, int] = {
    "name": 200,
    "description": 10_000,
    "license": 10_000,
    "source_format": 64,
    "weights_sha256": 64,
    "extra": 10_000,
}


@dataclass(frozen=True)
class ModelManifest:
    """Metadata of a model bundle.

    ``weights_sha256`` is the digest of the networks' weights (for MTCNN
    :meth:`MtcnnWeights.digest`). ``family`` names its detector family
    (:data:`facefaas.families.FAMILIES`); ``parameters`` are that family's recommended
    parameters (:class:`DetectionParams` for MTCNN).
    """

    name: str
    weights_sha256: str
    description: str = ""
    license: str = ""
    source_format: str = ""
    parameters: Any = field(default_factory=DetectionParams)
    extra: dict[str, Any] = field(default_factory=dict)
    family: str = "mtcnn"

    def to_json(self) -> str:
        from facefaas.families import get_family

        family = get_family(self.family)
        data = asdict(self)
        data["parameters"] = self.parameters.to_dict()
        data = {
            "format": family.bundle_format,
            "format_version": BUNDLE_VERSION,
            **data,
            "input": dict(family.input_convention),
        }
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelManifest:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelValidationError(f"manifest.json is not valid JSON: {exc}") from None
        from facefaas.families import FAMILIES

        formats = {family.bundle_format: family for family in FAMILIES.values()}
        family = formats.get(str(data.get("format"))) if isinstance(data, dict) else None
        if not isinstance(data, dict) or family is None:
            raise ModelValidationError(
                f"manifest.json: 'format' must be one of {', '.join(sorted(formats))}"
            )
        if data.get("format_version") != BUNDLE_VERSION:
            raise ModelValidationError(
                f"manifest.json: format_version {data.get('format_version')!r} is not supported"
            )
        _check_text(data)
        try:
            return cls(
                name=str(data["name"]),
                weights_sha256=str(data.get("weights_sha256", "")),
                description=str(data.get("description", "")),
                license=str(data.get("license", "")),
                source_format=str(data.get("source_format", "")),
                parameters=family.params(data.get("parameters") or {}),
                extra=dict(data.get("extra") or {}),
                family=family.name,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelValidationError(f"manifest.json: {exc}") from None


def _check_text(data: dict[str, Any]) -> None:
    """Refuse a manifest whose texts pass :data:`TEXT_LIMITS` (ModelValidationError, 422)."""
    for field_name, limit in TEXT_LIMITS.items():
        value = data.get(field_name)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if len(text) > limit:
            raise ModelValidationError(
                f"manifest.json: {field_name!r} is {len(text)} characters, at most {limit} are "
                "accepted"
            )
