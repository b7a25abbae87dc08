"""PNG plots of evaluation curves: one line per run, the figure of merit in the legend.

matplotlib is imported lazily (the ``eval`` extra) and used through its object API with the Agg
canvas, so the caller's pyplot backend is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facefaas.evaluation.runner import RunResult
from facefaas.extras import require

__all__ = ["plot_pr", "plot_roc"]

_TITLES = {"wider": "WIDER FACE", "fddb": "FDDB", "dlib": "dlib faces"}


def _figure() -> tuple[Any, Any]:
    figure_mod = require("matplotlib.figure")
    agg = require("matplotlib.backends.backend_agg")
    fig = figure_mod.Figure(figsize=(6.0, 4.5), dpi=100)
    agg.FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _title(dataset: str, setting: str, images: int) -> str:
    name = _TITLES.get(dataset, dataset)
    part = "" if setting == "all" else f" {setting}"
    return f"{name}{part} ({images} images)"


def _save(
    fig: Any, ax: Any, path: str | os.PathLike[str], *, x: str, y: str, title: str, legend: str
) -> Path:
    """Label, grid and legend ``ax``, then write ``fig`` to ``path`` as PNG."""
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend, fontsize=8)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, format="png")
    return target


def plot_pr(
    results: Sequence[RunResult],
    setting: str,
    path: str | os.PathLike[str],
    *,
    dataset: str = "",
    images: int = 0,
) -> Path:
    """Precision/recall of ``setting`` for each run, AP in the legend; written as PNG."""
    fig, ax = _figure()
    for result in results:
        s = result.evaluation.settings[setting]
        precision = np.nan_to_num(s.pr.precision, nan=1.0)
        ap = "n/a" if s.ap is None or np.isnan(s.ap) else f"{s.ap:.3f}"
        ax.plot(s.pr.recall, precision, linewidth=1.8, label=f"{result.spec.label} (AP {ap})")
    ax.set_xlim(0.0, 1.0)
    title = _title(dataset, setting, images)
    return _save(fig, ax, path, x="Recall", y="Precision", title=title, legend="lower left")


def plot_roc(
    results: Sequence[RunResult],
    path: str | os.PathLike[str],
    *,
    setting: str = "all",
    dataset: str = "",
    images: int = 0,
    max_false_positives: float | None = None,
) -> Path:
    """Discrete ROC (true-positive rate against false positives) per run; written as PNG."""
    fig, ax = _figure()
    for result in results:
        roc = result.evaluation.settings[setting].roc
        if roc is None:
            continue
        limit = max_false_positives or 2000.0
        ax.plot(
            roc.false_positives,
            roc.true_positive_rate,
            linewidth=1.8,
            label=f"{result.spec.label} (TPR {roc.tpr_at(limit):.3f} at {limit:g} FP)",
        )
    if max_false_positives is not None:
        ax.set_xlim(0.0, max_false_positives)
    title = _title(dataset, setting, images) + ", discrete ROC"
    return _save(
        fig,
        ax,
        path,
        x="False positives",
        y="True positive rate",
        title=title,
        legend="lower right",
    )
