"""``facefaas models list`` and ``models remove``: the local registry of ``facefaas serve``.

They work on the data folder directly (the operator owns it), so no keys are asked for. The
``models`` group (``facefaas.cli.models``) adds them with ``models.add_command(...)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["list_models", "remove_models"]

_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry folder [FACEFAAS_DATA_DIR; ~/.local/share/facefaas].",
)
_database_url = click.option("--database-url", help="SQLAlchemy URL of the registry database.")


def _open(data_dir: Path | None, database_url: str | None) -> Any:
    from facefaas.registry import Registry
    from facefaas.settings import Settings

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    return Registry.open(settings.data_dir, settings.database_url, settings.shared_files)


@click.command("list")
@_data_dir
@_database_url
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def list_models(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """List the models in the service's registry (built-in ones first)."""
    registry = _open(data_dir, database_url)
    try:
        records = registry.list()
    finally:
        registry.close()
    if as_json:
        for r in records:
            row = {
                "id": r.id, "name": r.name, "description": r.description, "sha256": r.sha256,
                "format": r.format, "builtin": r.builtin, "private": r.private,
                "created_at": r.created_at.isoformat(), "calls": r.usage.calls,
            }  # fmt: skip
            click.echo(json.dumps(row))
        return
    click.echo(f"{'ID':<18} {'NAME':<24} {'FORMAT':<26} {'ACCESS':<8} {'CALLS':>8}  CREATED")
    for r in records:
        access = "private" if r.private else "public"
        created = r.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{r.id:<18} {r.name[:24]:<24} {r.format[:26]:<26} {access:<8} {r.usage.calls:>8}  "
            f"{created}"
        )


@click.command("remove")
@click.argument("model_ids", nargs=-1, required=True)
@_data_dir
@_database_url
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_models(
    model_ids: tuple[str, ...], data_dir: Path | None, database_url: str | None, yes: bool
) -> None:
    """Remove models (and their files) from the service's registry."""
    from facefaas.errors import FacefaasError

    registry = _open(data_dir, database_url)
    try:
        for model_id in model_ids:
            try:
                record = registry.get(model_id)
                if not yes and not click.confirm(f"Remove {record.id} ({record.name})?"):
                    continue
                registry.delete(model_id)
            except FacefaasError as exc:
                raise click.ClickException(exc.message) from None
            click.echo(f"removed {model_id}")
    finally:
        registry.close()
