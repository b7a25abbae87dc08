"""Offline detection over large folders on Ray Data: ``facefaas detect DIR --ray``.

The driver lists the images first (paths or URLs, nothing read), then Ray Data hands them in
small batches to a pool of actors (``map_batches`` with a callable class). Each actor holds one
:class:`~facefaas.detector.Detector`, built once from the model the driver resolved (its ONNX
bytes travel to the actors through the object store, so a model file on the driver's disk works
on every node), reads each image itself (lazily: only a batch's images are in memory), detects,
and sends back the JSON line and the encoded picture. The driver writes the outputs, in input
order (``preserve_order``), so the files are those of the plain command, byte for byte.

An image's failure (unreadable, corrupt, refused URL) is a value of its :class:`Outcome`, never
an exception: one bad file in a million does not stop the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from facefaas.models.bundle import Bundle
from facefaas.models.resolve import ModelRef, resolve_model

if TYPE_CHECKING:
    from facefaas.decode import DecodedImage
    from facefaas.fetch import FetchPolicy
    from facefaas.request import DetectionRequest

__all__ = [
    "DEFAULT_OBJECT_STORE_BYTES",
    "OfflineOptions",
    "Outcome",
    "PictureFormat",
    "Source",
    "detect_offline",
    "ray_session",
    "resolved_bundle",
]

DEFAULT_OBJECT_STORE_BYTES = 512 * 1024 * 1024
"""The object store of a Ray started for one run: outputs stream through it in small batches,
so it needs little; Ray's own default (30% of memory) would take memory the actors need."""

_RAY_LOGGERS = ("ray", "ray.data")
_MAX_BLOCKS = 4096  # past this, blocks hold several batches: fewer objects for the driver

PictureFormat = Literal["jpeg", "png", "auto"]
"""How a source's picture is encoded; ``"auto"``: PNG for a PNG input, else JPEG."""


