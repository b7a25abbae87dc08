"""Could fewer or cheaper multiplications reach one third of TensorFlow's time? Both ways, measured.

``floor.py`` shows that FP32 direct convolutions cannot: solvay.jpg's cascade is 8.7 GFLOP, 40 ms
on two cores at the best rate this machine's kernels reach. This script measures the two ways
around that floor on solvay.jpg's real R-Net and O-Net inputs (707 and 193 crops, ~80% of the
cascade's work), one thread each, side by side:

- **int8**: R-Net and O-Net quantised statically by ``onnxruntime.quantization`` (int8 weights per
  channel, uint8 activations, calibrated on solvay's own crops: the most favourable case), run by
  ONNX Runtime's VNNI kernels; and their effect on detections over solvay, the 18 photos and
  WIDER images (every face matched at IoU >= 0.9? landmarks within 2 px?).
- **Winograd**: the same FP32 weights in ncnn, whose x86 kernels compute 3x3 convolutions as
  Winograd transforms (fewer multiplies; ONNX Runtime has no FP32 Winograd on CPU), with its own
  packed layout and in-place PReLU; and with Winograd off, to see what the transform buys.

It then projects the whole cascade with the best of each stage and compares it with one third of
the seed graph's time in TensorFlow (timed here when ``tensorflow`` is importable).

    pip install sympy ncnn        # optional: what each part needs; a part that can't run says why
    python benchmarks/fewer_multiplies.py [--wider 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from floor import fastest, run_stages  # benchmarks/ is the script's folder, so it is on sys.path
from onnx import numpy_helper
from speed import SHARED, SOLVAY, WIDER, load_rgb, tensorflow_seed

PHOTOS = SHARED / "eval" / "photos"
NETS = {"rnet": 24, "onet": 48}
TURNS = {"warmup": 1, "repeats": 9}  # each network timing: the fastest of 9 after one warm-up


def default_networks() -> dict[str, bytes]:
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle

    path = builtin_path("mtcnn")
    assert path is not None
    return dict(read_bundle(path).networks)


def solvay_crops(rgb: np.ndarray, ops: Any) -> dict[str, np.ndarray]:
    """R-Net's and O-Net's inputs on ``rgb`` at the seed's parameters (CropAndResize crops),
    candidates found by the cascade steps ``ops``."""
    from facefaas.mtcnn import pipeline
    from facefaas.mtcnn.sampling import crop_and_resize
    from facefaas.params import DetectionParams

    params = DetectionParams()
    source = pipeline.normalize(rgb)
    boxes, _ = pipeline.pnet_stage(source, ops, params)
    refined, _ = pipeline.rnet_stage(source, boxes, ops, params)
    return {
        "rnet": crop_and_resize(source[0], boxes, NETS["rnet"]),
        "onet": crop_and_resize(source[0], refined, NETS["onet"]),
    }


def ort_session(model: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def quantize(model: bytes, crops: np.ndarray) -> bytes:
    """``model`` quantised statically (QDQ, int8 per-channel weights, uint8 activations),
    calibrated on ``crops``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Crops(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(np.array_split(crops, 16))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch}

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        quantize_static(
            source, target, Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )  # fmt: skip
        return target.read_bytes()


