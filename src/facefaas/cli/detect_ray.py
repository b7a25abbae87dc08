"""``facefaas detect --ray``: the command's images run on Ray Data (:mod:`facefaas.scale.offline`).

Only glue, so that a ``--ray`` run writes what the plain command writes: the inputs it accepts
(files, folders, URLs, and prefixes of the schemes ``pyarrow.fs`` lists, e.g. ``file://`` or
``s3://``), the typed request with the model's parameters, and each outcome turned into the
:class:`~facefaas.cli.detect.Computed` results the command's runner writes. Ray is started (or
connected to) only when some image is left to do, and always shut down by the command's exit
stack.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, redirect_stdout
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import click

from facefaas.cli.detect import (
    IMAGE_EXTENSIONS,
    STDIN,
    URL_SCHEMES,
    Computed,
    Item,
    Results,
    collect_inputs,
)

__all__ = ["check_ray_usage", "ray_inputs", "ray_results"]


def check_ray_usage(
    paths: tuple[str, ...], on_ray: bool, remote: str | None, ray_options: dict[str, Any]
) -> None:
    given = [f"--{name.replace('_', '-')}" for name, value in ray_options.items() if value]
    if not on_ray:
        if given:
            raise click.UsageError(f"{', '.join(given)} needs --ray")
        return
    if remote:
        raise click.UsageError("--ray and --remote exclude each other")
    if STDIN in paths:
        raise click.UsageError("--ray reads files, folders and URLs, not stdin (-)")


def _is_listed_uri(text: str) -> bool:
    """A ``scheme://`` prefix that ``pyarrow.fs`` lists (http and https are single images)."""
    return "://" in text and not text.lower().startswith(URL_SCHEMES)


def ray_inputs(paths: tuple[str, ...], *, recursive: bool) -> tuple[list[Item], list[str]]:
    """:func:`~facefaas.cli.detect.collect_inputs`, and URI prefixes listed with ``pyarrow.fs``
    the way folders are walked (sorted, hidden parts skipped, image endings only)."""
    items: list[Item] = []
    problems: list[str] = []
    for text in paths:
        found, problem = (
            _listed(text, recursive)
            if _is_listed_uri(text)
            else collect_inputs((text,), recursive=recursive)
        )
        items.extend(found)
        problems.extend(problem)
    return items, problems


def _listed(uri: str, recursive: bool) -> tuple[list[Item], list[str]]:
    from pyarrow import ArrowException, fs

    try:
        filesystem, root = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(root)
        if info.type == fs.FileType.File:
            return [Item(None, uri, Path(PurePosixPath(root).name), url=uri)], []
        if info.type != fs.FileType.Directory:
            return [], [f"{uri}: no such file or folder"]
        entries = filesystem.get_file_info(fs.FileSelector(root, recursive=recursive))
    except (ArrowException, OSError, ValueError) as exc:
        return [], [f"{uri}: {exc}"]
    found = []
    for entry in entries:
        relative = PurePosixPath(entry.path).relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        image = relative.suffix.lower() in IMAGE_EXTENSIONS
        if entry.type == fs.FileType.File and image and not hidden:
            found.append(relative)
    prefix = uri.rstrip("/")
    return [
        Item(None, f"{prefix}/{relative}", Path(relative), url=f"{prefix}/{relative}")
        for relative in sorted(found, key=lambda relative: relative.parts)
    ], []


def ray_results(
    stack: ExitStack,
    request: Any,
    *,
    model: str | None,
    given: dict[str, Any],
    picture_format: Callable[[Item], str | None],
    address: str | None,
    actors: int | None,
    cpus_per_actor: float | None,
    policy: Any,
) -> Results:
    """The runner's :data:`~facefaas.cli.detect.Results` on Ray Data: the model is read here,
    once, and ``given`` resolved over its family's defaults, as the plain command does."""
    from facefaas.errors import ParameterError
    from facefaas.families import get_family
    from facefaas.scale.offline import (
        OfflineOptions,
        Source,
        detect_offline,
        ray_session,
        resolved_bundle,
    )

    bundle = resolved_bundle(model or "mtcnn")  # FacefaasError: the command's "error: ..."
    try:
        params = get_family(bundle.manifest.family).params(given or None)
    except ParameterError as exc:
        raise click.UsageError(exc.message) from None
    request = replace(request, params=params)
    options = OfflineOptions(actors=actors, cpus_per_actor=cpus_per_actor or 1.0)

    def compute(todo: list[Item]) -> Iterator[tuple[Item, Computed | str]]:
        if not todo:
            return
        # Ray's driver prints the errors it is told of (a worker died, a task is retried) on
        # sys.stdout from a thread of its own: they go to stderr, and the results, which the
        # runner writes to the stdout it was given, stay alone on stdout.
        stack.enter_context(redirect_stdout(sys.stderr))
        try:
            stack.enter_context(ray_session(address))
        except ConnectionError as exc:  # like a model that cannot be loaded: nothing done
            click.echo(f"error: --ray-address {address}: {exc}", err=True)
            raise SystemExit(3) from None
        sources = [
            Source(item.name, _location(item), picture_format(item))  # type: ignore[arg-type]
            for item in todo
        ]
        run = detect_offline(sources, request, model=bundle, options=options, policy=policy)
        for outcome in run:
            item = todo[outcome.index]
            if outcome.error is not None:
                yield item, outcome.error
            else:
                yield item, Computed(outcome.record, outcome.decoded_format, outcome.picture)

    return compute


def _location(item: Item) -> str:
    """Where an actor reads ``item``: its URL, or its path made absolute (actors do not share
    the command's working folder)."""
    return item.url if item.url is not None else os.path.abspath(str(item.source))
