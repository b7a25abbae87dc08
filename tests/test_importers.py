"""Every supported format imports to the same weights as the seed's TF graph; bad files are refused.

The model files are read from ``../shared/models`` (the same MTCNN weights in each format); torch
files, perturbed models and malicious files are written here, in tmp dirs.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from facefaas.errors import (
    ModelFormatError,
    ModelNotFoundError,
    ModelValidationError,
    ParameterError,
    TooLargeError,
)
from facefaas.models.bundle import read_bundle, write_bundle
from facefaas.models.importers._caffeproto import net_parameter_class
from facefaas.models.importers._torchfile import LEGACY_MAGIC
from facefaas.models.importers.tf_graph import read_tf_graph
from facefaas.models.importing import SUPPORTED_FORMATS, import_model
from facefaas.models.weights import MtcnnWeights

REPO = Path(__file__).resolve().parents[1]
BUILTIN_BUNDLE = REPO / "src" / "facefaas" / "data" / "models" / "mtcnn"

# format -> where its files are, relative to ../shared (the bundle is the one shipped in the repo)
SOURCES = {
    "tensorflow-frozen-graph": "data/mtcnn.pb",
    "caffe": "models/caffe-original",
    "facenet-pytorch": "models/facenet-pytorch",
    "ipazc-mtcnn-1.0": "models/ipazc-mtcnn-1.0",
    "ipazc-mtcnn-0.1": "models/ipazc-mtcnn-0.1.1/mtcnn_weights.npy",
    "onnx-bundle": None,
}


def _source(shared: Path, fmt: str) -> Path:
    relative = SOURCES[fmt]
    return BUILTIN_BUNDLE if relative is None else shared / relative


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(shared: Path) -> MtcnnWeights:
    return read_tf_graph((shared / "data" / "mtcnn.pb").read_bytes())


def _assert_equal_weights(got: MtcnnWeights, want: MtcnnWeights) -> None:
    for net, params in want.networks().items():
        for name, value in params.items():
            np.testing.assert_array_equal(got.networks()[net][name], value, err_msg=f"{net}.{name}")


def test_every_format_is_covered() -> None:
    # Every MTCNN format here; CenterFace's file in tests/test_detector_families.py.
    assert set(SOURCES) == set(SUPPORTED_FORMATS) - {"centerface-onnx"}


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_format_imports_to_exactly_the_tf_weights(
    shared: Path, reference: MtcnnWeights, fmt: str
) -> None:
    model = import_model(_source(shared, fmt), validate=False)
    assert model.format == fmt
    _assert_equal_weights(model.weights, reference)
    # Caffe's det4 is LNet, part of that model (and of its id); P/R/O-Net are the seed's.
    assert (model.weights.lnet is not None) == (fmt == "caffe")
    assert replace(model.weights, lnet=None).digest() == reference.digest()
    assert model.manifest.weights_sha256 == model.weights.digest()


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_format_round_trips_through_a_bundle(shared: Path, tmp_path: Path, fmt: str) -> None:
    model = import_model(_source(shared, fmt), validate=False)
    path = write_bundle(tmp_path / "bundle", model.weights, model.manifest)
    bundle = read_bundle(path)
    assert bundle.manifest.weights_sha256 == model.weights.digest()
    assert bundle.weights().digest() == model.weights.digest()
    again = import_model(path, validate=False)
    assert again.format == "onnx-bundle"
    assert again.manifest.weights_sha256 == model.manifest.weights_sha256
    # A bundle keeps the format its model was first imported from.
    assert again.manifest.source_format == model.manifest.source_format
    assert model.manifest.source_format == (
        "tensorflow-frozen-graph" if fmt == "onnx-bundle" else fmt
    )
    assert again.warnings == []


def test_sources_as_bytes_mapping_and_zip_give_the_same_id(
    shared: Path, reference: MtcnnWeights
) -> None:
    digest = reference.digest()
    pb = (shared / "data" / "mtcnn.pb").read_bytes()
    npy = (shared / SOURCES["ipazc-mtcnn-0.1"]).read_bytes()
    facenet = _files(shared / "models" / "facenet-pytorch")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in _files(shared / "models" / "caffe-original").items():
            if not name.startswith("det4"):  # det4 (LNet) would make another model
                archive.writestr(f"retrained/caffe/{name}", data)
    for source, fmt in [
        (pb, "tensorflow-frozen-graph"),
        (npy, "ipazc-mtcnn-0.1"),
        (facenet, "facenet-pytorch"),
        ({"upload.bin": pb}, "tensorflow-frozen-graph"),
        (buffer.getvalue(), "caffe"),
    ]:
        model = import_model(source, validate=False)
        assert (model.format, model.manifest.weights_sha256) == (fmt, digest)


def test_caffe_reads_det4_as_lnet_and_keeps_the_extra_rnet_head(shared: Path) -> None:
    model = import_model(shared / "models" / "caffe-original", validate=False)
    assert set(model.extra_networks) == {"rnet.conv5-3"}
    assert model.weights.lnet is not None
    assert model.weights.lnet["fc4.weight"].shape == (256, 5, 64, 3, 3)
    assert model.extra_networks["rnet.conv5-3"]["weight"].shape == (10, 128)
    assert any("LNet" in w for w in model.warnings)
    assert any("LICENSE.txt" in w for w in model.warnings)


def test_explicit_format_reads_files_with_unusual_names(
    shared: Path, reference: MtcnnWeights
) -> None:
    files = {
        f"net{i}.bin": data
        for i, data in enumerate(_files(shared / "models" / "ipazc-mtcnn-1.0").values())
    }
    model = import_model(files, format="ipazc-mtcnn-1.0", validate=False)
    assert model.manifest.weights_sha256 == reference.digest()


def test_manifest_takes_name_and_description(shared: Path) -> None:
    model = import_model(
        shared / "data" / "mtcnn.pb", name="  my mtcnn ", description="retrained", validate=False
    )
    assert (model.manifest.name, model.manifest.description) == ("my mtcnn", "retrained")
    assert model.manifest.source_format == "tensorflow-frozen-graph"
    with pytest.raises(ParameterError):
        import_model(shared / "data" / "mtcnn.pb", name="bad\nname", validate=False)


# --- torch files written here: legacy and zip serialisation, perturbation --------------------


class _Storage:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, np.ascontiguousarray(array, dtype="<f4")


class _Tensor:
    def __init__(self, rebuild: Any, storage: _Storage, shape: tuple[int, ...]) -> None:
        self.rebuild, self.storage, self.shape = rebuild, storage, shape

    def __reduce__(self) -> tuple[Any, ...]:
        strides = tuple(int(s) // 4 for s in np.empty(self.shape, np.float32).strides)
        return self.rebuild, (self.storage, 0, self.shape, strides, False, OrderedDict())


@pytest.fixture
def torch_writer(monkeypatch: pytest.MonkeyPatch) -> Callable[..., bytes]:
    """Write ``torch.save``-format files without torch: fake ``torch`` modules make pickle emit
    the same globals (``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``) torch does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("never called")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = (
        "torch._utils",
        "_rebuild_tensor_v2",
    )
    torch.FloatStorage, torch._utils = FloatStorage, utils  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    def write(state: Any, *, legacy: bool) -> bytes:
        storages: list[_Storage] = []

        def tensors(obj: Any) -> Any:
            if isinstance(obj, np.ndarray):
                storage = _Storage(str(len(storages)), obj.reshape(-1))
                storages.append(storage)
                return _Tensor(_rebuild_tensor_v2, storage, obj.shape)
            if isinstance(obj, dict):
                return type(obj)((k, tensors(v)) for k, v in obj.items())
            return obj

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj: Any) -> Any:
                if isinstance(obj, _Storage):
                    pid = ("storage", FloatStorage, obj.key, "cpu", obj.array.size)
                    return (*pid, None) if legacy else pid
                return None

        body = io.BytesIO()
        Pickler(body, protocol=2).dump(tensors(state))
        if legacy:
            out = io.BytesIO()
            for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(header, out, protocol=2)
            out.write(body.getvalue())
            pickle.dump([s.key for s in storages], out, protocol=2)
            for s in storages:
                out.write(struct.pack("<q", s.array.size) + s.array.tobytes())
            return out.getvalue()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("pnet/data.pkl", body.getvalue())
            archive.writestr("pnet/byteorder", "little")
            archive.writestr("pnet/version", "3\n")
            for s in storages:
                archive.writestr(f"pnet/data/{s.key}", s.array.tobytes())
        return out.getvalue()

    return write


