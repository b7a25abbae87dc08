"""Speed of facefaas' MTCNN, side by side with the seed's TensorFlow graph and facenet-pytorch.

Prints median milliseconds per image and images per second for ``solvay.jpg``, the 14-megapixel
``deepface__img40.jpg`` and the WIDER FACE subset, single and batched, with the thread settings;
peak memory of a fresh process detecting the 14-megapixel image. Where ``tensorflow`` or
``facenet_pytorch`` can be imported (optional, never dependencies) they are timed on the same
images in the same run, interleaved with ours, and the ratios printed. Each contender runs in a
process of its own (TensorFlow and torchvision crash when imported into one), asked by this one to
detect each image in turn; decoding is not timed.

    python benchmarks/speed.py                 # everything (a few minutes on 2 cores)
    python benchmarks/speed.py --quick         # fewer repetitions, 40 WIDER images

Images are read from ``../shared`` (third-party, never shipped).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))
SOLVAY = SHARED / "data" / "solvay.jpg"
BIG = SHARED / "eval" / "photos" / "deepface__img40.jpg"
WIDER = SHARED / "eval" / "wider-val" / "images"

Runner = Callable[[np.ndarray], Any]


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def ours() -> tuple[str, Runner, Callable[[list[np.ndarray]], Any]]:
    from facefaas import Detector

    detector = Detector()
    return "facefaas (ONNX Runtime)", detector, detector.detect_batch


def tensorflow_seed() -> tuple[str, Runner] | None:
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
    except ImportError:
        return None
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((SHARED / "data" / "mtcnn.pb").read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)

    def run(rgb: np.ndarray) -> Any:
        feed = {
            "input:0": rgb[..., ::-1].astype(np.float32),
            "min_size:0": 20.0,
            "thresholds:0": [0.6, 0.7, 0.7],
            "factor:0": 0.709,
        }
        return session.run(["box:0", "prob:0", "landmarks:0"], feed)

    return f"seed graph (TensorFlow {tf.__version__})", run


def facenet_pytorch() -> tuple[str, Runner] | None:
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        return None
    mtcnn = MTCNN(keep_all=True, device="cpu")

    def run(rgb: np.ndarray) -> Any:
        return mtcnn.detect(Image.fromarray(rgb), landmarks=True)

    return "facenet-pytorch", run


FACTORIES: dict[str, Callable[[], tuple[Any, ...] | None]] = {
    "facefaas": ours,  # (name, run, run a batch); the peers: (name, run)
    "tensorflow": tensorflow_seed,
    "facenet_pytorch": facenet_pytorch,
}


def _contender_process(key: str, conn: Connection) -> None:
    """One contender in its own process (TensorFlow and torchvision crash when imported into one
    process, and each keeps its own threads and memory): answers ``(op, paths)`` requests with
    the seconds it took, decoding excluded. Sends its name first, or ``None`` if not importable."""
    made = FACTORIES[key]()
    conn.send(None if made is None else made[0])
    if made is None:
        return
    run = made[1]
    batch = made[2] if len(made) > 2 else None
    decoded: tuple[str, np.ndarray] | None = None
    while (request := conn.recv()) is not None:
        op, paths = request
        if op == "batch":  # facefaas' detect_batch in calls of 8 images
            assert batch is not None
            images = [load_rgb(Path(p)) for p in paths]
            start = time.perf_counter()
            for i in range(0, len(images), 8):
                batch(images[i : i + 8])
            conn.send(time.perf_counter() - start)
            continue
        if decoded is None or decoded[0] != paths[0]:
            decoded = paths[0], load_rgb(Path(paths[0]))
        start = time.perf_counter()
        run(decoded[1])
        conn.send(time.perf_counter() - start)


class Contender:
    """The parent's handle on a contender process."""

    def __init__(self, key: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_contender_process, args=(key, child), daemon=True)
        self.process.start()
        self.key = key
        self.name: str | None = self._receive()

    def _receive(self) -> Any:
        try:
            return self.conn.recv()
        except EOFError:
            raise RuntimeError(
                f"{self.key}: its process died (exit code {self.process.exitcode})"
            ) from None

    def time(self, op: str, paths: list[Path]) -> float:
        self.conn.send((op, [str(p) for p in paths]))
        return float(self._receive())

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(None)
        self.process.join(timeout=30)


