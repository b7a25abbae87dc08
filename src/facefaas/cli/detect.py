"""``facefaas detect``: faces in files, folders or stdin; pictures and JSON out.

A thin shell: images are decoded by :func:`facefaas.decode.load_image`, faces found by a
:class:`facefaas.Detector` (or a server through :class:`facefaas.Client` with ``--remote``), and
pictures made by :mod:`facefaas.render`. This module only finds the inputs, names the outputs
and reports. Heavy imports happen inside the command, so ``--help`` stays instant.

An argument starting with ``http://`` or ``https://`` is an image by URL, fetched through the
same guard as the service's (:func:`facefaas.fetch.fetch_image`): private and loopback targets
are refused unless ``FACEFAAS_FETCH_ALLOW`` or ``--fetch-allow`` admits them; a refused or failed
fetch is that input's error.

Exit status: 0 every image done (no faces is fine), 1 some images failed, 2 usage error,
3 nothing processed (no images found, or every one failed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import click

from facefaas import functions

__all__ = ["IMAGE_EXTENSIONS", "RENDER_CHOICES", "detect"]

# --render: every picture function of the table (and its aliases; "box" is annotate), or none.
# The seed's fixed-encoding picture is the default output of a pipe (`detect - > out.jpg`).
RENDER_CHOICES = [
    name
    for f in functions.picture_functions()
    if f.encoding is None
    for name in (*f.aliases, f.name)
] + ["none"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".mpo"}
)
"""File name endings (any case) picked up from folders; files named explicitly are always read."""

EXIT_OK, EXIT_SOME_FAILED, EXIT_NOTHING_DONE = 0, 1, 3
STDIN = "-"
URL_SCHEMES = ("http://", "https://")
RESULTS_JSONL = "results.jsonl"
_KEPT_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}  # others are written as .jpg

_EXAMPLES = """
Examples:

\b
  facefaas detect group.jpg                      print the faces found
  facefaas detect group.jpg -o boxed.jpg         one picture to a file (.jpg or .png)
  facefaas detect photos/ -o boxed/              boxes drawn, same folder layout
  facefaas detect photos/ -o out/ --jsonl --render none --skip-existing
  facefaas detect photos/ -o private/ --render blur
  cat in.jpg | facefaas detect - > out.jpg       the seed's function on a pipe
  FACEFAAS_API_KEY=... facefaas detect a.jpg --json --remote http://host:8000
  facefaas detect https://example.org/photo.jpg  an image by URL
"""


@dataclass(frozen=True)
class Item:
    """One input image: ``source`` is ``None`` for stdin or a URL (``url``); ``name`` is how it
    is reported."""

    source: Path | None
    name: str
    relative: Path  # where its outputs go under OUT, before the extension is decided
    url: str | None = None

    @property
    def is_stdin(self) -> bool:
        return self.source is None and self.url is None


@dataclass
class Tally:
    """Counts of one run: images done (skipped ones included), skipped, failed; faces found."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    faces: int = 0


@dataclass(frozen=True)
class Computed:
    """One image's results before they are written: its JSON record, Pillow's name of its
    format, and its encoded picture (``None`` when the run writes none)."""

    record: dict[str, Any]
    decoded_format: str | None
    picture: bytes | None


Results = Callable[[list[Item]], Iterator[tuple[Item, "Computed | str"]]]
"""Computes the items to do, yielding each with its results or its error message, in order."""


def collect_inputs(paths: tuple[str, ...], *, recursive: bool) -> tuple[list[Item], list[str]]:
    """The images named by ``paths`` (files, folders, ``-``, URLs) and ``path: message``
    problems.

    A folder gives its images sorted by path (hidden files and folders skipped, symlinked folders
    not followed); an item's ``relative`` path keeps the layout below the folder it was found in.
    """
    items: list[Item] = []
    problems: list[str] = []
    for text in paths:
        if text == STDIN:
            items.append(Item(None, STDIN, Path("stdin")))
            continue
        if text.lower().startswith(URL_SCHEMES):
            items.append(Item(None, text, _url_relative(text), url=text))
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted((p.relative_to(path) for p in _walk(path, recursive)), key=_by_parts)
            items.extend(
                Item(path / relative, str(path / relative), relative) for relative in found
            )
        elif path.is_file():
            items.append(Item(path, text, Path(path.name)))
        else:
            problems.append(f"{text}: no such file or folder")
    return items, problems


