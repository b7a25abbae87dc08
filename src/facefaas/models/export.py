"""Write a model out as a bundle folder or a bundle zip (what ``facefaas models export`` makes
and ``POST /api/models`` takes).

A zip holds ``manifest.json``, ``pnet.onnx``, ``rnet.onnx`` and ``onet.onnx`` at its root. Both
forms are written atomically (a temporary sibling renamed into place), and nothing that exists is
replaced unless ``overwrite`` is set, and then only a bundle or a zip file.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from facefaas.errors import ModelConflictError
from facefaas.families import get_family
from facefaas.models.bundle import MANIFEST_FILE, write_bundle, write_networks
from facefaas.models.manifest import ModelManifest
from facefaas.models.onnx_build import network_bytes
from facefaas.models.weights import MtcnnWeights

__all__ = ["bundle_zip", "write_model"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model gives the same bytes


def bundle_zip(weights: MtcnnWeights | Mapping[str, bytes], manifest: ModelManifest) -> bytes:
    """The bundle of a model as zip bytes (deterministic): MTCNN ``weights`` (``weights_sha256``
    set from them), or the networks of another family as ONNX bytes."""
    if isinstance(weights, MtcnnWeights):
        manifest = replace(manifest, weights_sha256=weights.digest())
        networks = network_bytes(weights)
    else:
        networks = dict(weights)
    files = get_family(manifest.family).network_files
    members = {MANIFEST_FILE: manifest.to_json().encode()}
    for net, data in networks.items():
        members[files[net]] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists() and not target.is_symlink():
        return
    replaceable = not target.is_symlink() and (
        (target.is_dir() and (target / MANIFEST_FILE).is_file())
        or (target.is_file() and target.suffix.lower() == ".zip")
    )
    if not replaceable:
        raise ModelConflictError(f"{target} exists and is not a model bundle or zip; not replaced")
    if not overwrite:
        raise ModelConflictError(f"{target} exists; not replaced unless asked to (--force)")


def write_model(
    target: str | os.PathLike[str],
    weights: MtcnnWeights | Mapping[str, bytes],
    manifest: ModelManifest,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a bundle folder, or a bundle zip when ``target`` ends in ``.zip``, of MTCNN
    ``weights`` or of another family's networks (ONNX bytes). Returns the path.

    Raises:
        ModelConflictError: ``target`` exists and ``overwrite`` is false, or it is something
            other than a bundle folder or a zip file (never replaced).
    """
    path = Path(target)
    _check_target(path, overwrite)
    if path.suffix.lower() != ".zip":
        if isinstance(weights, MtcnnWeights):
            return write_bundle(path, weights, manifest)
        return write_networks(path, weights, manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = bundle_zip(weights, manifest)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
