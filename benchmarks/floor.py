"""How close facefaas' cascade runs to this machine's arithmetic limit, and where the time goes.

For each image it counts the cascade's work at the seed's parameters (multiply-adds of every
convolution and dense layer, from the networks' own shapes, over the real pyramid and the real
numbers of R-Net and O-Net candidates), times each stage, and compares the rate with the best
FP32 rates measured on this machine in the same run: a large matrix multiply and blocked
convolutions of O-Net's and P-Net's shapes, all ONNX Runtime's MLAS kernels on one thread.

    python benchmarks/floor.py                  # solvay.jpg
    python benchmarks/floor.py --wider 40       # and every 10th of the WIDER subset, 40 images

Stage times are CPU seconds of a one-thread detector (steady against machine noise) and the
wall time of the default detector (all cores). Images are read from ``../shared``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))
SOLVAY = SHARED / "data" / "solvay.jpg"
WIDER = SHARED / "eval" / "wider-val" / "images"
STAGES = ("normalise", "P-Net", "R-Net", "O-Net")


def macs(model: onnx.ModelProto, input_shape: list[int]) -> int:
    """Multiply-adds of one run of ``model`` on an input of ``input_shape``."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, input_shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    inferred = shape_inference.infer_shapes(fixed).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.value_info, *inferred.output, *inferred.input]
    }
    weights = {t.name: t.dims for t in inferred.initializer}
    total = 0
    for node in inferred.node:
        if node.op_type == "Conv":
            _, c_in, kh, kw = weights[node.input[1]]
            total += int(np.prod(shapes[node.output[0]])) * c_in * kh * kw
        elif node.op_type == "Gemm":
            out, k = weights[node.input[1]]  # transB=1: (out, in)
            total += shapes[node.input[0]][0] * out * k
    return total


def fastest(run: Callable[[], object], *, warmup: int, repeats: int) -> float:
    """Fewest CPU seconds of ``repeats`` calls of ``run`` after ``warmup`` calls (one thread:
    CPU time is steadier than wall time on a shared machine)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def best_rates() -> dict[str, float]:
    """GFLOP/s of MLAS on one thread: a 1024^3 matrix multiply and two of MTCNN's convolutions
    at the sizes facefaas runs them (its blocked convolutions beat the matrix multiply)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1

    def rate(nodes: list[onnx.NodeProto], x: np.ndarray, w: np.ndarray, flop: float) -> float:
        graph = helper.make_graph(
            nodes, "peak", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(w, "w")],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = ort.InferenceSession(model.SerializeToString(), options)
        return flop / fastest(lambda: session.run(None, {"x": x}), warmup=3, repeats=15) / 1e9

    n = 1024
    matrix = rng.random((n, n), np.float32)
    gemm = rate([helper.make_node("MatMul", ["x", "w"], ["y"])], matrix, matrix, 2.0 * n**3)
    conv = [helper.make_node("Conv", ["x", "w"], ["y"])]
    # O-Net's conv2 on a chunk of 8 crops; P-Net's conv3 on a band of a level 576 wide.
    onet = rng.random((8, 32, 23, 23), np.float32), rng.random((64, 32, 3, 3), np.float32)
    pnet = rng.random((1, 16, 34, 287), np.float32), rng.random((32, 16, 3, 3), np.float32)
    return {
        "MLAS sgemm 1024^3": gemm,
        "MLAS conv, O-Net conv2, 8 crops": rate(conv, *onet, 2.0 * 8 * 64 * 21 * 21 * 32 * 9),
        "MLAS conv, P-Net conv3, one band": rate(conv, *pnet, 2.0 * 32 * 32 * 285 * 16 * 9),
    }


def run_stages(
    detector: object, rgb: np.ndarray, clock: Callable[[], float]
) -> tuple[list[float], tuple[int, int]]:
    """Seconds of each stage on ``rgb``, and how many candidates R-Net and O-Net were given."""
    from facefaas.mtcnn import pipeline
    from facefaas.params import DetectionParams

    params = DetectionParams()
    ops = detector._ops  # type: ignore[attr-defined]
    t0 = clock()
    source = pipeline.normalize(rgb)
    t1 = clock()
    boxes, _ = pipeline.pnet_stage(source, ops, params)
    t2 = clock()
    refined, _ = pipeline.rnet_stage(source, boxes, ops, params)
    t3 = clock()
    pipeline.onet_stage(source, refined, ops, params)
    t4 = clock()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3], (len(boxes), len(refined))


