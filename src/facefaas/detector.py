"""`Detector`: MTCNN on ONNX Runtime, and the module-level :func:`detect`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from facefaas.errors import ModelError, ParameterError
from facefaas.faces import Faces
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.models.resolve import ModelRef, Resolver, resolve_model
from facefaas.mtcnn.pipeline import never_stop, normalize, run_cascade
from facefaas.params import DetectionParams

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from facefaas.deadline import Deadline

__all__ = ["Detector", "ModelRef", "detect"]

_IMAGES_IN_FLIGHT = 2  # per detect_batch call


class Detector:
    """Face detector: an MTCNN model on ONNX Runtime.

    Args:
        model: ``"mtcnn"`` (built in, the seed's model), a bundle folder, a model file or folder
            in any importable format (a bundle zip, a TensorFlow ``.pb``, Caffe, facenet-pytorch
            or ipazc weights: imported in memory), a :class:`~facefaas.models.bundle.Bundle` or
            in-memory :class:`MtcnnWeights`.
        min_size, thresholds, factor: default :class:`DetectionParams` of this detector (each
            call may override them).
        providers: ``"cpu"`` (default), ``"cuda"``, ``"auto"`` or ORT provider names.
        threads: how many pyramid levels or crop chunks run in parallel (default: all cores).
        pool: run them on this executor, shared with other detectors (the service shares one
            across every model it holds); ``threads`` is then ignored and :meth:`close` leaves
            the pool to its owner.
        refine_landmarks: run the model's landmark-refinement net (LNet, e.g. Caffe's ``det4``)
            after O-Net: ``None`` (default) when the model has one, ``False`` never, ``True``
            always (:class:`~facefaas.errors.ParameterError` if the model has none). LNet moves
            only the five landmarks; boxes and scores are the same either way.

        resolvers: extra places to look up a model id (:func:`~facefaas.models.resolve.
            resolve_model`; the service passes its registry).

    One detector may be used from many threads at once; results equal single-threaded ones.
    :meth:`close` (or leaving a ``with`` block) stops its threads and frees its sessions.
    """

    def __init__(
        self,
        model: ModelRef = DEFAULT_MODEL,
        *,
        min_size: float = 20.0,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
        refine_landmarks: bool | None = None,
        pool: Executor | None = None,
        resolvers: Sequence[Resolver] = (),
    ) -> None:
        from facefaas.runtime.sessions import OnnxCascade

        self.params = DetectionParams(min_size, tuple(thresholds), factor)  # type: ignore[arg-type]
        resolved = resolve_model(model, resolvers=resolvers)
        networks, self.manifest = resolved.networks, resolved.manifest
        if refine_landmarks not in (None, True, False):
            raise ParameterError(
                f"refine_landmarks must be None, True or False, not {refine_landmarks!r}"
            )
        if refine_landmarks and "lnet" not in networks:
            raise ParameterError(
                f"refine_landmarks=True, but model {self.manifest.name!r} has no landmark-"
                "refinement net (LNet); import one with it (e.g. Caffe det1-det4)"
            )
        if refine_landmarks is False:
            networks = {net: data for net, data in networks.items() if net != "lnet"}
        self.refine_landmarks: bool = "lnet" in networks
        """Whether detections run LNet after O-Net."""
        self._ops = OnnxCascade(networks, providers=providers, threads=threads, pool=pool)
        self._closed = False

    def close(self) -> None:
        """Stop the threads this detector started and free its sessions (idempotent).

        Calls after this raise :class:`~facefaas.errors.ModelError`.
        """
        self._closed = True
        self._ops.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider in use, e.g. ``"CPUExecutionProvider"``."""
        return self._ops.provider

    def resolve_params(
        self, params: DetectionParams | None = None, overrides: dict[str, Any] | None = None
    ) -> DetectionParams:
        """``params`` (default: this detector's) with keyword overrides applied and validated."""
        base = self.params if params is None else params
        if not isinstance(base, DetectionParams):
            raise ParameterError(f"params must be DetectionParams, got {type(base).__name__}")
        return DetectionParams.from_mapping(overrides, base=base) if overrides else base

    def __call__(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        channels: str = "rgb",
        **overrides: Any,
    ) -> Faces:
        """Detect faces in one image.

        Args:
            image: any source :func:`facefaas.decode.load_image` takes (bytes, path, file, PIL
                image, ``(H, W, 3)`` uint8 array) or a :class:`~facefaas.decode.DecodedImage`.
            params: the :class:`DetectionParams` of this call (default: the detector's).
            channels: ``"rgb"`` or ``"bgr"`` (OpenCV) for numpy arrays.
            overrides: ``min_size``, ``thresholds``, ``factor`` for this call, over ``params``.
        """
        return self.detect(image, params, channels=channels, **overrides)

    def detect(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        channels: str = "rgb",
        deadline: Deadline | None = None,
        **overrides: Any,
    ) -> Faces:
        """Same as calling the detector; ``deadline`` (a :class:`~facefaas.deadline.Deadline`)
        is checked between the cascade's steps and stops it (``DeadlineExceededError``,
        ``CancelledError``) when it passes or is cancelled."""
        resolved = self.resolve_params(params, overrides)
        return self._detect_one(image, channels, resolved, deadline)

    def detect_batch(
        self,
        images: Sequence[Any],
        params: DetectionParams | None = None,
        *,
        channels: str = "rgb",
        **overrides: Any,
    ) -> list[Faces]:
        """Detect faces in several images (sizes may differ); equal to one call per image.

        Two images are in flight at a time: while one is in the cascade's serial steps
        (decoding, NMS between stages), the other's pyramid levels and crop chunks keep the
        cores busy. The first image that cannot be read raises its error.
        """
        if isinstance(images, str | bytes | np.ndarray):
            raise ParameterError("detect_batch takes a sequence of images")
        resolved = self.resolve_params(params, overrides)

        def one(image: Any) -> Faces:
            return self._detect_one(image, channels, resolved)

        if len(images) < 2:
            return [one(image) for image in images]
        pool = ThreadPoolExecutor(_IMAGES_IN_FLIGHT, thread_name_prefix="facefaas-batch")
        try:
            return list(pool.map(one, images))
        finally:  # after an error, images not yet started are dropped
            pool.shutdown(cancel_futures=True)

    def _detect_one(
        self,
        image: Any,
        channels: str,
        params: DetectionParams,
        deadline: Deadline | None = None,
    ) -> Faces:
        from facefaas.decode import load_image

        if self._closed:
            raise ModelError(f"the detector of {self.manifest.name!r} is closed")
        rgb = load_image(image, channels=channels).pixels  # type: ignore[arg-type]
        height, width = rgb.shape[:2]
        check = deadline.check if deadline is not None else never_stop
        found = run_cascade(
            normalize(rgb), self._ops, params, refine_landmarks=self.refine_landmarks, check=check
        )
        return Faces(found.boxes, found.scores, found.landmarks, width=width, height=height)


_default: Detector | None = None
_default_lock = threading.Lock()


def detect(image: Any, *, channels: str = "rgb", **params: Any) -> Faces:
    """Detect faces with a shared default :class:`Detector` (built-in model, CPU).

    See :meth:`Detector.detect` for the arguments.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Detector()
    return _default.detect(image, channels=channels, **params)
