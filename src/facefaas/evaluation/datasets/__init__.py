"""Loaders of evaluation sets: WIDER FACE, FDDB and dlib/imglab XML."""

from facefaas.evaluation.datasets.dlib import load_dlib, parse_imglab_xml
from facefaas.evaluation.datasets.fddb import (
    FDDB_FOLDS,
    ellipse_bounds,
    load_fddb,
    parse_ellipse_list,
)
from facefaas.evaluation.datasets.wider import WIDER_SETTINGS, load_wider, parse_wider_txt

__all__ = [
    "FDDB_FOLDS",
    "WIDER_SETTINGS",
    "ellipse_bounds",
    "load_dlib",
    "load_fddb",
    "load_wider",
    "parse_ellipse_list",
    "parse_imglab_xml",
    "parse_wider_txt",
]
