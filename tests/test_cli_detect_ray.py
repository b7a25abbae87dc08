"""``facefaas detect --ray``: Ray Data writes what the plain command writes, resumes, and reports
each image's errors without stopping.

Real Ray: a local cluster of one node with 2 CPUs (``ray.cluster_utils.Cluster``) that the
in-process runs join with ``--ray-address``, and a subprocess run that starts its own Ray (the
default) and is interrupted with SIGINT. The plain command's outputs, computed in the same
process, are the oracle. ``--min-size 60`` keeps the 396 WIDER images fast on 2 cores while
still finding over a thousand faces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from loopback_hosts import Host, serve

from facefaas.cli import cli

pytest.importorskip("ray", reason="the ray extra is not installed")

MIN_SIZE = ["--min-size", "60"]
FACEFAAS = shutil.which("facefaas") or str(Path(sys.executable).with_name("facefaas"))
ASTRONAUT = Path(__file__).parents[1] / "src/facefaas/data/reference/astronaut.jpg"
N_RESUME = 48


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A one-node Ray cluster with 2 CPUs for the module's runs to join (the command connects
    and disconnects; the cluster is shut down here)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": 256 * 1024 * 1024},
    )
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def wider(shared: Path) -> Path:
    return shared / "eval" / "wider-val" / "images"


@pytest.fixture(scope="module")
def wider_plain(wider: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plain command's outputs over the 396 WIDER images (JSON Lines and pictures)."""
    out = tmp_path_factory.mktemp("plain") / "out"
    result = run(str(wider), "-o", str(out), "--jsonl", *MIN_SIZE)
    assert result.exit_code == 0, result.output
    return out


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["detect", *args])


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_same_lines(actual: Path, expected: Path) -> None:
    got, want = actual.read_text().splitlines(), expected.read_text().splitlines()
    for number, (a, b) in enumerate(zip(got, want, strict=False), 1):
        assert a == b, f"line {number} differs:\n  --ray: {a[:300]}\n  plain: {b[:300]}"
    assert len(got) == len(want)