def _url_relative(url: str) -> Path:
    """Where a URL's outputs go under OUT: the last segment of its path (``image`` if none)."""
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return Path(name if name not in ("", ".", "..") else "image")


def _by_parts(relative: Path) -> tuple[str, ...]:
    """Sort key: ``a/b/x.jpg`` before ``a/y.jpg`` before ``b.jpg``, like ``find | sort``."""
    return relative.parts


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(root, name)


def output_name(relative: Path, decoded_format: str | None) -> tuple[Path, str]:
    """The rendered image's path under OUT and its format: ``.jpg``/``.jpeg``/``.png`` are kept,
    anything else becomes ``.jpg`` (stdin: ``stdin.png`` for PNG input, else ``stdin.jpg``)."""
    suffix = relative.suffix.lower()
    if not suffix:  # stdin
        suffix = ".png" if decoded_format == "PNG" else ".jpg"
    if suffix not in _KEPT_SUFFIXES:
        suffix = ".jpg"
    return relative.with_suffix(suffix), _KEPT_SUFFIXES[suffix]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so --skip-existing never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _given_params(given: dict[str, Any]) -> dict[str, Any]:
    """The detection parameters given on the command line, validated by the one family they
    belong to (``--remote`` sends only these, so the server's model defaults apply to the
    rest; locally they also go over the model's own family's defaults)."""
    from facefaas.errors import ParameterError
    from facefaas.families import FAMILIES

    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        return {}
    owners = [f for f in FAMILIES.values() if set(given) <= set(f.parameter_names)]
    if not owners:
        raise click.UsageError(
            "the detection options given belong to different families: "
            + "; ".join(f"{f.title}: {', '.join(f.parameter_names)}" for f in FAMILIES.values())
        )
    try:
        params = owners[0].params(given)
    except ParameterError as exc:
        raise click.UsageError(exc.message) from None
    return {name: getattr(params, name) for name in given}


def _request(render: str, *, landmarks: bool, scores: bool, color: str | None) -> Any:
    """The typed request of this run: the function drawing the picture and its options (the
    detection parameters join it once the model, and so its family, is known)."""
    from facefaas.errors import ParameterError
    from facefaas.render import parse_color
    from facefaas.request import DetectionRequest, OutputOptions

    try:
        output = OutputOptions(
            landmarks=landmarks, scores=scores, color=parse_color(color) if color else None
        )
    except ParameterError as exc:
        raise click.UsageError(exc.message) from None
    function = functions.get_function("detect" if render == "none" else render)
    return DetectionRequest(function, output=output)


def _local_backend(model: str | None, given: dict[str, Any]) -> Callable[[bytes, Any], Any]:
    from facefaas.detector import Detector
    from facefaas.errors import ParameterError

    detector = Detector(model or "mtcnn")  # an id, bundle or any importable model file
    try:
        params = detector.resolve_params(None, given)
    except ParameterError as exc:
        detector.close()
        raise click.UsageError(exc.message) from None
    return lambda data, decoded: detector.detect(decoded, params)


def _remote_backend(
    url: str, api_key: str | None, model: str | None, given: dict[str, Any]
) -> tuple[Callable[[bytes, Any], Any], Any]:
    try:
        from facefaas.client import Client
    except ImportError as exc:  # httpx missing from a trimmed install
        raise click.UsageError(
            f"--remote needs the HTTP client, which failed to import: {exc}"
        ) from None
    client = Client(url, api_key=api_key)
    chosen = model or "mtcnn"
    return (lambda data, decoded: client.detect(data, model=chosen, **given)), client


