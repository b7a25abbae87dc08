"""``facefaas eval``: measure detection quality on WIDER FACE, FDDB or a dlib/imglab XML set.

A thin shell: it loads the dataset, builds the runs (models x presets/parameter sets) or reads
detection folders, and calls :mod:`facefaas.evaluation` to score and report.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from facefaas.errors import FacefaasError
from facefaas.evaluation.presets import FAMILY_PRESETS, PRESETS

__all__ = ["evaluate"]

F = TypeVar("F", bound=Callable[..., Any])

_EXAMPLES = """
Examples (from the repository root, with ../shared beside it):

\b
  facefaas eval wider --root ../shared/eval/wider-val -o out/wider \\
      --preset default --preset high-recall
  facefaas eval wider --root ../shared/eval/wider-val --limit 20 -o out/quick
  facefaas eval wider --root ../shared/eval/wider-val --detections dets/ -o out/mine
  facefaas eval dlib --xml ../shared/eval/dlib-faces/testing.xml --iou 0.4 -o out/dlib
  facefaas eval fddb --folds FDDB-folds --images originalPics --fold 01 -o out/fddb
"""


@click.group(name="eval", epilog=_EXAMPLES)
def evaluate() -> None:
    """Measure detection quality on benchmarks (WIDER FACE, FDDB, dlib XML).

    Each run (a model with a preset or parameter set) is evaluated by the benchmark's official
    protocol; OUTDIR receives report.json, summary.md, PR plots and each run's detections.
    """


def _run_options(func: F) -> F:
    options = [
        click.option(
            "-o",
            "--output",
            "output",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder for report.json, summary.md, plots and detections.",
        ),
        click.option(
            "--model",
            "models",
            multiple=True,
            help="Model to run: 'mtcnn' (built in), a bundle folder or a registry id. Repeatable.",
        ),
        click.option(
            "--preset",
            "presets",
            multiple=True,
            help=f"Parameter preset of the model's family (MTCNN: {', '.join(PRESETS)}; "
            f"CenterFace: {', '.join(FAMILY_PRESETS['centerface'])}). Repeatable.",
        ),
        click.option(
            "--params",
            "params",
            multiple=True,
            metavar="'KEY=VALUE ...'",
            help="A parameter set: 'min_size=12 factor=0.8 thresholds=0.6,0.7,0.7'. Repeatable.",
        ),
        click.option(
            "--detections",
            "detections",
            multiple=True,
            type=click.Path(exists=True, path_type=Path),
            help="Evaluate detections (a WIDER-format folder) instead of running. Repeatable.",
        ),
        click.option("--provider", default=None, help="ONNX Runtime provider: cpu, cuda or auto."),
        click.option(
            "--limit", type=click.IntRange(min=1), default=None, help="Only the first N images."
        ),
        click.option(
            "--plots/--no-plots", default=True, help="Write PNG plots (needs matplotlib)."
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _command_line(ctx: click.Context) -> str:
    """The command as it could be typed again (options in their canonical form)."""
    parts = ["facefaas", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = ctx.params.get(param.name)
        source = ctx.get_parameter_source(param.name)
        if source is not click.core.ParameterSource.COMMANDLINE:
            continue
        flag = param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
        if param.is_flag:
            if param.secondary_opts and not value:
                parts.append(param.secondary_opts[-1])
            elif value:
                parts.append(flag)
            continue
        values: list[Any] = list(value or ()) if param.multiple else [value]
        for item in values:
            parts += [flag, str(item)]
    return shlex.join(parts)


def _label(base: str, model: str, several_models: bool) -> str:
    return f"{model}/{base}" if several_models else base


def _build_specs(models: Sequence[str], presets: Sequence[str], params: Sequence[str]) -> list[Any]:
    from facefaas.evaluation.presets import get_preset, params_label, parse_params
    from facefaas.evaluation.runner import RunSpec
    from facefaas.models.resolve import resolve_model

    models = list(models) or ["mtcnn"]
    if not presets and not params:
        presets = ["default"]
    several = len(models) > 1
    specs = []
    families = {model: resolve_model(model).manifest.family for model in models}
    for name in presets:  # a preset of none of the models' families is a mistake
        if not any(name in FAMILY_PRESETS.get(f, {}) for f in families.values()):
            get_preset(name, next(iter(families.values())))  # raises, listing the presets
    for model in models:
        family = families[model]  # presets and parameters are per family
        for name in presets:
            if name not in FAMILY_PRESETS.get(family, {}):
                continue  # another family's preset (e.g. CenterFace's input sizes)
            preset = get_preset(name, family)
            specs.append(RunSpec(_label(name, model, several), model, preset.params, name))
        for text in params:
            parsed = parse_params(text, family=family)
            specs.append(RunSpec(_label(params_label(parsed), model, several), model, parsed))
    return specs


def _execute(
    ctx: click.Context, dataset: Any, options: dict[str, Any], read: Callable[[Path], Any]
) -> None:
    """Run (or read) every run, evaluate, write the report and print the summary."""
    from facefaas.evaluation.report import write_report
    from facefaas.evaluation.runner import DetectionRun, RunSpec, evaluate_run, run_specs

    dataset = dataset.limit(options["limit"])
    if len(dataset) == 0:
        raise click.ClickException("no images to evaluate (check the dataset paths)")
    iou = options.get("iou", 0.5)
    results = []
    for folder in options["detections"]:
        spec = RunSpec(folder.name or str(folder), str(folder), None)
        results.append(evaluate_run(dataset, spec, DetectionRun(read(folder), {}), iou=iou))
    if not options["detections"] or options["models"] or options["presets"] or options["params"]:
        if not any(image.path is not None for image in dataset.images):
            raise click.UsageError("running a detector needs the images (or give --detections)")
        specs = _build_specs(options["models"], options["presets"], options["params"])
        provider = options["provider"]

        def make_detector(model: str) -> Any:
            from facefaas.detector import Detector

            return Detector(model, providers=provider)

        results += run_specs(
            dataset, specs, make_detector=make_detector, iou=iou, progress=not options["quiet"]
        )
    files = write_report(
        options["output"], dataset, results, command=_command_line(ctx), plots=options["plots"]
    )
    click.echo(files.markdown.read_text(encoding="utf-8"))
    click.echo(
        f"Wrote {files.json}, {files.markdown}" + "".join(f", {p}" for p in files.plots), err=True
    )


def _guard(func: F) -> F:
    """Report library errors and missing optional packages as clean CLI errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (FacefaasError, ImportError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@evaluate.command(epilog=_EXAMPLES)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="WIDER val folder with ground_truth/ and images/ (e.g. ../shared/eval/wider-val).",
)
@click.option(
    "--ground-truth",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Folder with the official .mat files (or the bbx_gt text file) [ROOT/ground_truth].",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder with <event>/<name>.jpg; default ROOT/images. Only images present are evaluated.",
)
@_run_options
@click.pass_context
@_guard
def wider(
    ctx: click.Context,
    /,
    root: Path | None,
    ground_truth: Path | None,
    images: Path | None,
    **options: Any,
) -> None:
    """WIDER FACE val: AP per setting (easy, medium, hard) by the official protocol."""
    from facefaas.evaluation.datasets import load_wider
    from facefaas.evaluation.detections import read_wider_detections

    if root is None and ground_truth is None:
        raise click.UsageError("give --root or --ground-truth")
    dataset = load_wider(root, ground_truth=ground_truth, images=images)
    keys = [im.key for im in dataset.images]
    _execute(ctx, dataset, options, lambda folder: read_wider_detections(folder, keys))


