"""`Detector`: a face detector of any family on ONNX Runtime, and the module-level
:func:`detect`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from facefaas.errors import ModelError, ParameterError
from facefaas.faces import Faces
from facefaas.families import Family, Runner
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.models.resolve import ModelRef, Resolver, resolve_model
from facefaas.mtcnn.pipeline import never_stop

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from facefaas.deadline import Deadline

__all__ = ["Detector", "ModelRef", "detect"]

_IMAGES_IN_FLIGHT = 2  # per detect_batch call


class Detector:
    """Face detector: a model of any detector family on ONNX Runtime.

    Args:
        model: ``"mtcnn"`` (built in, the seed's model, the default), ``"centerface"`` (built
            in), a bundle folder, a CenterFace ``.onnx`` file, an MTCNN model file or folder in
            any importable format (a bundle zip, a TensorFlow ``.pb``, Caffe, facenet-pytorch or
            ipazc weights: imported in memory), a :class:`~facefaas.models.bundle.Bundle` or
            in-memory :class:`MtcnnWeights`.
        params: this detector's default parameters, of the model's family
            (:class:`DetectionParams` for MTCNN, :class:`~facefaas.centerface.CenterFaceParams`
            for CenterFace); default: the family's defaults.
        min_size, thresholds, factor: MTCNN's parameters one by one, over ``params``.
        providers: ``"cpu"`` (default), ``"cuda"``, ``"auto"`` or ORT provider names.
        threads: how many cores one detection may use (default: all).
        pool: MTCNN: run pyramid levels and crop chunks on this executor, shared with other
            detectors (the service shares one across every model it holds); ``threads`` is then
            ignored and :meth:`close` leaves the pool to its owner.
        refine_landmarks: MTCNN: run the model's landmark-refinement net (LNet, e.g. Caffe's
            ``det4``) after O-Net: ``None`` (default) when the model has one, ``False`` never,
            ``True`` always (:class:`~facefaas.errors.ParameterError` if the model has none).
            LNet moves only the five landmarks; boxes and scores are the same either way.
        resolvers: extra places to look up a model id (:func:`~facefaas.models.resolve.
            resolve_model`; the service passes its registry).

    One detector may be used from many threads at once; results equal single-threaded ones.
    :meth:`close` (or leaving a ``with`` block) stops its threads and frees its sessions.
    """

    def __init__(
        self,
        model: ModelRef = DEFAULT_MODEL,
        *,
        params: Any = None,
        min_size: float | None = None,
        thresholds: Sequence[float] | None = None,
        factor: float | None = None,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
        refine_landmarks: bool | None = None,
        pool: Executor | None = None,
        resolvers: Sequence[Resolver] = (),
    ) -> None:
        resolved = resolve_model(model, resolvers=resolvers)
        networks, self.manifest = resolved.networks, resolved.manifest
        self.family: Family = resolved.family
        """The model's detector family (:mod:`facefaas.families`)."""
        given: dict[str, Any] = {"min_size": min_size, "thresholds": thresholds, "factor": factor}
        given = {name: value for name, value in given.items() if value is not None}
        if given and self.family.name != "mtcnn":
            raise ParameterError(
                f"{', '.join(given)}: not parameters of {self.family.title} (its parameters: "
                f"{', '.join(self.family.parameter_names)})"
            )
        if isinstance(given.get("thresholds"), list):
            given["thresholds"] = tuple(given["thresholds"])
        self.params: Any = self.family.params(given, base=self._checked(params))
        """This detector's default parameters (of its family)."""
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
        """Whether detections run LNet after O-Net (MTCNN)."""
        self._runner: Runner = self.family.load(networks, providers, threads, pool)
        self._closed = False

    def _checked(self, params: Any) -> Any:
        """``params`` if they are of this detector's family (``None`` passes)."""
        if params is not None and not isinstance(params, self.family.params_type):
            raise ParameterError(
                f"params must be {self.family.params_type.__name__} for a {self.family.title} "
                f"model, got {type(params).__name__}"
            )
        return params

    def close(self) -> None:
        """Stop the threads this detector started and free its sessions (idempotent).

        Calls after this raise :class:`~facefaas.errors.ModelError`.
        """
        self._closed = True
        self._runner.close()

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
        return self._runner.provider

    @property
    def _ops(self) -> Any:
        """MTCNN's :class:`~facefaas.runtime.sessions.OnnxCascade` (for the benchmarks)."""
        return self._runner.ops  # type: ignore[attr-defined]

    def resolve_params(self, params: Any = None, overrides: dict[str, Any] | None = None) -> Any:
        """``params`` (default: this detector's) with keyword overrides applied and validated,
        of this detector's family."""
        base = self.params if params is None else self._checked(params)
        return self.family.params(overrides, base=base) if overrides else base

    def __call__(
        self,
        image: Any,
        params: Any = None,
        *,
        channels: str = "rgb",
        **overrides: Any,
    ) -> Faces:
        """Detect faces in one image.

        Args:
            image: any source :func:`facefaas.decode.load_image` takes (bytes, path, file, PIL
                image, ``(H, W, 3)`` uint8 array) or a :class:`~facefaas.decode.DecodedImage`.
            params: the parameters of this call, of the model's family (default: the
                detector's): :class:`DetectionParams` for MTCNN.
            channels: ``"rgb"`` or ``"bgr"`` (OpenCV) for numpy arrays.
            overrides: single parameters for this call, over ``params`` (MTCNN: ``min_size``,
                ``thresholds``, ``factor``; CenterFace: ``threshold``, ``nms_threshold``,
                ``input_size``).
        """
        return self.detect(image, params, channels=channels, **overrides)

    def detect(
        self,
        image: Any,
        params: Any = None,
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
        params: Any = None,
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
        params: Any,
        deadline: Deadline | None = None,
    ) -> Faces:
        from facefaas.decode import load_image

        if self._closed:
            raise ModelError(f"the detector of {self.manifest.name!r} is closed")
        rgb = load_image(image, channels=channels).pixels  # type: ignore[arg-type]
        height, width = rgb.shape[:2]
        check = deadline.check if deadline is not None else never_stop
        found = self._runner.detect(rgb, params, check)
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
