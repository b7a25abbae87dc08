"""WIDER AP of the library against an independent, literal re-implementation of the official code.

The ``ref_*`` functions below transcribe the official MATLAB ``eval_tools`` (``read_pred.m``,
``norm_score.m``, ``evaluation.m`` with ``image_evaluation``, ``image_pr_info``,
``dataset_pr_info``, ``boxoverlap`` and ``VOCap``) loop by loop, with 1-based indices turned
0-based and nothing vectorised. They read the ground truth and the detection files themselves
(no library code), so the comparison checks the library's parsing too.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from facefaas.evaluation.datasets import load_wider
from facefaas.evaluation.detections import ImageDetections, read_wider_detections
from facefaas.evaluation.metrics.wider import evaluate_wider
from facefaas.evaluation.truth import Dataset, ImageTruth

THRESH_NUM = 1000
IOU_THRESH = 0.5
REALMIN_SINGLE = float(np.finfo(np.float32).tiny)
REALMAX_SINGLE = float(np.finfo(np.float32).max)
SETTINGS = ("easy", "medium", "hard")


# ---------------------------------------------------------------- the reference (official logic)


def ref_read_pred(path: Path) -> list[list[float]]:
    """read_pred.m for one file: rows [x, y, w, h, score], sorted by score, descending, stable."""
    lines = path.read_text().split("\n")
    count = int(lines[1])
    rows = []
    for k in range(count):
        raw = [float(v) for v in lines[k + 2].split()]
        rows.append([raw[0], raw[1], raw[2], raw[3], raw[4]])
    return sorted(rows, key=lambda row: -row[4])  # MATLAB sort is stable


def ref_norm_score(pred_list: dict[str, list[list[float]]]) -> dict[str, list[list[float]]]:
    max_score = REALMIN_SINGLE
    min_score = REALMAX_SINGLE
    for rows in pred_list.values():
        if not rows:
            continue
        max_score = max(max_score, max(row[4] for row in rows))
        min_score = min(min_score, min(row[4] for row in rows))
    out = {}
    for key, rows in pred_list.items():
        out[key] = [[*row[:4], (row[4] - min_score) / (max_score - min_score)] for row in rows]
    return out


def ref_boxoverlap(a: list[list[float]], b: list[float]) -> list[float]:
    o = []
    for row in a:
        x1 = max(row[0], b[0])
        y1 = max(row[1], b[1])
        x2 = min(row[2], b[2])
        y2 = min(row[3], b[3])
        w = x2 - x1 + 1
        h = y2 - y1 + 1
        inter = w * h
        aarea = (row[2] - row[0] + 1) * (row[3] - row[1] + 1)
        barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
        # MATLAB divides first (quietly, even by zero) and then zeroes o(w <= 0), o(h <= 0)
        o.append(0.0 if w <= 0 or h <= 0 else inter / (aarea + barea - inter))
    return o


def ref_image_evaluation(
    pred_info: list[list[float]], gt_bbx: list[list[float]], ignore: list[int], iou_thresh: float
) -> tuple[list[int], list[int]]:
    pred_recall = [0] * len(pred_info)
    recall_list = [0] * len(gt_bbx)
    proposal_list = [1] * len(pred_info)
    pred = [[r[0], r[1], r[0] + r[2], r[1] + r[3], r[4]] for r in pred_info]
    gt = [[g[0], g[1], g[0] + g[2], g[1] + g[3]] for g in gt_bbx]
    for h in range(len(pred)):
        overlap_list = ref_boxoverlap(gt, pred[h][:4])
        max_overlap = max(overlap_list)
        idx = overlap_list.index(max_overlap)  # MATLAB max: the first maximum
        if max_overlap >= iou_thresh:
            if ignore[idx] == 0:
                recall_list[idx] = -1
                proposal_list[h] = -1
            elif recall_list[idx] == 0:
                recall_list[idx] = 1
        pred_recall[h] = sum(1 for r in recall_list if r == 1)
    return pred_recall, proposal_list


def ref_image_pr_info(
    thresh_num: int, pred_info: list[list[float]], proposal_list: list[int], pred_recall: list[int]
) -> list[list[float]]:
    """image_pr_info; ``find(score >= thresh, 1, 'last')`` is walked with a pointer (thresholds
    fall as t grows and scores are sorted), and proposals are counted with a running sum."""
    proposals_upto = []
    running = 0
    for p in proposal_list:
        running += 1 if p == 1 else 0
        proposals_upto.append(running)
    img_pr_info = [[0.0, 0.0] for _ in range(thresh_num)]
    last = -1  # the last index with score >= thresh
    for t in range(1, thresh_num + 1):
        thresh = 1 - t / thresh_num
        while last + 1 < len(pred_info) and pred_info[last + 1][4] >= thresh:
            last += 1
        if last < 0:
            img_pr_info[t - 1] = [0.0, 0.0]
        else:
            img_pr_info[t - 1] = [float(proposals_upto[last]), float(pred_recall[last])]
    return img_pr_info


def ref_dataset_pr_info(
    thresh_num: int, org_pr_curve: list[list[float]], count_face: int
) -> list[list[float]]:
    pr_curve = []
    for i in range(thresh_num):
        props, found = org_pr_curve[i]
        precision = found / props if props else math.nan
        recall = found / count_face if count_face else math.nan
        pr_curve.append([precision, recall])
    return pr_curve


def _matlab_max(a: float, b: float) -> float:
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return max(a, b)


def ref_vocap(rec: list[float], prec: list[float]) -> float:
    mrec = [0.0, *rec, 1.0]
    mpre = [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = _matlab_max(mpre[i], mpre[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mpre[i]
    return ap


def ref_evaluation(
    gt: list[tuple[str, list[list[float]], dict[str, list[int]]]],
    norm_pred: dict[str, list[list[float]]],
    setting: str,
) -> float:
    """evaluation.m for one setting; ``gt`` rows are (key, xywh boxes, {setting: 1-based keep})."""
    org_pr_curve = [[0.0, 0.0] for _ in range(THRESH_NUM)]
    count_face = 0
    for key, gt_bbx, keep in gt:
        pred_info = norm_pred.get(key, [])
        keep_index = keep[setting]
        count_face += len(keep_index)
        if not gt_bbx or not pred_info:
            continue
        ignore = [0] * len(gt_bbx)
        for k in keep_index:
            ignore[k - 1] = 1
        pred_recall, proposal_list = ref_image_evaluation(pred_info, gt_bbx, ignore, IOU_THRESH)
        info = ref_image_pr_info(THRESH_NUM, pred_info, proposal_list, pred_recall)
        for t in range(THRESH_NUM):
            org_pr_curve[t][0] += info[t][0]
            org_pr_curve[t][1] += info[t][1]
    pr_curve = ref_dataset_pr_info(THRESH_NUM, org_pr_curve, count_face)
    return ref_vocap([p[1] for p in pr_curve], [p[0] for p in pr_curve])


def ref_read_mat_gt(
    gt_dir: Path, images_dir: Path
) -> list[tuple[str, list[list[float]], dict[str, list[int]]]]:
    """The official .mat ground truth, restricted to the images present."""
    from scipy.io import loadmat

    face = loadmat(str(gt_dir / "wider_face_val.mat"))
    lists = {s: loadmat(str(gt_dir / f"wider_{s}_val.mat"))["gt_list"] for s in SETTINGS}
    out = []
    for i in range(face["event_list"].shape[0]):
        event = str(face["event_list"][i, 0][0])
        files = face["file_list"][i, 0]
        for j in range(files.shape[0]):
            name = str(files[j, 0][0])
            if not (images_dir / event / f"{name}.jpg").is_file():
                continue
            boxes = [[float(v) for v in row] for row in face["face_bbx_list"][i, 0][j, 0]]
            keep = {s: [int(v) for v in lists[s][i, 0][j, 0].ravel()] for s in SETTINGS}
            out.append((f"{event}/{name}", boxes, keep))
    return out


# ---------------------------------------------------------------- helpers


def _write_file(root: Path, key: str, rows: list[list[float]]) -> None:
    path = root / f"{key}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [key.split("/")[-1], str(len(rows))] + [
        " ".join(f"{v:.4f}" for v in row) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def _dataset(gt: list[tuple[str, list[list[float]], dict[str, list[int]]]]) -> Dataset:
    images = []
    for key, boxes, keep in gt:
        xywh = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        masks = {}
        for s, index in keep.items():
            mask = np.zeros(len(xyxy), dtype=bool)
            mask[np.array(index, dtype=int) - 1] = True
            masks[s] = mask
        images.append(ImageTruth(key, None, xyxy, masks))
    return Dataset("wider", tuple(keep), tuple(images))


def _jittered_detections(
    gt: list[tuple[str, list[list[float]], dict[str, list[int]]]], seed: int
) -> dict[str, list[list[float]]]:
    """Deterministic detections: most faces found with jitter, duplicates, misses, false positives,
    scores rounded to 2 decimals so that ties occur."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[list[float]]] = {}
    for key, boxes, _ in gt:
        rows = []
        for x, y, w, h in boxes:
            size = max(w, h, 1.0)
            if rng.random() < 0.75:
                jitter = rng.normal(0.0, 0.12, 4) * size
                score = min(1.0, 0.35 + 0.6 * min(size, 60) / 60 + rng.normal(0, 0.15))
                rows.append(
                    [
                        x + jitter[0],
                        y + jitter[1],
                        max(1.0, w + jitter[2]),
                        max(1.0, h + jitter[3]),
                        score,
                    ]
                )
                if rng.random() < 0.08:  # a duplicate
                    rows.append([x + 1, y - 1, w, h, score * rng.random()])
        for _ in range(rng.poisson(2)):  # false positives
            fx, fy = rng.uniform(0, 900, 2)
            fs = rng.uniform(8, 80)
            rows.append([fx, fy, fs, fs * 1.2, rng.random() * 0.8])
        out[key] = [[*row[:4], round(float(row[4]), 2)] for row in rows]
    return out


