"""``facefaas detect DIR --ray`` beside the plain command: images/s over the same folder.

Each round runs the plain command and then the ``--ray`` one (a local Ray started for the run,
the default), both as a user would (``facefaas detect DIR -o OUT --jsonl``, pictures included),
timed from start to exit; the outputs are checked equal. A ``--ray`` run on one image measures
what Ray costs before the first image (start, actors, model load, shutdown), so the steady rate
is also given: ``(images - 1) / (time - one-image time)``.

    python benchmarks/detect_ray.py                  # the 396 WIDER images, 1 round
    python benchmarks/detect_ray.py --rounds 3 --min-size 40

Images are read from ``../shared`` (third-party, never shipped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))
FACEFAAS = shutil.which("facefaas") or str(Path(sys.executable).with_name("facefaas"))


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([FACEFAAS, "detect", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"facefaas detect {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=SHARED / "eval/wider-val/images")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--min-size", default="20")
    parsed = parser.parse_args()
    images = sorted(parsed.folder.rglob("*.jpg"))
    common = ["--jsonl", "--min-size", parsed.min_size]
    print(f"{len(images)} images in {parsed.folder}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp, "one")
        one.mkdir()
        shutil.copyfile(images[0], one / images[0].name)
        overhead = timed([str(one), "-o", f"{tmp}/one-out", *common, "--ray"])
        print(f"--ray on 1 image: {overhead:.1f} s (start, actors, model, shutdown)")
        for round_ in range(parsed.rounds):
            plain = timed([str(parsed.folder), "-o", f"{tmp}/plain{round_}", *common])
            ray = timed([str(parsed.folder), "-o", f"{tmp}/ray{round_}", *common, "--ray"])
            same = (
                Path(tmp, f"plain{round_}/results.jsonl").read_bytes()
                == Path(tmp, f"ray{round_}/results.jsonl").read_bytes()
            )
            steady = (len(images) - 1) / max(ray - overhead, 1e-9)
            print(
                f"round {round_ + 1}: plain {len(images) / plain:.2f} img/s ({plain:.1f} s), "
                f"--ray {len(images) / ray:.2f} img/s ({ray:.1f} s; steady {steady:.2f} img/s), "
                f"same lines: {same}"
            )


if __name__ == "__main__":
    main()
