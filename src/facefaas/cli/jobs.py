"""``facefaas jobs submit|status|results|cancel``: jobs on a facefaas server.

``submit`` prints the job's id and token (needed for everything after; shown once by the
server) and, with ``--wait``, a progress bar until the job ends, then its results as JSON Lines.

Exit status, as ``facefaas detect``'s: 0 every image done, 1 some images failed or were
cancelled (all results still printed), 2 usage error, 3 nothing done: no image of the job was
done, the server could not be reached, or it refused the request (no such job, a wrong token,
an unknown model, ...), reported as one ``error: message`` line on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from facefaas.cli.detect import EXIT_NOTHING_DONE, EXIT_OK, EXIT_SOME_FAILED

__all__ = ["jobs"]

_SERVER = click.option(
    "--server", envvar="FACEFAAS_SERVER", show_envvar=True, default="http://127.0.0.1:8000",
    show_default=True, help="The facefaas server.",
)  # fmt: skip
_TOKEN = click.option(
    "--token", envvar="FACEFAAS_JOB_TOKEN", show_envvar=True, required=True,
    help="The job's token, printed by submit.",
)  # fmt: skip


def _client(server: str, api_key: str | None = None) -> Any:
    from facefaas.client import Client

    return Client(server, api_key=api_key, timeout=120.0)


@contextmanager
def _reported() -> Iterator[None]:
    """A library error (the server unreachable, or its refusal) as one line, exit status 3."""
    from facefaas.errors import FacefaasError

    try:
        yield
    except FacefaasError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(EXIT_NOTHING_DONE) from None


def _print_results(job: Any) -> int:
    """Print the job's results as JSON Lines; the exit status they make (module docstring)."""
    lines = job.results()
    for line in lines:
        click.echo(json.dumps(line, separators=(",", ":")))
    done = sum(1 for line in lines if line.get("status") == "done")
    if lines and done == len(lines):  # no lines: the job expired meanwhile
        return EXIT_OK
    return EXIT_SOME_FAILED if done else EXIT_NOTHING_DONE


@click.group()
def jobs() -> None:
    """Jobs: many images processed in the background on a facefaas server.

    \b
    Exit status:
      0  every image done (submit --wait, results), or the request answered
      1  some images failed or were cancelled (every result is still printed)
      2  usage error
      3  nothing done: no image done, the server could not be reached, or it
         refused the request (no such job, a wrong token, ...)
    """


@jobs.command()
@click.argument("inputs", nargs=-1, required=True)
@_SERVER
@click.option("--api-key", envvar="FACEFAAS_API_KEY", show_envvar=True,
              help="A private model's usage key.")  # fmt: skip
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
    with _client(server, api_key) as client, _reported():
        try:
            job = client.submit(
                list(inputs), model=model, function=function, webhook=webhook,
                lifetime=lifetime, **parsed,
            )  # fmt: skip
        except OSError as exc:  # an input file that cannot be read: nothing submitted
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_NOTHING_DONE) from None
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
        code = _print_results(job)  # a job ended failed or cancelled has lines not done
    raise SystemExit(code)


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
def status(job_id: str, token: str, server: str) -> None:
    """Print a job's state, counts, progress and errors (JSON)."""
    with _client(server) as client, _reported():
        click.echo(json.dumps(client.job(job_id, token).status(), indent=2))


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False),
              help="Write an ended job's result files to this zip instead.")  # fmt: skip
def results(job_id: str, token: str, server: str, zip_path: str | None) -> None:
    """Print a job's results as JSON Lines, in input order (waits for images still running).

    Exit status 1 when some images failed or were cancelled, 3 when none was done."""
    from pathlib import Path

    with _client(server) as client, _reported():
        job = client.job(job_id, token)
        if zip_path:
            data = job.zip()
            try:
                Path(zip_path).write_bytes(data)
            except OSError as exc:
                click.echo(f"error: cannot write {zip_path}: {exc.strerror or exc}", err=True)
                raise SystemExit(EXIT_NOTHING_DONE) from None
            return
        code = _print_results(job)
    raise SystemExit(code)


@jobs.command()
@click.argument("job_id")
@_TOKEN
@_SERVER
def cancel(job_id: str, token: str, server: str) -> None:
    """Cancel a job's images not started; print its status."""
    with _client(server) as client, _reported():
        click.echo(json.dumps(client.job(job_id, token).cancel(), indent=2))
