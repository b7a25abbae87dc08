"""A minimal, wire-compatible subset of TensorFlow's ``GraphDef`` protobuf, built at run time.

Only the fields the importer reads are declared (field numbers as in TensorFlow's
``graph.proto``, ``node_def.proto``, ``attr_value.proto``, ``tensor.proto``); protobuf skips the
rest. Building the descriptor here avoids generated code tied to one protoc version and any
dependency on TensorFlow.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["graph_def_class"]

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message -> [(field, number, type, label, message type)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    "TensorShapeDim": [
        ("size", 1, _F.TYPE_INT64, _OPT, None),
        ("name", 2, _F.TYPE_STRING, _OPT, None),
    ],
    "TensorShape": [("dim", 2, _F.TYPE_MESSAGE, _REP, "TensorShapeDim")],
    "Tensor": [
        ("dtype", 1, _F.TYPE_INT32, _OPT, None),
        ("tensor_shape", 2, _F.TYPE_MESSAGE, _OPT, "TensorShape"),
        ("tensor_content", 4, _F.TYPE_BYTES, _OPT, None),
        ("float_val", 5, _F.TYPE_FLOAT, _REP, None),
        ("int_val", 7, _F.TYPE_INT32, _REP, None),
    ],
    "AttrValue": [
        ("s", 2, _F.TYPE_BYTES, _OPT, None),
        ("i", 3, _F.TYPE_INT64, _OPT, None),
        ("f", 4, _F.TYPE_FLOAT, _OPT, None),
        ("tensor", 8, _F.TYPE_MESSAGE, _OPT, "Tensor"),
    ],
    "NodeDef": [
        ("name", 1, _F.TYPE_STRING, _OPT, None),
        ("op", 2, _F.TYPE_STRING, _OPT, None),
        ("input", 3, _F.TYPE_STRING, _REP, None),
        ("attr", 5, _F.TYPE_MESSAGE, _REP, "NodeDef.AttrEntry"),
    ],
    "GraphDef": [("node", 1, _F.TYPE_MESSAGE, _REP, "NodeDef")],
}


@cache
def graph_def_class() -> Any:
    """The message class of ``tensorflow.GraphDef`` (subset), created once."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="facefaas_tf_graph.proto", package="facefaas.tf", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = message.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".facefaas.tf.{type_name}"
        if name == "NodeDef":  # map<string, AttrValue> attr = 5
            entry = message.nested_type.add(name="AttrEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_OPT)
            entry.field.add(
                name="value", number=2, type=_F.TYPE_MESSAGE, label=_OPT,
                type_name=".facefaas.tf.AttrValue",
            )  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("facefaas.tf.GraphDef"))
