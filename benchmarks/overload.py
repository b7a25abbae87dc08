"""Overload benchmark: images/s, p50/p99 of admitted requests and 503s past saturation.

Starts `facefaas serve` (defaults: 2 inference threads, queue 16, 2 GB memory budget) on a free
loopback port and drives `POST /api/run/mtcnn/detect` with solvay.jpg at concurrency 1, 4, 16
and 64 for a fixed time each. Clients behave as the API asks: a 503 is retried after its
`Retry-After-Ms`. Prints, per level: successful images/s (and as a share of the best level),
p50/p99 latency of the requests that succeeded, 503 count, other errors; and the server's peak
resident memory (VmHWM) at the end. A script, not a test.

    python benchmarks/overload.py                      # needs ../shared/data/solvay.jpg
    python benchmarks/overload.py --seconds 20 --concurrency 1,2,4,8,16,64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import DEFAULT_IMAGE, SERVER_PIDS, local_server, percentile


def drive(url: str, image: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    refused: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = http.post("/api/run/mtcnn/detect", content=image)
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    elif response.status_code == 503:
                        refused.append(elapsed)
                    else:
                        errors.append(response.status_code)
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("retry-after-ms", "1000")) / 1000)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    return {
        "concurrency": concurrency,
        "ok": len(latencies),
        "ips": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else float("nan"),
        "refused": len(refused),
        "refused_p50_ms": 1000 * statistics.median(refused) if refused else float("nan"),
        "errors": len(errors),
    }


def peak_memory(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=15.0, help="per level")
    args = parser.parse_args()
    image = args.image.read_bytes()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    with local_server(1, None) as url:
        drive(url, image, 2, 3)  # warm up
        for level in levels:
            rows.append(drive(url, image, level, args.seconds))
            print(f"  c={level}: {rows[-1]['ips']:.2f} images/s", file=sys.stderr, flush=True)
        memory = peak_memory(SERVER_PIDS[-1])
    best = max(r["ips"] for r in rows)
    print(
        f"image {args.image.name}, {args.seconds:.0f} s per level; 503s retried after Retry-After-Ms"
    )
    print(
        f"{'concurrency':>11} {'images/s':>9} {'of best':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'503s':>6} {'503 p50 ms':>10} {'errors':>6}"
    )
    for r in rows:
        print(
            f"{r['concurrency']:>11} {r['ips']:>9.2f} {r['ips'] / best:>8.0%} {r['p50_ms']:>8.0f} "
            f"{r['p99_ms']:>8.0f} {r['refused']:>6} {r['refused_p50_ms']:>10.1f} {r['errors']:>6}"
        )
    print(f"server peak resident memory: {memory / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
