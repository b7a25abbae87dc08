"""Run detectors over a dataset: detections, time per image, and their evaluation.

A *run* is one model with one parameter set (:class:`RunSpec`). :func:`detect_dataset` feeds
each image to a detection callable and times it (decoding is timed apart, and the first image is
detected once untimed to warm the sessions up); :func:`run_specs` does that for several runs,
sharing one :class:`~facefaas.detector.Detector` per model, and evaluates each with the
dataset's protocol.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facefaas.evaluation.detections import ImageDetections
from facefaas.evaluation.metrics.protocol import evaluate_detections
from facefaas.evaluation.metrics.results import Evaluation
from facefaas.evaluation.presets import get_preset
from facefaas.evaluation.truth import Dataset
from facefaas.faces import Faces
from facefaas.params import DetectionParams

__all__ = [
    "DetectionRun",
    "RunResult",
    "RunSpec",
    "detect_dataset",
    "evaluate_run",
    "run_specs",
    "spec_from_preset",
]

DetectFn = Callable[[Any, DetectionParams], Faces]


@dataclass(frozen=True)
class RunSpec:
    """One run: a label for reports, the model (built-in name, bundle path or registry id) and
    the detection parameters; ``preset`` names the preset the parameters came from, if any.

    ``params`` is ``None`` for detections read from files (made with parameters unknown here).
    """

    label: str
    model: str
    params: DetectionParams | None
    preset: str | None = None


def spec_from_preset(preset: str, model: str = "mtcnn", label: str | None = None) -> RunSpec:
    """A :class:`RunSpec` for a named preset (see :mod:`facefaas.evaluation.presets`)."""
    return RunSpec(label or preset, model, get_preset(preset).params, preset)


@dataclass(frozen=True, eq=False)
class DetectionRun:
    """What a detector found on a dataset.

    ``seconds`` is detection time per image (decoding excluded), ``decode_seconds`` decoding
    time; ``model_info`` what the detector says about itself (model name, weights hash,
    execution provider).
    """

    detections: Mapping[str, ImageDetections]
    seconds: Mapping[str, float]
    decode_seconds: Mapping[str, float] = field(default_factory=dict)
    model_info: Mapping[str, str] = field(default_factory=dict)

    def timing(self) -> dict[str, int | float | None]:
        """Images timed; mean, median, 95th percentile detection time (ms); total (s).

        All but ``images`` are ``None`` when nothing was timed (detections read from files).
        """
        values = np.array(list(self.seconds.values()), dtype=np.float64) * 1000.0
        if len(values) == 0:
            return {
                "images": 0,
                "mean_ms": None,
                "median_ms": None,
                "p95_ms": None,
                "total_s": None,
            }
        return {
            "images": len(values),
            "mean_ms": float(values.mean()),
            "median_ms": float(np.median(values)),
            "p95_ms": float(np.percentile(values, 95)),
            "total_s": float(values.sum() / 1000.0),
        }


@dataclass(frozen=True, eq=False)
class RunResult:
    """A run's spec, its detections and their evaluation."""

    spec: RunSpec
    run: DetectionRun
    evaluation: Evaluation


def _default_load(path: Any) -> Any:
    from facefaas.decode import load_image

    return load_image(path)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled, leave=True
    )


def detect_dataset(
    dataset: Dataset,
    detect: DetectFn,
    params: DetectionParams,
    *,
    load: Callable[[Any], Any] | None = None,
    progress: bool = True,
    desc: str = "detect",
    warmup: bool = True,
) -> DetectionRun:
    """Detect faces in every image of ``dataset`` with ``detect(image, params)``.

    ``load`` turns an image path into what ``detect`` takes (default
    :func:`facefaas.decode.load_image`). Images without a file are skipped (they count as
    images without detections).
    """
    load = load or _default_load
    detections: dict[str, ImageDetections] = {}
    seconds: dict[str, float] = {}
    decode_seconds: dict[str, float] = {}
    images = [im for im in dataset.images if im.path is not None]
    with _progress(len(images), desc, progress) as bar:
        for n, image in enumerate(images):
            start = time.perf_counter()
            decoded = load(image.path)
            decode_seconds[image.key] = time.perf_counter() - start
            if warmup and n == 0:
                detect(decoded, params)  # sessions are created lazily: keep that out of the timing
            start = time.perf_counter()
            faces = detect(decoded, params)
            seconds[image.key] = time.perf_counter() - start
            detections[image.key] = ImageDetections.from_faces(faces)
            bar.update(1)
    return DetectionRun(detections, seconds, decode_seconds)


def evaluate_run(
    dataset: Dataset, spec: RunSpec, run: DetectionRun, *, iou: float = 0.5
) -> RunResult:
    """Evaluate a run's detections with the dataset's protocol."""
    return RunResult(spec, run, evaluate_detections(dataset, run.detections, iou=iou))


def _detector_info(detector: Any) -> dict[str, str]:
    info: dict[str, str] = {}
    manifest = getattr(detector, "manifest", None)
    if manifest is not None:
        info["model_name"] = str(getattr(manifest, "name", ""))
        info["weights_sha256"] = str(getattr(manifest, "weights_sha256", ""))
    provider = getattr(detector, "provider", None)
    if provider is not None:
        info["provider"] = str(provider)
    return info


def run_specs(
    dataset: Dataset,
    specs: Sequence[RunSpec],
    *,
    make_detector: Callable[[str], Any] | None = None,
    load: Callable[[Any], Any] | None = None,
    iou: float = 0.5,
    progress: bool = True,
) -> list[RunResult]:
    """Run and evaluate every spec; one detector per distinct model, created by
    ``make_detector(model)`` (default :class:`facefaas.detector.Detector`)."""
    if make_detector is None:
        from facefaas.detector import Detector

        make_detector = Detector
    detectors: dict[str, Any] = {}
    results = []
    for spec in specs:
        if spec.model not in detectors:
            detectors[spec.model] = make_detector(spec.model)
        detector = detectors[spec.model]

        def detect(image: Any, params: Any, _d: Any = detector) -> Faces:
            faces: Faces = _d(image, **params.to_dict())  # the family's parameters, by name
            return faces

        run = detect_dataset(
            dataset,
            detect,
            spec.params
            if spec.params is not None
            else getattr(detector, "params", None) or DetectionParams(),
            load=load,
            progress=progress,
            desc=spec.label,
        )
        run = DetectionRun(
            run.detections, run.seconds, run.decode_seconds, _detector_info(detector)
        )
        results.append(evaluate_run(dataset, spec, run, iou=iou))
    return results