def ncnn_files(model: bytes, side: int, folder: Path) -> tuple[Path, Path]:
    """Our R-Net/O-Net ONNX written as an ncnn ``.param``/``.bin`` pair (same FP32 weights)."""
    graph = onnx.load_from_string(model).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            if name not in weights:
                consumers[name] = consumers.get(name, 0) + 1
    taken: dict[str, int] = {}

    def blob(name: str) -> str:  # ncnn feeds a blob to several layers through a Split
        if consumers.get(name, 0) < 2:
            return name
        taken[name] = taken.get(name, -1) + 1
        return f"{name}.{taken[name]}"

    def split(name: str) -> list[str]:
        n = consumers.get(name, 0)
        outs = " ".join(f"{name}.{k}" for k in range(n))
        return [f"Split {name}.split 1 {n} {name} {outs}"] if n > 1 else []

    layers = [f"Input image 0 1 image 0={side} 1={side} 2=3", *split("image")]
    data: list[bytes] = []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        head = f"{node.output[0]} 1 1 {blob(node.input[0])} {node.output[0]}"
        if node.op_type in ("Conv", "Gemm"):
            w, b = weights[node.input[1]], weights[node.input[2]]
            if node.op_type == "Conv":
                layers.append(f"Convolution {head} 0={w.shape[0]} 1={w.shape[3]} 11={w.shape[2]} 5=1 6={w.size}")  # fmt: skip
            else:
                layers.append(f"InnerProduct {head} 0={w.shape[0]} 1=1 2={w.size}")
            data += [struct.pack("<I", 0), w.astype("<f4").tobytes(), b.astype("<f4").tobytes()]
        elif node.op_type == "PRelu":
            slopes = weights[node.input[1]].ravel()
            layers.append(f"PReLU {head} 0={slopes.size}")
            data.append(slopes.astype("<f4").tobytes())
        elif node.op_type == "MaxPool":
            (kh, kw), (sh, sw), (pt, pl, pb, pr) = attrs["kernel_shape"], attrs["strides"], attrs["pads"]  # fmt: skip
            layers.append(f"Pooling {head} 0=0 1={kw} 11={kh} 2={sw} 12={sh} 3={pl} 13={pt} 14={pr} 15={pb} 5=1")  # fmt: skip
        elif node.op_type == "Flatten":
            layers.append(f"Flatten {head}")
        elif node.op_type == "Softmax":
            layers.append(f"Softmax {head} 0=0 1=1")
        else:
            raise ValueError(f"no ncnn layer for {node.op_type}")
        layers += split(node.output[0])
    blobs = {name for layer in layers for name in layer.split()[4 : 4 + sum(map(int, layer.split()[2:4]))]}  # fmt: skip
    param, weights_file = folder / f"{side}.param", folder / f"{side}.bin"
    param.write_text(f"7767517\n{len(layers)} {len(blobs)}\n" + "\n".join(layers) + "\n")
    weights_file.write_bytes(b"".join(data))
    return param, weights_file