def facenet_state(weights: MtcnnWeights, net: str) -> OrderedDict[str, np.ndarray]:
    """The facenet-pytorch state dict of one network (the inverse of its importer)."""
    state: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, value in weights.networks()[net].items():
        layer, _, kind = name.partition(".")
        if not kind:
            state[f"{layer}.weight"] = value
            continue
        if layer in ("fc4", "fc5") and kind == "weight":  # OIHW -> (out, W*H*C)
            value = value.transpose(0, 3, 2, 1).reshape(value.shape[0], -1)
        state[f"{layer.replace('fc', 'dense')}.{kind}"] = value
    return state


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_facenet_files_written_here_import_to_the_same_weights(
    reference: MtcnnWeights, torch_writer: Callable[..., bytes], legacy: bool
) -> None:
    files = {
        f"{net}.pt": torch_writer(facenet_state(reference, net), legacy=legacy)
        for net in ("pnet", "rnet", "onet")
    }
    model = import_model(files, validate=False)
    assert (model.format, model.manifest.weights_sha256) == ("facenet-pytorch", reference.digest())


def test_whole_mtcnn_state_dict_in_a_checkpoint_is_read(
    reference: MtcnnWeights, torch_writer: Callable[..., bytes]
) -> None:
    state = {
        f"{net}.{k}": v
        for net in ("pnet", "rnet", "onet")
        for k, v in facenet_state(reference, net).items()
    }
    data = torch_writer({"epoch": 3, "state_dict": state}, legacy=False)
    model = import_model({"mtcnn_epoch3.pth": data}, validate=False)
    assert model.manifest.weights_sha256 == reference.digest()
    assert any("checkpoint" in w for w in model.warnings)


