"""The outputs of an evaluation: ``report.json``, ``summary.md``, PNG plots, detection files.

``report.json`` holds, per run: the label, model, preset, parameters, what the detector said
about itself, timing (ms per image), per setting the totals (AP, faces, true/false positives,
ignored detections; for FDDB the true-positive rate at 500/1000/2000 false positives), the
curves, and per image the detection count, the time and the counts per setting. NaN is written
as ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facefaas._version import __version__
from facefaas.evaluation.detections import write_fddb_detections, write_wider_detections
from facefaas.evaluation.metrics.protocol import PROTOCOLS
from facefaas.evaluation.metrics.results import SettingResult
from facefaas.evaluation.runner import RunResult
from facefaas.evaluation.truth import Dataset

__all__ = ["ROC_POINTS", "ReportFiles", "report_dict", "summary_markdown", "write_report"]

ROC_POINTS = (500, 1000, 2000)


def _num(value: float | None, digits: int = 6) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), digits)


def _curve_list(values: Any, digits: int = 6) -> list[float | None]:
    return [_num(float(v), digits) for v in values]


def _setting_dict(s: SettingResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ap": _num(s.ap),
        "faces": s.faces,
        "tp": s.tp,
        "fp": s.fp,
        "ignored": s.ignored,
        "recall": _num(s.recall),
        "precision": _num(s.precision),
    }
    if s.roc is not None:
        out["tpr_at_fp"] = {str(n): _num(s.roc.tpr_at(n)) for n in ROC_POINTS}
    return out


def _curves_dict(s: SettingResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "threshold": _curve_list(s.pr.thresholds),
        "precision": _curve_list(s.pr.precision),
        "recall": _curve_list(s.pr.recall),
    }
    if s.roc is not None:
        out["false_positives"] = _curve_list(s.roc.false_positives, 0)
    return out


def _run_dict(result: RunResult) -> dict[str, Any]:
    ev = result.evaluation
    images = []
    for im in ev.images:
        seconds = result.run.seconds.get(im.key)
        images.append(
            {
                "key": im.key,
                "detections": im.detections,
                "ms": _num(seconds * 1000.0, 2) if seconds is not None else None,
                "counts": {s: asdict(c) for s, c in im.counts.items()},
            }
        )
    return {
        "label": result.spec.label,
        "model": result.spec.model,
        "preset": result.spec.preset,
        "params": result.spec.params.to_dict() if result.spec.params is not None else None,
        "model_info": dict(result.run.model_info),
        "timing": {k: v if k == "images" else _num(v, 3) for k, v in result.run.timing().items()},
        "protocol": ev.protocol,
        "settings": {name: _setting_dict(s) for name, s in ev.settings.items()},
        "curves": {name: _curves_dict(s) for name, s in ev.settings.items()},
        "images": images,
    }


def report_dict(
    dataset: Dataset, results: Sequence[RunResult], *, command: str | None = None
) -> dict[str, Any]:
    """The JSON-ready report of several runs on one dataset."""
    return {
        "facefaas_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "dataset": {
            "name": dataset.name,
            "protocol": PROTOCOLS.get(dataset.name, "voc"),
            "source": dataset.source,
            "images": len(dataset),
            "settings": list(dataset.settings),
            "faces": dataset.face_counts(),
            "notes": list(dataset.notes),
        },
        "runs": [_run_dict(r) for r in results],
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _params_text(params: dict[str, Any] | None) -> str:
    if params is None:
        return "(detections from files)"
    if "thresholds" not in params:  # CenterFace
        size = params.get("input_size") or "full resolution"
        return f"threshold {params['threshold']:g}, NMS {params['nms_threshold']:g}, input {size}"
    thresholds = "/".join(f"{t:g}" for t in params["thresholds"])
    return f"min {params['min_size']:g}, factor {params['factor']:g}, thresholds {thresholds}"


def summary_markdown(report: dict[str, Any]) -> str:
    """A Markdown summary: one row per run, the dataset's figures of merit and the timing."""
    data = report["dataset"]
    settings: list[str] = data["settings"]
    fddb = data["protocol"] == "fddb"
    faces = ", ".join(f"{s} {n}" for s, n in data["faces"].items())
    lines = [
        f"# {data['name']} evaluation",
        "",
        f"{data['images']} images; faces counted: {faces}. Protocol: {data['protocol']}.",
    ]
    lines += [f"Note: {note}." for note in data["notes"]]
    if report.get("command"):
        lines += ["", "Command:", "", "```", str(report["command"]), "```"]
    if fddb:
        metric_cols = [f"TPR @ {n} FP" for n in ROC_POINTS] + ["AP"]
    else:
        metric_cols = (
            [f"AP {s}" for s in settings] if len(settings) > 1 else ["AP", "precision", "recall"]
        )
    header = ["run", "model", "parameters", *metric_cols, "ms/image (mean)", "ms/image (median)"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in report["runs"]:
        sets = run["settings"]
        if fddb:
            tpr = sets["all"]["tpr_at_fp"]
            metrics = [_fmt(tpr[str(n)]) for n in ROC_POINTS] + [_fmt(sets["all"]["ap"])]
        elif len(settings) > 1:
            metrics = [_fmt(sets[s]["ap"]) for s in settings]
        else:
            one = sets[settings[0]]
            metrics = [_fmt(one["ap"]), _fmt(one["precision"]), _fmt(one["recall"])]
        timing = run["timing"]
        row = [
            run["label"],
            run["model"],
            _params_text(run["params"]),
            *metrics,
            _fmt(timing.get("mean_ms"), 0),
            _fmt(timing.get("median_ms"), 0),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Totals with every detection kept (tp / fp / ignored / faces):", ""]
    for run in report["runs"]:
        parts = [
            f"{s}: {v['tp']} / {v['fp']} / {v['ignored']} / {v['faces']}"
            for s, v in run["settings"].items()
        ]
        lines.append(f"- {run['label']}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def _slug(label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    return slug or "run"


@dataclass(frozen=True)
class ReportFiles:
    """Paths of what :func:`write_report` wrote."""

    json: Path
    markdown: Path
    plots: tuple[Path, ...]
    detections: tuple[Path, ...]


def write_report(
    directory: str | os.PathLike[str],
    dataset: Dataset,
    results: Sequence[RunResult],
    *,
    command: str | None = None,
    plots: bool = True,
    detections: bool = True,
) -> ReportFiles:
    """Write ``report.json``, ``summary.md``, ``pr_<setting>.png`` (and ``roc.png`` for FDDB) and
    each run's detections (``detections/<run>/``, WIDER format; for FDDB also
    ``detections/<run>.fddb.txt``) into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    report = report_dict(dataset, results, command=command)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    md_path = out / "summary.md"
    md_path.write_text(summary_markdown(report), encoding="utf-8")
    pngs: list[Path] = []
    if plots and results:
        from facefaas.evaluation.plots import plot_pr, plot_roc

        for setting in dataset.settings:
            pngs.append(
                plot_pr(
                    results,
                    setting,
                    out / f"pr_{setting}.png",
                    dataset=dataset.name,
                    images=len(dataset),
                )
            )
        if PROTOCOLS.get(dataset.name) == "fddb":
            pngs.append(
                plot_roc(results, out / "roc.png", dataset=dataset.name, images=len(dataset))
            )
    written: list[Path] = []
    if detections:
        used: set[str] = set()
        for result in results:
            slug = _slug(result.spec.label)
            while slug in used:
                slug += "_"
            used.add(slug)
            folder = write_wider_detections(out / "detections" / slug, result.run.detections)
            written.append(folder)
            if dataset.name == "fddb":
                keys = [im.key for im in dataset.images]
                fddb_file = out / "detections" / f"{slug}.fddb.txt"
                written.append(write_fddb_detections(fddb_file, keys, result.run.detections))
    return ReportFiles(json_path, md_path, tuple(pngs), tuple(written))
