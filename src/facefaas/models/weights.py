"""`MtcnnWeights`: the three networks' parameters (and optional LNet's) in one canonical convention.

Every importer (TensorFlow graph, Caffe, facenet-pytorch, ipazc, ONNX bundle) turns its file into
this, and :mod:`facefaas.models.onnx_build` turns this into ONNX. The convention:

* convolution kernels are ONNX ``OIHW`` float32, for an image in normal orientation (not the
  transposed MATLAB/Caffe one) and **RGB** input channels, normalised as ``(x - 127.5) / 128``;
* the fully connected layer after the last convolution of R-Net (``fc4``) and O-Net (``fc5``) is
  stored as a convolution kernel over the final feature map (``OIHW``, 3x3), which removes any
  question of flatten order;
* the heads (``conv4_1``/``conv4_2`` of P-Net as 1x1 ``OIHW`` kernels; ``fc*_1``, ``fc*_2``,
  ``fc6_3`` of R/O-Net as ``(out, in)`` matrices) give: face logits ``(not face, face)``; box
  offsets ``(dx1, dy1, dx2, dy2)``; landmarks ``(x1..x5, y1..y5)`` relative to the box;
* PReLU slopes are ``(channels,)``.

The optional fourth network, LNet (the authors' ``det4``, :data:`LNET_LAYOUT`), refines the five
landmarks from five 24x24 RGB patches, one per landmark, stacked into 15 input channels (patch
``k`` is channels ``3k..3k+2``). Each patch has its own branch ``conv1_k``-``conv3_k`` (like
R-Net's body); ``fc4`` joins the five 3x3 maps and is stored as a ``(256, 5, 64, 3, 3)`` kernel
(out, branch, channel, height, width); each landmark has a head ``fc4_k`` -> ``fc5_k`` whose two
outputs are the landmark's ``(x, y)`` position in its patch, in ``[0, 1]`` (0.5: no move).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facefaas.errors import ModelValidationError

__all__ = ["LNET_BRANCHES", "LNET_LAYOUT", "NETWORK_LAYOUT", "MtcnnWeights", "Params"]

Params = dict[str, npt.NDArray[np.float32]]

# name -> shape of every parameter, per network. Retraining MTCNN keeps its architecture, so every
# shape is fixed; an upload with other shapes is not a model we can run.
NETWORK_LAYOUT: Mapping[str, Mapping[str, tuple[int, ...]]] = {
    "pnet": {
        "conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1": (10,),
        "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2": (16,),
        "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3": (32,),
        "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
        "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,),
    },
    "rnet": {
        "conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1": (28,),
        "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2": (48,),
        "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3": (64,),
        "fc4.weight": (128, 64, 3, 3), "fc4.bias": (128,), "prelu4": (128,),
        "fc5_1.weight": (2, 128), "fc5_1.bias": (2,),
        "fc5_2.weight": (4, 128), "fc5_2.bias": (4,),
    },
    "onet": {
        "conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2": (64,),
        "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3": (64,),
        "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4": (128,),
        "fc5.weight": (256, 128, 3, 3), "fc5.bias": (256,), "prelu5": (256,),
        "fc6_1.weight": (2, 256), "fc6_1.bias": (2,),
        "fc6_2.weight": (4, 256), "fc6_2.bias": (4,),
        "fc6_3.weight": (10, 256), "fc6_3.bias": (10,),
    },
}  # fmt: skip

LNET_BRANCHES = 5  # one per landmark: left eye, right eye, nose, left and right mouth corner


def _lnet_layout() -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {}
    for k in range(1, LNET_BRANCHES + 1):
        layout |= {
            f"conv1_{k}.weight": (28, 3, 3, 3), f"conv1_{k}.bias": (28,), f"prelu1_{k}": (28,),
            f"conv2_{k}.weight": (48, 28, 3, 3), f"conv2_{k}.bias": (48,), f"prelu2_{k}": (48,),
            f"conv3_{k}.weight": (64, 48, 2, 2), f"conv3_{k}.bias": (64,), f"prelu3_{k}": (64,),
        }  # fmt: skip
    layout |= {"fc4.weight": (256, LNET_BRANCHES, 64, 3, 3), "fc4.bias": (256,), "prelu4": (256,)}
    for k in range(1, LNET_BRANCHES + 1):
        layout |= {
            f"fc4_{k}.weight": (64, 256), f"fc4_{k}.bias": (64,), f"prelu4_{k}": (64,),
            f"fc5_{k}.weight": (2, 64), f"fc5_{k}.bias": (2,),
        }  # fmt: skip
    return layout


# LNet's parameters (module docstring), in digest order.
LNET_LAYOUT: Mapping[str, tuple[int, ...]] = _lnet_layout()


def _checked(net: str, params: Params, layout: Mapping[str, tuple[int, ...]]) -> None:
    """Check ``params`` against ``layout`` and make every value contiguous float32 in place."""
    missing = sorted(set(layout) - set(params))
    extra = sorted(set(params) - set(layout))
    if missing or extra:
        raise ModelValidationError(
            f"{net}: parameters do not match MTCNN's layout"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    for name, shape in layout.items():
        value = np.ascontiguousarray(params[name], dtype=np.float32)
        if value.shape != shape:
            raise ModelValidationError(
                f"{net}.{name}: shape {tuple(value.shape)}, expected {shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ModelValidationError(f"{net}.{name}: contains NaN or infinite values")
        params[name] = value


@dataclass(frozen=True, eq=False)
class MtcnnWeights:
    """Parameters of P-Net, R-Net, O-Net and optionally LNet in the canonical convention (module
    docstring). ``lnet`` is ``None`` for a model without landmark refinement."""

    pnet: Params
    rnet: Params
    onet: Params
    lnet: Params | None = None

    def __post_init__(self) -> None:
        for net, layout in NETWORK_LAYOUT.items():
            _checked(net, getattr(self, net), layout)
        if self.lnet is not None:
            _checked("lnet", self.lnet, LNET_LAYOUT)

    def networks(self) -> dict[str, Params]:
        """``{"pnet", "rnet", "onet"[, "lnet"]}`` -> parameters; ``lnet`` only when present."""
        nets = {"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}
        if self.lnet is not None:
            nets["lnet"] = self.lnet
        return nets

    def digest(self) -> str:
        """SHA-256 over every parameter's name, shape and bytes: equal weights, equal digest.

        LNet's parameters are hashed after the others, and only when present, so a model without
        LNet keeps the id it had before LNet was supported."""
        h = hashlib.sha256()
        layouts: list[tuple[str, Mapping[str, tuple[int, ...]]]] = list(NETWORK_LAYOUT.items())
        if self.lnet is not None:
            layouts.append(("lnet", LNET_LAYOUT))
        for net, layout in layouts:
            params = getattr(self, net)
            for name in layout:
                h.update(f"{net}.{name}{params[name].shape}".encode())
                h.update(params[name].tobytes())
        return h.hexdigest()