@evaluate.command(epilog=_EXAMPLES)
@click.option(
    "--folds",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The FDDB-folds folder (e.g. ../shared/eval/fddb-annotations/FDDB-folds).",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The originalPics folder (needed to run a detector; sizes bound the overlaps).",
)
@click.option(
    "--fold", "folds_chosen", multiple=True, help="Fold 01..10 (repeatable; default all)."
)
@_run_options
@click.pass_context
@_guard
def fddb(
    ctx: click.Context,
    /,
    folds: Path,
    images: Path | None,
    folds_chosen: tuple[str, ...],
    **options: Any,
) -> None:
    """FDDB: discrete ROC (true-positive rate against false positives)."""
    from facefaas.evaluation.datasets import FDDB_FOLDS, load_fddb
    from facefaas.evaluation.detections import read_fddb_detections, read_wider_detections

    chosen = tuple(f.zfill(2) for f in folds_chosen) or FDDB_FOLDS
    dataset = load_fddb(folds, images=images, folds=chosen)
    if images is None and not options["detections"]:
        raise click.UsageError("running a detector needs --images (or give --detections)")
    keys = [im.key for im in dataset.images]

    def read(path: Path) -> Any:
        return read_fddb_detections(path) if path.is_file() else read_wider_detections(path, keys)

    _execute(ctx, dataset, options, read)


@evaluate.command(epilog=_EXAMPLES)
@click.option(
    "--xml",
    "xml_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="imglab XML (e.g. ../shared/eval/dlib-faces/testing.xml); images resolve beside it.",
)
@click.option(
    "--iou",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.5,
    show_default=True,
    help="IoU needed for a match (dlib's boxes are tight: 0.4 is fairer to MTCNN).",
)
@_run_options
@click.pass_context
@_guard
def dlib(ctx: click.Context, /, xml_path: Path, iou: float, **options: Any) -> None:
    """dlib/imglab XML: precision, recall and AP at an IoU threshold."""
    from facefaas.evaluation.datasets import load_dlib
    from facefaas.evaluation.detections import read_wider_detections

    dataset = load_dlib(xml_path)
    keys = [im.key for im in dataset.images]
    options["iou"] = iou
    _execute(ctx, dataset, options, lambda folder: read_wider_detections(folder, keys))
