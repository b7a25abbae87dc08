"""Pydantic models of the HTTP API: what requests may carry and what responses look like.

These exist only at the HTTP edge (validation and the OpenAPI document at ``/docs``); the
library's own types are dataclasses. Ranges here mirror :class:`~facefaas.params.DetectionParams`,
which validates again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BatchItem",
    "BatchResponse",
    "CreatedModel",
    "CropOut",
    "CropsResponse",
    "DetectResponse",
    "FaceOut",
    "FunctionInfo",
    "ImageInfo",
    "ModelConfig",
    "ModelInfo",
    "RunJsonBody",
    "RunParams",
    "ServiceInfo",
    "UsageKey",
    "UsageOut",
]


def _split_thresholds(value: Any) -> Any:
    """``"0.6,0.7,0.7"``, ``["0.6,0.7,0.7"]`` (a query string) or ``[0.6, 0.7, 0.7]``."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        parts: list[Any] = []
        for item in value:
            if isinstance(item, str):
                parts.extend(p for p in item.replace(" ", "").split(",") if p)
            else:
                parts.append(item)
        return parts
    return value


class ModelConfig(BaseModel):
    """Run defaults of a model (the seed's per-function "state"); every field optional.

    Detection parameters belong to the model's family: ``min_size``, ``thresholds``, ``factor``
    to MTCNN; ``threshold``, ``nms_threshold``, ``input_size`` to CenterFace. Giving another
    family's parameter is a 422.
    """

    model_config = ConfigDict(extra="forbid")

    min_size: float | None = Field(
        default=None, ge=6, le=100_000, description="smallest face side, px"
    )
    thresholds: list[Annotated[float, Field(ge=0, lt=1)]] | None = Field(
        default=None, min_length=3, max_length=3, description="P/R/O-Net thresholds, each in [0, 1)"
    )
    factor: float | None = Field(default=None, gt=0.1, le=0.95, description="pyramid scale step")
    threshold: float | None = Field(
        default=None, ge=0.01, le=1, description="CenterFace: heatmap score threshold"
    )
    nms_threshold: float | None = Field(
        default=None, gt=0, le=1, description="CenterFace: NMS IoU threshold"
    )
    input_size: int | None = Field(
        default=None,
        ge=0,
        le=8192,
        description="CenterFace: scale the longer side to this many px (0: full resolution)",
    )
    max_faces: int | None = Field(default=None, ge=1, le=100_000, description="keep the largest N")
    score_threshold: float | None = Field(default=None, ge=0, le=1, description="drop faces below")

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds_from_text(cls, value: Any) -> Any:
        return _split_thresholds(value)


class RunParams(ModelConfig):
    """Per-request parameters, in the query string, multipart fields or the JSON body."""

    format: Literal["png", "jpeg", "jpg"] | None = Field(
        default=None, description="output image format; default from Accept, else jpeg"
    )
    quality: int | None = Field(default=None, ge=1, le=100, description="JPEG quality (default 90)")
    thickness: int | None = Field(
        default=None, ge=1, le=64, description="annotate: box line width, px"
    )
    landmarks: bool = Field(default=False, description="annotate: draw the five landmarks")
    scores: bool = Field(default=False, description="annotate: write each face's score")
    strength: float | None = Field(
        default=None, gt=0, le=10, description="blur/pixelate: how strongly"
    )
    margin: float | None = Field(
        default=None, ge=0, le=1, description="blur/pixelate/redact/crops: grow boxes"
    )
    color: str | None = Field(
        default=None,
        pattern=r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
        description="annotate: box colour; redact: fill colour (#rrggbb; default green / black)",
    )
    size: int | None = Field(
        default=None, ge=16, le=1024, description="crops: square chips of N px"
    )
    align: bool = Field(default=False, description="crops: rotate so the eyes are level")
    zip: bool = Field(default=False, description="crops: answer with a zip instead of JSON")
    fit: bool = Field(
        default=False,
        description="when the estimated cost is over the per-request limit, scale the image "
        "down until it fits (faces in the original's coordinates) instead of a 422",
    )


class RunJsonBody(RunParams):
    """A JSON request: the image as base64 or a ``data:`` URI, and any parameters."""

    image: str = Field(..., description="base64 of the image file, or a data: URI")


class FaceOut(BaseModel):
    box: list[float] = Field(..., description="x1, y1, x2, y2 in pixels of the oriented image")
    box_normalized: list[float] = Field(..., description="the box divided by width/height")
    score: float
    landmarks: dict[str, list[float]] = Field(..., description="name -> [x, y] pixels")


class ImageInfo(BaseModel):
    width: int
    height: int
    format: str | None = Field(default=None, description="the decoded file's format, e.g. JPEG")
    orientation: int = Field(default=1, description="EXIF orientation applied (1: none)")
    orientation_applied: bool


class DetectResponse(BaseModel):
    """Faces (the library's ``Faces.to_dict()`` schema) plus what the server did."""

    model_id: str
    width: int
    height: int
    faces: list[FaceOut]
    image: ImageInfo
    parameters: dict[str, Any]
    timings_ms: dict[str, float]


class CropOut(BaseModel):
    index: int
    width: int
    height: int
    media_type: str
    data: str = Field(..., description="base64 of the encoded chip")


class CropsResponse(DetectResponse):
    crops: list[CropOut]


class BatchItem(BaseModel):
    index: int
    filename: str | None = None
    status: int = Field(..., description="200, or the status this image alone would get")
    result: DetectResponse | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="a problem object when status != 200"
    )


class BatchResponse(BaseModel):
    model_id: str
    succeeded: int
    failed: int
    results: list[BatchItem]


class UsageOut(BaseModel):
    calls: int
    faces: int
    errors: int
    mean_latency_ms: float | None
    last_used_at: datetime | None


class ModelInfo(BaseModel):
    id: str
    name: str
    description: str
    sha256: str = Field(..., description="digest of the weights (MtcnnWeights.digest)")
    format: str = Field(..., description="the format it was uploaded in")
    family: str = Field(..., description="its detector family: mtcnn or centerface")
    builtin: bool
    private: bool = Field(..., description="running it needs the usage or admin key")
    parameters: dict[str, Any] = Field(..., description="recommended detection parameters")
    config: dict[str, Any] = Field(..., description="run defaults set by its admin")
    created_at: datetime
    updated_at: datetime
    usage: UsageOut


class CreatedModel(ModelInfo):
    """A new model. The keys are shown here once and never again."""

    model_id: str
    admin_key: str
    usage_key: str | None = None
    warnings: list[str] = Field(default_factory=list)


class UsageKey(BaseModel):
    model_id: str
    usage_key: str


class FunctionInfo(BaseModel):
    """One entry of the function table (:mod:`facefaas.functions`)."""

    name: str
    summary: str
    output: Literal["json", "image", "crops"]
    aliases: list[str]
    media_types: list[str]
    options: list[str] = Field(..., description="the request parameters it reads")
    anonymizes: bool


class FamilyInfo(BaseModel):
    """One detector family (:mod:`facefaas.families`) and its parameters."""

    name: str
    title: str
    summary: str
    parameters: list[str]
    defaults: dict[str, Any]


class ServiceInfo(BaseModel):
    name: str
    version: str
    default_model: str
    functions: list[str]
    function_details: list[FunctionInfo]
    families: list[FamilyInfo]
    output_formats: list[str]
    max_body_bytes: int
    max_pixels: int
    max_model_bytes: int
    max_batch_items: int
    upload_token_required: bool
    provider: str | None
