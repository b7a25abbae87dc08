"""Jobs against the library: images/s of a job beside ``Detector.detect_batch`` on the same
images, and synchronous latency while a large job runs.

1. ``detect_batch``: the library on the encoded images (decoding included, as a job decodes),
   with ``--threads`` threads.
2. A job of the same images by URL (a static file server on 127.0.0.1 in its own process, admitted by the fetch
   allowlist) on a service with ``inference_threads=--threads``, submitted and waited for with
   :class:`facefaas.Client`, timed from the submit to the job's ``finished_at``,
   alternating with (1) for ``--rounds`` rounds; each job is compared with the mean of the
   ``detect_batch`` runs on either side of it.
3. Synchronous ``/api/run/mtcnn/detect`` latency on one image: idle, then while a job of
   ``--repeat`` times the images runs (the first call finds every thread borrowed by the job).

    python benchmarks/jobs.py                 # 48 WIDER images, 2 threads, 3 rounds
    python benchmarks/jobs.py --limit 96 --threads 4 --rounds 5
    python benchmarks/jobs.py --database-url postgresql+psycopg://...   # an empty database

Images are read from ``../shared`` (third-party, never shipped).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))


def _image_host(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A static file server in its own process, as an image host is (not in the service's)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    host = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port), "-d", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return host, url
        except httpx.TransportError:
            time.sleep(0.1)
    host.kill()
    raise RuntimeError("the image host did not start")


def _service(
    data_dir: Path, threads: int, job_threads: int | None, database_url: str | None = None
) -> tuple[Any, str]:
    import uvicorn

    from facefaas.server import create_app
    from facefaas.settings import Settings

    # The default job_poll_interval (0.5 s): a submit wakes the worker at once, and a shorter
    # interval only adds idle polling (the webhook queue is looked at every interval).
    settings = Settings(
        data_dir=data_dir, database_url=database_url,
        inference_threads=threads, job_threads=job_threads,
        fetch_allow=["127.0.0.1"], rate_limit="",
        job_max_items=100_000, log_level="warning", log_format="text", queue_size=64,
    )  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the service did not start")


def _run_job(url: str, inputs: list[str]) -> tuple[float, dict[str, Any]]:
    """Submit through :class:`facefaas.Client` and wait as a user does (a status every 0.5 s);
    the job's time runs from just before the submit to the server's ``finished_at``, so the
    polling interval adds nothing to it and the poller takes little of the shared CPUs."""
    from datetime import datetime

    from facefaas import Client

    with Client(url, timeout=60) as client:
        start = time.time()
        status = client.submit(inputs).wait()
    finished = datetime.fromisoformat(status["finished_at"]).timestamp()
    return finished - start, status


def _sync_times(url: str, image: bytes, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        httpx.post(f"{url}/api/run/mtcnn/detect", content=image, timeout=120).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=48, help="WIDER images [48]")
    parser.add_argument("--threads", type=int, default=2, help="inference threads [2]")
    parser.add_argument("--repeat", type=int, default=4, help="the large job: images x N [4]")
    parser.add_argument("--sync-calls", type=int, default=15)
    parser.add_argument(
        "--job-threads",
        type=int,
        default=None,
        help="threads jobs hold while synchronous calls are made [threads - 1]",
    )
    parser.add_argument("--rounds", type=int, default=3, help="job/detect_batch rounds [3]")
    parser.add_argument(
        "--database-url", help="the registry and job queue on this database [SQLite in a temp dir]"
    )
    args = parser.parse_args()

    from facefaas.detector import Detector

    paths = sorted((SHARED / "eval" / "wider-val" / "images").rglob("*.jpg"))[: args.limit]
    if not paths:
        raise SystemExit(f"no WIDER images under {SHARED}")
    images = [p.read_bytes() for p in paths]
    print(f"{len(images)} WIDER images, {args.threads} inference threads, {os.cpu_count()} CPUs")

    detector = Detector(threads=args.threads)
    detector.detect(images[0])  # warm

    def batch_rate() -> float:
        start = time.perf_counter()
        detector.detect_batch(images)
        return len(images) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, data in enumerate(images):
            (folder / f"{i}.jpg").write_bytes(data)
        image_host, host = _image_host(folder)
        inputs = [f"{host}/{i}.jpg" for i in range(len(images))]
        server, url = _service(
            Path(tmp) / "data", args.threads, args.job_threads, args.database_url
        )
        try:
            _run_job(url, inputs[:2])  # warm: the model loaded, the fetch path exercised
            # Rounds alternate detect_batch and the job, and each job is compared with the mean
            # of the detect_batch runs on either side of it: a shared machine drifts.
            ratios = []
            before = batch_rate()
            for round_ in range(1, args.rounds + 1):
                seconds, status = _run_job(url, inputs)
                rate = status["counts"]["done"] / seconds
                after = batch_rate()
                reference = (before + after) / 2
                ratios.append(rate / reference)
                print(f"round {round_}: detect_batch {before:5.2f} / {after:5.2f} images/s, "
                      f"job {rate:5.2f} images/s ({status['counts']['failed']} failed) = "
                      f"{100 * rate / reference:.0f}%")  # fmt: skip
                before = after
            print(f"job / detect_batch, no synchronous calls (median of {args.rounds}): "
                  f"{100 * statistics.median(ratios):.0f}%")  # fmt: skip

            probe = images[0]
            idle = _sync_times(url, probe, args.sync_calls)
            big = httpx.post(
                f"{url}/api/jobs", json={"inputs": inputs * args.repeat}, timeout=60
            ).json()
            time.sleep(3.0)  # no synchronous call for 3 s: the job has borrowed every thread
            busy = _sync_times(url, probe, args.sync_calls)
            state = httpx.get(
                f"{url}{big['status_url']}", headers={"X-Job-Token": big["token"]}
            ).json()
            print(f"sync detect: idle p50 {statistics.median(idle) * 1000:.0f} ms; "
                  f"during a job of {len(inputs) * args.repeat} images p50 "
                  f"{statistics.median(busy) * 1000:.0f} ms, first call (the job held every "
                  f"thread) {busy[0] * 1000:.0f} ms, max {max(busy) * 1000:.0f} ms "
                  f"(job still pending: {state['counts']['pending']})")  # fmt: skip
            httpx.delete(f"{url}{big['status_url']}", headers={"X-Job-Token": big["token"]})
        finally:
            server.should_exit = True
            image_host.terminate()
            time.sleep(0.5)
            detector.close()


if __name__ == "__main__":
    main()
