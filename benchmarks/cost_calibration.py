"""Estimated vs measured peak memory of one detection (facefaas.cost).

Each case runs in a fresh process: load the detector, warm it up on a small image, note the
resident memory, then decode and detect the case's image and read the peak (VmHWM). The added
peak is compared with the family's estimate (`facefaas.cost.estimate_cost` for MTCNN,
`facefaas.families.centerface` for CenterFace). Prints a table; `--json FILE` saves it.

    python benchmarks/cost_calibration.py                      # needs ../shared/ for the photos
    python benchmarks/cost_calibration.py --family centerface
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
MiB = 1024 * 1024

CHILD = r"""
import io, json, sys
from pathlib import Path
from PIL import Image
from facefaas.detector import Detector
from facefaas.decode import load_image

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

path, scale, params, model = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
data = Path(path).read_bytes()
if scale != 1.0:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im = im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))))
    buf = io.BytesIO(); im.save(buf, "JPEG", quality=92); data = buf.getvalue()
detector = Detector(model, threads=2)
detector(Image.new("RGB", (64, 64)))  # sessions and arenas loaded
base = status("VmRSS")
decoded = load_image(data, max_pixels=10**9)
faces = detector.detect(decoded, detector.family.params(params))
print(json.dumps({"base": base, "peak": status("VmHWM"), "width": decoded.width,
                  "height": decoded.height, "faces": len(faces)}))
"""

CASES = [
    ("data/solvay.jpg", 1.0, {}),
    ("data/solvay.jpg", 1.0, {"min_size": 6, "factor": 0.95}),
    ("data/solvay.jpg", 1.0, {"thresholds": [0.0, 0.0, 0.0]}),
    ("eval/photos/deepface__img40.jpg", 0.25, {}),
    ("eval/photos/deepface__img40.jpg", 0.5, {}),
    ("eval/photos/deepface__img40.jpg", 0.5, {"min_size": 10, "factor": 0.9}),
    ("eval/photos/deepface__img40.jpg", 1.0, {}),
    ("eval/photos/deepface__img40.jpg", 1.0, {"min_size": 12}),
    ("eval/photos/deepface__img40.jpg", 0.5, {"min_size": 6, "factor": 0.95}),
    ("eval/photos/deepface__img40.jpg", 1.0, {"thresholds": [0.0, 0.0, 0.0]}),
]
CENTERFACE_CASES = [
    ("data/solvay.jpg", 1.0, {}),
    ("data/solvay.jpg", 1.0, {"threshold": 0.05}),
    ("eval/photos/deepface__img40.jpg", 0.25, {}),
    ("eval/photos/deepface__img40.jpg", 0.5, {}),
    ("eval/photos/deepface__img40.jpg", 1.0, {"input_size": 1280}),
    ("eval/photos/deepface__img40.jpg", 0.6, {"threshold": 0.05}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="save the table as JSON")
    parser.add_argument("--family", choices=["mtcnn", "centerface"], default="mtcnn")
    args = parser.parse_args()
    from facefaas.families import get_family

    family = get_family(args.family)
    cases = CASES if args.family == "mtcnn" else CENTERFACE_CASES

    rows = []
    print(f"{'image':36} {'size':>11} {'params':34} {'est MiB':>8} {'meas MiB':>8} {'est/meas':>8}")
    for name, scale, params in cases:
        path = SHARED / name
        if not path.exists():
            sys.exit(f"{path} is missing: this benchmark needs ../shared")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(scale), json.dumps(params), args.family],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(out.stdout.strip().splitlines()[-1])
        est = family.estimate(m["width"], m["height"], family.params(params))
        measured = (m["peak"] - m["base"]) / MiB
        row = {
            "image": name,
            "scale": scale,
            "params": params,
            "width": m["width"],
            "height": m["height"],
            "estimate_mib": est.peak_bytes / MiB,
            "measured_mib": measured,
            "faces": m["faces"],
        }
        rows.append(row)
        size = f"{m['width']}x{m['height']}"
        print(
            f"{name:36} {size:>11} {json.dumps(params):34} {row['estimate_mib']:8.0f} "
            f"{measured:8.0f} {row['estimate_mib'] / max(measured, 1):8.2f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