def actor_pids() -> list[int]:
    """The processes of this module's detector actors (Ray names them by their class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and b"MapBatches(_DetectActor)" in command:
            pids.append(int(entry.name))
    return pids


def kill_an_actor_after(results: Path, lines: int, killed: list[int]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if results.is_file() and len(results.read_bytes().splitlines()) >= lines:
            pids = actor_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            return
        time.sleep(0.05)


def test_ray_over_the_396_wider_images_writes_the_plain_lines_and_pictures_despite_a_killed_actor(
    wider: Path, wider_plain: Path, ray_address: str, tmp_path: Path
) -> None:
    """Same JSON Lines (line by line) and picture files (byte for byte) as the plain command,
    though one actor is killed part-way: Ray restarts it and retries its batch."""
    out = tmp_path / "ray"
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_an_actor_after, args=(out / "results.jsonl", 40, killed), daemon=True
    )
    killer.start()
    result = run(str(wider), "-o", str(out), "--jsonl", *MIN_SIZE, "--ray",
                 "--ray-address", ray_address)  # fmt: skip
    killer.join()
    assert result.exit_code == 0, result.output
    assert len(killed) == 1
    assert result.stderr.splitlines()[-1].startswith("396 of 396 images, ")
    lines = (wider_plain / "results.jsonl").read_text().splitlines()
    assert len(lines) == 396
    assert sum(line.count('"box"') for line in lines) > 1000  # a comparison with many faces
    assert_same_lines(out / "results.jsonl", wider_plain / "results.jsonl")
    plain, ray = files(wider_plain), files(out)
    assert sorted(ray) == sorted(plain)
    assert len(plain) == 397
    assert [name for name in plain if plain[name] != ray[name]] == []


@pytest.fixture
def subset(wider: Path, tmp_path: Path) -> Path:
    """The first WIDER images, copied into one folder of their own."""
    folder = tmp_path / "subset"
    folder.mkdir()
    for path in sorted(wider.rglob("*.jpg"))[:N_RESUME]:
        shutil.copyfile(path, folder / path.name)
    return folder


def test_an_interrupted_run_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(
    subset: Path, ray_address: str, tmp_path: Path
) -> None:
    expected = tmp_path / "plain"
    assert run(str(subset), "-o", str(expected), "--jsonl", *MIN_SIZE).exit_code == 0
    out = tmp_path / "out"
    results = out / "results.jsonl"
    # A run that starts its own Ray (the default), stopped by Ctrl+C part-way through.
    command = [FACEFAAS, "detect", str(subset), "-o", str(out), "--jsonl", *MIN_SIZE, "--ray"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (results.is_file() and len(results.read_bytes().splitlines()) >= 8):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no results within 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0, stderr.decode()
    assert stdout == b""  # Ray's logs never reach stdout
    done = results.read_text().splitlines()
    want = (expected / "results.jsonl").read_text().splitlines()
    assert 8 <= len(done) < N_RESUME
    assert done == want[: len(done)]  # in order, whole lines only
    pictures = [out / Path(json.loads(line)["path"]).name for line in done]
    kept = {picture: (picture.stat().st_ino, picture.stat().st_mtime_ns) for picture in pictures}

    again = run(str(subset), "-o", str(out), "--jsonl", *MIN_SIZE, "--skip-existing",
                "--ray", "--ray-address", ray_address)  # fmt: skip

    assert again.exit_code == 0, again.output
    skipped = f"{N_RESUME} of {N_RESUME} images ({len(done)} skipped as done before)"
    assert skipped in again.stderr
    assert_same_lines(results, expected / "results.jsonl")
    assert files(out) == files(expected)
    for picture, stamp in kept.items():  # the images done before were not drawn again
        assert (picture.stat().st_ino, picture.stat().st_mtime_ns) == stamp, picture


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with serve(ASTRONAUT.read_bytes()) as running:
        yield running


@pytest.fixture
def troubled(wider: Path, tmp_path: Path) -> Path:
    """Three good images, a corrupt one, a truncated one and a file that cannot be read."""
    folder = tmp_path / "troubled"
    (folder / "b").mkdir(parents=True)
    good = sorted(wider.rglob("*.jpg"))[:3]
    for i, path in enumerate(good):
        shutil.copyfile(path, folder / ("b" if i else ".") / path.name)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 10)
    data = good[0].read_bytes()
    (folder / "b" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    os.symlink(tmp_path / "gone.jpg", folder / "b" / "unreadable.jpg")  # read as root, too
    return folder


def test_broken_images_and_urls_are_per_image_errors_as_the_plain_command_reports_them(
    troubled: Path, host: Host, ray_address: str
) -> None:
    inputs = [str(troubled), f"{host.url}/img.png", "http://10.0.0.1/x.jpg",
              "--fetch-allow", "127.0.0.1/32", "--jsonl", *MIN_SIZE]  # fmt: skip
    plain = run(*inputs)
    ray = run(*inputs, "--ray", "--ray-address", ray_address)
    assert plain.exit_code == 1, plain.output
    assert ray.exit_code == plain.exit_code, ray.output
    errors = sorted(plain.stderr.splitlines())
    assert [line.split(": ")[0] for line in errors] == sorted([
        str(troubled / "b" / "truncated.jpg"),
        str(troubled / "b" / "unreadable.jpg"),
        "http://10.0.0.1/x.jpg",
        str(troubled / "corrupt.jpg"),
    ])  # fmt: skip
    assert sorted(ray.stderr.splitlines()) == errors
    assert ray.stdout == plain.stdout
    assert len(plain.stdout.splitlines()) == 4  # 3 good images and the loopback URL


def test_a_file_uri_prefix_is_listed_and_read_like_the_folder(
    troubled: Path, ray_address: str
) -> None:
    (troubled / "b" / "unreadable.jpg").unlink()
    plain = run(str(troubled), "--jsonl", *MIN_SIZE)
    ray = run(f"file://{troubled}", "--jsonl", *MIN_SIZE, "--ray", "--ray-address", ray_address)
    assert ray.exit_code == plain.exit_code == 1, ray.output
    assert ray.stdout.replace("file://", "") == plain.stdout
    assert ray.stderr.replace("file://", "") == plain.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-", "--ray"], "not stdin"),
        (["x.jpg", "--ray", "--remote", "http://127.0.0.1:9"], "--ray and --remote"),
        (["x.jpg", "--ray-actors", "2"], "--ray-actors needs --ray"),
        (["x.jpg", "--ray", "--ray-actor-cpus", "0"], "--ray-actor-cpus"),
    ],
)
def test_ray_options_are_checked_before_anything_runs(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_detect_offline_yields_each_sources_outcome_in_order_with_the_requests_filter(
    wider: Path, ray_address: str, tmp_path: Path
) -> None:
    """The library function on its own: another function (blur), a face filter, PNG pictures."""
    import io
    import itertools

    from PIL import Image

    from facefaas.detector import Detector
    from facefaas.functions import get_function
    from facefaas.params import DetectionParams
    from facefaas.request import DetectionRequest
    from facefaas.scale.offline import Source, detect_offline, ray_session

    params = DetectionParams(min_size=60)
    with Detector() as detector:  # images with several faces, so that the filter drops some
        found = ((path, detector.detect(path, params)) for path in sorted(wider.rglob("*.jpg")))
        expected = list(itertools.islice(((p, f) for p, f in found if len(f) > 1), 3))
    sources = [Source(str(path), str(path), "png") for path, _ in expected]
    sources.insert(1, Source("missing", str(tmp_path / "missing.jpg"), "png"))
    request = DetectionRequest(get_function("blur"), params=params, max_faces=1)
    with ray_session(ray_address):
        outcomes = list(detect_offline(sources, request))
    assert [o.index for o in outcomes] == [0, 1, 2, 3]
    assert outcomes[1].error == "[Errno 2] No such file or directory: 'missing'"  # its name
    for (path, faces), outcome in zip(expected, [outcomes[0], *outcomes[2:]], strict=True):
        assert outcome.record == {"path": str(path), **faces.filter(max_faces=1).to_dict()}
        picture = Image.open(io.BytesIO(outcome.picture or b""))
        assert (picture.format, picture.size) == ("PNG", (faces.width, faces.height))
