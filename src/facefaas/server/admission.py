"""`plan_run`: what one image's detection will cost, decided before it is admitted.

The image's size is read from its header (no pixels decoded), its cost estimated
(:func:`facefaas.cost.estimate_cost`) with the request's parameters, and checked against the
per-request limit: over it, the request is refused with a 422 that states the estimate and the
limit, unless it asked to be scaled down to fit (``fit=true``), in which case the plan carries the
scale at which it fits (the answer stays in the original image's coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

from facefaas.cost import Cost, fit_scale
from facefaas.decode import image_size
from facefaas.errors import CostLimitError, FacefaasError
from facefaas.families import family_of
from facefaas.request import DetectionRequest

__all__ = ["RunPlan", "plan_batch", "plan_run"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class RunPlan:
    """How one image runs: its estimated ``cost`` (after scaling) and the ``scale`` applied."""

    cost: Cost
    scale: float = 1.0


def plan_run(
    data: bytes, request: DetectionRequest, *, limit_bytes: int, max_pixels: int
) -> RunPlan:
    """The plan of one image (module docstring).

    Raises:
        ImageDecodeError, TooLargeError: the header is unreadable or over ``max_pixels``.
        CostLimitError: over ``limit_bytes`` and ``request.fit`` is false (422).
    """
    width, height = image_size(data, max_pixels=max_pixels)
    estimate = family_of(request.params).estimate
    cost = estimate(width, height, request.params)
    if cost.peak_bytes <= limit_bytes:
        return RunPlan(cost)
    if not request.fit:
        raise CostLimitError(
            f"this request is estimated to need {cost.peak_bytes / MiB:.0f} MiB at its peak "
            f"({cost.pyramid_pixels / 1e6:.0f} Mpx through the network, {cost.gmac:.0f} GMAC), "
            f"over the per-request limit of {limit_bytes / MiB:.0f} MiB: send a smaller image, "
            "ask for fewer scales (MTCNN: a larger min_size or a smaller factor; CenterFace: an "
            "input_size), or ask fit=true to have it scaled down to fit",
            estimate=cost.to_dict(),
            limit=limit_bytes,
        )
    scale = fit_scale(width, height, request.params, limit_bytes, estimate)
    scaled = estimate(max(1, int(width * scale)), max(1, int(height * scale)), request.params)
    return RunPlan(scaled, scale)


def plan_batch(
    images: list[bytes], request: DetectionRequest, *, limit_bytes: int, max_pixels: int
) -> list[RunPlan | FacefaasError]:
    """One plan per image; an image that cannot be planned gets its error instead."""
    plans: list[RunPlan | FacefaasError] = []
    for data in images:
        try:
            plans.append(plan_run(data, request, limit_bytes=limit_bytes, max_pixels=max_pixels))
        except FacefaasError as exc:
            plans.append(exc)
    return plans