@dataclass(frozen=True)
class Source:
    """One image to process.

    Attributes:
        name: the name its JSON line carries (``"path"``) and its errors are reported by.
        location: what an actor reads: a file path (seen by every node), an ``http(s)://`` URL
            (fetched through :func:`facefaas.fetch.fetch_image`'s guard) or a URI of another
            scheme that ``pyarrow.fs`` opens (``file://``, ``s3://``, ``gs://``, ``hdfs://``).
        picture: the format of its picture, or ``None`` for no picture.
    """

    name: str
    location: str
    picture: PictureFormat | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one :class:`Source` (``index`` is its place in the input).

    Either ``line`` (the JSON line, without newline: ``{"path": name, **faces.to_dict()}``),
    ``decoded_format`` (Pillow's name of the input's format) and ``picture`` (encoded bytes, if
    asked for), or ``error`` (the message the command line prints after ``name: ``).
    """

    index: int
    line: str | None = None
    decoded_format: str | None = None
    picture: bytes | None = None
    error: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        if self.line is None:
            raise ValueError(f"source {self.index} failed: {self.error}")
        record: dict[str, Any] = json.loads(self.line)
        return record


@dataclass(frozen=True)
class OfflineOptions:
    """How the work is spread.

    Attributes:
        actors: detector actors in the pool (default: the cluster's CPUs divided by
            ``cpus_per_actor``, at least 1).
        cpus_per_actor: CPUs Ray reserves for each actor; its detector uses as many threads.
        batch_size: images per actor call (and per block): small, so memory stays bounded and
            the progress is smooth.
    """

    actors: int | None = None
    cpus_per_actor: float = 1.0
    batch_size: int = 4

    def __post_init__(self) -> None:
        from facefaas.errors import ParameterError

        if self.actors is not None and self.actors < 1:
            raise ParameterError(f"actors must be at least 1, got {self.actors}")
        if not self.cpus_per_actor > 0:
            raise ParameterError(f"cpus_per_actor must be positive, got {self.cpus_per_actor}")
        if self.batch_size < 1:
            raise ParameterError(f"batch_size must be at least 1, got {self.batch_size}")


def resolved_bundle(model: ModelRef) -> Bundle:
    """The model ``model`` names, read once (on the driver) into memory, as actors receive it.

    Raises what :func:`~facefaas.models.resolve.resolve_model` raises.
    """
    if isinstance(model, Bundle):
        return model
    resolved = resolve_model(model)
    where = Path(os.fspath(model)) if isinstance(model, str | os.PathLike) else Path()
    return Bundle(where, resolved.manifest, dict(resolved.networks))


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_bytes: int = DEFAULT_OBJECT_STORE_BYTES,
) -> Iterator[None]:
    """Ray for one run: connected to the cluster at ``address`` (``"auto"``, ``host:port``,
    ``ray://...``), or a local Ray started for it (``num_cpus``: default all of this machine's,
    no dashboard, an object store of ``object_store_bytes``), and shut down at the end.

    Ray's logs stay in its session folder: workers' output is not forwarded to the driver and
    its own loggers say only errors, so stdout keeps the results alone. ``num_cpus`` defaults
    to the CPUs this process may run on. An already connected
    Ray (a caller's own ``ray.init``) is used as it is and left running.
    """
    import ray
    import ray.data  # configures Ray Data's loggers, which are quieted below

    if ray.is_initialized():
        yield
        return
    quiet = {name: logging.getLogger(name).level for name in _RAY_LOGGERS}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        if address is None:
            ray.init(
                address="local",  # never a cluster that `ray start` left on this machine
                num_cpus=num_cpus or len(os.sched_getaffinity(0)),
                include_dashboard=False,
                object_store_memory=object_store_bytes,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def detect_offline(
    sources: Sequence[Source],
    request: DetectionRequest,
    *,
    model: ModelRef = "mtcnn",
    options: OfflineOptions | None = None,
    policy: FetchPolicy | None = None,
) -> Iterator[Outcome]:
    """Run ``request`` (its ``params``, face filter, function and output options) over every
    source on Ray Data, in an actor pool of detectors; yields one :class:`Outcome` per source,
    in the order of ``sources``, as they are done.

    Runs on the Ray this process is connected to (:func:`ray_session`). ``policy`` guards the
    fetches of ``http(s)`` sources (default: :class:`~facefaas.fetch.FetchPolicy`'s).
    """
    import ray.data

    if not sources:
        return
    options = options or OfflineOptions()
    actors = options.actors or max(1, int(_cluster_cpus() // options.cpus_per_actor))
    rows = [
        {"index": i, "name": s.name, "location": s.location, "picture": s.picture or ""}
        for i, s in enumerate(sources)
    ]
    # One block per batch: work is handed out a batch at a time (balanced over the actors) and
    # results come back as soon as each batch is done.
    blocks = min(math.ceil(len(rows) / options.batch_size), _MAX_BLOCKS)
    actors = min(actors, blocks)  # an actor with no block to work on would load a model for nothing
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    context = dataset.context
    context.enable_progress_bars = False  # the caller shows its own, of images done
    context.execution_options.preserve_order = True
    results = dataset.map_batches(
        _DetectActor,
        fn_constructor_kwargs={
            "model": resolved_bundle(model),
            "request": request,
            "threads": max(1, math.ceil(options.cpus_per_actor)),
            "policy": policy,
        },
        batch_size=options.batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=options.cpus_per_actor,
    )
    for row in results.iter_rows():
        yield Outcome(
            index=int(row["index"]),
            line=row["line"] or None,
            decoded_format=row["decoded_format"] or None,
            picture=row["picture"] or None,
            error=row["error"] or None,
        )


def _cluster_cpus() -> float:
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return float(resources.get("CPU", 1.0))


class _DetectActor:
    """An actor of the pool: one detector, built once, run over batch after batch."""

    def __init__(
        self, model: Bundle, request: DetectionRequest, threads: int, policy: FetchPolicy | None
    ) -> None:
        from facefaas.detector import Detector

        self.detector = Detector(model, threads=threads)
        self.request = request
        self.policy = policy

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {
            "index": [], "line": [], "decoded_format": [], "picture": [], "error": [],
        }  # fmt: skip
        for index, name, location, picture in zip(
            batch["index"], batch["name"], batch["location"], batch["picture"], strict=True
        ):
            outcome = self._one(int(index), str(name), str(location), str(picture) or None)
            columns["index"].append(outcome.index)
            columns["line"].append(outcome.line or "")
            columns["decoded_format"].append(outcome.decoded_format or "")
            columns["picture"].append(outcome.picture or b"")
            columns["error"].append(outcome.error or "")
        return columns

    def _one(self, index: int, name: str, location: str, picture: str | None) -> Outcome:
        from facefaas.decode import load_image
        from facefaas.errors import FacefaasError

        try:
            decoded = load_image(self._read(location))
            faces = self.detector.detect(decoded, self.request.params).filter(
                score_threshold=self.request.score_threshold, max_faces=self.request.max_faces
            )
            line = json.dumps({"path": name, **faces.to_dict()})
            encoded = self._picture(decoded, faces, picture) if picture else None
        except FacefaasError as exc:  # the plain command's per-image errors
            return Outcome(index, error=exc.message)
        except OSError as exc:
            if exc.filename == location:  # named as the caller names it, not as read here
                exc.filename = name
            return Outcome(index, error=str(exc))
        except Exception as exc:  # anything else is still this image's, not the run's
            return Outcome(index, error=f"{type(exc).__name__}: {exc}")
        return Outcome(index, line, decoded.format, encoded)

    def _read(self, location: str) -> bytes:
        if location.lower().startswith(("http://", "https://")):
            from facefaas.fetch import FetchPolicy, fetch_image

            return fetch_image(location, self.policy or FetchPolicy()).data
        if "://" in location:
            return self._read_uri(location)
        return Path(location).read_bytes()

    @staticmethod
    def _read_uri(uri: str) -> bytes:
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:
            data: bytes = stream.read()
        return data

    def _picture(self, decoded: DecodedImage, faces: Any, picture: str) -> bytes:
        from facefaas.render import encode_image

        image_format: Literal["jpeg", "png"] = "jpeg"
        if picture == "png" or (picture == "auto" and decoded.format == "PNG"):
            image_format = "png"
        drawn = self.request.function.picture(decoded, faces, self.request.output)
        return encode_image(drawn, image_format)
