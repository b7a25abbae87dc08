"""`resolve_model`: whatever a caller names a model by -> its manifest and networks.

The one resolver of facefaas: :class:`~facefaas.detector.Detector`, ``facefaas detect --model``,
``facefaas models export`` and the service all go through it, so a reference that works for one
works for all. A reference is, in this order:

1. an in-memory :class:`~facefaas.models.weights.MtcnnWeights` or
   :class:`~facefaas.models.bundle.Bundle`;
2. a built-in id (:data:`~facefaas.models.builtin.BUILTIN_MODELS`, e.g. ``"mtcnn"``);
3. an id one of the caller's ``resolvers`` knows (the service's registry), giving a bundle folder;
4. a bundle folder (with ``manifest.json``);
5. a CenterFace ONNX file (recognised by its graph's signature);
6. any other model file or folder an importer reads (a bundle zip, a TensorFlow ``.pb``, Caffe,
   facenet-pytorch or ipazc weights), imported in memory without the smoke test.

A model is of one detector family (:mod:`facefaas.families`), named by its manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facefaas.errors import ModelFormatError, ModelNotFoundError
from facefaas.families import Family, get_family
from facefaas.models.builtin import BUILTIN_MODELS, builtin_path
from facefaas.models.bundle import MANIFEST_FILE, Bundle, read_bundle
from facefaas.models.manifest import ModelManifest
from facefaas.models.onnx_build import network_bytes, weights_from_onnx
from facefaas.models.weights import MtcnnWeights

__all__ = ["ModelRef", "ResolvedModel", "Resolver", "resolve_model"]

ModelRef = str | os.PathLike[str] | Bundle | MtcnnWeights
Resolver = Callable[[str], Path | None]


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its manifest and its networks as serialized ONNX bytes, named as
    its family names them (MTCNN: ``pnet``, ``rnet``, ``onet``, and ``lnet`` when it has
    landmark refinement; CenterFace: ``centerface``)."""

    manifest: ModelManifest
    networks: dict[str, bytes]

    @property
    def family(self) -> Family:
        return get_family(self.manifest.family)

    def weights(self) -> MtcnnWeights:
        """The canonical MTCNN weights (to export or re-import an MTCNN model)."""
        import onnx

        if self.manifest.family != "mtcnn":
            raise ModelFormatError(f"{self.manifest.name!r} is a {self.family.title} model")
        return weights_from_onnx({n: onnx.load_from_string(b) for n, b in self.networks.items()})


def centerface_model(data: bytes, name: str | None = None) -> ResolvedModel | None:
    """A CenterFace model from the bytes of its ONNX file, or ``None`` if it is not one."""
    import hashlib

    import onnx

    from facefaas.centerface import is_centerface

    try:
        graph = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError and friends: not ONNX, not CenterFace
        return None
    if not is_centerface(graph):
        return None
    digest = hashlib.sha256(data).hexdigest()
    manifest = ModelManifest(
        name=name or f"centerface-{digest[:12]}",
        weights_sha256=digest,
        description="CenterFace imported from an ONNX file",
        source_format="onnx",
        parameters=get_family("centerface").default_params(),
        family="centerface",
    )
    return ResolvedModel(manifest, {"centerface": data})


def _from_bundle(bundle: Bundle) -> ResolvedModel:
    return ResolvedModel(bundle.manifest, dict(bundle.networks))


def resolve_model(ref: ModelRef, *, resolvers: Sequence[Resolver] = ()) -> ResolvedModel:
    """The model ``ref`` names (module docstring for the order in which names are tried).

    Raises:
        ModelNotFoundError: nothing by that name; the message lists the built-in ids.
        ModelFormatError, ModelValidationError, TooLargeError: a file that is not a model.
    """
    if isinstance(ref, MtcnnWeights):
        return ResolvedModel(
            ModelManifest(name="in-memory", weights_sha256=ref.digest()), network_bytes(ref)
        )
    if isinstance(ref, Bundle):
        return _from_bundle(ref)
    text = os.fspath(ref)
    if isinstance(ref, str):
        builtin = builtin_path(text)
        if builtin is not None:
            return _from_bundle(read_bundle(builtin))
        for resolver in resolvers:
            found = resolver(text)
            if found is not None:
                return _from_bundle(read_bundle(found))
    path = Path(text)
    if not path.exists():
        raise ModelNotFoundError(
            f"no model {text!r}: not a built-in model ({', '.join(sorted(BUILTIN_MODELS))}), "
            "a bundle folder or a model file"
        )
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        return _from_bundle(read_bundle(path))
    if path.is_file() and path.suffix.lower() == ".onnx":
        centerface = centerface_model(path.read_bytes())
        if centerface is not None:
            return centerface
    from facefaas.models.importing import import_model

    imported = import_model(path, validate=False)
    return ResolvedModel(imported.manifest, imported.network_bytes())
