"""Landmark refinement (LNet) geometry, as the authors' MATLAB code (``MTCNNv2/detect_face.m``).

After O-Net, each face's five landmarks are refined from five square patches, one centred on each
landmark, of side ``patchw`` (:func:`patch_sizes`): a quarter of the final box's longer side
``max(x2 - x1 + 1, y2 - y1 + 1)``, truncated, and made even by adding 1 when odd. A patch starts
at ``fix(point - patchw / 2)`` (truncated towards zero) and spans ``patchw`` pixels more
(:func:`patch_boxes`; cropped and resized to 24x24 like R-Net's crops, zeros outside the image).
LNet gives each landmark's position in its patch as fractions ``(x, y)``; the point moves to
``point - patchw / 2 + fraction * patchw`` (:func:`refine_points`), i.e. by
``(fraction - 0.5) * patchw``, except that a landmark whose ``x`` or ``y`` fraction is more than
:data:`MAX_MOVE` from 0.5 is not moved ("do not make a large movement").

All arrays are float32 pixels of the image; points ``(n, 5, 2)`` are ``(x, y)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["LNET_SIDE", "MAX_MOVE", "patch_boxes", "patch_sizes", "refine_points"]

F32 = npt.NDArray[np.float32]

LNET_SIDE = 24  # each patch is resized to 24x24
MAX_MOVE = np.float32(0.35)  # a fraction further than this from the centre is ignored
_PATCH_FRACTION = np.float32(0.25)  # patch side / box side


def patch_sizes(boxes: F32) -> F32:
    """Patch side per face ``(n,)`` (whole, even pixels) from final boxes ``(n, 4)``."""
    sides = boxes[:, 2:] - boxes[:, :2] + np.float32(1)
    patchw = np.trunc(_PATCH_FRACTION * sides.max(axis=1))
    patchw += np.mod(patchw, 2) == 1
    sizes: F32 = patchw.astype(np.float32)
    return sizes


def patch_boxes(points: F32, sizes: F32) -> F32:
    """Patch boxes ``(n * 5, 4)`` (x1, y1, x2, y2; face-major: face ``i``'s landmark ``k`` is row
    ``5 i + k``) around ``points (n, 5, 2)`` with sides ``sizes (n,)``."""
    side = sizes[:, None, None]
    start = np.trunc(points - np.float32(0.5) * side)
    boxes = np.concatenate([start, start + side], axis=2)
    return np.ascontiguousarray(boxes.reshape(-1, 4), dtype=np.float32)


def refine_points(points: F32, fractions: F32, sizes: F32) -> F32:
    """Refined points ``(n, 5, 2)`` from LNet's ``(n, 10)`` output ``(x1..x5, y1..y5)``."""
    moves = np.stack([fractions[:, :5], fractions[:, 5:]], axis=2) - np.float32(0.5)
    large = (np.abs(moves) > MAX_MOVE).any(axis=2, keepdims=True)
    moves = np.where(large, np.float32(0), moves)
    refined: F32 = (points + moves * sizes[:, None, None]).astype(np.float32)
    return refined
