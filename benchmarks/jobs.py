"""Jobs against the library: images/s of a job beside ``Detector.detect_batch`` on the same
images, and synchronous latency while a large job runs.

1. ``detect_batch``: the library on the encoded images (decoding included, as a job decodes),
   with ``--threads`` threads.
2. A job of the same images by URL (a static file server on 127.0.0.1, admitted by the fetch
   allowlist) on a service with ``inference_threads=--threads``, timed from submit to its end;
   with ``job_threads`` the default (threads - 1) and, ``--all-threads``, equal to threads.
3. Synchronous ``/api/run/mtcnn/detect`` p50 on one image: idle, then while a job of
   ``--repeat`` times the images runs.

    python benchmarks/jobs.py                 # 48 WIDER images, 2 threads
    python benchmarks/jobs.py --limit 96 --threads 4 --all-threads

Images are read from ``../shared`` (third-party, never shipped).
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import statistics
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _image_host(folder: Path) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _service(data_dir: Path, threads: int, job_threads: int | None) -> tuple[Any, str]:
    import uvicorn

    from facefaas.server import create_app
    from facefaas.settings import Settings

    settings = Settings(
        data_dir=data_dir, inference_threads=threads, job_threads=job_threads,
        fetch_allow=["127.0.0.1"], rate_limit="", job_poll_interval=0.05,
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
    start = time.perf_counter()
    job = httpx.post(f"{url}/api/jobs", json={"inputs": inputs}, timeout=60).json()
    headers = {"X-Job-Token": job["token"]}
    while True:
        status = httpx.get(f"{url}{job['status_url']}", headers=headers, timeout=60).json()
        if status["state"] in ("done", "failed", "cancelled"):
            return time.perf_counter() - start, status
        time.sleep(0.02)


def _sync_p50(url: str, image: bytes, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        httpx.post(f"{url}/api/run/mtcnn/detect", content=image, timeout=120).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=48, help="WIDER images [48]")
    parser.add_argument("--threads", type=int, default=2, help="inference threads [2]")
    parser.add_argument("--repeat", type=int, default=4, help="the large job: images x N [4]")
    parser.add_argument("--sync-calls", type=int, default=15)
    parser.add_argument("--all-threads", action="store_true", help="also job_threads=threads")
    args = parser.parse_args()

    from facefaas.detector import Detector

    paths = sorted((SHARED / "eval" / "wider-val" / "images").rglob("*.jpg"))[: args.limit]
    if not paths:
        raise SystemExit(f"no WIDER images under {SHARED}")
    images = [p.read_bytes() for p in paths]
    print(f"{len(images)} WIDER images, {args.threads} inference threads, {os.cpu_count()} CPUs")

    with Detector(threads=args.threads) as detector:
        detector.detect(images[0])  # warm
        start = time.perf_counter()
        detector.detect_batch(images)
        batch_s = time.perf_counter() - start
    library = len(images) / batch_s
    print(f"Detector.detect_batch: {library:6.2f} images/s ({batch_s:.2f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, data in enumerate(images):
            (folder / f"{i}.jpg").write_bytes(data)
        host = _image_host(folder)
        inputs = [f"{host}/{i}.jpg" for i in range(len(images))]
        variants: list[int | None] = [None] + ([args.threads] if args.all_threads else [])
        for job_threads in variants:
            server, url = _service(Path(tmp) / f"data-{job_threads}", args.threads, job_threads)
            try:
                _run_job(url, inputs[:2])  # warm: the model loaded, the fetch path exercised
                seconds, status = _run_job(url, inputs)
                rate = status["counts"]["done"] / seconds
                label = f"job_threads={job_threads or max(1, args.threads - 1)}"
                print(f"job ({label}): {rate:6.2f} images/s ({seconds:.2f} s, "
                      f"{status['counts']['failed']} failed) = {100 * rate / library:.0f}% "
                      "of detect_batch")  # fmt: skip
                if job_threads is None:
                    probe = images[0]
                    idle = _sync_p50(url, probe, args.sync_calls)
                    big = httpx.post(
                        f"{url}/api/jobs", json={"inputs": inputs * args.repeat}, timeout=60
                    ).json()
                    time.sleep(0.5)
                    busy = _sync_p50(url, probe, args.sync_calls)
                    state = httpx.get(
                        f"{url}{big['status_url']}", headers={"X-Job-Token": big["token"]}
                    ).json()
                    print(f"sync detect p50: idle {idle * 1000:.0f} ms, during a job of "
                          f"{len(inputs) * args.repeat} images {busy * 1000:.0f} ms "
                          f"(job still pending: {state['counts']['pending']})")  # fmt: skip
                    httpx.delete(f"{url}{big['status_url']}", headers={"X-Job-Token": big["token"]})
            finally:
                server.should_exit = True
                time.sleep(0.5)


if __name__ == "__main__":
    main()
