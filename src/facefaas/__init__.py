"""facefaas: face detection as a function.

A faithful, fast MTCNN on ONNX Runtime (:func:`detect`, :class:`Detector`), pictures of the result
(:func:`annotate`, :func:`anonymize`, :func:`crop_faces`), a model importer for the formats MTCNNs
are trained in, and an HTTP service around them. Importing this package has no side effects.
"""

from facefaas._version import __version__
from facefaas.errors import FacefaasError
from facefaas.faces import LANDMARK_NAMES, Face, Faces

__all__ = [
    "LANDMARK_NAMES",
    "Face",
    "FacefaasError",
    "Faces",
    "__version__",
]