@click.command(epilog=_EXAMPLES)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path),
    help="Folder for rendered images (and JSON), keeping the inputs' relative layout; for one "
    "image, a .jpg or .png file name writes its picture there.",
)  # fmt: skip
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON per image: OUT/<path>.json, or one array on stdout.",
)
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="One JSON line per image: OUT/results.jsonl or stdout.",
)
@click.option(
    "--render", type=click.Choice(RENDER_CHOICES), default="box", show_default=True,
    help="Picture to write: boxes drawn (box), faces blurred, pixelated or redacted (filled "
    "with a solid colour), or none.",
)  # fmt: skip
@click.option(
    "--color", metavar="#RRGGBB", help="Box colour (box) or fill colour (redact) [green, black]."
)
@click.option("--min-size", type=float, help="MTCNN: smallest face side to find, px [20].")
@click.option(
    "--thresholds", metavar="A,B,C", help="MTCNN: P-, R-, O-Net thresholds [0.6,0.7,0.7]."
)
@click.option("--factor", type=float, help="MTCNN: pyramid scale step [0.709].")
@click.option("--threshold", type=float, help="CenterFace: score threshold [0.5].")
@click.option("--nms-threshold", type=float, help="CenterFace: NMS IoU threshold [0.3].")
@click.option(
    "--input-size", type=int, help="CenterFace: scale the longer side to N px [full size]."
)
@click.option("--landmarks", is_flag=True, help="Draw the five landmarks (--render box).")
@click.option("--scores", is_flag=True, help="Write each face's score (--render box).")
@click.option(
    "--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders."
)
@click.option("--skip-existing", is_flag=True, help="Skip images whose outputs exist in OUT.")
@click.option(
    "--model", metavar="ID_OR_PATH",
    help="Built-in model id, bundle folder or model file [mtcnn]; with --remote, a registry id.",
)  # fmt: skip
@click.option("--remote", metavar="URL", help="Detect on a facefaas server instead of locally.")
@click.option(
    "--api-key", envvar="FACEFAAS_API_KEY", help="Key for --remote [env FACEFAAS_API_KEY]."
)
@click.option(
    "--fetch-allow", multiple=True, metavar="CIDR_OR_HOST",
    help="Admit this private network or host name when fetching a URL (repeatable; adds to "
    "env FACEFAAS_FETCH_ALLOW).",
)  # fmt: skip
@click.option(
    "--ray", "on_ray", is_flag=True,
    help="Run on Ray Data: a pool of detector actors (the ray extra); also reads URI prefixes "
    "such as file:// or s3://.",
)  # fmt: skip
@click.option(
    "--ray-address", metavar="ADDRESS",
    help="With --ray: the cluster to use (auto, HOST:PORT, ray://...) [a local Ray for the run].",
)  # fmt: skip
@click.option(
    "--ray-actors", type=click.IntRange(min=1),
    help="With --ray: detector actors [the cluster's CPUs / --ray-actor-cpus].",
)  # fmt: skip
@click.option(
    "--ray-actor-cpus", type=click.FloatRange(min=0, min_open=True),
    help="With --ray: CPUs per actor, and its detector's threads [1].",
)  # fmt: skip
def detect(
    paths: tuple[str, ...], output: Path | None, as_json: bool, as_jsonl: bool, render: str,
    color: str | None, min_size: float | None, thresholds: str | None, factor: float | None,
    threshold: float | None, nms_threshold: float | None, input_size: int | None,
    landmarks: bool, scores: bool, recursive: bool, skip_existing: bool, model: str | None,
    remote: str | None, api_key: str | None, fetch_allow: tuple[str, ...], on_ray: bool,
    ray_address: str | None, ray_actors: int | None, ray_actor_cpus: float | None,
) -> None:  # fmt: skip
    """Detect faces in images, folders, URLs (PATH) or stdin (-).

    Without -o, prints a summary per image (or JSON with --json/--jsonl); an image read from
    stdin is written to stdout with its faces drawn, like the seed's function. With -o OUT,
    pictures (and --json files, or OUT/results.jsonl) are written there; an OUT ending in .jpg
    or .png is the picture of the one image given.
    """
    _check_usage(paths, output, as_json, as_jsonl, render, skip_existing)
    ray_options = {"ray_address": ray_address, "ray_actors": ray_actors,
                   "ray_actor_cpus": ray_actor_cpus}  # fmt: skip
    if on_ray or any(ray_options.values()):
        from facefaas.cli.detect_ray import check_ray_usage, ray_inputs

        check_ray_usage(paths, on_ray, remote, ray_options)
    request = _request(render, landmarks=landmarks, scores=scores, color=color)
    given = _given_params({
        "min_size": min_size, "thresholds": thresholds, "factor": factor,
        "threshold": threshold, "nms_threshold": nms_threshold, "input_size": input_size,
    })  # fmt: skip
    if fetch_allow:
        from facefaas.fetch import Allowlist

        try:
            Allowlist.parse(fetch_allow)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fetch-allow") from None
    if on_ray:
        items, problems = ray_inputs(paths, recursive=recursive)
    else:
        items, problems = collect_inputs(paths, recursive=recursive)
    for problem in problems:
        click.echo(problem, err=True)
    if not items:
        click.echo("no images to process", err=True)
        raise SystemExit(EXIT_NOTHING_DONE)
    picture_file = _picture_file(output, len(items), as_json or as_jsonl, skip_existing)
    if picture_file is not None:
        output = None
    from facefaas.errors import FacefaasError

    results: Results | None = None
    with ExitStack() as stack:
        try:
            if remote:
                backend, closer = _remote_backend(remote, api_key, model, given)
                stack.callback(closer.close)
            elif on_ray:
                backend = _no_backend
            else:
                backend = _local_backend(model, given)
        except FacefaasError as exc:
            click.echo(f"error: {exc.message}", err=True)
            raise SystemExit(EXIT_NOTHING_DONE) from None
        runner = _Runner(
            backend, output, as_json, as_jsonl, request, skip_existing,
            picture_file=picture_file, fetch_allow=tuple(fetch_allow),
        )  # fmt: skip
        if on_ray:
            results = _ray_results(stack, runner, items, model, given, ray_options)
        tally = runner.run(items, remote=bool(remote), results=results)
    tally.failed += len(problems)
    total = len(items) + len(problems)
    if output is not None and total > 1:
        skipped = f" ({tally.skipped} skipped as done before)" if tally.skipped else ""
        click.echo(
            f"{tally.done} of {total} images{skipped}, {tally.faces} faces -> {output}", err=True
        )
    if tally.done == 0:
        raise SystemExit(EXIT_NOTHING_DONE)
    raise SystemExit(EXIT_SOME_FAILED if tally.failed else EXIT_OK)


