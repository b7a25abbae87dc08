"""Detection time per image for each preset, measured fairly on a busy machine.

The presets are run in turn on each image (round robin), so that load from other processes falls
on all of them alike; each measurement is the median of ``--repeat`` calls. Reports the median
and mean milliseconds per image, and, for comparison, the seed's TensorFlow graph on the same
images (``tf_ms`` in ``../shared/golden/seed-tf-wider-val.json``, measured on a 2-core machine).

    python benchmarks/eval_preset_timing.py --every 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from facefaas.decode import load_image
from facefaas.detector import Detector
from facefaas.evaluation.datasets import load_wider
from facefaas.evaluation.presets import PRESETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/eval/wider-val"))
    parser.add_argument(
        "--golden", type=Path, default=Path("../shared/golden/seed-tf-wider-val.json")
    )
    parser.add_argument("--every", type=int, default=8, help="take every N-th image")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS))
    args = parser.parse_args(argv)
    presets = args.preset or list(PRESETS)
    images = load_wider(args.root).images[:: args.every]
    detector = Detector()
    decoded = {im.key: load_image(im.path) for im in images}
    first = next(iter(decoded.values()))
    for name in presets:  # warm up the sessions for every pyramid shape class
        detector(first, **PRESETS[name].params.to_dict())
    times: dict[str, list[float]] = {name: [] for name in presets}
    load_before = os.getloadavg()[0]
    for image in decoded.values():
        for name in presets:
            params = PRESETS[name].params.to_dict()
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                detector(image, **params)
                runs.append((time.perf_counter() - start) * 1000.0)
            times[name].append(statistics.median(runs))
    load_after = os.getloadavg()[0]
    print(
        f"{len(images)} images (every {args.every}th of {args.root}); provider {detector.provider}"
    )
    print(
        f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after; cpus {os.cpu_count()}"
    )
    print(f"{'preset':14} {'median ms':>10} {'mean ms':>10}")
    for name in presets:
        print(
            f"{name:14} {statistics.median(times[name]):10.0f} {statistics.fmean(times[name]):10.0f}"
        )
    if args.golden.is_file():
        golden = json.loads(args.golden.read_text())["images"]
        tf = [golden[f"eval/wider-val/images/{im.key}.jpg"]["tf_ms"] for im in images]
        print(
            f"{'seed TF graph':14} {statistics.median(tf):10.0f} {statistics.fmean(tf):10.0f}  (golden tf_ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
