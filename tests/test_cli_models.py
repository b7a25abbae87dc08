"""``facefaas models import / export / info``: thin commands over the importers."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from click.testing import CliRunner, Result

from facefaas.cli import cli
from facefaas.cli import models as models_cli
from facefaas.models.bundle import read_bundle
from facefaas.models.importing import SUPPORTED_FORMATS, import_model

REPO = Path(__file__).resolve().parents[1]
BUILTIN_ID = read_bundle(
    REPO / "src" / "facefaas" / "data" / "models" / "mtcnn"
).manifest.weights_sha256


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["models", *map(str, args)], catch_exceptions=False)


def test_cli_format_choices_are_the_supported_formats() -> None:
    assert set(models_cli._FORMATS) == set(SUPPORTED_FORMATS)


def test_import_folder_writes_a_bundle_with_the_same_id(shared: Path, tmp_path: Path) -> None:
    folder = shared / "models" / "caffe-original"
    expected = import_model(folder, validate=False).manifest.weights_sha256
    assert expected != BUILTIN_ID  # det4 (LNet) is part of this model
    result = run("import", folder, "-o", tmp_path / "m", "--name", "mine")
    assert result.exit_code == 0, result.output
    assert f"weights_sha256 {expected}" in result.output
    assert "warning: det4.caffemodel is the landmark-refinement net" in result.output
    bundle = read_bundle(tmp_path / "m")
    assert (bundle.manifest.name, bundle.manifest.weights_sha256) == ("mine", expected)
    assert bundle.manifest.source_format == "caffe"
    assert "lnet" in bundle.networks


def test_import_several_files_to_a_zip_and_back(shared: Path, tmp_path: Path) -> None:
    files = sorted((shared / "models" / "facenet-pytorch").glob("*.pt"))
    result = run("import", *files, "-o", tmp_path / "m.zip", "--no-validate", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["format"] == "facenet-pytorch" and summary["weights_sha256"] == BUILTIN_ID
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        assert sorted(archive.namelist()) == [
            "manifest.json",
            "onet.onnx",
            "pnet.onnx",
            "rnet.onnx",
        ]
    again = run("import", tmp_path / "m.zip", "-o", tmp_path / "again", "--no-validate", "--json")
    assert json.loads(again.output)["weights_sha256"] == BUILTIN_ID


def test_existing_output_is_replaced_only_with_force_and_only_if_a_bundle(
    shared: Path, tmp_path: Path
) -> None:
    pb = shared / "data" / "mtcnn.pb"
    assert run("import", pb, "-o", tmp_path / "m", "--no-validate").exit_code == 0
    refused = run("import", pb, "-o", tmp_path / "m", "--no-validate")
    assert refused.exit_code == 1 and "exists" in refused.output
    assert run("import", pb, "-o", tmp_path / "m", "--no-validate", "--force").exit_code == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    refused = run("import", pb, "-o", tmp_path / "notes", "--no-validate", "--force")
    assert refused.exit_code == 1 and "not a model bundle" in refused.output
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def test_failed_import_says_why_and_leaves_nothing_behind(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "pnet.lz4"
    evil.write_bytes(lz4.frame.compress(pickle.dumps(_Evil(marker), protocol=4)))
    result = run("import", evil, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "pickle asks for" in result.output and "not allowed" in result.output
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pnet.lz4"]


def test_unknown_format_option_is_a_usage_error(shared: Path, tmp_path: Path) -> None:
    result = run("import", shared / "data" / "mtcnn.pb", "-o", tmp_path / "m", "--format", "keras")
    assert result.exit_code == 2


@pytest.mark.parametrize("target", ["bundle", "bundle.zip"])
def test_export_builtin_model(tmp_path: Path, target: str) -> None:
    result = run("export", "mtcnn", "-o", tmp_path / target)
    assert result.exit_code == 0, result.output
    info = run("info", tmp_path / target, "--json")
    data = json.loads(info.output)
    assert (data["format"], data["name"], data["weights_sha256"]) == (
        "onnx-bundle",
        "mtcnn",
        BUILTIN_ID,
    )
    assert data["parameter_counts"] == {"pnet": 6632, "rnet": 100178, "onet": 389040}


def test_export_of_an_unknown_model_names_the_builtins(tmp_path: Path) -> None:
    result = run("export", "no-such-model", "-o", tmp_path / "x")
    assert result.exit_code == 1
    assert "no model 'no-such-model'" in result.output and "mtcnn" in result.output
    assert not (tmp_path / "x").exists()


def test_info_reads_any_format(shared: Path) -> None:
    result = run("info", shared / "models" / "ipazc-mtcnn-0.1.1" / "mtcnn_weights.npy")
    assert result.exit_code == 0, result.output
    assert "ipazc-mtcnn-0.1" in result.output and BUILTIN_ID in result.output


def test_group_lists_optional_registry_commands_only_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = run("--help").output
    for name in ("import", "export", "info", "list", "remove"):
        assert f"  {name} " in listed
    monkeypatch.setitem(
        models_cli.OPTIONAL_COMMANDS, "list", ("facefaas.cli.no_such_module", "x", "gone")
    )
    listed = run("--help").output
    assert "  list " not in listed and "  remove " in listed
    assert CliRunner().invoke(cli, ["models", "list"]).exit_code == 2


def test_resolve_model_tries_builtins_resolvers_folders_then_model_files(tmp_path: Path) -> None:
    import shutil

    from facefaas.errors import ModelNotFoundError
    from facefaas.models.resolve import resolve_model

    builtin = REPO / "src" / "facefaas" / "data" / "models" / "mtcnn"
    mtcnn = resolve_model("mtcnn")
    assert mtcnn.manifest.name == "mtcnn" and sorted(mtcnn.networks) == ["onet", "pnet", "rnet"]
    assert mtcnn.networks["pnet"] == (builtin / "pnet.onnx").read_bytes()
    copy = tmp_path / "store" / "17a79f64"
    shutil.copytree(builtin, copy)
    (copy / "manifest.json").write_text(
        (builtin / "manifest.json").read_text().replace('"mtcnn"', '"registered"', 1)
    )
    registry = {"17a79f6483f583c2": copy}
    found = resolve_model("17a79f6483f583c2", resolvers=[registry.get])
    assert found.manifest.name == "registered"
    assert resolve_model(copy).manifest.name == "registered"  # a bundle folder by path
    exported = tmp_path / "model.zip"
    from facefaas.models.export import write_model

    write_model(exported, mtcnn.weights(), mtcnn.manifest)
    assert resolve_model(exported).manifest.weights_sha256 == mtcnn.manifest.weights_sha256
    with pytest.raises(ModelNotFoundError, match="mtcnn"):
        resolve_model("unknown", resolvers=[registry.get])


def test_models_export_takes_any_model_file_detect_takes(tmp_path: Path, shared: Path) -> None:
    graph = shared / "data" / "mtcnn.pb"
    result = CliRunner().invoke(cli, ["models", "export", str(graph), "-o", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    from facefaas.models.bundle import read_bundle

    bundle = read_bundle(tmp_path / "b")
    assert bundle.manifest.weights_sha256.startswith("17a79f64")
    assert bundle.manifest.source_format == "tensorflow-frozen-graph"


def test_bundle_zip_is_deterministic() -> None:
    from facefaas.models.export import bundle_zip

    bundle = read_bundle(REPO / "src" / "facefaas" / "data" / "models" / "mtcnn")
    weights = bundle.weights()
    assert bundle_zip(weights, bundle.manifest) == bundle_zip(weights, bundle.manifest)
