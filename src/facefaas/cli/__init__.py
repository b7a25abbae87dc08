"""The ``facefaas`` command: a thin shell over the library.

Sub-commands live in their own modules and are imported only when run, so ``--help`` and
``--version`` stay instant.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from facefaas._version import __version__
from facefaas.extras import install_hint

__all__ = ["main"]

# command name -> (module, attribute, one-line help shown by --help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "detect": ("facefaas.cli.detect", "detect", "Detect faces in images, folders or stdin."),
    "models": ("facefaas.cli.models", "models", "Import, list, export and remove models."),
    "eval": ("facefaas.cli.evaluate", "evaluate", "Measure detection quality on benchmarks."),
    "jobs": ("facefaas.cli.jobs", "jobs", "Submit and follow jobs of many images on a server."),
    "serve": ("facefaas.cli.serve", "serve", "Run the HTTP service."),
}


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from facefaas.errors import FacefaasError

        try:
            return super().invoke(ctx)
        except FacefaasError as exc:  # a library error any command let through: its message
            raise click.ClickException(exc.message) from None
        except ModuleNotFoundError as exc:
            message = install_hint(exc.name or "")
            if message is None:
                raise
            raise click.ClickException(message) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Show one-line help without importing every command module.
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="facefaas")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """facefaas: face detection as a function (MTCNN on ONNX Runtime)."""
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="facefaas")