def _both(
    tmp_path: Path,
    gt: list[tuple[str, list[list[float]], dict[str, list[int]]]],
    rows: dict[str, list[list[float]]],
) -> tuple[dict[str, float], dict[str, float]]:
    """AP per setting from the reference and from the library, both from the written files."""
    folder = tmp_path / "dets"
    for key, image_rows in rows.items():
        _write_file(folder, key, image_rows)
    settings = tuple(gt[0][2])
    pred = {key: ref_read_pred(folder / f"{key}.txt") for key in rows}
    norm = ref_norm_score(pred)
    ref = {s: ref_evaluation(gt, norm, s) for s in settings}
    dataset = _dataset(gt)
    detections = read_wider_detections(folder, [im.key for im in dataset.images])
    lib = {s: r.ap for s, r in evaluate_wider(dataset, detections).settings.items()}
    return ref, lib  # type: ignore[return-value]


# ---------------------------------------------------------------- hand-made cases

GT_FOUR = [
    ("e/a", [[10, 10, 20, 20], [50, 50, 20, 20]], {"all": [1, 2]}),
    ("e/b", [[0, 0, 30, 30], [100, 100, 9, 9]], {"all": [1, 2]}),
]


def _exact(key_boxes: list[tuple[str, int, float]]) -> dict[str, list[list[float]]]:
    rows: dict[str, list[list[float]]] = {"e/a": [], "e/b": []}
    lookup = {key: boxes for key, boxes, _ in GT_FOUR}
    for key, index, score in key_boxes:
        rows[key].append([*lookup[key][index], score])
    return rows


