"""``facefaas serve``: run the HTTP service (flags override ``FACEFAAS_*`` variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["serve"]


@click.command(context_settings={"show_default": False})
@click.option("--host", help="Address to bind [env FACEFAAS_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="Port [FACEFAAS_PORT; 8000].")
@click.option("--workers", type=int, help="Worker processes sharing one registry [1].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry folder [FACEFAAS_DATA_DIR; ~/.local/share/facefaas].",
)
@click.option("--database-url", help="SQLAlchemy URL instead of SQLite in the data dir.")
@click.option("--max-body-bytes", type=int, help="Largest image request body [32 MiB].")
@click.option("--max-pixels", type=int, help="Largest image, width x height [50,000,000].")
@click.option("--max-model-bytes", type=int, help="Largest model upload [64 MiB].")
@click.option("--max-batch-items", type=int, help="Most images in one batch request [32].")
@click.option("--inference-threads", type=int, help="Images processed at once per worker.")
@click.option("--queue-size", type=int, help="Requests waiting beyond those; then 503 [16].")
@click.option("--rate-limit", help="Per client or key, e.g. '600/minute'; '' for none.")
@click.option(
    "--upload-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Require the token in this file's first line to upload models "
    "[FACEFAAS_UPLOAD_TOKEN_FILE; or the token in FACEFAAS_UPLOAD_TOKEN].",
)
@click.option(
    "--cors-origin", "cors_origins", multiple=True, help="Origin whose pages may call (repeat)."
)
@click.option("--max-connections", type=int, help="Open connections per worker; then 503 [256].")
@click.option("--header-timeout", type=float, help="Seconds to send a request's headers [10].")
@click.option("--keep-alive-timeout", type=float, help="Seconds an idle connection stays [5].")
@click.option(
    "--body-timeout", type=float, help="Seconds a body may take, +1 s per --body-min-rate [20]."
)
@click.option("--body-min-rate", type=int, help="Bytes/s a slow body must keep up [16384].")
@click.option(
    "--body-buffer-bytes", type=int, help="Body bytes held at once per worker; then 503 [256 MiB]."
)
@click.option("--provider", "providers", multiple=True, help="ONNX Runtime provider (repeat).")
@click.option("--log-format", type=click.Choice(["json", "text"]), help="Log lines [json].")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="[info]."
)
@click.option(
    "--ray", "on_ray", is_flag=True,
    help="Serve on Ray Serve: detector replicas that hold the models they serve "
    "(facefaas.scale.serve; the ray extra).",
)  # fmt: skip
@click.option(
    "--replicas", type=int, help="With --ray: detector replicas [FACEFAAS_RAY_MIN_REPLICAS; 1]."
)
@click.option(
    "--max-replicas", type=int, help="With --ray: autoscale up to this many [--replicas or 2]."
)
@click.option(
    "--ray-address", help="With --ray: join this Ray cluster ('auto': the local one) [start one]."
)
def serve(**flags: Any) -> None:
    """Run the HTTP service: the built-in model, the registry, the web page at /."""
    from pydantic import ValidationError

    from facefaas.settings import Settings

    on_ray, replicas, most = flags.pop("on_ray"), flags.pop("replicas"), flags.pop("max_replicas")
    if not on_ray and (replicas or most or flags["ray_address"]):
        raise click.UsageError("--replicas, --max-replicas and --ray-address go with --ray")
    if replicas is not None:
        flags["ray_min_replicas"] = replicas
    if replicas is not None or most is not None:
        flags["ray_max_replicas"] = max(n for n in (replicas, most) if n is not None)
    overrides = {name: value for name, value in flags.items() if value not in (None, ())}
    if "cors_origins" in overrides:
        overrides["cors_origins"] = list(overrides["cors_origins"])
    if "providers" in overrides:
        overrides["providers"] = list(overrides["providers"])
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise click.UsageError(problems) from None

    if on_ray:
        from facefaas.scale.local import serve_on_ray

        click.echo(f"registry: {settings.data_dir}", err=True)
        serve_on_ray(settings, announce=click.echo)
        return

    from facefaas.server.main import serve as run_server

    click.echo(f"facefaas serving at {settings.url}  (API docs: {settings.url}/docs)")
    click.echo(f"registry: {settings.data_dir}", err=True)
    if settings.redis_url is not None:  # from the environment only: it may hold a password
        from facefaas.server.redis_link import redact_url

        shown = redact_url(settings.redis_url.get_secret_value())
        click.echo(f"rate limits counted in Redis at {shown}", err=True)
    run_server(settings)
