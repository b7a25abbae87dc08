"""Ray Serve against the plain service: images/s and p50/p99 on this machine, same cores.

Runs, one after the other, on the same images (the photos of ../shared/eval/photos, each sent
``--rounds`` times) at the same client concurrency, ``POST /api/run/mtcnn/detect``:

- ``plain``: ``facefaas serve`` in one process with ``--cores`` inference threads;
- ``ray xN``: the Ray Serve application (``facefaas.scale.serve``) on a local Ray instance of
  ``--cores`` CPUs, N detector replicas sharing those cores (``cores/N`` inference threads
  each), ``@serve.batch`` off and on;
- ``ray, models in the ingress``: the same without a detector deployment
  (``ray_detector_deployment=False``), one replica of ``--cores`` threads.

The plain server and the Ray instance stay up together, idle but for the one being driven;
each Ray configuration is timed in ``--passes`` passes, each right after a pass of the plain
server, so that both see the same load from whatever else runs on the machine. Every
configuration is warmed (each image once) first. Prints a table: images/s (median of the
passes), p50 and p99 latency, non-200 answers, and the median ratio to the plain passes beside
them (the issue's target for Ray: at least 90% at the same cores); then the per-request
overhead: the p50 latency of one request at a time on the smallest photo, plain and Ray, and
the CPU time per request of every process of each (Linux /proc). A script, not a test; about
4-6 minutes on 2 cores.

    python benchmarks/scale.py
    python benchmarks/scale.py --cores 2 --concurrency 4 --rounds 4 --replicas 1,2
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import SERVER_PIDS, local_server, percentile

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "eval" / "photos"
APP = "facefaas-bench"
OVERHEAD_REQUESTS = 40


@dataclass
class Run:
    """One timed pass: images/s, the latencies (s) of its 200s, and its other answers."""

    images_per_s: float
    latencies: list[float]
    failed: int


def drive(url: str, images: list[bytes], concurrency: int) -> Run:
    """Send every image once over ``concurrency`` clients."""
    todo = iter(range(len(images)))
    lock = threading.Lock()
    latencies: list[float] = []
    failed = [0]

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    index = next(todo, None)
                if index is None:
                    return
                start = time.perf_counter()
                response = http.post("/api/run/mtcnn/detect", content=images[index])
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failed[0] += 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(len(latencies) / (time.perf_counter() - begin), latencies, failed[0])


def row(name: str, runs: list[Run], plain: list[Run]) -> str:
    """A table row: medians over the passes, latencies pooled, and the median of the ratios
    to the plain passes run next to them (each Ray pass right after a plain one)."""
    latencies = [s for run in runs for s in run.latencies]
    ratios = [r.images_per_s / p.images_per_s for r, p in zip(runs, plain, strict=True)]
    return (
        f"| {name} | {statistics.median(r.images_per_s for r in runs):.2f} "
        f"| {statistics.median(latencies) * 1000:.0f} | {percentile(latencies, 99) * 1000:.0f} "
        f"| {sum(r.failed for r in runs)} | {statistics.median(ratios):.0%} |"
    )


@dataclass
class Overhead:
    """One request at a time on one image: p50 latency and CPU per request, plain and Ray."""

    plain_ms: float
    ray_ms: float
    plain_cpu_ms: float
    ray_cpu_ms: float


def per_request_overhead(plain_url: str, ray_url: str, image: bytes) -> Overhead:
    """What Ray's hops (its HTTP proxy, the ingress replica, the detector replica) and its own
    processes (controller, GCS, raylet) add to a request: latency, and CPU time of every
    process of each side (the plain server; every process Ray started here)."""
    plain_pids = set(_tree(SERVER_PIDS[-1]))
    ray_pids = set(_tree(os.getpid())) - plain_pids - {os.getpid()}
    latency: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}
    with httpx.Client(timeout=60) as http:
        for url, pids in ((plain_url, plain_pids), (ray_url, ray_pids)):
            before = _cpu_seconds(pids)
            kept = latency[url] = []
            for _ in range(OVERHEAD_REQUESTS):
                start = time.perf_counter()
                response = http.post(f"{url}/api/run/mtcnn/detect", content=image)
                kept.append(time.perf_counter() - start)
                response.raise_for_status()
            cpu[url] = (_cpu_seconds(pids) - before) / OVERHEAD_REQUESTS
    return Overhead(
        statistics.median(latency[plain_url]) * 1000,
        statistics.median(latency[ray_url]) * 1000,
        cpu[plain_url] * 1000,
        cpu[ray_url] * 1000,
    )


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def ray_instance(cores: int) -> Iterator[int]:
    """A Ray instance of ``cores`` CPUs with Serve's proxy on a free loopback port."""
    import ray
    from ray import serve

    ray.init(
        address="local",  # a new instance, never one another program started here
        num_cpus=cores,
        include_dashboard=False,
        object_store_memory=200 * 2**20,
        log_to_driver=False,
    )
    try:
        port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield port
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


