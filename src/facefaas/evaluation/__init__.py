"""Detection quality on benchmarks: WIDER FACE, FDDB and dlib/imglab sets.

Load a dataset (:func:`load_wider`, :func:`load_fddb`, :func:`load_dlib`), get detections by
running detectors (:func:`run_specs`, :func:`detect_dataset`) or from files
(:func:`read_wider_detections`, :func:`read_fddb_detections`), score them with the dataset's
official protocol (:func:`evaluate_detections`), and write the report (:func:`write_report`).

scipy (``.mat`` files, FDDB matching) and matplotlib (plots) come with the ``eval`` extra and are
imported only when needed.
"""

from facefaas.evaluation.datasets import load_dlib, load_fddb, load_wider
from facefaas.evaluation.detections import (
    ImageDetections,
    read_fddb_detections,
    read_wider_detections,
    write_fddb_detections,
    write_wider_detections,
)
from facefaas.evaluation.metrics import (
    Evaluation,
    PRCurve,
    RocCurve,
    SettingResult,
    evaluate_detections,
    evaluate_fddb,
    evaluate_voc,
    evaluate_wider,
    voc_ap,
)
from facefaas.evaluation.presets import PRESETS, Preset, get_preset
from facefaas.evaluation.report import report_dict, summary_markdown, write_report
from facefaas.evaluation.runner import (
    DetectionRun,
    RunResult,
    RunSpec,
    detect_dataset,
    evaluate_run,
    run_specs,
    spec_from_preset,
)
from facefaas.evaluation.truth import Dataset, ImageTruth

__all__ = [
    "PRESETS",
    "Dataset",
    "DetectionRun",
    "Evaluation",
    "ImageDetections",
    "ImageTruth",
    "PRCurve",
    "Preset",
    "RocCurve",
    "RunResult",
    "RunSpec",
    "SettingResult",
    "detect_dataset",
    "evaluate_detections",
    "evaluate_fddb",
    "evaluate_run",
    "evaluate_voc",
    "evaluate_wider",
    "get_preset",
    "load_dlib",
    "load_fddb",
    "load_wider",
    "read_fddb_detections",
    "read_wider_detections",
    "report_dict",
    "run_specs",
    "spec_from_preset",
    "summary_markdown",
    "voc_ap",
    "write_fddb_detections",
    "write_report",
    "write_wider_detections",
]
