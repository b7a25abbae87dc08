"""facefaas: face detection as a function.

A faithful, fast MTCNN on ONNX Runtime (:func:`detect`, :class:`Detector`), and CenterFace beside
it (``Detector("centerface")``, :class:`CenterFaceParams`), pictures of the result
(:func:`annotate`, :func:`anonymize`, :func:`crop_faces`), a model importer for the formats MTCNNs
are trained in, an HTTP service and its :class:`Client`.

Importing this package has no side effects and stays cheap: the names below are loaded on first
use (NumPy, ONNX Runtime and httpx are imported only by what needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from facefaas._version import __version__

if TYPE_CHECKING:
    from facefaas.centerface.params import CenterFaceParams
    from facefaas.client import Client
    from facefaas.crops import crop_faces
    from facefaas.decode import DecodedImage, load_image
    from facefaas.detector import Detector, detect
    from facefaas.errors import FacefaasError
    from facefaas.faces import LANDMARK_NAMES, Face, Faces
    from facefaas.models.importing import import_model
    from facefaas.params import DetectionParams
    from facefaas.render import annotate, anonymize, encode_image

__all__ = [
    "LANDMARK_NAMES",
    "CenterFaceParams",
    "Client",
    "DecodedImage",
    "DetectionParams",
    "Detector",
    "Face",
    "FacefaasError",
    "Faces",
    "__version__",
    "annotate",
    "anonymize",
    "crop_faces",
    "detect",
    "encode_image",
    "import_model",
    "load_image",
]

_LAZY: dict[str, str] = {
    "CenterFaceParams": "facefaas.centerface.params",
    "Client": "facefaas.client",
    "DecodedImage": "facefaas.decode",
    "DetectionParams": "facefaas.params",
    "Detector": "facefaas.detector",
    "Face": "facefaas.faces",
    "FacefaasError": "facefaas.errors",
    "Faces": "facefaas.faces",
    "LANDMARK_NAMES": "facefaas.faces",
    "annotate": "facefaas.render",
    "anonymize": "facefaas.render",
    "crop_faces": "facefaas.crops",
    "detect": "facefaas.detector",
    "encode_image": "facefaas.render",
    "import_model": "facefaas.models.importing",
    "load_image": "facefaas.decode",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facefaas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