def test_perturbed_model_gets_another_id(
    reference: MtcnnWeights, torch_writer: Callable[..., bytes]
) -> None:
    states = {net: facenet_state(reference, net) for net in ("pnet", "rnet", "onet")}
    states["rnet"]["conv2.weight"] = states["rnet"]["conv2.weight"] + np.float32(1e-3)
    files = {f"{net}.pt": torch_writer(state, legacy=True) for net, state in states.items()}
    model = import_model(files, validate=False)
    assert model.manifest.weights_sha256 != reference.digest()
    np.testing.assert_allclose(
        model.weights.rnet["conv2.weight"], reference.rnet["conv2.weight"] + 1e-3, rtol=0, atol=1e-6
    )


def test_perturbed_bundle_gets_another_id_and_a_manifest_warning(tmp_path: Path) -> None:
    files = _files(BUILTIN_BUNDLE)
    pnet = onnx.load_from_string(files["pnet.onnx"])
    bias = next(t for t in pnet.graph.initializer if t.name == "conv3.bias")
    bias.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) * 2, "conv3.bias"))
    files["pnet.onnx"] = pnet.SerializeToString()
    model = import_model(files, validate=False)
    assert model.manifest.weights_sha256 != read_bundle(BUILTIN_BUNDLE).manifest.weights_sha256
    assert any("weights_sha256 does not match" in w for w in model.warnings)