@contextmanager
def ray_app(
    port: int, cores: int, replicas: int, batching: bool, detectors: bool = True
) -> Iterator[str]:
    from ray import serve

    from facefaas.scale.serve import build
    from facefaas.settings import Settings

    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="facefaas-bench-") as data:
        settings = Settings(
            data_dir=Path(data),
            rate_limit="",
            log_level="warning",
            inference_threads=max(1, cores // replicas),
            ray_min_replicas=replicas,
            ray_max_replicas=replicas,
            ray_replica_cpus=cores / replicas,
            ray_batching=batching,
            ray_detector_deployment=detectors,
            queue_size=16,
        )
        serve.run(build(settings), name=APP, route_prefix="/")
        try:
            deadline = time.monotonic() + 120
            while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
                if time.monotonic() > deadline:
                    raise SystemExit("the Ray application did not get ready")
                time.sleep(0.2)
            yield url
        finally:
            serve.delete(APP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="times each photo is sent a pass")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per configuration")
    parser.add_argument("--replicas", default="1,2", help="detector replica counts to run")
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted(args.photos.iterdir()) if p.suffix in (".jpg", ".png")]
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")
    work = photos * args.rounds
    counts = [int(n) for n in args.replicas.split(",")]
    print(
        f"{len(photos)} photos x {args.rounds} per pass, {args.passes} passes, "
        f"concurrency {args.concurrency}, {args.cores} cores",
        file=sys.stderr,
    )
    lines: list[str] = []
    all_plain: list[Run] = []
    overhead: Overhead | None = None
    colocated: Overhead | None = None
    with local_server(1, args.cores) as plain_url, ray_instance(args.cores) as port:
        drive(plain_url, photos, args.concurrency)  # warm
        configs = [(n, False, True) for n in counts] + [(n, True, True) for n in counts]
        configs.append((1, False, False))
        for replicas, batching, detectors in configs:
            name = f"ray, {replicas} detector replica{'s' if replicas > 1 else ''}"
            name += ", batching" if batching else ""
            if not detectors:
                name = "ray, models in the ingress (1 replica, no detector deployment)"
            with ray_app(port, args.cores, replicas, batching, detectors) as url:
                drive(url, photos, args.concurrency)  # warm: every replica loads the model
                if replicas == counts[0] and not batching and detectors:
                    overhead = per_request_overhead(plain_url, url, min(photos, key=len))
                plain: list[Run] = []
                runs: list[Run] = []
                for _ in range(args.passes):
                    plain.append(drive(plain_url, work, args.concurrency))
                    runs.append(drive(url, work, args.concurrency))
                    print(
                        f"  {name}: {runs[-1].images_per_s:.2f} images/s "
                        f"(plain {plain[-1].images_per_s:.2f})",
                        file=sys.stderr,
                    )
                if not detectors:
                    colocated = per_request_overhead(plain_url, url, min(photos, key=len))
            lines.append(row(name, runs, plain))
            all_plain += plain
    print("| run | images/s | p50 ms | p99 ms | not 200 | vs plain |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(row("plain, one process", all_plain, all_plain))
    print("\n".join(lines))
    for label, measured in (("", overhead), (", models in the ingress", colocated)):
        if measured is not None:
            print(
                f"\none request at a time on the smallest photo{label} ({OVERHEAD_REQUESTS} "
                f"each): p50 plain {measured.plain_ms:.1f} ms, Ray {measured.ray_ms:.1f} ms "
                f"({measured.ray_ms - measured.plain_ms:+.1f} ms); CPU per request, all "
                f"processes: plain {measured.plain_cpu_ms:.1f} ms, Ray {measured.ray_cpu_ms:.1f} "
                f"ms ({measured.ray_cpu_ms - measured.plain_cpu_ms:+.1f} ms)"
            )


if __name__ == "__main__":
    main()