def ncnn_runner(
    model: bytes, side: int, folder: Path, *, winograd: bool
) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Runs the network crop by crop in ncnn (it has no batch axis), one thread."""
    import ncnn

    param, weights = ncnn_files(model, side, folder)
    net = ncnn.Net()
    net.opt.num_threads = 1
    net.opt.use_winograd_convolution = winograd
    net.opt.lightmode = True
    if net.load_param(str(param)) or net.load_model(str(weights)):
        raise RuntimeError("ncnn could not load the converted network")
    outputs = [o.name for o in onnx.load_from_string(model).graph.output]

    def run(crops: np.ndarray) -> list[np.ndarray]:
        per_crop = []
        for crop in crops:
            extractor = net.create_extractor()
            extractor.input("image", ncnn.Mat(np.ascontiguousarray(crop)))
            per_crop.append([np.array(extractor.extract(name)[1]).ravel() for name in outputs])
        return [np.stack(column) for column in zip(*per_crop, strict=True)]

    return run


def drift(got: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """Largest difference per output (face probability, box offsets, landmarks if any)."""
    names = ("prob", "offsets", "landmarks")
    return ", ".join(
        f"{name} {np.abs(g.reshape(r.shape) - r).max():.1e}"
        for name, g, r in zip(names, got, reference, strict=False)
    )


def detections_agree(
    networks: dict[str, bytes], other: dict[str, bytes], images: list[Path]
) -> tuple[int, int, int, int, list[float]]:
    """Faces of the shipped networks vs ``other`` over ``images``: (faces, other's faces, matched
    at IoU >= 0.9 each way, landmark errors of matched faces in px)."""
    from facefaas.evaluation.metrics.voc import box_iou
    from facefaas.mtcnn import pipeline
    from facefaas.params import DetectionParams
    from facefaas.runtime.sessions import OnnxCascade

    params = DetectionParams()
    cascades = OnnxCascade(networks), OnnxCascade(other)
    faces = others = matched = others_matched = 0
    errors: list[float] = []
    for path in images:
        source = pipeline.normalize(load_rgb(path))
        a, b = (pipeline.run_cascade(source, ops, params) for ops in cascades)
        iou = box_iou(a.boxes, b.boxes)
        hit = iou >= 0.9
        faces, others = faces + len(a.boxes), others + len(b.boxes)
        matched += int(hit.any(axis=1).sum())
        others_matched += int(hit.any(axis=0).sum())
        for i in np.flatnonzero(hit.any(axis=1)):
            errors.append(float(np.abs(a.landmarks[i] - b.landmarks[iou[i].argmax()]).max()))
    return faces, others, matched, others_matched, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wider", type=int, default=40, help="WIDER images for the int8 check")
    args = parser.parse_args()
    if not SOLVAY.is_file():
        sys.exit(f"skipped: {SOLVAY} not found (the benchmark reads ../shared)")

    from facefaas import Detector

    rgb = load_rgb(SOLVAY)
    networks = default_networks()
    detector = Detector(threads=1)
    crops = solvay_crops(rgb, detector._ops)
    print(f"solvay.jpg: R-Net on {len(crops['rnet'])} crops, O-Net on {len(crops['onet'])} crops; one thread")  # fmt: skip

    stages = [run_stages(detector, rgb, time.process_time)[0] for _ in range(7)]
    shipped = [min(s[k] for s in stages) for k in range(4)]
    print(f"shipped cascade, one thread: {sum(shipped) * 1e3:.1f} ms (normalise {shipped[0] * 1e3:.1f}, P-Net {shipped[1] * 1e3:.1f}, R-Net {shipped[2] * 1e3:.1f}, O-Net {shipped[3] * 1e3:.1f}; crops included)")  # fmt: skip

    saved: dict[str, dict[str, float]] = {"FP32 only (faithful)": {}, "int8 allowed": {}}
    quantized: dict[str, bytes] = {}
    for net, side in NETS.items():
        x = crops[net]
        fp32 = ort_session(networks[net])
        reference = fp32.run(None, {"image": x})
        base = fastest(lambda s=fp32, x=x: s.run(None, {"image": x}), **TURNS)
        print(f"\n{net}: ONNX Runtime FP32 (network only)     {base * 1e3:7.1f} ms")
        contenders: dict[str, tuple[float, list[np.ndarray]]] = {}
        try:
            quantized[net] = quantize(networks[net], x)
            int8 = ort_session(quantized[net])
            contenders["ONNX Runtime int8 (VNNI)"] = (
                fastest(lambda s=int8, x=x: s.run(None, {"image": x}), **TURNS),
                int8.run(None, {"image": x}),
            )
        except ImportError as error:
            print(f"  int8 skipped: {error}")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for winograd in (True, False):
                    run = ncnn_runner(networks[net], side, Path(tmp), winograd=winograd)
                    label = f"ncnn FP32, Winograd {'on' if winograd else 'off'}"
                    contenders[label] = (fastest(lambda r=run, x=x: r(x), **TURNS), run(x))
        except ImportError as error:
            print(f"  ncnn skipped: {error}")
        for label, (seconds, outputs) in contenders.items():
            print(f"  {label:36s} {seconds * 1e3:7.1f} ms  {base / seconds:4.2f}x  largest change: {drift(outputs, reference)}")  # fmt: skip
        for kind, gains in saved.items():
            allowed = [base - s for label, (s, _) in contenders.items() if "int8" not in label or "int8" in kind]  # fmt: skip
            gains[net] = max([0.0, *allowed])

    print("\nthe shipped cascade with the fastest contender of each of R-Net and O-Net:")
    for kind, gains in saved.items():
        best = sum(shipped) - sum(gains.values())
        free = best - shipped[0] - shipped[1]
        print(f"  {kind:20s} one thread {best * 1e3:6.1f} ms; two cores at perfect scaling {best / 2 * 1e3:5.1f} ms; and with normalising and P-Net free {free / 2 * 1e3:5.1f} ms")  # fmt: skip
    seed = tensorflow_seed()
    if seed is None:
        print("one third of TensorFlow: not timed (tensorflow not importable; the issue quotes 105-115 ms, i.e. 35-38 ms)")  # fmt: skip
    else:
        name, run_tf = seed
        run_tf(rgb)
        tf_ms = statistics.median(_wall(lambda: run_tf(rgb)) for _ in range(9)) * 1e3
        print(f"{name}, default threads: {tf_ms:.1f} ms; one third: {tf_ms / 3:.1f} ms")

    if len(quantized) == len(NETS):
        images = [SOLVAY, *sorted(p for p in PHOTOS.glob("*.jpg"))]
        images += sorted(WIDER.rglob("*.jpg"))[::10][: args.wider]
        faces, others, matched, others_matched, errors = detections_agree(
            networks, {**networks, **quantized}, images
        )
        over = sum(e > 2 for e in errors)
        print(f"\nint8 R-Net + O-Net vs shipped, {len(images)} images: {matched}/{faces} shipped faces matched at IoU >= 0.9 ({matched / faces:.1%}), {others_matched}/{others} int8 faces matched; landmarks over 2 px: {over} of {len(errors)} (largest {max(errors):.1f} px)")  # fmt: skip


def _wall(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
