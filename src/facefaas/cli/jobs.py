"""``facefaas jobs submit|status|results|cancel``: jobs on a facefaas server.

``submit`` prints the job's id and token (needed for everything after; shown once by the
server), with the files of zips left out because they are not images (``skipped``, also said in
one line on stderr), and, with ``--wait``, a progress bar until the job ends (images run, with
the failed and cancelled ones counted in its postfix), then its results as JSON Lines.

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
_NOTED_NAMES = 5  # the skipped files named in submit's note on stderr


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


def _skipped_note(skipped: dict[str, Any]) -> str:
    """One line for people: the files of zips left out of the job (not images)."""
    count = int(skipped.get("count") or 0)
    names = [str(name) for name in skipped.get("files") or []]
    what = "1 file that is not an image" if count == 1 else f"{count} files that are not images"
    if not names:
        return f"skipped {what}"
    shown = names[:_NOTED_NAMES]
    more = count - len(shown)
    return f"skipped {what}: {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")


def _show_progress(bar: Any, status: dict[str, Any]) -> None:
    """Move the ``--wait`` bar to the images run (done or failed, so its img/s is theirs);
    cancelled images are counted apart, in the postfix, as failed ones are."""
    counts = status["counts"]
    bar.update(counts["done"] + counts["failed"] - bar.n)
    postfix: dict[str, Any] = {"failed": counts["failed"]}
    if counts.get("cancelled"):
        postfix["cancelled"] = counts["cancelled"]
    postfix["state"] = status["state"]
    bar.set_postfix(postfix)


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
        created: dict[str, Any] = {"job_id": job.id, "token": job.token, "total": job.total}
        if job.webhook_secret:
            created["webhook_secret"] = job.webhook_secret
        if job.skipped:
            created["skipped"] = job.skipped
        click.echo(json.dumps(created), err=wait)
        if job.skipped:
            click.echo(_skipped_note(job.skipped), err=True)
        if not wait:
            return
        from tqdm import tqdm

        with tqdm(total=job.total, unit="img", file=sys.stderr) as bar:
            job.wait(on_status=lambda status: _show_progress(bar, status))
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
