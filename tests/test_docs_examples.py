"""Every ```python block of README.md and docs/*.md runs as written, so examples cannot drift.

The blocks of one file run in order in one namespace (as a reader pasting them one after another
would), in a temporary working directory that holds the files the snippets name: ``astronaut.png``,
``group.jpg``, ``photo.jpg``, ... (all made from the public-domain reference portrait shipped in
the package). Nothing is fetched from a network.

- A block preceded by ``<!-- not-run: REASON -->`` (the line right before its fence) is not run:
  it is reported as skipped with that reason (a GPU, a running server, ...).
- A block that reads third-party data (``../shared``, or a model folder copied from there, see
  ``FROM_SHARED``) is skipped, saying why, when ``../shared`` is absent.
- A block that raises fails its test; the blocks after it in the same file are reported as
  skipped (their namespace is incomplete).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))  # as in conftest.py
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
REFERENCE = REPO / "src" / "facefaas" / "data" / "reference" / "astronaut.jpg"

# Names the snippets use for "your photo", all the reference portrait (512x512, one face).
JPEG_NAMES = ("astronaut.jpg", "group.jpg", "photo.jpg", "a.jpg", "b.jpg")
PNG_NAMES = ("astronaut.png",)
# Folders the snippets use for "your training output", copied from ../shared when it is there.
FROM_SHARED = {"checkpoints": "models/facenet-pytorch", "caffe-original": "models/caffe-original"}

NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>.+?)\s*-->$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None  # the reason, when the block is marked not-run

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def source(self) -> str:
        """The code, preceded by blank lines so that tracebacks give the file's line numbers."""
        return "\n" * self.line + self.code

    def needs_shared(self) -> bool:
        names = ("../shared", *(f"{name}/" for name in FROM_SHARED))
        return any(name in self.code for name in names)


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with their not-run markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not re.match(rf"^{fence['indent']}```\s*$", lines[end]):
            end += 1
        if fence["lang"] == "python":
            previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
            marker = NOT_RUN.match(previous)
            width = len(fence["indent"])
            code = "\n".join(line[width:] for line in lines[i + 1 : end]) + "\n"
            blocks.append(Block(path, i + 1, code, marker["reason"] if marker else None))
        i = end + 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in python_blocks(path)]


def _shared_present() -> bool:
    return (SHARED / "data" / "mtcnn.pb").is_file()


def _prepare(work: Path) -> None:
    """The files the snippets name, in ``work``; ``work/../shared`` is ../shared."""
    for name in JPEG_NAMES:
        shutil.copyfile(REFERENCE, work / name)
    with Image.open(REFERENCE) as image:
        for name in PNG_NAMES:
            image.convert("RGB").save(work / name)
    if _shared_present():
        (work.parent / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
        for name, source in FROM_SHARED.items():
            shutil.copytree(SHARED / source, work / name)


@dataclass
class Outcome:
    error: str | None = None  # the traceback, when the block raised
    skip: str | None = None  # why it was not run


def _run_file(path: Path, work: Path) -> dict[int, Outcome]:
    """Run the blocks of one file in order in one namespace; an outcome per block's line."""
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    outcomes: dict[int, Outcome] = {}
    failed: Block | None = None
    for block in python_blocks(path):
        if failed is not None:
            outcomes[block.line] = Outcome(skip=f"block {failed.name} failed before it")
        elif block.not_run is not None:
            outcomes[block.line] = Outcome(skip=f"not-run: {block.not_run}")
        elif block.needs_shared() and not _shared_present():
            outcomes[block.line] = Outcome(
                skip=f"needs {SHARED} (third-party data, never shipped), which is absent"
            )
        else:
            try:
                with contextlib.chdir(work):
                    exec(compile(block.source(), str(block.path), "exec"), namespace)
            except Exception:  # reported as this block's failure
                failed = block
                outcomes[block.line] = Outcome(error=traceback.format_exc())
            else:
                outcomes[block.line] = Outcome()
    _close_detectors(namespace)
    return outcomes


def _close_detectors(namespace: dict[str, Any]) -> None:
    for value in namespace.values():
        close = getattr(value, "close", None)
        if callable(close) and type(value).__module__.startswith("facefaas"):
            with contextlib.suppress(Exception):
                close()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, Outcome]]:
    """Each file is run once, the first time one of its blocks' tests asks for it."""

    class Lazy(dict[str, dict[int, Outcome]]):
        def __missing__(self, key: str) -> dict[int, Outcome]:
            work = tmp_path_factory.mktemp("docs") / "work"
            work.mkdir()
            _prepare(work)
            outcome = self[key] = _run_file(REPO / key, work)
            return outcome

    return Lazy()


def test_the_docs_have_python_examples() -> None:
    assert len(ALL_BLOCKS) >= 8, [block.name for block in ALL_BLOCKS]
    assert any(block.path.name == "README.md" for block in ALL_BLOCKS)


def test_not_run_markers_sit_right_before_a_python_block() -> None:
    """A marker anywhere else would silently not apply: refuse it."""
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        marked = {block.line for block in python_blocks(path) if block.not_run is not None}
        for number, line in enumerate(lines, 1):
            if NOT_RUN.match(line.strip()):
                following = next(
                    (n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip()), None
                )
                assert following in marked, (
                    f"{path.name}:{number}: marker not before a python block"
                )


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.name for block in ALL_BLOCKS])
def test_example_runs(block: Block, outcomes: dict[str, dict[int, Outcome]]) -> None:
    outcome = outcomes[str(block.path.relative_to(REPO))][block.line]
    if outcome.skip is not None:
        pytest.skip(f"{block.name}: {outcome.skip}")
    if outcome.error is not None:
        pytest.fail(f"{block.name} raised:\n{outcome.error}\n{block.code}", pytrace=False)


def test_python_blocks_parses_fences_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\na = 1\n```\n\n<!-- not-run: needs CUDA -->\n\n```python\nb = 2\n```\n"
        "```console\n$ c\n```\n- item\n\n  ```python\n  d = 4\n  ```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [(b.line, b.code, b.not_run) for b in blocks] == [
        (2, "a = 1\n", None),
        (8, "b = 2\n", "needs CUDA"),
        (16, "d = 4\n", None),
    ]
