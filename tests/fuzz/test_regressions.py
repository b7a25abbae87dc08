"""What the fuzz targets found, each as the exact input that failed and what it must give now."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import onnx
import pytest

from facefaas.errors import ModelFormatError, ModelValidationError, TooLargeError
from facefaas.models.archive import read_zip
from facefaas.models.importers._caffeproto import net_parameter_class
from facefaas.models.importers._tfproto import graph_def_class
from facefaas.models.importers.caffe import read_caffe
from facefaas.models.importers.onnx_bundle import read_onnx_bundle
from facefaas.models.importers.tf_graph import read_tf_graph
from facefaas.models.safe_pickle import safe_loads

# --- the restricted unpickler -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02J\x01",  # BININT with 1 of its 4 bytes
        b"\x80\x04\x95\x05",  # FRAME with 1 of its 8 length bytes
        b"\x80\x02G\x3f\xf0",  # BINFLOAT cut short
        b"\x80\x05\x96\x01\x00",  # BYTEARRAY8 with a cut length
    ],
    ids=["binint", "frame", "binfloat", "bytearray8-length"],
)
def test_pickle_with_a_truncated_fixed_size_argument_is_a_format_error(data: bytes) -> None:
    # was struct.error, a 500 from the upload route
    with pytest.raises(ModelFormatError, match="truncated"):
        safe_loads(data)


def test_pickle_bytearray_of_a_huge_declared_size_is_refused_without_allocating_it() -> None:
    # 20 bytes that made pickle allocate 1 TiB up front (MemoryError; 8 GiB would be allocated)
    data = b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"."
    with pytest.raises(ModelFormatError, match="truncated"):
        safe_loads(data)


# --- the TensorFlow and Caffe readers ---------------------------------------------------------


def _tf_graph(dims: list[int], float_val: list[float]) -> bytes:
    """A GraphDef of one float Const, ``pnet/conv1/weights``, of shape ``dims``."""
    graph = graph_def_class()()
    node = graph.node.add(name="pnet/conv1/weights", op="Const")
    tensor = node.attr["value"].tensor
    tensor.dtype = 1
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    tensor.float_val.extend(float_val)
    data: bytes = graph.SerializeToString()
    return data


def test_tf_constant_of_negative_size_is_a_format_error() -> None:
    # was ValueError from numpy's broadcast
    with pytest.raises(ModelFormatError, match="negative size"):
        read_tf_graph(_tf_graph([-1], [1.0]))


@pytest.mark.parametrize(
    ("dims", "float_val"),
    [([65536, 65536], [1.0]), ([1 << 32, 1 << 32], [])],
    ids=["one-value-broadcast-to-16-GiB", "product-wraps-to-zero"],
)
def test_tf_constant_with_too_many_elements_is_refused_before_allocating(
    dims: list[int], float_val: list[float]
) -> None:
    # a 64-byte graph made numpy allocate 16 GiB; 2**64 elements wrapped to 0 (ValueError)
    with pytest.raises(TooLargeError) as caught:
        read_tf_graph(_tf_graph(dims, float_val))
    assert caught.value.unit == "elements"


def test_caffe_inner_product_weight_that_is_not_a_matrix_is_a_validation_error() -> None:
    # a legacy 4-D InnerProduct weight (2, 1, 3, 3): was ValueError from reshape
    net = net_parameter_class()()
    layer = net.layer.add(name="fc", type="InnerProduct")
    weight, bias = layer.blobs.add(), layer.blobs.add()
    weight.shape.dim.extend([2, 1, 3, 3])
    weight.data.extend([0.0] * 18)
    bias.shape.dim.extend([3])
    bias.data.extend([0.0] * 3)
    with pytest.raises(ModelValidationError, match="not a matrix"):
        read_caffe({"det1.caffemodel": net.SerializeToString()})


def test_onnx_initializer_of_an_unknown_data_type_is_a_validation_error() -> None:
    # data_type is a plain int32 on the wire; naming 127 in the message raised ValueError
    bundle = Path(__file__).resolve().parents[2] / "src/facefaas/data/models/mtcnn"
    files = {
        f"{net}.onnx": (bundle / f"{net}.onnx").read_bytes() for net in ("pnet", "rnet", "onet")
    }
    model = onnx.load_model_from_string(files["pnet.onnx"])
    model.graph.initializer[0].data_type = 127
    files["pnet.onnx"] = model.SerializeToString()
    with pytest.raises(ModelValidationError, match="data type 127"):
        read_onnx_bundle(files)


# --- the zip reader -----------------------------------------------------------------------------


def _zip_of_one(name: str, method: int, corrupt: tuple[bytes, bytes] = (b"", b"")) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("x")
        info.filename, info.compress_type = name, method  # the raw name, even an empty one
        archive.writestr(info, b"hello world" * 10)
    old, new = corrupt
    return out.getvalue().replace(old, new, 1) if old else out.getvalue()


@pytest.mark.parametrize(
    ("method", "corrupt"),
    [
        (zipfile.ZIP_BZIP2, (b"BZh91AY&SY", b"BZh9\0\0\0\0\0\0")),  # OSError: Invalid data stream
        (zipfile.ZIP_LZMA, (b"\x09\x04\x05\x00\x5d", b"\x09\x04\x05\x00\xff")),  # LZMAError
    ],
    ids=["bzip2", "lzma"],
)
def test_zip_entry_with_corrupt_bzip2_or_lzma_data_is_a_format_error(
    method: int, corrupt: tuple[bytes, bytes]
) -> None:
    # was OSError / lzma.LZMAError, not one of ours
    data = _zip_of_one("pnet.onnx", method, corrupt)
    with pytest.raises(ModelFormatError, match="unreadable"):
        read_zip(data)


def test_zip_entry_with_an_empty_name_is_skipped() -> None:
    # ZipInfo.is_dir() indexes the name's last character: was IndexError
    assert read_zip(_zip_of_one("", zipfile.ZIP_STORED)) == {}