def _no_backend(data: bytes, decoded: Any) -> Any:
    raise AssertionError("--ray computes on Ray")  # never called: the runner has results


def _ray_results(
    stack: ExitStack, runner: _Runner, items: list[Item], model: str | None,
    given: dict[str, Any], ray_options: dict[str, Any],
) -> Results:  # fmt: skip
    """The results of a --ray run (:mod:`facefaas.cli.detect_ray`); the model is read here."""
    from facefaas.cli.detect_ray import ray_results
    from facefaas.errors import FacefaasError

    urls = any(item.url and item.url.lower().startswith(URL_SCHEMES) for item in items)
    try:
        return ray_results(
            stack, runner.request, model=model, given=given,
            picture_format=runner.picture_format, address=ray_options["ray_address"],
            actors=ray_options["ray_actors"], cpus_per_actor=ray_options["ray_actor_cpus"],
            policy=runner._policy() if urls else None,
        )  # fmt: skip
    except FacefaasError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(EXIT_NOTHING_DONE) from None


def _picture_file(
    output: Path | None, images: int, json_too: bool, skip_existing: bool
) -> Path | None:
    """``output`` when it names the picture file of a single image (``.jpg``/``.jpeg``/``.png``,
    not an existing folder); ``None`` when it is an output folder."""
    if output is None or output.is_dir():
        return None
    if output.suffix.lower() not in _KEPT_SUFFIXES:
        if output.exists():
            raise click.UsageError(
                f"-o {output}: not a folder (a picture file's name ends in .jpg or .png)"
            )
        return None
    if images > 1:
        raise click.UsageError(
            f"-o {output} names one picture, but there are {images} images: give a folder"
        )
    if json_too or skip_existing:
        raise click.UsageError(
            f"-o {output} names one picture: --json, --jsonl and --skip-existing need a folder"
        )
    return output


def _check_usage(
    paths: tuple[str, ...], output: Path | None, as_json: bool, as_jsonl: bool, render: str,
    skip_existing: bool,
) -> None:  # fmt: skip
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl exclude each other")
    if paths.count(STDIN) > 1:
        raise click.UsageError("stdin (-) can be read only once")
    if skip_existing and output is None:
        raise click.UsageError("--skip-existing needs -o/--output")
    if output is not None and render == "none" and not (as_json or as_jsonl):
        raise click.UsageError("with --render none, -o needs --json or --jsonl (nothing to write)")
    picture_to_stdout = output is None and not (as_json or as_jsonl) and render != "none"
    if picture_to_stdout and STDIN in paths:
        if len(paths) > 1:
            raise click.UsageError("an image from stdin goes to stdout: give - alone, or use -o")
        if sys.stdout.isatty():
            raise click.UsageError("refusing to write an image to a terminal: redirect stdout")


