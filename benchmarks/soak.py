"""Soak: a few thousand mixed requests against one `facefaas serve`; does memory level off?

Mixed: four image sizes cut from the shared photos, the built-in model and an uploaded copy,
random detection parameters, every picture function, crops, batches, and some bad requests
(truncated and non-image bytes, parameters out of range, an over-cost request, an unknown
model). Four clients; the server's resident memory is read from /proc every 50 requests. Prints
the curve's summary and the status counts; `--plot FILE` draws the curve (docs/img/soak-memory.png).

    python benchmarks/soak.py --requests 3000 --plot docs/img/soak-memory.png
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import SERVER_PIDS, local_server

SHARED = Path(__file__).resolve().parents[2] / "shared"
FUNCTIONS = ["detect", "detect", "detect", "annotate", "blur", "pixelate", "redact", "crops"]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def images() -> list[bytes]:
    out = []
    for name, side in [
        ("data/solvay.jpg", 960),
        ("eval/photos/deepface__img40.jpg", 1600),
        ("eval/photos/pillow__hopper_gray.jpg", 128),
        ("data/solvay.jpg", 480),
    ]:
        im = Image.open(SHARED / name).convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def request(
    rng: random.Random, pictures: list[bytes], models: list[str]
) -> tuple[str, dict, bytes]:
    roll = rng.random()
    model = rng.choice(models)
    image = rng.choice(pictures)
    if roll < 0.03:
        return f"/api/run/{model}/detect", {}, image[: len(image) // 3]  # truncated
    if roll < 0.05:
        return f"/api/run/{model}/detect", {}, b"not an image at all"
    if roll < 0.07:
        return f"/api/run/{model}/detect", {"min_size": 2}, image  # out of range
    if roll < 0.08:
        return f"/api/run/{model}/detect", {"min_size": 6, "factor": 0.95}, pictures[1]
    if roll < 0.09:
        return "/api/run/nosuchmodel/detect", {}, image
    params = {"min_size": rng.choice([12, 20, 30, 60]), "factor": rng.choice([0.6, 0.709, 0.8])}
    return f"/api/run/{model}/{rng.choice(FUNCTIONS)}", params, image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    pictures = images()
    statuses: Counter[int] = Counter()
    curve: list[tuple[int, float]] = []
    lock = threading.Lock()
    with local_server(1, None) as url:
        pid = SERVER_PIDS[-1]
        bundle = httpx.get(f"{url}/api/models/mtcnn/bundle", timeout=60).content
        created = httpx.post(f"{url}/api/models", files={"file": ("m.zip", bundle)}, timeout=120)
        models = ["mtcnn"] + ([created.json()["model_id"]] if created.status_code == 201 else [])
        curve.append((0, rss(pid)))
        counter = iter(range(args.requests))
        start = time.perf_counter()

        def client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=url, timeout=120) as http:
                while (n := next(counter, None)) is not None:
                    path, params, body = request(rng, pictures, models)
                    status = http.post(path, params=params, content=body).status_code
                    with lock:
                        statuses[status] += 1
                        if n % 50 == 0:
                            curve.append((n, rss(pid)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        curve.append((args.requests, rss(pid)))
    mib = [(n, v / 2**20) for n, v in sorted(curve)]
    half = [v for n, v in mib if n >= args.requests // 2]
    print(
        f"{args.requests} requests in {wall:.0f} s ({args.requests / wall:.1f}/s), "
        f"{args.clients} clients; statuses {dict(sorted(statuses.items()))}"
    )
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        n, v = min(mib, key=lambda p: abs(p[0] - fraction * args.requests))
        print(f"  after {n:>5} requests: {v:6.0f} MiB")
    print(
        f"second half: min {min(half):.0f}, max {max(half):.0f} MiB "
        f"(spread {max(half) - min(half):.0f} MiB)"
    )
    if 500 in statuses:
        print("SERVER ERRORS: 500 seen")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=120)
        ax.plot([n for n, _ in mib], [v for _, v in mib], lw=1.5)
        ax.set_xlabel("requests served")
        ax.set_ylabel("server resident memory (MiB)")
        ax.set_ylim(0, max(v for _, v in mib) * 1.15)
        ax.set_title(f"Soak: {args.requests} mixed requests, {args.clients} clients")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