def test_malicious_torch_file_is_refused_and_never_runs(
    tmp_path: Path, torch_writer: Callable[..., bytes]
) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return os.system, (f"touch {marker}",)

    for legacy in (True, False):
        data = torch_writer(
            OrderedDict([("conv1.weight", np.zeros(3, np.float32)), ("x", Evil())]), legacy=legacy
        )
        with pytest.raises(ModelFormatError, match=r"pickle asks for (posix|nt)\.system"):
            import_model({"pnet.pt": data}, validate=False)
    assert not marker.exists()


# --- rejections ---------------------------------------------------------------------------------


def _caffe_with(shared: Path, edit: Callable[[Any], None]) -> dict[str, bytes]:
    files = {
        k: v for k, v in _files(shared / "models" / "caffe-original").items() if k.startswith("det")
    }
    net = net_parameter_class()()
    net.ParseFromString(files["det2.caffemodel"])
    edit(net)
    files["det2.caffemodel"] = net.SerializeToString()
    return files


def _drop_a_filter(net: Any) -> None:
    layer = next(layer for layer in net.layer if layer.name == "conv2")
    weight, bias = layer.blobs
    weight.shape.dim[0] -= 1
    del weight.data[-28 * 9 :]
    del bias.data[-1:]
    bias.shape.dim[0] -= 1