class _Runner:
    """Runs every item through decode -> detect -> outputs, reporting failures per item."""

    def __init__(
        self, backend: Callable[[bytes, Any], Any], output: Path | None, as_json: bool,
        as_jsonl: bool, request: Any, skip_existing: bool, *, picture_file: Path | None = None,
        fetch_allow: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.backend = backend
        self.output = output
        self.as_json, self.as_jsonl = as_json, as_jsonl
        self.request = request  # a DetectionRequest: its function draws the picture
        self.render = request.function.output == "image"
        self.skip_existing = skip_existing
        self.collected: list[dict[str, Any]] = []
        self.seen_outputs: dict[Path, str] = {}
        self.picture_file = picture_file  # -o naming the one image's picture (output is None)
        self.fetch_allow = fetch_allow  # --fetch-allow: CIDRs and host names admitted
        self.policy: Any = None
        # Results go to this stdout even while --ray points sys.stdout at stderr for Ray's chatter.
        self.stdout: IO[str] = sys.stdout

    def run(self, items: list[Item], *, remote: bool, results: Results | None = None) -> Tally:
        """Every item, computed here one by one or by ``results`` (``--ray``), and written."""
        from tqdm import tqdm

        tally = Tally()
        show_bar = len(items) > 1 and sys.stderr.isatty()
        bar = tqdm(total=len(items), disable=not show_bar, unit="img", file=sys.stderr)
        with bar, self._jsonl_sink() as (sink, already_done):
            todo = []
            for item in items:
                if self.skip_existing and self._outputs_exist(item, already_done):
                    tally.done += 1
                    tally.skipped += 1
                    bar.update()
                else:
                    todo.append(item)
            compute = results or self._computed(self._expected(remote, items))
            for item, computed in compute(todo):
                error = (
                    computed
                    if isinstance(computed, str)
                    else self._written(item, computed, sink, tally)
                )
                if error is not None:
                    tally.failed += 1
                    tqdm.write(f"{item.name}: {error}", file=sys.stderr)
                bar.update()
        if self.as_json and self.output is None:
            # One image per line: valid JSON, easy to read and to diff.
            array = "[\n" + ",\n".join(json.dumps(r) for r in self.collected) + "\n]"
            click.echo(array, file=self.stdout)
        return tally

    @staticmethod
    def _expected(remote: bool, items: list[Item]) -> tuple[type[BaseException], ...]:
        """The errors that are one image's, not the run's."""
        from facefaas.errors import FacefaasError

        expected: tuple[type[BaseException], ...] = (FacefaasError, OSError)
        if remote or any(item.url for item in items):
            import httpx

            expected += (httpx.HTTPError,)
        return expected

    def _computed(self, expected: tuple[type[BaseException], ...]) -> Results:
        def compute(todo: list[Item]) -> Iterator[tuple[Item, Computed | str]]:
            for item in todo:
                try:
                    yield item, self._compute(item)
                except expected as exc:
                    yield item, _message(exc)

        return compute

    def _written(
        self, item: Item, computed: Computed, sink: IO[str] | None, tally: Tally
    ) -> str | None:
        """Write ``item``'s outputs and count it; its error message if that fails."""
        from facefaas.errors import FacefaasError

        try:
            tally.faces += self._write(item, computed, sink)
        except (FacefaasError, OSError) as exc:
            return _message(exc)
        tally.done += 1
        return None

    @contextmanager
    def _jsonl_sink(self) -> Iterator[tuple[IO[str] | None, set[str]]]:
        """Where JSON lines go, and the paths an existing OUT/results.jsonl already has."""
        if not self.as_jsonl:
            yield None, set()
            return
        if self.output is None:
            yield self.stdout, set()
            return
        path = self.output / RESULTS_JSONL
        done = _paths_in_jsonl(path) if self.skip_existing and path.is_file() else set()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if self.skip_existing else "w", encoding="utf-8") as sink:
            yield sink, done

    def _outputs_exist(self, item: Item, jsonl_paths: set[str]) -> bool:
        if item.is_stdin or self.output is None:
            return False
        checks = []
        if self.render:
            checks.append((self.output / output_name(item.relative, None)[0]).is_file())
        if self.as_json:
            checks.append((self.output / _json_name(item.relative)).is_file())
        if self.as_jsonl:
            checks.append(item.name in jsonl_paths)
        return all(checks)

    def _claim(self, output: Path, relative: Path, item: Item) -> Path:
        """``output / relative``, refusing a second input that would overwrite another's."""
        first = self.seen_outputs.setdefault(relative, item.name)
        if first != item.name:
            raise FileExistsError(f"its output {relative} is already taken by {first}")
        return output / relative

    def picture_format(self, item: Item) -> str | None:
        """How ``item``'s picture is encoded (``"auto"``: by the input's format, PNG or JPEG),
        or ``None`` when this run writes none for it."""
        if self.picture_file is not None:
            return _KEPT_SUFFIXES[self.picture_file.suffix.lower()]
        stdout_picture = item.is_stdin and not self.as_json
        if not self.render or (self.output is None and not stdout_picture):
            return None
        suffix = item.relative.suffix.lower()
        return "auto" if not suffix else _KEPT_SUFFIXES.get(suffix, "jpeg")

    def _compute(self, item: Item) -> Computed:
        from facefaas.decode import load_image
        from facefaas.render import encode_image

        data = self._read(item)
        decoded = load_image(data)
        faces = self.backend(data, decoded)
        picture_format = self.picture_format(item)
        picture = None
        if picture_format is not None:
            if picture_format == "auto":
                picture_format = output_name(item.relative, decoded.format)[1]
            picture = encode_image(self._picture(decoded, faces), picture_format)
        return Computed({"path": item.name, **faces.to_dict()}, decoded.format, picture)

    def _write(self, item: Item, computed: Computed, sink: IO[str] | None) -> int:
        """Write one image's outputs; how many faces it has."""
        record, picture = computed.record, computed.picture or b""
        picture_name = output_name(item.relative, computed.decoded_format)[0]
        if self.picture_file is not None:
            _write_atomic(self.picture_file, picture)
            click.echo(_summary(record), file=self.stdout)
        elif self.output is not None:
            if self.render:
                _write_atomic(self._claim(self.output, picture_name, item), picture)
            if self.as_json:
                target = self._claim(self.output, _json_name(item.relative), item)
                _write_atomic(target, (json.dumps(record) + "\n").encode())
        elif self.as_json:
            self.collected.append(record)
        elif item.is_stdin and self.render:
            stdout = sys.stdout.buffer
            stdout.write(picture)
            stdout.flush()
        elif not self.as_jsonl:
            click.echo(_summary(record), file=self.stdout)
        if sink is not None:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
        return len(record["faces"])

    def _read(self, item: Item) -> bytes:
        if item.url is not None:
            from facefaas.fetch import fetch_image

            return fetch_image(item.url, self._policy()).data
        return sys.stdin.buffer.read() if item.source is None else item.source.read_bytes()

    def _policy(self) -> Any:
        """The fetch guard's policy: ``FACEFAAS_FETCH_ALLOW`` (the service's setting) and
        ``--fetch-allow`` admit private targets; the service's timeouts."""
        if self.policy is None:
            from facefaas.fetch import FetchPolicy
            from facefaas.settings import Settings

            settings = Settings()
            self.policy = FetchPolicy(
                allow=(*settings.fetch_allow, *self.fetch_allow),
                max_bytes=settings.max_body_bytes,
                connect_timeout=settings.fetch_connect_timeout,
                read_timeout=settings.fetch_read_timeout,
                timeout=settings.fetch_timeout,
            )
        return self.policy

    def _picture(self, decoded: Any, faces: Any) -> Any:
        return self.request.function.picture(decoded, faces, self.request.output)


def _message(exc: BaseException) -> str:
    """An image's error as reported after ``path: ``."""
    from facefaas.errors import FacefaasError

    return exc.message if isinstance(exc, FacefaasError) else str(exc)


def _json_name(relative: Path) -> Path:
    """``photo.jpg`` -> ``photo.jpg.json``: unambiguous when ``photo.png`` sits beside it."""
    return relative.with_name(relative.name + ".json")


def _paths_in_jsonl(path: Path) -> set[str]:
    paths: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                paths.add(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError):
                click.echo(f"{path}:{number}: not a result line, ignored", err=True)
    return paths


def _summary(record: dict[str, Any]) -> str:
    faces = record["faces"]
    plural = "face" if len(faces) == 1 else "faces"
    lines = [f"{record['path']}: {len(faces)} {plural} ({record['width']}x{record['height']})"]
    for face in faces:
        box = ", ".join(f"{v:.1f}" for v in face["box"])
        lines.append(f"  [{box}]  score {face['score']:.4f}")
    return "\n".join(lines)
