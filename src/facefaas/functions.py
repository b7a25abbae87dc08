"""The functions facefaas runs on an image: one table, read by every edge.

The HTTP routes and their OpenAPI document, the seed's ``/bytes`` routes, ``/api/info`` (and so
the web page), the CLI's ``--render`` and the client all take their function names, aliases,
media types and options from :data:`FUNCTIONS`. A function is one of three kinds of output:

* ``"json"``: the faces (``detect``);
* ``"image"``: a picture of the whole image made by the entry's ``render`` (``annotate``,
  ``blur``, ``pixelate``, ``redact``, and ``infer``, the seed's picture);
* ``"crops"``: one chip per face, as JSON or a zip (``crops``).

Adding a picture function takes one entry here and one renderer (a function of the decoded
image, the faces and the :class:`~facefaas.request.OutputOptions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from facefaas.errors import ParameterError

if TYPE_CHECKING:
    from PIL import Image

    from facefaas.decode import DecodedImage
    from facefaas.faces import Faces
    from facefaas.request import OutputOptions

__all__ = [
    "FUNCTIONS",
    "Function",
    "OutputKind",
    "Renderer",
    "get_function",
    "names",
    "picture_functions",
]

OutputKind = Literal["json", "image", "crops"]
Renderer = Callable[["DecodedImage", "Faces", "OutputOptions"], "Image.Image"]

_IMAGE_TYPES = ("image/jpeg", "image/png")
_ENCODING = ("format", "quality")


@dataclass(frozen=True)
class Function:
    """One function of the table.

    Attributes:
        name: its name in URLs (``/api/run/{model}/{name}``), the CLI and the client.
        summary: one line for humans (OpenAPI, ``--help``, the web page).
        output: the kind of answer (module docstring).
        options: the :class:`~facefaas.request.OutputOptions` fields it reads.
        aliases: other names that select it (``box`` for ``annotate``).
        anonymizes: it hides the faces (the web page offers these beside the boxes).
        render: the picture of the whole image, for ``output == "image"``.
        encoding: a fixed ``(format, quality)`` that the request cannot change (the seed's JPEG).
    """

    name: str
    summary: str
    output: OutputKind
    options: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    anonymizes: bool = False
    render: Renderer | None = None
    encoding: tuple[Literal["jpeg", "png"], int] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A table entry travels (to Ray replicas) as its name: its renderer is a closure, and
        # the receiving side's entry is the same one.
        return (get_function, (self.name,))

    def picture(self, decoded: DecodedImage, faces: Faces, options: OutputOptions) -> Image.Image:
        """The picture this function draws (:class:`ParameterError` if it draws none)."""
        if self.render is None:
            raise ParameterError(f"function {self.name!r} does not draw a picture")
        return self.render(decoded, faces, options)

    @property
    def media_types(self) -> tuple[str, ...]:
        """What a 200 answer may be, most usual first."""
        if self.output == "json":
            return ("application/json",)
        if self.output == "crops":
            return ("application/json", "application/zip")
        if self.encoding is not None:
            return (f"image/{self.encoding[0]}",)
        return _IMAGE_TYPES

    def to_dict(self) -> dict[str, Any]:
        """The entry as ``/api/info`` shows it."""
        return {
            "name": self.name,
            "summary": self.summary,
            "output": self.output,
            "aliases": list(self.aliases),
            "media_types": list(self.media_types),
            "options": list(self.options),
            "anonymizes": self.anonymizes,
        }


def _annotate(decoded: DecodedImage, faces: Faces, options: OutputOptions) -> Image.Image:
    from facefaas.render import SEED_COLOR, annotate

    return annotate(
        decoded, faces, color=options.color or SEED_COLOR, thickness=options.thickness,
        landmarks=options.landmarks, scores=options.scores,
    )  # fmt: skip


def _seed_picture(decoded: DecodedImage, faces: Faces, options: OutputOptions) -> Image.Image:
    from facefaas.render import annotate

    return annotate(decoded, faces)  # the defaults are the seed's: 1-px pure green


def _anonymizer(method: Literal["blur", "pixelate", "redact"]) -> Renderer:
    def render(decoded: DecodedImage, faces: Faces, options: OutputOptions) -> Image.Image:
        from facefaas.render import REDACT_COLOR, anonymize

        return anonymize(
            decoded, faces, method=method, strength=options.strength, margin=options.margin,
            color=options.color or REDACT_COLOR,
        )  # fmt: skip

    return render


FUNCTIONS: tuple[Function, ...] = (
    Function("detect", "the faces as JSON: boxes, scores, five landmarks", "json"),
    Function(
        "annotate", "the image with a box drawn around each face", "image",
        options=("thickness", "landmarks", "scores", "color", *_ENCODING),
        aliases=("box",), render=_annotate,
    ),
    Function(
        "blur", "the image with every face blurred", "image",
        options=("strength", "margin", *_ENCODING), anonymizes=True, render=_anonymizer("blur"),
    ),
    Function(
        "pixelate", "the image with every face pixelated", "image",
        options=("strength", "margin", *_ENCODING), anonymizes=True,
        render=_anonymizer("pixelate"),
    ),
    Function(
        "redact", "the image with every face filled with a solid colour (cannot be reversed)",
        "image", options=("color", "margin", *_ENCODING), anonymizes=True,
        render=_anonymizer("redact"),
    ),
    Function(
        "crops", "one image per face (chips), as JSON or a zip", "crops",
        options=("size", "align", "margin", "zip", *_ENCODING),
    ),
    Function(
        "infer", "the seed's picture: 1-px green boxes, JPEG quality 80", "image",
        render=_seed_picture, encoding=("jpeg", 80),
    ),
)  # fmt: skip

_BY_NAME: dict[str, Function] = {
    name: function for function in FUNCTIONS for name in (function.name, *function.aliases)
}


def names(*, aliases: bool = False) -> list[str]:
    """Every function's name (and its aliases, with ``aliases=True``), in table order."""
    if aliases:
        return list(_BY_NAME)
    return [function.name for function in FUNCTIONS]


def picture_functions() -> list[Function]:
    """The functions whose answer is a picture of the whole image."""
    return [function for function in FUNCTIONS if function.output == "image"]


def get_function(name: str) -> Function:
    """The function called ``name`` (or one of its aliases).

    Raises:
        ParameterError: no such function; the message lists them.
    """
    function = _BY_NAME.get(name)
    if function is None:
        raise ParameterError(f"no function {name!r}; the functions are {', '.join(names())}")
    return function
