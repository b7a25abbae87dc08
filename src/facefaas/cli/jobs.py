"""``facefaas jobs submit|status|results|cancel``: jobs on a facefaas server.

``submit`` prints the job's id and token (needed for everything after; shown once by the
server) and, with ``--wait``, a progress bar until the job ends, then its results as JSON Lines.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["jobs"]

_SERVER = click.option(
    "--server", envvar="FACEFAAS_SERVER", default="http://127.0.0.1:8000", show_default=True,
    help="The facefaas server [env FACEFAAS_SERVER].",
)  # fmt: skip
_TOKEN = click.option(
    "--token", envvar="FACEFAAS_JOB_TOKEN", required=True,
    help="The job's token, printed by submit [env FACEFAAS_JOB_TOKEN].",
)  # fmt: skip


def _client(server: str, api_key: str | None = None) -> Any:
    from facefaas.client import Client

    return Client(server, api_key=api_key, timeout=120.0)


def _print_results(job: Any) -> None:
    for line in job.results():
        click.echo(json.dumps(line, separators=(",", ":")))


@click.group()
def jobs() -> None:
    """Jobs: many images processed in the background on a facefaas server."""


@jobs.command()
@click.argument("inputs", nargs=-1, required=True)
@_SERVER
@click.option("--api-key", envvar="FACEFAAS_API_KEY", help="A private model's usage key.")
@click.option("--model", default="mtcnn", show_default=True)
@click.option("--function", "function", default="detect", show_default=True)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A run parameter (repeat): --param min_size=24")  # fmt: skip
@click.option("--webhook", help="URL to POST the job's end to (Standard Webhooks).")
@click.option("--lifetime", type=float, help="Seconds the results are kept after the end.")
@click.option("--wait", is_flag=True, help="Show a progress bar, then print the results.")
def submit(
    inputs: tuple[str, ...], server: str, api_key: str | None, model: str, function: str,
    params: tuple[str, ...], webhook: str | None, lifetime: float | None, wait: bool,
) -> None:  # fmt: skip
    """Submit INPUTS (URLs, image files, or zips of images) as one job."""
    parsed: dict[str, Any] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        try:
            parsed[name] = json.loads(value)
        except ValueError:
            parsed[name] = value
    with _client(server, api_key) as client:
        try:
            job = client.submit(
                list(inputs), model=model, function=function, webhook=webhook,
                lifetime=lifetime, **parsed,
            )  # fmt: skip
        except OSError as exc:  # an input file that cannot be read
            raise click.ClickException(str(exc)) from None
        created = {"job_id": job.id, "token": job.token, "total": job.total}
        if job.webhook_secret:
            created["webhook_secret"] = job.webhook_secret
        click.echo(json.dumps(created), err=wait)
        if not wait:
            return
        from tqdm import tqdm

        with tqdm(total=job.total, unit="img", file=sys.stderr) as bar:

            def show(status: dict[str, Any]) -> None:
                counts = status["counts"]
                bar.update(counts["total"] - counts["pending"] - bar.n)
                bar.set_postfix(failed=counts["failed"], state=status["state"])

            job.wait(on_status=show)
        _print_results(job)


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
def status(job_id: str, token: str, server: str) -> None:
    """Print a job's state, counts, progress and errors (JSON)."""
    with _client(server) as client:
        click.echo(json.dumps(client.job(job_id, token).status(), indent=2))


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False),
              help="Write an ended job's result files to this zip instead.")  # fmt: skip
def results(job_id: str, token: str, server: str, zip_path: str | None) -> None:
    """Print a job's results as JSON Lines, in input order (waits for images still running)."""
    from pathlib import Path

    with _client(server) as client:
        job = client.job(job_id, token)
        if zip_path:
            Path(zip_path).write_bytes(job.zip())
        else:
            _print_results(job)


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
def cancel(job_id: str, token: str, server: str) -> None:
    """Cancel a job's images not started; print its status."""
    with _client(server) as client:
        click.echo(json.dumps(client.job(job_id, token).cancel(), indent=2))
