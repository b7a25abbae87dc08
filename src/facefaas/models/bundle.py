"""Model bundles on disk: ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx`` and ``manifest.json``, plus
``lnet.onnx`` for a model with landmark refinement (optional).

A bundle is the one form in which facefaas stores, ships and exports a model. Writing is atomic:
files go to a temporary sibling folder that is renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from facefaas.errors import ModelFormatError, ModelValidationError
from facefaas.models.manifest import ModelManifest
from facefaas.models.onnx_build import network_bytes, weights_from_onnx
from facefaas.models.weights import MtcnnWeights

__all__ = [
    "NETWORK_FILES",
    "REQUIRED_NETWORKS",
    "Bundle",
    "read_bundle",
    "write_bundle",
    "write_networks",
]

NETWORK_FILES = {"pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx", "lnet": "lnet.onnx"}
REQUIRED_NETWORKS = ("pnet", "rnet", "onet")  # lnet is optional
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Bundle:
    """A model read from disk: its manifest, and its networks as serialized ONNX bytes
    (``networks`` has ``"lnet"`` only when the bundle has ``lnet.onnx``)."""

    path: Path
    manifest: ModelManifest
    networks: dict[str, bytes]

    def weights(self) -> MtcnnWeights:
        models = {net: onnx.load_from_string(data) for net, data in self.networks.items()}
        return weights_from_onnx(models)


def write_bundle(
    directory: str | os.PathLike[str], weights: MtcnnWeights, manifest: ModelManifest
) -> Path:
    """Write MTCNN ``weights`` as a bundle into ``directory`` (created; replaced atomically if
    present). The manifest's ``weights_sha256`` is set from the weights. Returns its path."""
    manifest = replace(manifest, weights_sha256=weights.digest())
    return write_networks(directory, network_bytes(weights), manifest)


def write_networks(
    directory: str | os.PathLike[str], networks: Mapping[str, bytes], manifest: ModelManifest
) -> Path:
    """Write a bundle of any family: ``networks`` (ONNX bytes named as ``manifest.family``
    names them) and the manifest, atomically. Returns the bundle's path."""
    from facefaas.families import get_family

    files = get_family(manifest.family).network_files
    unknown = sorted(set(networks) - set(files))
    if unknown:
        raise ModelFormatError(f"a {manifest.family} model has no network {', '.join(unknown)}")
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp.chmod(0o755)
        for net, data in networks.items():
            _write_synced(tmp / files[net], data)
        _write_synced(tmp / MANIFEST_FILE, manifest.to_json().encode())
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_bundle(directory: str | os.PathLike[str]) -> Bundle:
    """Read a bundle folder of any family (its ``manifest.json`` says which). Raises
    ModelFormatError when files are missing."""
    from facefaas.families import get_family

    path = Path(directory)
    if not (path / MANIFEST_FILE).is_file():
        raise ModelFormatError(f"{path}: not a facefaas model bundle, missing {MANIFEST_FILE}")
    manifest = ModelManifest.from_json((path / MANIFEST_FILE).read_bytes())
    family = get_family(manifest.family)
    files = family.network_files
    missing = [files[net] for net in family.required_networks if not (path / files[net]).is_file()]
    if missing:
        raise ModelFormatError(f"{path}: not a facefaas model bundle, missing {', '.join(missing)}")
    networks = {
        net: (path / name).read_bytes()
        for net, name in files.items()
        if net in family.required_networks or (path / name).is_file()
    }
    if not manifest.weights_sha256:
        raise ModelValidationError(f"{path}: manifest.json has no weights_sha256")
    return Bundle(path=path, manifest=manifest, networks=networks)
