"""Detector families: one table, :data:`FAMILIES`, that every part of facefaas reads.

A family (:class:`~facefaas.families.base.Family`) is what turns an image into faces with one
kind of network. MTCNN (the seed's, the default) and CenterFace are built in. Adding a third
(SCRFD, YuNet, RetinaFace) takes one module beside these (its parameters, runner, cost and
files), its entry here, and its tests; see docs/architecture.md.
"""

from __future__ import annotations

from facefaas.errors import ParameterError
from facefaas.families.base import Family, Found, Runner
from facefaas.families.centerface import CENTERFACE
from facefaas.families.mtcnn import MTCNN

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "Family",
    "Found",
    "Runner",
    "family_of",
    "get_family",
]

FAMILIES: dict[str, Family] = {family.name: family for family in (MTCNN, CENTERFACE)}
DEFAULT_FAMILY = MTCNN


def get_family(name: str) -> Family:
    """The family called ``name`` (:class:`ParameterError` naming the known ones if none)."""
    family = FAMILIES.get(name)
    if family is None:
        raise ParameterError(f"no detector family {name!r}; the families are "
                             f"{', '.join(FAMILIES)}")  # fmt: skip
    return family


def family_of(params: object) -> Family:
    """The family whose parameters ``params`` are (by their type)."""
    for family in FAMILIES.values():
        if isinstance(params, family.params_type):
            return family
    raise ParameterError(f"{type(params).__name__} are not the parameters of any family")
