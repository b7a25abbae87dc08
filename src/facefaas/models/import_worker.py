"""One model import in a confined child process, and the wire format of its answer.

:func:`import_in_child` is the body of the child process that
:class:`facefaas.server.imports.ImportWorkers` starts for each upload. It limits itself
(``resource.setrlimit``: CPU seconds, address space, no core files; ``nice 19``), runs
:func:`~facefaas.models.importing.import_model`, and sends the result back without pickle: a JSON
header (format, manifest, warnings, each array's net, name and shape) followed by each array's
raw little-endian float32 bytes. :func:`receive_imported` reads that answer in the parent and
rebuilds the model from plain data only: :class:`~facefaas.models.weights.MtcnnWeights` checks
every name, shape and value again, :meth:`ModelManifest.from_json` the manifest. So the server
never unpickles anything an upload (or a compromised child) produced.

This module imports only the models layer, so a ``forkserver`` can preload it with the importers
and start each child in milliseconds.
"""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from facefaas import errors
from facefaas.errors import FacefaasError, ModelFormatError, TooLargeError
from facefaas.models.importing import ImportedModel, import_model
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights

__all__ = [
    "ImportJob",
    "ImportLimits",
    "ImportWorkerError",
    "import_in_child",
    "memory_error",
    "receive_imported",
]

_MAX_HEADER_BYTES = 1 << 20
_MAX_ARRAYS = 256  # MTCNN with LNet has about 80 parameters
_NICEST = 19
# How native code (ONNX Runtime's arenas, C++ ``new``) says an allocation failed under RLIMIT_AS.
_ALLOCATION_FAILED = ("Failed to allocate memory", "bad_alloc", "bad allocation")
# The child's errors that cross back as themselves; anything else is a failed import (422).
_PASSED_ERRORS: dict[str, type[FacefaasError]] = {
    cls.__name__: cls
    for cls in (
        errors.InputError,
        errors.ParameterError,
        errors.ModelError,
        errors.ModelFormatError,
        errors.ModelValidationError,
    )
}


@dataclass(frozen=True)
class ImportLimits:
    """What one import may use: CPU seconds, address space in bytes, wall-clock seconds."""

    cpu_seconds: int
    memory_bytes: int
    wall_seconds: float


@dataclass(frozen=True)
class ImportJob:
    """The arguments of :func:`~facefaas.models.importing.import_model` for one upload."""

    source: bytes | dict[str, bytes]
    name: str | None
    description: str | None
    format: str | None
    max_bytes: int


class ImportWorkerError(Exception):
    """The child ended without a complete answer (killed, crashed, or a malformed answer)."""


def memory_error(limits: ImportLimits) -> TooLargeError:
    """The 413 of an import that needed more memory than ``limits`` allow."""
    return TooLargeError(
        f"importing this model needs more than the {limits.memory_bytes} bytes of memory an "
        "import may use",
        limit=limits.memory_bytes,
        unit="bytes of memory",
    )


# -- the child -------------------------------------------------------------------------------


def import_in_child(conn: Connection, job: ImportJob, limits: ImportLimits) -> None:
    """The child process's body: limit itself, import ``job``, send the answer on ``conn``."""
    os.nice(_NICEST)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    try:
        header, blobs = _answer(job)
        conn.send_bytes(json.dumps(header).encode())
        for blob in blobs:
            conn.send_bytes(blob)
    finally:
        conn.close()


def _answer(job: ImportJob) -> tuple[dict[str, Any], list[bytes]]:
    try:
        imported = import_model(
            job.source,
            name=job.name,
            description=job.description,
            format=job.format,
            max_bytes=job.max_bytes,
        )
        return _encode(imported)
    except MemoryError:
        return {"ok": False, "error": "MemoryError"}, []
    except FacefaasError as exc:
        header = {"ok": False, "error": type(exc).__name__, "message": exc.message}
        for name in ("limit", "unit"):
            header[name] = getattr(exc, name, None)
        return header, []
    except Exception as exc:
        if any(sign in str(exc) for sign in _ALLOCATION_FAILED):  # ONNX Runtime, C++
            return {"ok": False, "error": "MemoryError"}, []
        # A bug in an importer: the parent logs it and answers 422.
        return {"ok": False, "error": "bug", "message": f"{type(exc).__name__}: {exc}"}, []


def _encode(imported: ImportedModel) -> tuple[dict[str, Any], list[bytes]]:
    specs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    if imported.weights is None:  # another family: its networks' ONNX bytes, checked again
        header = {
            "ok": True,
            "format": imported.format,
            "manifest": imported.manifest.to_json(),
            "warnings": list(imported.warnings),
            "arrays": [],
            "networks": list(imported.networks),
        }
        return header, list(imported.networks.values())
    for net, params in imported.weights.networks().items():
        for name, value in params.items():
            array = np.ascontiguousarray(value, dtype="<f4")
            specs.append({"net": net, "name": name, "shape": list(array.shape)})
            blobs.append(array.tobytes())
    header = {
        "ok": True,
        "format": imported.format,
        "manifest": imported.manifest.to_json(),
        "warnings": list(imported.warnings),
        "arrays": specs,
    }
    return header, blobs