def _grow_conv3(net: Any) -> None:
    weight = next(layer for layer in net.layer if layer.name == "conv3").blobs[0]
    weight.shape.dim[2:] = [3, 3]
    weight.data.extend([0.0] * (64 * 48 * 5))


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("random bytes", ModelFormatError, "supported formats: onnx-bundle"),
        ("only a licence", ModelFormatError, "no supported model"),
        ("truncated caffemodel", ModelFormatError, "det3.caffemodel"),
        ("truncated pb", ModelFormatError, "GraphDef"),
        ("missing network", ModelFormatError, "missing O-Net"),
        ("filter missing", ModelValidationError, "prelu2 has 48 slopes for 47 channels"),
        ("kernel of the wrong size", ModelValidationError, r"conv3.weight: shape \(64, 48, 3, 3\)"),
        ("mixed formats", ModelFormatError, "several formats"),
        ("missing onnx", ModelFormatError, "missing onet.onnx"),
        ("unknown format name", ParameterError, "unknown model format"),
        ("not a path", ModelNotFoundError, "no such file"),
    ],
)
def test_bad_sources_are_refused_with_what_is_wrong(
    shared: Path, tmp_path: Path, case: str, error: type[Exception], message: str
) -> None:
    caffe = {
        k: v for k, v in _files(shared / "models" / "caffe-original").items() if k.startswith("det")
    }
    pb = (shared / "data" / "mtcnn.pb").read_bytes()
    bundle = _files(BUILTIN_BUNDLE)
    sources: dict[str, tuple[Any, str | None]] = {
        "random bytes": (os.urandom(4096), None),
        "only a licence": ({"LICENSE.txt": b"MIT"}, None),
        "truncated caffemodel": (
            {**caffe, "det3.caffemodel": caffe["det3.caffemodel"][:100_001]},
            None,
        ),
        "truncated pb": ({"mtcnn.pb": pb[: len(pb) // 2]}, None),
        "missing network": ({k: v for k, v in caffe.items() if not k.startswith("det3")}, None),
        "filter missing": (_caffe_with(shared, _drop_a_filter), None),
        "kernel of the wrong size": (_caffe_with(shared, _grow_conv3), None),
        "mixed formats": ({**caffe, "mtcnn.pb": pb}, None),
        "missing onnx": ({k: v for k, v in bundle.items() if k != "onet.onnx"}, None),
        "unknown format name": (pb, "keras"),
        "not a path": (tmp_path / "nothing-here", None),
    }
    source, fmt = sources[case]
    with pytest.raises(error, match=message):
        import_model(source, format=fmt, validate=False)


def test_oversize_source_is_refused_before_reading(shared: Path) -> None:
    with pytest.raises(TooLargeError) as info:
        import_model(shared / "data" / "mtcnn.pb", max_bytes=1_000_000, validate=False)
    assert info.value.limit == 1_000_000


def _bundle_with(edit: Callable[[onnx.ModelProto], None], net: str = "rnet") -> dict[str, bytes]:
    files = _files(BUILTIN_BUNDLE)
    model = onnx.load_from_string(files[f"{net}.onnx"])
    edit(model)
    files[f"{net}.onnx"] = model.SerializeToString()
    return files


def _add_custom_op(model: onnx.ModelProto) -> None:
    model.graph.node.append(onnx.helper.make_node("ReadFile", ["image"], ["x"], domain="evil.io"))
    model.opset_import.append(onnx.helper.make_opsetid("evil.io", 1))


def _add_relu(model: onnx.ModelProto) -> None:
    model.graph.node.append(onnx.helper.make_node("Relu", ["image"], ["x"]))


def _external_data(model: onnx.ModelProto) -> None:
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"


def _wrong_shape(model: onnx.ModelProto) -> None:
    tensor = model.graph.initializer[0]
    tensor.CopyFrom(onnx.numpy_helper.from_array(np.zeros((28, 3, 5, 5), np.float32), tensor.name))


def _pool_padding(model: onnx.ModelProto) -> None:
    node = next(n for n in model.graph.node if n.op_type == "MaxPool")
    pads = next(a for a in node.attribute if a.name == "pads")
    pads.ints[:] = [1, 1, 1, 1]


def _old_opset(model: onnx.ModelProto) -> None:
    model.opset_import[0].version = 11


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_add_custom_op, "operator domain 'evil.io' is not allowed"),
        (_add_relu, "operator Relu is not allowed"),
        (_external_data, "external data"),
        (_wrong_shape, r"conv1.weight is FLOAT \(28, 3, 5, 5\), expected FLOAT \(28, 3, 3, 3\)"),
        (_pool_padding, "not the R-Net graph"),
        (_old_opset, "not the R-Net graph"),
    ],
    ids=[
        "custom domain",
        "unknown operator",
        "external data",
        "wrong shape",
        "other padding",
        "old opset",
    ],
)
def test_onnx_bundle_that_is_not_our_graph_is_refused(
    edit: Callable[[onnx.ModelProto], None], message: str
) -> None:
    with pytest.raises(ModelValidationError, match=message):
        import_model(_bundle_with(edit), validate=False)


# --- zip archives -------------------------------------------------------------------------------


