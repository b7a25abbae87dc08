"""Fuzz `facefaas.models.importing.import_model` end to end, as an upload reaches it.

A real model's files (the shipped bundle always; Caffe, TensorFlow, facenet-pytorch and ipazc
files from ``../shared`` when present), one of them mutated byte by byte, or its
``manifest.json`` rewritten with any JSON values; sometimes a file dropped or renamed, sometimes
the whole set zipped. Imports that succeed are smoke-tested (``validate=True``) as on upload.

Property: an `ImportedModel` or one of `facefaas.errors`.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facefaas.errors import FacefaasError
from facefaas.models.importing import ImportedModel, import_model
from fuzz.mutate import budget, json_objects, mutated

BUNDLE = Path(__file__).resolve().parents[2] / "src" / "facefaas" / "data" / "models" / "mtcnn"
SHARED_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"
_SHARED_SETS = {
    "caffe": ("caffe-original", ("det1.caffemodel", "det2.caffemodel", "det3.caffemodel")),
    "facenet-pytorch": ("facenet-pytorch", ("pnet.pt", "rnet.pt", "onet.pt")),
    "ipazc-1.0": ("ipazc-mtcnn-1.0", ("pnet.lz4", "rnet.lz4", "onet.lz4")),
    "ipazc-0.1": ("ipazc-mtcnn-0.1.1", ("mtcnn_weights.npy",)),
}
_MANIFEST_KEYS = (
    "format", "format_version", "name", "weights_sha256", "description", "license",
    "source_format", "parameters", "extra", "input",
)  # fmt: skip


@cache
def model_sets() -> tuple[dict[str, bytes], ...]:
    names = ("pnet.onnx", "rnet.onnx", "onet.onnx", "manifest.json")
    sets = [{name: (BUNDLE / name).read_bytes() for name in names}]
    tf_graph = SHARED_MODELS.parent / "data" / "mtcnn.pb"
    if tf_graph.is_file():
        sets.append({"mtcnn.pb": tf_graph.read_bytes()})
    for folder, files in _SHARED_SETS.values():
        if all((SHARED_MODELS / folder / name).is_file() for name in files):
            sets.append({name: (SHARED_MODELS / folder / name).read_bytes() for name in files})
    return tuple(sets)


@st.composite
def uploads(draw: st.DrawFn) -> dict[str, bytes]:
    files = dict(draw(st.sampled_from(model_sets())))
    name = draw(st.sampled_from(sorted(files)))
    if name == "manifest.json" and draw(st.booleans()):
        manifest = json.loads(files[name])
        files[name] = json.dumps(draw(json_objects(manifest, _MANIFEST_KEYS))).encode()
    else:
        files[name] = draw(mutated([files[name]]))
    action = draw(st.sampled_from(["none", "none", "drop", "rename", "zip"]))
    if action == "drop" and len(files) > 1:
        del files[name]
    elif action == "rename":
        new = draw(
            st.sampled_from(["model", "x.onnx", "x.pb", "det1.caffemodel", "a.pt", "README"])
        )
        files[new] = files.pop(name)
    elif action == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for member, data in files.items():
                archive.writestr(f"model/{member}", data)
        files = {"model.zip": out.getvalue()}
    return files


def check_imports_or_refuses(files: dict[str, bytes]) -> None:
    """The fuzz property, also used by the regression tests."""
    try:
        imported = import_model(files, validate=True)
    except FacefaasError:
        return
    assert isinstance(imported, ImportedModel)
    assert len(imported.manifest.weights_sha256) == 64


@pytest.mark.timeout(300)
@budget(700)
@given(uploads())
def test_mutated_uploads_import_or_raise_our_errors(files: dict[str, bytes]) -> None:
    check_imports_or_refuses(files)
