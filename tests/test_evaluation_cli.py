"""``facefaas eval``: the thin CLI over facefaas.evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from facefaas.cli import cli

GT_TXT = """\
1--Event/1_a.jpg
2
10 10 20 20 0 0 0 0 0 0
50 60 8 9 0 0 0 0 0 0
"""


def _wider(tmp_path: Path) -> tuple[Path, Path, Path]:
    gt = tmp_path / "gt.txt"
    gt.write_text(GT_TXT)
    images = tmp_path / "images"
    (images / "1--Event").mkdir(parents=True)
    Image.new("RGB", (120, 90)).save(images / "1--Event" / "1_a.jpg")
    dets = tmp_path / "dets"
    (dets / "1--Event").mkdir(parents=True)
    (dets / "1--Event" / "1_a.txt").write_text("1_a\n2\n10 10 20 20 0.9\n200 200 10 10 0.1\n")
    return gt, images, dets


def test_eval_wider_scores_a_detection_folder(tmp_path: Path) -> None:
    gt, images, dets = _wider(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "wider",
            "--ground-truth",
            str(gt),
            "--images",
            str(images),
            "--detections",
            str(dets),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| dets | " in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["runs"][0]["settings"]["all"]["tp"] == 1
    assert report["runs"][0]["settings"]["all"]["ap"] == 0.5
    assert report["command"].startswith("facefaas eval wider --ground-truth ")
    assert report["runs"][0]["params"] is None
    assert "(detections from files)" in result.output
    assert (out / "summary.md").is_file() and (out / "pr_all.png").is_file()


def test_eval_wider_without_ground_truth_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", "wider", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--root or --ground-truth" in result.output


def test_eval_unknown_preset_is_a_clean_error(tmp_path: Path) -> None:
    gt, images, _ = _wider(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "wider",
            "--ground-truth",
            str(gt),
            "--images",
            str(images),
            "--preset",
            "turbo",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "unknown preset 'turbo'" in result.output


def test_eval_fddb_reads_an_fddb_detection_file(tmp_path: Path) -> None:
    folds = tmp_path / "folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text("img/a\n1\n20 20 0 50 50 1\n")
    dets = tmp_path / "dets.txt"
    dets.write_text("img/a\n2\n31 31 38 38 0.9\n100 100 5 5 0.3\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "fddb",
            "--folds",
            str(folds),
            "--fold",
            "1",
            "--detections",
            str(dets),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["runs"][0]["settings"]["all"]["tpr_at_fp"]["500"] == 1.0
    assert (out / "roc.png").is_file()


def test_eval_fddb_needs_images_to_run_a_detector(tmp_path: Path) -> None:
    folds = tmp_path / "folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text("img/a\n1\n20 20 0 50 50 1\n")
    result = CliRunner().invoke(
        cli, ["eval", "fddb", "--folds", str(folds), "--fold", "01", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "needs --images" in result.output


def test_eval_dlib_runs_the_detector_on_one_image(shared: Path, tmp_path: Path) -> None:
    xml = shared / "eval" / "dlib-faces" / "testing.xml"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "dlib",
            "--xml",
            str(xml),
            "--limit",
            "1",
            "--iou",
            "0.4",
            "-q",
            "--no-plots",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "report.json").read_text())["runs"][0]
    assert run["model_info"]["provider"] == "CPUExecutionProvider"
    assert run["settings"]["all"]["faces"] == 6  # the first image, 2008_002470.jpg
    assert run["settings"]["all"]["tp"] >= 4  # frontal faces of 44-52 px: MTCNN finds them
    assert run["timing"]["images"] == 1


def test_eval_wider_without_images_needs_detections(tmp_path: Path) -> None:
    gt, _, _ = _wider(tmp_path)
    result = CliRunner().invoke(
        cli, ["eval", "wider", "--ground-truth", str(gt), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "needs the images" in result.output