def work(
    rgb: np.ndarray, candidates: tuple[int, int], nets: dict[str, onnx.ModelProto]
) -> list[float]:
    """FLOP of each stage on ``rgb`` (normalisation counted as 0), given the candidate counts."""
    from facefaas.mtcnn import pipeline
    from facefaas.params import DetectionParams

    levels = pipeline.pyramid_sizes(rgb.shape[0], rgb.shape[1], DetectionParams())
    pnet = sum(macs(nets["pnet"], [1, 3, h, w]) for _, h, w in levels)
    rnet = candidates[0] * macs(nets["rnet"], [1, 3, 24, 24])
    onet = candidates[1] * macs(nets["onet"], [1, 3, 48, 48])
    return [0.0, 2.0 * pnet, 2.0 * rnet, 2.0 * onet]


def median_times(
    detector: object, images: list[np.ndarray], clock: Callable[[], float]
) -> tuple[list[float], list[tuple[int, int]]]:
    """Mean over ``images`` of each stage's median time, and each image's candidate counts."""
    per_image, candidates = [], []
    for rgb in images:
        candidates.append(run_stages(detector, rgb, clock)[1])  # also the warm-up
        runs = [run_stages(detector, rgb, clock)[0] for _ in range(5)]
        per_image.append([statistics.median(r[k] for r in runs) for k in range(len(STAGES))])
    times = [float(np.mean([p[k] for p in per_image])) for k in range(len(STAGES))]
    return times, candidates


def report(title: str, images: list[np.ndarray], peak: float) -> None:
    from facefaas import Detector
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle

    path = builtin_path("mtcnn")
    assert path is not None
    nets = {k: onnx.load_from_string(v) for k, v in read_bundle(path).networks.items()}
    one, default = Detector(threads=1), Detector()
    cpu, candidates = median_times(one, images, time.process_time)
    wall, _ = median_times(default, images, time.perf_counter)
    per_image = [work(rgb, n, nets) for rgb, n in zip(images, candidates, strict=True)]
    flop = [float(np.mean(x)) for x in zip(*per_image, strict=True)]
    cores = os.cpu_count() or 1
    print(f"\n== {title}: mean per image, seed parameters")
    print(f"{'stage':10s} {'GFLOP':>7s} {'1 thread CPU':>13s} {'GFLOP/s':>8s} {'of best':>8s}"
          f" {f'{cores} threads wall':>16s}")  # fmt: skip
    for name, f, c, w in zip(STAGES, flop, cpu, wall, strict=True):
        rate = f / c / 1e9 if f else float("nan")
        share = f"{rate / peak:8.0%}" if f else " " * 8
        print(
            f"{name:10s} {f / 1e9:7.2f} {c * 1e3:10.1f} ms {rate:8.1f} {share} {w * 1e3:13.1f} ms"
        )
    total_f, total_c, total_w = sum(flop), sum(cpu), sum(wall)
    print(f"{'cascade':10s} {total_f / 1e9:7.2f} {total_c * 1e3:10.1f} ms "
          f"{total_f / total_c / 1e9:8.1f} {total_f / total_c / 1e9 / peak:8.0%} "
          f"{total_w * 1e3:13.1f} ms")  # fmt: skip
    floor = total_f / (peak * 1e9)
    print(f"floor at the best rate: {floor * 1e3:.1f} ms on one core, "
          f"{floor / cores * 1e3:.1f} ms on {cores} (perfect scaling)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wider", type=int, default=0, help="also N WIDER images (every 10th)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if not SOLVAY.exists():
        sys.exit(f"skipped: {SOLVAY} is absent (images come from ../shared)")
    from facefaas.decode import load_image

    rates = best_rates()
    for name, value in rates.items():
        print(f"{name:32s} {value:6.1f} GFLOP/s (one thread, best of 15)")
    peak = max(rates.values())
    report("solvay.jpg", [np.asarray(load_image(SOLVAY).pixels)], peak)
    if args.wider:
        files = sorted(WIDER.glob("*/*.jpg"))[::10][: args.wider]
        images = [np.asarray(load_image(f).pixels) for f in files]
        report(f"WIDER subset, {len(images)} images", images, peak)


if __name__ == "__main__":
    main()
