"""A minimal, wire-compatible subset of Caffe's ``NetParameter`` protobuf, built at run time.

Only what the importer reads is declared (field numbers as in BVLC Caffe's ``caffe.proto``):
``NetParameter.name`` (1), ``.layers`` (2, the V1 layers of old files), ``.layer`` (100);
``LayerParameter.name/type/bottom/top`` (1-4) and ``.blobs`` (7); ``V1LayerParameter.bottom/top``
(2, 3), ``.name`` (4), ``.type`` (5, an enum read as its number) and ``.blobs`` (6);
``BlobProto.num/channels/height/width`` (1-4, legacy shape), ``.data`` (5), ``.shape`` (7),
``.double_data`` (8); ``BlobShape.dim`` (1). Protobuf skips every other field. No generated code,
no dependency on Caffe.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["V1_LAYER_TYPES", "net_parameter_class"]

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_PACKAGE = "facefaas.caffe"

# V1LayerParameter.LayerType numbers of the layers that carry weights.
V1_LAYER_TYPES = {4: "Convolution", 14: "InnerProduct"}

# message -> [(field, number, type, label, message type, packed)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None, bool]]] = {
    "BlobShape": [("dim", 1, _F.TYPE_INT64, _REP, None, True)],
    "BlobProto": [
        ("num", 1, _F.TYPE_INT32, _OPT, None, False),
        ("channels", 2, _F.TYPE_INT32, _OPT, None, False),
        ("height", 3, _F.TYPE_INT32, _OPT, None, False),
        ("width", 4, _F.TYPE_INT32, _OPT, None, False),
        ("data", 5, _F.TYPE_FLOAT, _REP, None, True),
        ("shape", 7, _F.TYPE_MESSAGE, _OPT, "BlobShape", False),
        ("double_data", 8, _F.TYPE_DOUBLE, _REP, None, True),
    ],
    "LayerParameter": [
        ("name", 1, _F.TYPE_STRING, _OPT, None, False),
        ("type", 2, _F.TYPE_STRING, _OPT, None, False),
        ("bottom", 3, _F.TYPE_STRING, _REP, None, False),
        ("top", 4, _F.TYPE_STRING, _REP, None, False),
        ("blobs", 7, _F.TYPE_MESSAGE, _REP, "BlobProto", False),
    ],
    "V1LayerParameter": [
        ("bottom", 2, _F.TYPE_STRING, _REP, None, False),
        ("top", 3, _F.TYPE_STRING, _REP, None, False),
        ("name", 4, _F.TYPE_STRING, _OPT, None, False),
        ("type", 5, _F.TYPE_INT32, _OPT, None, False),
        ("blobs", 6, _F.TYPE_MESSAGE, _REP, "BlobProto", False),
    ],
    "NetParameter": [
        ("name", 1, _F.TYPE_STRING, _OPT, None, False),
        ("layers", 2, _F.TYPE_MESSAGE, _REP, "V1LayerParameter", False),
        ("layer", 100, _F.TYPE_MESSAGE, _REP, "LayerParameter", False),
    ],
}


@cache
def net_parameter_class() -> Any:
    """The message class of ``caffe.NetParameter`` (subset), created once."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="facefaas_caffe.proto", package=_PACKAGE, syntax="proto2"
    )
    for name, fields in _MESSAGES.items():
        message = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name, packed in fields:
            field = message.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.NetParameter"))
