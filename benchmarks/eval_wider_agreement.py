"""WIDER AP of a detection folder by the library and by the literal transcription of the official
MATLAB code kept in ``tests/test_evaluation_wider_reference.py``; prints both and the difference.

    python benchmarks/eval_wider_agreement.py --root ../shared/eval/wider-val --detections DIR

``DIR`` is a WIDER-format folder (``<event>/<name>.txt``), e.g. ``OUTDIR/detections/default``
written by ``facefaas eval wider``. No published WIDER evaluation package is on PyPI, so the
transcription (which reads the ``.mat`` files and the detection files itself) is the independent
run of the official algorithm.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

from facefaas.evaluation.datasets import load_wider
from facefaas.evaluation.detections import read_wider_detections
from facefaas.evaluation.metrics.wider import evaluate_wider

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "test_evaluation_wider_reference.py"


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wider_reference", REFERENCE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {REFERENCE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/eval/wider-val"))
    parser.add_argument("--detections", type=Path, required=True)
    args = parser.parse_args(argv)
    ref = _reference()

    start = time.perf_counter()
    gt = ref.ref_read_mat_gt(args.root / "ground_truth", args.root / "images")
    pred = {}
    for key, _, _ in gt:
        path = args.detections / f"{key}.txt"
        pred[key] = ref.ref_read_pred(path) if path.is_file() else []
    norm = ref.ref_norm_score(pred)
    reference = {s: ref.ref_evaluation(gt, norm, s) for s in ref.SETTINGS}
    ref_seconds = time.perf_counter() - start

    start = time.perf_counter()
    dataset = load_wider(args.root)
    detections = read_wider_detections(args.detections, [im.key for im in dataset.images])
    library = {s: r.ap for s, r in evaluate_wider(dataset, detections).settings.items()}
    lib_seconds = time.perf_counter() - start

    print(f"{'setting':8} {'library':>10} {'reference':>10} {'difference':>11}")
    worst = 0.0
    for s in ref.SETTINGS:
        diff = abs(library[s] - reference[s])
        worst = max(worst, diff)
        print(f"{s:8} {library[s]:10.6f} {reference[s]:10.6f} {diff:11.2e}")
    print(f"images {len(gt)}; library {lib_seconds:.2f} s, reference {ref_seconds:.2f} s")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
