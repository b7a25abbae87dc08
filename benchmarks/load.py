"""Load benchmark of the HTTP service (a script, not a test).

Drives ``POST /api/run/mtcnn/detect`` over loopback at several concurrencies with one image and
prints requests/s, p50 and p99 latency and errors for each, next to the library's own images/s
measured in the same run on the same machine (``Detector()(image_bytes)``: decode + detect, the
same work a request does), and the ratio.

    python benchmarks/load.py                      # starts `facefaas serve` itself
    python benchmarks/load.py --url http://host:8000 --concurrency 1,4,16 --requests 200

Without ``--url`` the server runs as a subprocess (``facefaas serve``) on a free port, with a
temporary data folder and no rate limit; ``--workers`` and ``--inference-threads`` pass through.
The image defaults to ``../shared/data/solvay.jpg``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "solvay.jpg"
SERVER_PIDS: list[int] = []  # of the servers local_server started, for other benchmarks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def library_rate(image: bytes, seconds: float) -> float:
    """Images per second of the library alone, one caller (ONNX Runtime uses every core)."""
    from facefaas.detector import Detector

    detector = Detector()
    detector(image)  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        detector(image)
        done += 1
    return done / (time.perf_counter() - start)


def drive(url: str, image: bytes, concurrency: int, requests: int, path: str) -> dict[str, float]:
    """Send ``requests`` requests from ``concurrency`` threads (each with its own connection)."""
    latencies: list[float] = []
    errors: list[int] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                response = client.post(
                    path, content=image, headers={"Content-Type": "application/octet-stream"}
                )
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        errors.append(response.status_code)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "errors": len(errors),
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else float("nan"),
    }


def server_memory(url: str) -> float:
    """The server's resident memory in bytes, from its /metrics (summed over workers)."""
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("facefaas_process_resident_memory_bytes"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def given_server(url: str) -> Iterator[str]:
    yield url


@contextmanager
def local_server(workers: int, threads: int | None) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="facefaas-bench-") as data:
        command = [
            sys.executable, "-m", "facefaas", "serve", "--port", str(port), "--data-dir", data,
            "--rate-limit", "", "--log-level", "warning", "--workers", str(workers),
        ]  # fmt: skip
        if threads:
            command += ["--inference-threads", str(threads)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFAAS_")}
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        SERVER_PIDS.append(proc.pid)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    parser.add_argument(
        "--requests", type=int, default=0, help="per level (default 12 x level, at least 40)"
    )
    parser.add_argument("--function", default="detect")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--inference-threads", type=int, default=None)
    parser.add_argument("--library-seconds", type=float, default=8.0)
    args = parser.parse_args()

    image = args.image.read_bytes()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    path = f"/api/run/mtcnn/{args.function}"
    print(f"image: {args.image.name} ({len(image)} bytes), {os.cpu_count()} CPU cores")
    before = library_rate(image, args.library_seconds / 2)

    if args.url:
        server = given_server(args.url)
    else:
        server = local_server(args.workers, args.inference_threads)
    results = []
    with server as url:
        drive(url, image, 2, 6, path)  # warm up connections and sessions
        memory_before = server_memory(url)
        for level in levels:
            count = args.requests or max(40, 12 * level)
            results.append(drive(url, image, level, count, path))
        memory_after = server_memory(url)
    after = library_rate(image, args.library_seconds / 2)
    library = (before + after) / 2

    print(f"library: {library:.2f} images/s (before {before:.2f}, after {after:.2f})")
    print(f"server memory: {memory_before / 2**20:.0f} MiB after warm-up, "
          f"{memory_after / 2**20:.0f} MiB at the end")  # fmt: skip
    print(f"{'concurrency':>11} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'vs library':>10}")  # fmt: skip
    for r in results:
        print(
            f"{r['concurrency']:>11} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7.2f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['rps'] / library:>9.0%}"
        )


if __name__ == "__main__":
    main()