def time_interleaved(
    contenders: list[Contender], images: list[Path], repeats: int
) -> list[list[float]]:
    """Per-image seconds for each contender (median over ``repeats``), the contenders taking
    turns on every image so that a change in machine load affects them alike."""
    for contender in contenders:
        contender.time("one", images[:1])  # warm up
    per_contender: list[list[float]] = [[] for _ in contenders]
    for path in images:
        samples: list[list[float]] = [[] for _ in contenders]
        for _ in range(repeats):
            for k, contender in enumerate(contenders):
                samples[k].append(contender.time("one", [path]))
        for k in range(len(contenders)):
            per_contender[k].append(statistics.median(samples[k]))
    return per_contender


def peak_memory_mb(path: Path) -> float:
    """Peak RSS of a fresh process that imports facefaas and detects one image, in MB."""
    code = (
        "import resource, sys; from facefaas import Detector;"
        "d = Detector(); base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        f"d({str(path)!r}); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


def report(seconds: list[float]) -> dict[str, float]:
    median_ms = statistics.median(seconds) * 1000
    total = sum(seconds)
    return {
        "median_ms": round(median_ms, 1),
        "total_s": round(total, 2),
        "images_per_s": round(len(seconds) / total, 2),
    }


def run_sets(contenders: list[Contender], repeats: int, wider_files: list[Path]) -> dict[str, Any]:
    """Times every set, prints a table per set, returns the figures (facefaas is first)."""
    results: dict[str, Any] = {}
    sets = {
        "solvay.jpg (960x661)": SOLVAY,
        "deepface__img40.jpg (3061x4600, 14 Mpx)": BIG,
    }
    for set_name, path in sets.items():
        print(f"\n== {set_name}, median of {repeats} runs, contenders taking turns")
        per_contender = time_interleaved(contenders, [path], repeats)
        baseline = per_contender[0][0]
        for contender, seconds in zip(contenders, per_contender, strict=True):
            results[f"{set_name} / {contender.name}"] = report(seconds)
            print(
                f"{contender.name:36s} {seconds[0] * 1000:9.1f} ms/image  {1 / seconds[0]:6.2f} images/s"
                f"   {seconds[0] / baseline:5.2f} x facefaas' time"
            )

    print(f"\n== WIDER FACE subset ({len(wider_files)} images, 1024 px wide), one image a call")
    per_contender = time_interleaved(contenders, wider_files, 1)
    baseline_total = sum(per_contender[0])
    for contender, seconds in zip(contenders, per_contender, strict=True):
        timing = report(seconds)
        results[f"wider / {contender.name}"] = timing
        print(
            f"{contender.name:36s} total {timing['total_s']:7.2f} s  median {timing['median_ms']:7.1f} ms  "
            f"{timing['images_per_s']:6.2f} images/s   {timing['total_s'] / baseline_total:5.2f} x facefaas' time"
        )

    print("\n== WIDER FACE subset, facefaas detect_batch (8 images a call)")
    total = contenders[0].time("batch", wider_files)
    results["wider / facefaas batched"] = {
        "total_s": round(total, 2),
        "images_per_s": round(len(wider_files) / total, 2),
    }
    print(
        f"{'facefaas detect_batch':36s} total {total:7.2f} s  {len(wider_files) / total:6.2f} images/s"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and 40 WIDER images"
    )
    parser.add_argument(
        "--wider-limit", type=int, default=None, help="use only the first N WIDER images"
    )
    parser.add_argument("--no-peers", action="store_true", help="time facefaas only")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    if not SOLVAY.is_file():
        sys.exit(f"{SHARED} is absent: the benchmark reads its images from there")

    import onnxruntime

    repeats = 3 if args.quick else 7
    wider_files = sorted(WIDER.rglob("*.jpg"))
    limit = args.wider_limit or (40 if args.quick else None)
    wider_files = wider_files[:limit] if limit else wider_files
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"onnxruntime {onnxruntime.__version__}, intra-op threads = {os.cpu_count()} (facefaas default), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )

    # Measured first, while this process is small: a child forked from a process holding
    # TensorFlow's gigabytes reports that size as its own high-water mark.
    peak = peak_memory_mb(BIG)
    results: dict[str, Any] = {"peak_rss_mb_14mpx": round(peak, 1)}

    contenders: list[Contender] = []
    for key in FACTORIES if not args.no_peers else ["facefaas"]:
        contender = Contender(key)
        if contender.name is None:
            print(f"({key}: not importable here, skipped)")
            contender.close()
        else:
            contenders.append(contender)
    try:
        results.update(run_sets(contenders, repeats, wider_files))
    finally:
        for contender in contenders:
            contender.close()

    print(f"\npeak memory (VmHWM) of a fresh process detecting the 14-Mpx image: {peak:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
