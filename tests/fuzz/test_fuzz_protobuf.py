"""Fuzz the protobuf readers: ONNX bundles, TensorFlow frozen graphs, Caffe models.

Seeds are real model files: the shipped bundle's ``pnet/rnet/onet.onnx`` always, the seed's
``mtcnn.pb`` and the authors' ``det1``-``det3.caffemodel`` from ``../shared`` when present (those
targets skip otherwise). Each is mutated at the byte level and, since a mutated protobuf mostly
fails to parse, also field by field (sizes, types, names and tensor data changed, fields deleted
or duplicated), so the importers' own checks are reached.

Property: each reader (and its format sniffer) gives weights or one of `facefaas.errors`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from facefaas.errors import FacefaasError
from facefaas.models.importers import caffe, onnx_bundle
from facefaas.models.importers._caffeproto import net_parameter_class
from facefaas.models.importers._tfproto import graph_def_class
from facefaas.models.importers.tf_graph import looks_like_tf_graph, read_tf_graph
from fuzz.mutate import budget, mutated, proto_mutated

BUNDLE = Path(__file__).resolve().parents[2] / "src" / "facefaas" / "data" / "models" / "mtcnn"
SHARED = Path(__file__).resolve().parents[3] / "shared"
TF_GRAPH = SHARED / "data" / "mtcnn.pb"
CAFFE = SHARED / "models" / "caffe-original"


def check_reads_or_refuses(read: Callable[[], Any], sniff: Callable[[], bool]) -> None:
    """The fuzz property, also used by the regression tests."""
    assert isinstance(sniff(), bool)
    with contextlib.suppress(FacefaasError):
        read()


@cache
def onnx_files() -> dict[str, bytes]:
    return {
        f"{net}.onnx": (BUNDLE / f"{net}.onnx").read_bytes() for net in ("pnet", "rnet", "onet")
    }


@cache
def onnx_models() -> tuple[onnx.ModelProto, ...]:
    return tuple(onnx.load_model_from_string(data) for data in onnx_files().values())


def _read_onnx(name: str, data: bytes) -> Callable[[], Any]:
    return lambda: onnx_bundle.read_onnx_bundle({**onnx_files(), name: data})


_ONNX_NAMES = st.sampled_from(["pnet.onnx", "rnet.onnx", "onet.onnx", "net.onnx", "lnet.onnx"])


@pytest.mark.timeout(300)
@budget(2500)
@given(_ONNX_NAMES, st.one_of(proto_mutated(onnx_models()), mutated(list(onnx_files().values()))))
def test_mutated_onnx_networks_import_or_raise_our_errors(name: str, data: bytes) -> None:
    check_reads_or_refuses(_read_onnx(name, data), lambda: onnx_bundle.looks_like_onnx(data))


@cache
def tf_seeds() -> tuple[bytes, Any]:
    if not TF_GRAPH.is_file():
        pytest.skip(f"{TF_GRAPH} is absent")
    data = TF_GRAPH.read_bytes()
    graph = graph_def_class()()
    graph.ParseFromString(data)
    return data, graph


@st.composite
def tf_graphs(draw: st.DrawFn) -> bytes:
    data, graph = tf_seeds()
    if draw(st.booleans()):
        return draw(mutated([data]))
    return draw(proto_mutated([graph]))


@pytest.mark.timeout(300)
@budget(350)
@given(tf_graphs())
def test_mutated_tensorflow_graphs_import_or_raise_our_errors(data: bytes) -> None:
    check_reads_or_refuses(lambda: read_tf_graph(data), lambda: looks_like_tf_graph(data))


@cache
def caffe_seeds() -> dict[str, tuple[bytes, Any]]:
    if not (CAFFE / "det3.caffemodel").is_file():
        pytest.skip(f"{CAFFE} is absent")
    seeds = {}
    for name in ("det1.caffemodel", "det2.caffemodel", "det3.caffemodel"):
        data = (CAFFE / name).read_bytes()
        net = net_parameter_class()()
        net.ParseFromString(data)
        seeds[name] = (data, net)
    return seeds


@st.composite
def caffe_models(draw: st.DrawFn) -> dict[str, bytes]:
    """The three networks, one of them mutated (with its prototxt, sometimes)."""
    seeds = caffe_seeds()
    name = draw(st.sampled_from(sorted(seeds)))
    data, net = seeds[name]
    files = {n: d for n, (d, _) in seeds.items()}
    files[name] = draw(st.one_of(mutated([data]), proto_mutated([net])))
    if draw(st.booleans()):
        prototxt = name.replace(".caffemodel", ".prototxt")
        files[prototxt] = draw(mutated([(CAFFE / prototxt).read_bytes()]))
    return files


@pytest.mark.timeout(300)
@budget(1600)
@given(caffe_models())
def test_mutated_caffe_models_import_or_raise_our_errors(files: dict[str, bytes]) -> None:
    sniff = all(isinstance(caffe.looks_like_caffemodel(d), bool) for d in files.values())
    check_reads_or_refuses(lambda: caffe.read_caffe(files), lambda: sniff)
