"""``facefaas detect``: inputs, outputs, exit codes, remote mode and start-up cost."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from facefaas.cli import cli
from facefaas.decode import load_image
from facefaas.detector import Detector
from facefaas.faces import Faces
from facefaas.render import annotate, anonymize

FACEFAAS = shutil.which("facefaas") or str(Path(sys.executable).with_name("facefaas"))
ASTRONAUT = "eval/photos/scikit-image__astronaut.png"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


@pytest.fixture
def astronaut(shared: Path, tmp_path: Path) -> Path:
    """A copy of the astronaut in a tmp folder (one face)."""
    target = tmp_path / "astronaut.png"
    shutil.copyfile(shared / ASTRONAUT, target)
    return target


def synthetic(
    path: Path, seed: int, fmt: str | None = None, size: tuple[int, int] = (64, 48)
) -> Path:
    """A face-free image: smooth colour gradients."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    pixels = np.stack([xs * 3 + seed, ys * 4, (xs + ys + seed * 7) % 256], axis=2) % 256
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
    return path


@pytest.fixture
def photos(astronaut: Path, tmp_path: Path) -> Path:
    """photos/astronaut.png, photos/a/plain.jpg, photos/a/b/deep.png, photos/a/odd.gif."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.move(astronaut, folder / "astronaut.png")
    synthetic(folder / "a" / "plain.jpg", 1)
    synthetic(folder / "a" / "b" / "deep.png", 2)
    synthetic(folder / "a" / "odd.gif", 3)
    (folder / "notes.txt").write_text("not an image, not picked up")
    (folder / ".hidden.jpg").write_bytes(b"skipped: hidden")
    return folder


def run(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["detect", *args], input=input)


def test_single_file_prints_a_short_summary(astronaut: Path, detector: Detector) -> None:
    result = run(str(astronaut))
    assert result.exit_code == 0, result.output
    (face,) = detector(astronaut).to_dict()["faces"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{astronaut}: 1 face (512x512)"
    assert lines[1].startswith("  [" + ", ".join(f"{v:.1f}" for v in face["box"]) + "]  score 0.99")


def test_folder_with_output_writes_boxed_pictures_in_the_same_layout(
    photos: Path, tmp_path: Path, detector: Detector
) -> None:
    out = tmp_path / "out"
    result = run(str(photos), "-o", str(out))
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/b/deep.png", "a/odd.jpg", "a/plain.jpg", "astronaut.png"]
    source = photos / "astronaut.png"
    expected = np.asarray(annotate(source, detector(source)))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "astronaut.png")), expected)
    assert Image.open(out / "a" / "odd.jpg").format == "JPEG"
    assert result.stdout == ""


def test_jsonl_prints_one_result_per_image(photos: Path, detector: Detector) -> None:
    result = run(str(photos), "--jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["path"] for row in rows] == [
        str(photos / "a" / "b" / "deep.png"),
        str(photos / "a" / "odd.gif"),
        str(photos / "a" / "plain.jpg"),
        str(photos / "astronaut.png"),
    ]
    astronaut = rows[-1]
    assert astronaut == {"path": astronaut["path"], **detector(photos / "astronaut.png").to_dict()}
    assert [len(row["faces"]) for row in rows] == [0, 0, 0, 1]


def test_jsonl_with_output_goes_to_results_file(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(str(photos), "-o", str(out), "--jsonl", "--render", "none")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["results.jsonl"]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and Faces.from_dict(rows[-1]).width == 512


def test_json_with_output_writes_one_document_per_image(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(str(photos / "astronaut.png"), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads((out / "astronaut.png.json").read_text())
    assert document["path"] == str(photos / "astronaut.png") and len(document["faces"]) == 1
    assert (out / "astronaut.png").is_file()


def test_json_without_output_prints_one_array(photos: Path) -> None:
    result = run(str(photos / "astronaut.png"), str(photos / "a" / "plain.jpg"), "--json")
    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    assert [len(d["faces"]) for d in documents] == [1, 0]


def test_a_corrupt_file_is_reported_and_the_others_still_processed(
    photos: Path, tmp_path: Path
) -> None:
    (photos / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    result = run(str(photos), "-o", str(out), "--jsonl")
    assert result.exit_code == 1
    assert f"{photos / 'a' / 'broken.jpg'}: " in result.stderr
    assert (out / "astronaut.png").is_file() and (out / "a" / "plain.jpg").is_file()
    assert len((out / "results.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: d, "no images to process", id="empty-folder"),
        pytest.param(lambda d: d / "missing.jpg", "missing.jpg: no such file", id="missing-file"),
        pytest.param(
            lambda d: (d / "bad.png").write_bytes(b"") or d / "bad.png", "bad.png: ", id="all-bad"
        ),
    ],
)
def test_nothing_processed_exits_3(tmp_path: Path, make: Any, message: str) -> None:
    result = run(str(make(tmp_path)))
    assert result.exit_code == 3
    assert message in result.stderr


def test_stdin_to_stdout_gives_the_seeds_picture(astronaut: Path, detector: Detector) -> None:
    result = run("-", input=astronaut.read_bytes())
    assert result.exit_code == 0, result.output
    picture = Image.open(io.BytesIO(result.stdout_bytes))
    assert picture.format == "PNG"  # PNG in, lossless PNG out; JPEG in, JPEG (quality 80) out
    expected = np.asarray(annotate(astronaut, detector(astronaut)))
    np.testing.assert_array_equal(np.asarray(picture), expected)


def test_stdin_jpeg_comes_back_as_jpeg(tmp_path: Path) -> None:
    source = synthetic(tmp_path / "x.jpg", 4)
    result = run("-", input=source.read_bytes())
    assert result.exit_code == 0, result.output
    assert Image.open(io.BytesIO(result.stdout_bytes)).format == "JPEG"


def test_stdin_with_json_prints_the_faces(astronaut: Path) -> None:
    result = run("-", "--json", input=astronaut.read_bytes())
    assert result.exit_code == 0, result.output
    (document,) = json.loads(result.stdout)
    assert document["path"] == "-" and len(document["faces"]) == 1


@pytest.mark.parametrize("method", ["blur", "pixelate"])
def test_render_anonymizes_the_face_only(
    astronaut: Path, tmp_path: Path, detector: Detector, method: str
) -> None:
    out = tmp_path / "out"
    result = run(str(astronaut), "-o", str(out), "--render", method)
    assert result.exit_code == 0, result.output
    expected = anonymize(astronaut, detector(astronaut), method=method)  # type: ignore[arg-type]
    picture = np.asarray(Image.open(out / "astronaut.png"))
    np.testing.assert_array_equal(picture, np.asarray(expected))
    assert not np.array_equal(picture, load_image(astronaut).pixels)


def test_landmarks_and_scores_change_the_picture(astronaut: Path, tmp_path: Path) -> None:
    plain = run("-", input=astronaut.read_bytes()).stdout_bytes
    marked = run("-", "--landmarks", "--scores", input=astronaut.read_bytes()).stdout_bytes
    difference = np.asarray(Image.open(io.BytesIO(plain))) != np.asarray(
        Image.open(io.BytesIO(marked))
    )
    assert difference.any(axis=2).sum() > 50


def test_no_recursive_stays_in_the_top_folder(photos: Path) -> None:
    result = run(str(photos), "--no-recursive", "--jsonl")
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [
        str(photos / "astronaut.png")
    ]


def test_skip_existing_processes_only_new_images(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(str(photos), "-o", str(out), "--jsonl").exit_code == 0
    (out / "astronaut.png").write_bytes(b"sentinel: must not be rewritten")
    synthetic(photos / "new.png", 5)
    result = run(str(photos), "-o", str(out), "--jsonl", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "5 of 5 images (4 skipped as done before)" in result.stderr
    assert (out / "astronaut.png").read_bytes() == b"sentinel: must not be rewritten"
    assert (out / "new.png").is_file()
    paths = [json.loads(line)["path"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(paths) == sorted({*paths}) and str(photos / "new.png") in paths
    assert len(paths) == 5


@pytest.mark.parametrize(("name", "fmt"), [("boxed.png", "PNG"), ("Boxed.JPG", "JPEG")])
def test_output_naming_an_image_file_writes_that_picture(
    astronaut: Path, tmp_path: Path, detector: Detector, name: str, fmt: str
) -> None:
    target = tmp_path / name
    result = run(str(astronaut), "-o", str(target), "--render", "blur")
    assert result.exit_code == 0, result.output
    assert target.is_file() and Image.open(target).format == fmt
    assert result.stdout.startswith(f"{astronaut}: 1 face")
    if fmt == "PNG":
        expected = anonymize(astronaut, detector(astronaut), method="blur")
        np.testing.assert_array_equal(np.asarray(Image.open(target)), np.asarray(expected))
    again = run(str(astronaut), "-o", str(target))  # an existing picture is replaced
    assert again.exit_code == 0, again.output


def test_stdin_to_an_output_picture_file(astronaut: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jpg"
    result = run("-", "-o", str(target), input=astronaut.read_bytes())
    assert result.exit_code == 0, result.output
    assert Image.open(target).format == "JPEG"


def test_an_existing_folder_named_like_a_picture_stays_a_folder(
    astronaut: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "odd.png"
    folder.mkdir()
    assert run(str(astronaut), "-o", str(folder)).exit_code == 0
    assert (folder / "astronaut.png").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--json"], "need a folder"),
        (["--skip-existing"], "need a folder"),
        (["SECOND"], "there are 2 images"),
    ],
)
def test_a_picture_file_output_refuses_what_needs_a_folder(
    astronaut: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    second = str(synthetic(tmp_path / "second.jpg", 1))
    args = [second if arg == "SECOND" else arg for arg in extra]
    result = run(str(astronaut), *args, "-o", str(tmp_path / "out.png"))
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out.png").exists()


def test_an_output_that_is_an_existing_file_not_a_picture_is_refused(
    astronaut: Path, tmp_path: Path
) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = run(str(astronaut), "-o", str(existing))
    assert result.exit_code == 2
    assert "not a folder" in result.output
    assert existing.read_text() == "keep me"


def test_two_inputs_for_one_output_name_fail_the_second(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    synthetic(folder / "x.gif", 1, fmt="GIF")
    synthetic(folder / "x.jpg", 2)
    result = run(str(folder), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "x.jpg is already taken by" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["x.jpg", "--json", "--jsonl"],
        ["-", "-", "--json"],
        ["x.jpg", "--skip-existing"],
        ["x.jpg", "-o", "out", "--render", "none"],
        ["-", "x.jpg"],
        ["x.jpg", "--thresholds", "0.6,0.7"],
        ["x.jpg", "--min-size", "2"],
        ["x.jpg", "--factor", "0.99"],
        ["x.jpg", "--render", "sketch"],
        [],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output


def test_unknown_model_exits_3(astronaut: Path) -> None:
    result = run(str(astronaut), "--model", "no-such-model")
    assert result.exit_code == 3
    assert "no-such-model" in result.stderr


def test_model_may_be_a_bundle_folder(astronaut: Path) -> None:
    import facefaas

    bundle = Path(facefaas.__file__).parent / "data" / "models" / "mtcnn"
    result = run(str(astronaut), "--model", str(bundle), "--min-size", "40", "--jsonl")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["faces"]) == 1


class FakeClient:
    """Stands in for facefaas.client.Client: records the calls, answers with fixed faces."""

    calls: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.calls.append(("init", (url, api_key)))

    def detect(self, image: bytes, **params: Any) -> Faces:
        self.calls.append(("detect", (len(image), params)))
        width, height = Image.open(io.BytesIO(image)).size
        return Faces([[2, 2, 20, 20]], [0.9], np.zeros((1, 5, 2)), width=width, height=height)

    def close(self) -> None:
        self.calls.append(("close", None))


def test_remote_sends_images_and_parameters_to_the_client(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import facefaas.client

    FakeClient.calls = []
    monkeypatch.setattr(facefaas.client, "Client", FakeClient)
    monkeypatch.setenv("FACEFAAS_API_KEY", "ffu_secret")
    args = [str(photos / "a"), "--remote", "http://h:8000", "--model", "m1", "--min-size", "30"]
    result = run(*args, "--jsonl")
    assert result.exit_code == 0, result.output
    assert FakeClient.calls[0] == ("init", ("http://h:8000", "ffu_secret"))
    detects = [call for call in FakeClient.calls if call[0] == "detect"]
    assert len(detects) == 3
    assert detects[0][1][1] == {"model": "m1", "min_size": 30.0}
    assert FakeClient.calls[-1] == ("close", None)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert all(row["faces"][0]["box"] == [2, 2, 20, 20] for row in rows)


def test_remote_errors_are_reported_per_file(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facefaas.client
    from facefaas.errors import AuthError

    class Refusing(FakeClient):
        def detect(self, image: bytes, **params: Any) -> Faces:
            raise AuthError("missing or wrong API key")

    monkeypatch.setattr(facefaas.client, "Client", Refusing)
    result = run(str(photos / "a"), "--remote", "http://h:8000")
    assert result.exit_code == 3
    assert result.stderr.count("missing or wrong API key") == 3


def test_remote_without_the_client_module_is_a_clear_usage_error(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "facefaas.client", None)  # makes the import fail
    result = run(str(photos / "a"), "--remote", "http://h:8000")
    assert result.exit_code == 2
    assert "--remote needs the HTTP client" in result.stderr


def _timed(*args: str, **kwargs: Any) -> tuple[subprocess.CompletedProcess[bytes], float]:
    start = time.perf_counter()
    done = subprocess.run([FACEFAAS, *args], capture_output=True, timeout=60, **kwargs)
    return done, time.perf_counter() - start


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["detect", "--help"]])
def test_help_and_version_are_fast(args: list[str]) -> None:
    done, seconds = _timed(*args)
    assert done.returncode == 0, done.stderr
    assert seconds < 3.0


def test_detect_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, facefaas.cli.detect; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'PIL', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_console_script_end_to_end(photos: Path, tmp_path: Path) -> None:
    (photos / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    done, _ = _timed("detect", str(photos), "-o", str(out), "--jsonl", "--scores")
    assert done.returncode == 1
    assert b"broken.png: " in done.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {Path(row["path"]).name: len(row["faces"]) for row in rows} == {
        "deep.png": 0, "odd.gif": 0, "plain.jpg": 0, "astronaut.png": 1
    }  # fmt: skip
    piped, _ = _timed("detect", "-", input=(photos / "astronaut.png").read_bytes())
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_progress_bar_only_on_a_terminal(photos: Path) -> None:
    import fcntl
    import struct
    import termios

    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        done = subprocess.run(
            [FACEFAAS, "detect", str(photos), "--jsonl"], stdout=subprocess.PIPE,
            stderr=secondary, timeout=60,
        )  # fmt: skip
        os.close(secondary)
        seen = b""
        while chunk := _read_pty(primary):
            seen += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0
    assert b"4/4" in seen
    piped, _ = _timed("detect", str(photos), "--jsonl")
    assert b"4/4" not in piped.stderr


def _read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other side is closed and everything was read
        return b""