def _zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_STORED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("entries", "error", "message"),
    [
        ([("../pnet.onnx", b"x")], ModelFormatError, r"outside the archive"),
        ([("bundle/../../pnet.onnx", b"x")], ModelFormatError, r"outside the archive"),
        ([("/etc/pnet.onnx", b"x")], ModelFormatError, "absolute"),
        ([("C:/models/pnet.onnx", b"x")], ModelFormatError, "absolute"),
        ([("..\\pnet.onnx", b"x")], ModelFormatError, "outside the archive"),
        ([(_symlink("pnet.onnx"), b"/etc/passwd")], ModelFormatError, "symbolic link"),
        ([("inner.zip", _zip([("pnet.onnx", b"x")]))], ModelFormatError, "zip inside the zip"),
        ([("a/pnet.onnx", b"x"), ("b/pnet.onnx", b"y")], ModelFormatError, "two files named"),
        ([(f"f{i}.txt", b"") for i in range(100)], TooLargeError, "100 entries"),
        ([(f"f{i}.txt", b"") for i in range(2000)], TooLargeError, "far more than 64"),
    ],
    ids=[
        "dotdot",
        "nested dotdot",
        "absolute",
        "drive letter",
        "backslash",
        "symlink",
        "nested zip",
        "duplicate",
        "too many",
        "central directory too big",
    ],
)
def test_unsafe_zips_are_refused(
    entries: list[tuple[Any, bytes]], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        import_model(_zip(entries), validate=False)


def test_encrypted_zip_entry_is_refused() -> None:
    data = bytearray(_zip([("pnet.onnx", b"x")]))
    central = data.index(b"PK\x01\x02")
    data[6] |= 0x1  # the "encrypted" flag, in the local header and in the central directory
    data[central + 8] |= 0x1
    with pytest.raises(ModelFormatError, match="encrypted"):
        import_model(bytes(data), validate=False)


def test_zip_bomb_is_refused_by_ratio_and_by_total_size() -> None:
    bomb = _zip([("pnet.onnx", bytes(50_000_000))], zipfile.ZIP_DEFLATED)
    assert len(bomb) < 100_000
    with pytest.raises(ModelFormatError, match="zip bomb"):
        import_model(bomb, validate=False)
    many = _zip([(f"{i}.onnx", bytes(900_000)) for i in range(4)], zipfile.ZIP_DEFLATED)
    with pytest.raises(TooLargeError, match="expands to more than"):
        import_model(many, max_bytes=1_000_000, validate=False)


def test_zip_with_hidden_and_macos_metadata_imports(shared: Path, reference: MtcnnWeights) -> None:
    entries = [(f"model/{k}", v) for k, v in _files(BUILTIN_BUNDLE).items()]
    entries += [("__MACOSX/model/._pnet.onnx", b"junk"), ("model/.DS_Store", b"junk")]
    model = import_model(_zip(entries), validate=False)
    assert model.manifest.weights_sha256 == reference.digest()


# --- validation and detection -------------------------------------------------------------------


def test_validation_warns_when_the_model_finds_no_face(reference: MtcnnWeights) -> None:
    from facefaas.models.validate import validate_model

    assert validate_model(reference) == []
    onet = dict(reference.onet)
    onet["fc6_1.bias"] = np.array([50.0, -50.0], np.float32)  # always "not a face"
    warnings = validate_model(MtcnnWeights(reference.pnet, dict(reference.rnet), onet))
    assert len(warnings) == 1 and "no face" in warnings[0]


def test_validation_refuses_weights_that_overflow(reference: MtcnnWeights) -> None:
    from facefaas.models.validate import validate_model

    rnet = dict(reference.rnet)
    rnet["fc5_2.weight"] = np.full((4, 128), 3e38, np.float32)  # finite weights, infinite sums
    with pytest.raises(ModelValidationError, match="R-Net outputs NaN or infinite"):
        validate_model(MtcnnWeights(dict(reference.pnet), rnet, dict(reference.onet)))


GOLDEN_IMAGES = ["eval/photos/ipazc-mtcnn__ivan.jpg", "eval/photos/dlib__Tom_Cruise_avp_2014_4.jpg"]


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_imported_model_detects_what_the_seed_graph_detects(shared: Path, fmt: str) -> None:
    from facefaas import Detector
    from golden import golden_arrays, iou_matrix, load_golden

    golden = load_golden(shared, "seed-tf-photos.json")
    detector = Detector(import_model(_source(shared, fmt), validate=False).weights)
    for relative in GOLDEN_IMAGES:
        entry = golden[relative]
        faces = detector(shared / relative)
        ref_boxes, _ = golden_arrays(entry)
        ref_scores = np.array([f["score"] for f in entry["faces"]])
        assert len(faces) == len(ref_boxes), relative
        iou = iou_matrix(ref_boxes, faces.boxes)
        match = iou.argmax(axis=1)
        assert iou.max(axis=1).min() >= 0.999, f"{relative}: IoU {iou.max(axis=1)}"
        np.testing.assert_allclose(
            faces.scores[match], ref_scores, atol=1e-4, rtol=0, err_msg=relative
        )
