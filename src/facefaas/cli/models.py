"""``facefaas models``: import a retrained MTCNN, export a bundle, show what a model file holds.

A thin shell over :func:`facefaas.models.importing.import_model`,
:func:`facefaas.models.export.write_model` and
:func:`facefaas.models.resolve.resolve_model` (the resolver every caller uses). Commands
owned by other modules (``list`` and ``remove`` of the service's registry, in
``facefaas.cli.registry``) are added lazily from :data:`OPTIONAL_COMMANDS` when their module is
installed, so this group never imports them for ``--help`` and works without them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from facefaas.errors import FacefaasError

__all__ = ["OPTIONAL_COMMANDS", "models"]

# command name -> (module, attribute, one-line help); listed only when the module exists.
OPTIONAL_COMMANDS: dict[str, tuple[str, str, str]] = {
    "list": ("facefaas.cli.registry", "list_models", "List the models in the service's registry."),
    "remove": ("facefaas.cli.registry", "remove_models", "Remove models from the registry."),
}
_FORMATS = (
    "onnx-bundle",
    "tensorflow-frozen-graph",
    "caffe",
    "facenet-pytorch",
    "ipazc-mtcnn-1.0",
    "ipazc-mtcnn-0.1",
    "centerface-onnx",
)  # fmt: skip  (facefaas.models.importing.SUPPORTED_FORMATS; a test keeps them equal)


class _ModelsGroup(click.Group):
    def _optional(self) -> dict[str, tuple[str, str, str]]:
        return {
            name: entry
            for name, entry in OPTIONAL_COMMANDS.items()
            if name not in self.commands and importlib.util.find_spec(entry[0]) is not None
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._optional()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self._optional().get(cmd_name)
        if entry is None:
            return None
        command: click.Command = getattr(importlib.import_module(entry[0]), entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(60)) for name, cmd in sorted(self.commands.items())]
        rows += [(name, entry[2]) for name, entry in self._optional().items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become a one-line message and exit status 1."""
    try:
        yield
    except FacefaasError as exc:
        raise click.ClickException(exc.message) from None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group(cls=_ModelsGroup)
def models() -> None:
    """Import, export and inspect MTCNN models."""


@models.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path),
    help="Bundle folder to write (or a .zip file).",
)  # fmt: skip
@click.option("--name", help="Model name [the bundle's own, or the source's name].")
@click.option("--description", help="Model description.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help="Source format [detected].")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it is an existing bundle.")
@click.option("--no-validate", is_flag=True, help="Skip the smoke detection on a reference image.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def import_(
    files: tuple[Path, ...], output: Path, name: str | None, description: str | None,
    fmt: str | None, force: bool, no_validate: bool, as_json: bool,
) -> None:  # fmt: skip
    """Import a model from FILES (one file, a folder, a zip, or a model's several files) and
    write it as an ONNX bundle.

    \b
    Examples:
      facefaas models import det1.caffemodel det2.caffemodel det3.caffemodel -o my-mtcnn
      facefaas models import checkpoints/ -o my-mtcnn          (pnet.pt, rnet.pt, onet.pt)
      facefaas models import mtcnn_weights.npy -o my-mtcnn.zip
    """
    from facefaas.models.export import write_model
    from facefaas.models.importing import import_model

    with _errors():
        source = _source(files)
        model = import_model(
            source, name=name, description=description, format=fmt, validate=not no_validate
        )
        path = write_model(output, model.stored(), model.manifest, overwrite=force)
    summary = {
        "path": str(path), "name": model.manifest.name, "format": model.format,
        "weights_sha256": model.manifest.weights_sha256, "warnings": model.warnings,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary))
        return
    _warn(model.warnings)
    click.echo(f"imported {model.format} model {model.manifest.name!r} -> {path}")
    click.echo(f"weights_sha256 {model.manifest.weights_sha256}")


def _parameter_counts(model: Any) -> dict[str, int]:
    """Parameters per network (MTCNN's from its weights, another family's from its graphs)."""
    if model.weights is not None:
        networks = model.weights.networks().items()
        return {net: int(sum(v.size for v in params.values())) for net, params in networks}
    import numpy as np
    import onnx

    counts = {}
    for net, data in model.networks.items():
        graph = onnx.load_model_from_string(data).graph
        counts[net] = int(sum(np.prod(t.dims) for t in graph.initializer))
    return counts


def _source(files: tuple[Path, ...]) -> Any:
    """One path as is; several files as a name -> bytes mapping (names must differ)."""
    if len(files) == 1:
        return files[0]
    from facefaas.errors import ParameterError

    named: dict[str, bytes] = {}
    for path in files:
        if not path.is_file():
            raise ParameterError(f"{path}: with several arguments, each must be a file")
        if path.name in named:
            raise ParameterError(f"two files are named {path.name!r}")
        named[path.name] = path.read_bytes()
    return named


@models.command("export")
@click.argument("model_ref", metavar="ID_OR_PATH")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path),
    help="Bundle folder to write, or a .zip file (for `POST /api/models`).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace OUTPUT if it is an existing bundle or zip.")
def export(model_ref: str, output: Path, force: bool) -> None:
    """Write model ID_OR_PATH (a built-in id such as `mtcnn`, a bundle folder, or any model
    file `detect --model` takes: a .pb, a bundle zip, Caffe/torch/ipazc weights) as an ONNX
    bundle folder or zip."""
    from facefaas.models.export import write_model
    from facefaas.models.resolve import resolve_model

    with _errors():
        model = resolve_model(model_ref)
        stored = model.weights() if model.manifest.family == "mtcnn" else model.networks
        path = write_model(output, stored, model.manifest, overwrite=force)
    click.echo(f"exported {model.manifest.name!r} ({model.manifest.weights_sha256[:12]}) -> {path}")


@models.command("info")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help="Source format [detected].")
@click.option("--validate", is_flag=True, help="Also run the smoke detection.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def info(files: tuple[Path, ...], fmt: str | None, validate: bool, as_json: bool) -> None:
    """Show what the model in FILES is (one file, a folder, a zip, or a model's several files,
    as `import` takes them): family, format, name, weights digest (weights_sha256),
    parameters."""
    from facefaas.models.importing import import_model

    with _errors():
        model = import_model(_source(files), format=fmt, validate=validate)
    counts = _parameter_counts(model)
    manifest = model.manifest
    data = {
        "family": manifest.family, "format": model.format, "name": manifest.name,
        "description": manifest.description,
        "license": manifest.license, "source_format": manifest.source_format,
        "weights_sha256": manifest.weights_sha256,
        "parameters": manifest.parameters.to_dict(), "parameter_counts": counts,
        "extra_networks": sorted(model.extra_networks), "warnings": model.warnings,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in (
        "family",
        "format",
        "source_format",
        "name",
        "description",
        "license",
        "weights_sha256",
    ):
        click.echo(f"{key + ':':<16}{data[key]}")
    click.echo(f"{'parameters:':<16}{json.dumps(data['parameters'])}")
    click.echo(f"{'sizes:':<16}" + ", ".join(f"{net} {n:,}" for net, n in counts.items()))
    if model.extra_networks:
        click.echo(f"{'extra networks:':<16}{', '.join(sorted(model.extra_networks))}")
    _warn(model.warnings)