CASES = [
    (
        "perfect detections",
        _exact([("e/a", 0, 0.9), ("e/a", 1, 0.8), ("e/b", 0, 0.7), ("e/b", 1, 0.6)]),
        1.0,
    ),
    ("half the faces, nothing else", _exact([("e/a", 0, 0.9), ("e/b", 0, 0.1)]), 0.5),
    (
        "a false positive on top",
        {
            "e/a": [[300, 300, 20, 20, 1.0], [10, 10, 20, 20, 0.5]],
            "e/b": [[0, 0, 30, 30, 0.5], [100, 100, 9, 9, 0.0]],
        },
        0.75 * 0.75,
    ),
    (
        "a duplicate counts as a false positive",
        _exact(
            [("e/a", 0, 0.9), ("e/a", 0, 0.8), ("e/a", 1, 0.1), ("e/b", 0, 0.1), ("e/b", 1, 0.1)]
        ),
        None,
    ),
]


@pytest.mark.parametrize(("name", "rows", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hand_made_cases_have_the_known_ap_in_both_implementations(
    tmp_path: Path, name: str, rows: dict[str, list[list[float]]], expected: float | None
) -> None:
    ref, lib = _both(tmp_path, GT_FOUR, rows)
    assert lib["all"] == pytest.approx(ref["all"], abs=1e-9), (name, ref, lib)
    if expected is not None:
        assert lib["all"] == pytest.approx(expected, abs=1e-9)


def test_false_positive_on_top_ap_is_derived_by_hand(tmp_path: Path) -> None:
    # Scores normalise to 1.0 (the FP), 0.5, 0.5 and 0.0; face a1 is never detected.
    # Thresholds in (0.5, 0.999]: 1 proposal, 0 found. From 0.5: 3 proposals, 2 found (P 2/3,
    # R 2/4). At 0: 4 proposals, 3 found (P 3/4, R 3/4). The envelope is 3/4 up to recall 3/4.
    ref, lib = _both(tmp_path, GT_FOUR, CASES[2][1])
    assert lib["all"] == pytest.approx(0.5 * 0.75 + 0.25 * 0.75)
    assert ref["all"] == pytest.approx(lib["all"], abs=1e-12)


def test_ignored_face_matched_detection_changes_nothing(tmp_path: Path) -> None:
    gt = [("e/a", [[10, 10, 20, 20], [50, 50, 20, 20]], {"all": [1]})]  # face 2 ignored
    rows = {"e/a": [[50, 50, 20, 20, 0.95], [10, 10, 20, 20, 0.9], [200, 200, 5, 5, 0.1]]}
    ref, lib = _both(tmp_path, gt, rows)
    assert lib["all"] == pytest.approx(ref["all"], abs=1e-12)
    assert lib["all"] == pytest.approx(1.0)  # the ignored match is neither TP nor FP; FP at 0 only


def test_plus_one_convention_decides_a_borderline_match(tmp_path: Path) -> None:
    # gt 10x10 at the origin; detection 5 wide: IoU = (5*11)/(11*11)... with +1: (4-0+1)*(10-0+1)
    # / ((10+1)*(10+1)) = 55/121 < 0.5, but w=5 -> x2=5: (5+1)*11/121 = 66/121 >= 0.5.
    gt = [("e/a", [[0, 0, 10, 10]], {"all": [1]})]
    ref, lib = _both(tmp_path, gt, {"e/a": [[0, 0, 5, 10, 0.9], [400, 400, 5, 5, 0.1]]})
    assert lib["all"] == pytest.approx(1.0) and ref["all"] == pytest.approx(1.0)
    ref, lib = _both(tmp_path / "b", gt, {"e/a": [[0, 0, 4, 10, 0.9], [400, 400, 5, 5, 0.1]]})
    assert lib["all"] == pytest.approx(0.0) and ref["all"] == pytest.approx(0.0)


# ---------------------------------------------------------------- realistic: the 396 WIDER images


def test_library_agrees_with_reference_on_jittered_wider_subset(
    shared: Path, tmp_path: Path
) -> None:
    root = shared / "eval" / "wider-val"
    gt = ref_read_mat_gt(root / "ground_truth", root / "images")
    assert len(gt) == 396
    rows = _jittered_detections(gt, seed=0)
    folder = tmp_path / "dets"
    for key, image_rows in rows.items():
        _write_file(folder, key, image_rows)
    norm = ref_norm_score({key: ref_read_pred(folder / f"{key}.txt") for key in rows})
    ref = {s: ref_evaluation(gt, norm, s) for s in SETTINGS}
    dataset = load_wider(root)
    detections = read_wider_detections(folder, [im.key for im in dataset.images])
    lib = {s: r.ap for s, r in evaluate_wider(dataset, detections).settings.items()}
    for s in SETTINGS:
        assert lib[s] == pytest.approx(ref[s], abs=1e-6), (s, ref[s], lib[s])
    assert all(0.2 < lib[s] < 0.98 for s in SETTINGS), lib  # realistic, not a degenerate case


def test_scores_of_any_range_give_the_same_ap(tmp_path: Path) -> None:
    rows = _exact([("e/a", 0, 0.9), ("e/a", 1, 0.3), ("e/b", 0, 0.7)])
    rows["e/b"].append([300, 300, 10, 10, 0.8])
    _, lib = _both(tmp_path / "a", GT_FOUR, rows)
    scaled = {k: [[*r[:4], 10 + 5 * r[4]] for r in v] for k, v in rows.items()}
    _, lib_scaled = _both(tmp_path / "b", GT_FOUR, scaled)
    assert lib_scaled["all"] == pytest.approx(lib["all"], abs=1e-12)


def test_images_without_detections_still_count_their_faces() -> None:
    dataset = _dataset(GT_FOUR)
    only_a = {"e/a": ImageDetections.from_xywh([[10, 10, 20, 20, 0.9], [50, 50, 20, 20, 0.8]])}
    result = evaluate_wider(dataset, only_a).settings["all"]
    assert result.faces == 4
    assert result.ap == pytest.approx(0.5)
    assert (result.tp, result.fp, result.ignored) == (2, 0, 0)