# -- the parent ------------------------------------------------------------------------------


def receive_imported(
    conn: Connection, deadline: float, limits: ImportLimits, max_bytes: int
) -> ImportedModel:
    """Read the child's answer from ``conn`` (module docstring) before ``deadline``.

    Raises:
        TimeoutError: ``deadline`` (``time.monotonic()``) passed first.
        ImportWorkerError: the child ended without a complete, well-formed answer.
        FacefaasError: the import's own error (the same class for the importer's errors; a
            TooLargeError past the memory limit; ModelFormatError for an importer's bug).
    """
    try:
        header = json.loads(_receive(conn, deadline, _MAX_HEADER_BYTES))
        if not isinstance(header, dict):
            raise ImportWorkerError("the answer's header is not an object")
        if not header.get("ok"):
            raise _error(header, limits)
        specs = header["arrays"]
        if not isinstance(specs, list) or len(specs) > _MAX_ARRAYS:
            raise ImportWorkerError("the answer lists no arrays, or too many")
        names = header.get("networks") or []
        if names:
            if not isinstance(names, list) or len(names) > 4:
                raise ImportWorkerError("the answer lists too many networks")
            blobs = [_receive(conn, deadline, max_bytes + 1024) for _ in names]
            return _decode_family(header, dict(zip((str(n) for n in names), blobs, strict=True)))
        arrays = [(spec, _receive(conn, deadline, 4 * max_bytes + 1024)) for spec in specs]
        return _decode(header, arrays)
    except TimeoutError:
        raise
    except (EOFError, OSError, KeyError, TypeError, ValueError) as exc:
        # ValueError covers bad JSON and reshape; a TooLargeError from the checks is a 413.
        if isinstance(exc, FacefaasError):
            raise
        raise ImportWorkerError(f"{type(exc).__name__}: {exc}") from None


def _receive(conn: Connection, deadline: float, max_length: int) -> bytes:
    if not conn.poll(max(0.0, deadline - time.monotonic())):
        raise TimeoutError
    return conn.recv_bytes(max_length)


def _error(header: dict[str, Any], limits: ImportLimits) -> FacefaasError:
    kind = str(header.get("error", ""))
    message = str(header.get("message", ""))[:2000]
    if kind == "MemoryError":
        return memory_error(limits)
    if kind == TooLargeError.__name__:
        limit = header.get("limit")
        return TooLargeError(
            message, limit=limit if isinstance(limit, int) else 0, unit=str(header.get("unit"))
        )
    cls = _PASSED_ERRORS.get(kind)
    if cls is None:
        raise ImportWorkerError(f"the importer failed: {message}")
    return cls(message)


def _decode_family(header: dict[str, Any], networks: dict[str, bytes]) -> ImportedModel:
    """A model of another family from the child: its graph is recognised again here and its
    bytes must have the digest its manifest states."""
    import hashlib

    from facefaas.models.resolve import centerface_model

    manifest = ModelManifest.from_json(str(header["manifest"]))
    data = networks.get("centerface")
    if manifest.family != "centerface" or set(networks) != {"centerface"} or data is None:
        raise ModelFormatError(f"the importer returned a {manifest.family} model it cannot be")
    if hashlib.sha256(data).hexdigest() != manifest.weights_sha256 or not centerface_model(data):
        raise ModelFormatError("the importer returned a CenterFace model that does not check out")
    warnings = [str(w)[:2000] for w in header.get("warnings", [])][:100]
    return ImportedModel(None, manifest, str(header["format"])[:64], warnings, networks=networks)


def _decode(header: dict[str, Any], arrays: list[tuple[Any, bytes]]) -> ImportedModel:
    networks: dict[str, dict[str, Any]] = {}
    for spec, data in arrays:
        shape = tuple(int(n) for n in spec["shape"])
        array = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(shape)
        networks.setdefault(str(spec["net"]), {})[str(spec["name"])] = array
    if not {"pnet", "rnet", "onet"} <= set(networks) <= {"pnet", "rnet", "onet", "lnet"}:
        raise ModelFormatError(f"the importer returned the networks {sorted(networks)}")
    weights = MtcnnWeights(
        pnet=networks["pnet"],
        rnet=networks["rnet"],
        onet=networks["onet"],
        lnet=networks.get("lnet"),
    )  # checks every name, shape and value again
    manifest = ModelManifest.from_json(str(header["manifest"]))
    warnings = [str(w)[:2000] for w in header.get("warnings", [])][:100]
    return ImportedModel(weights, manifest, str(header["format"])[:64], warnings)
