"""`Client`: call a facefaas server and get the library's own types back.

::

    from facefaas import Client

    with Client("http://127.0.0.1:8000", api_key="ffu_...") as client:
        faces = client.detect("group.jpg", min_size=40)      # a facefaas.Faces
        picture = client.annotate("group.jpg", format="png")  # PNG bytes

Images may be bytes, a path, a binary file, a PIL image or a numpy array (the last two are sent
as PNG). Errors come back as the :mod:`facefaas.errors` class the server raised (from the problem
document's ``code``, else its status): a 413 is a :class:`~facefaas.errors.TooLargeError` with
its ``limit``, a 429 a :class:`~facefaas.errors.RateLimitedError` with ``retry_after``, and so
on. A server that cannot be reached, or does not answer in time, is a
:class:`~facefaas.errors.ServerUnreachableError` naming its URL.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from facefaas import errors, functions
from facefaas.faces import Faces
from facefaas.params import DetectionParams

if TYPE_CHECKING:
    from facefaas.jobclient import Job

__all__ = ["Client", "error_from_response"]

DEFAULT_MODEL = "mtcnn"

_BY_STATUS: dict[int, type[errors.FacefaasError]] = {
    400: errors.InputError,
    401: errors.AuthError,
    403: errors.ForbiddenError,
    404: errors.ModelNotFoundError,
    409: errors.ModelConflictError,
    413: errors.TooLargeError,
    415: errors.UnsupportedMediaError,
    422: errors.ParameterError,
    429: errors.RateLimitedError,
    503: errors.OverloadedError,
}


def _classes_by_code() -> dict[str, type[errors.FacefaasError]]:
    table: dict[str, type[errors.FacefaasError]] = {}
    pending: list[type[errors.FacefaasError]] = [errors.FacefaasError]
    while pending:
        cls = pending.pop(0)
        table.setdefault(cls.code, cls)  # the most general class of a code wins
        pending.extend(cls.__subclasses__())
    return table


def _answered_by(response: httpx.Response) -> str:
    """``scheme://host:port`` of the server that answered (``the server`` when unknown)."""
    try:
        url = response.request.url
    except RuntimeError:  # a response made here, not received
        return "the server"
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _not_facefaas(response: httpx.Response, problem: dict[str, Any]) -> str:
    """The message of an error answer that is not a facefaas problem document."""
    said = str(problem.get("detail") or problem.get("title") or response.reason_phrase or "")
    status = f"{response.status_code} ({said})" if said else str(response.status_code)
    return (
        f"{_answered_by(response)} answered {status}, not a facefaas problem document: "
        "is it a facefaas server?"
    )


def error_from_response(response: httpx.Response) -> errors.FacefaasError:
    """The :mod:`facefaas.errors` exception a non-2xx response stands for.

    The class comes from a problem document's ``code``, else from the status. A response that is
    not a facefaas problem document (no JSON object with a ``code``: another server, a proxy)
    keeps the class of its status, and its message says who answered what."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    code = str(problem.get("code") or "")
    if code:
        detail = str(problem.get("detail") or response.reason_phrase or response.status_code)
    else:
        detail = _not_facefaas(response, problem)
    cls = _classes_by_code().get(code) or _BY_STATUS.get(response.status_code, errors.FacefaasError)
    retry = problem.get("retry_after", response.headers.get("retry-after", 1))
    error: errors.FacefaasError
    if issubclass(cls, errors.TooLargeError):
        limit = problem.get("limit")
        unit = str(problem.get("unit", ""))
        error = cls(detail, limit=int(limit) if limit is not None else 0, unit=unit)
    elif issubclass(cls, errors.RateLimitedError | errors.OverloadedError):
        error = cls(detail, retry_after=float(retry))
    else:
        error = cls(detail)
    if error.status != response.status_code or (code and error.code != code):
        # A status or code this client does not know: keep the server's.
        error.status = response.status_code
        error.code = code or error.code
    return error


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, str | os.PathLike):
        return Path(image).read_bytes()
    if hasattr(image, "read"):
        data = image.read()
        if not isinstance(data, bytes):
            raise errors.ParameterError("a file object must be opened in binary mode")
        return data
    from PIL import Image

    from facefaas.decode import load_image

    buffer = io.BytesIO()
    Image.fromarray(load_image(image).pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _query(params: Mapping[str, Any], detection: DetectionParams | None = None) -> dict[str, str]:
    """Query parameters: ``detection`` (if given) overlaid by ``params``; ``None`` left out."""
    merged = {**(detection.to_dict() if detection is not None else {}), **params}
    query: dict[str, str] = {}
    for name, value in merged.items():
        if value is None:
            continue
        if name == "color" and isinstance(value, list | tuple):
            query[name] = "#" + "".join(f"{int(v):02x}" for v in value)
        elif isinstance(value, bool):
            query[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            query[name] = ",".join(str(v) for v in value)
        else:
            query[name] = str(value)
    return query


def _model_files(
    source: str | os.PathLike[str] | bytes | Iterable[str | os.PathLike[str]],
) -> list[tuple[str, tuple[str, bytes]]]:
    """Multipart parts named ``file``, one per file of the model, each with its file name."""
    if isinstance(source, bytes):
        return [("file", ("model", source))]
    if isinstance(source, str | os.PathLike):
        source = [source]
    return [("file", (Path(p).name, Path(p).read_bytes())) for p in source]


class Client:
    """A facefaas server at ``url``. ``api_key`` is sent as ``X-API-Key`` on every call.

    Thread-safe (one ``httpx.Client`` with a connection pool); close it, or use ``with``.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "facefaas-client"}
        if api_key:
            headers["X-API-Key"] = api_key
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- plumbing --------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if key:
            headers["X-API-Key"] = key
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> errors.ServerUnreachableError:
        """The error of a request that got no answer (refused, timed out, broken)."""
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            reason, what = "timeout", "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            reason, what = "connect", "could not be reached"
        elif isinstance(exc, httpx.UnsupportedProtocol):
            reason, what = "url", "is not an http:// or https:// URL"
        elif isinstance(exc, httpx.ProtocolError):
            reason, what = "protocol", "answered with a broken response"
        else:
            reason, what = "connect", "broke the connection"
        message = f"the facefaas server at {self.url} {what} ({detail})"
        return errors.ServerUnreachableError(message, url=self.url, reason=reason)

    def _run(
        self,
        model: str,
        function: str,
        image: Any,
        params: Mapping[str, Any],
        accept: str,
        detection: DetectionParams | None = None,
    ) -> httpx.Response:
        return self._request(
            "POST",
            f"/api/run/{model}/{function}",
            params=_query(params, detection),
            content=_image_bytes(image),
            headers={"Content-Type": "application/octet-stream", "Accept": accept},
        )

    # -- running ---------------------------------------------------------------------------

    def detect_json(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        **options: Any,
    ) -> dict[str, Any]:
        """The server's whole answer: faces, image info, parameters used, timings."""
        response = self._run(model, "detect", image, options, "application/json", params)
        body: dict[str, Any] = response.json()
        return body

    def detect(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        **options: Any,
    ) -> Faces:
        """Faces in one image. ``params``: the :class:`DetectionParams` (default: the model's);
        ``options``: ``min_size``, ``thresholds``, ``factor`` (over ``params``), ``max_faces``,
        ``score_threshold``."""
        return Faces.from_dict(self.detect_json(image, params, model=model, **options))

    def detect_batch(
        self,
        images: Iterable[Any],
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        **options: Any,
    ) -> list[Faces]:
        """Faces of several images in one request; raises the first image's error, if any."""
        files = [("file", (f"image{i}", _image_bytes(img))) for i, img in enumerate(images)]
        body = self._request(
            "POST", f"/api/batch/{model}/detect", params=_query(options, params), files=files
        ).json()
        results: list[Faces] = []
        for item in body["results"]:
            if item["status"] != 200:
                problem = item.get("error") or {}
                fake = httpx.Response(item["status"], json=problem)
                raise error_from_response(fake)
            results.append(Faces.from_dict(item["result"]))
        return results

    def picture(
        self,
        function: str,
        image: Any,
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        format: str = "jpeg",
        **options: Any,
    ) -> bytes:
        """The picture of a picture function of :data:`facefaas.functions.FUNCTIONS`
        (``annotate``, ``blur``, ``pixelate``, ``redact``, ``infer``) with its ``options``
        (e.g. ``color=(255, 0, 0)`` for redact)."""
        chosen = functions.get_function(function)
        if chosen.output != "image":
            pictures = ", ".join(f.name for f in functions.picture_functions())
            raise errors.ParameterError(
                f"{function!r} does not answer with a picture; these do: {pictures}"
            )
        query = {**options, "format": format}
        return self._run(model, chosen.name, image, query, "image/*", params).content

    def annotate(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        format: str = "jpeg",
        **options: Any,
    ) -> bytes:
        """The image with boxes drawn (``thickness``, ``landmarks``, ``scores``, ``color``)."""
        return self.picture("annotate", image, params, model=model, format=format, **options)

    def anonymize(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        method: str = "blur",
        model: str = DEFAULT_MODEL,
        format: str = "jpeg",
        **options: Any,
    ) -> bytes:
        """The image with faces blurred (``method="blur"``), pixelated (``"pixelate"``) or
        filled with a solid colour (``"redact"``, ``color=(r, g, b)``)."""
        anonymizers = [f.name for f in functions.FUNCTIONS if f.anonymizes]
        if method not in anonymizers:
            raise errors.ParameterError(
                f"method must be one of {', '.join(anonymizers)}, got {method!r}"
            )
        return self.picture(method, image, params, model=model, format=format, **options)

    def crops(
        self,
        image: Any,
        params: DetectionParams | None = None,
        *,
        model: str = DEFAULT_MODEL,
        format: str = "png",
        **options: Any,
    ) -> list[bytes]:
        """One encoded chip per face (``size``, ``align``, ``margin`` options)."""
        query = {**options, "format": format}
        body = self._run(model, "crops", image, query, "application/json", params)
        return [base64.b64decode(chip["data"]) for chip in body.json()["crops"]]

    # -- the registry ----------------------------------------------------------------------

    def models(
        self, *, key: str | None = None, page_size: int | None = None
    ) -> list[dict[str, Any]]:
        """Every model the keys sent may see (a private model only with one of its keys),
        following the listing's ``Link: rel="next"`` pages (``page_size`` models each)."""
        models: list[dict[str, Any]] = []
        url: str | None = "/api/models" + (f"?limit={page_size}" if page_size else "")
        while url is not None:
            response = self._request("GET", url, key=key)
            models.extend(response.json())
            url = response.links.get("next", {}).get("url")
        return models

    def model(self, model_id: str, *, key: str | None = None) -> dict[str, Any]:
        """One model's metadata (a private model's only with one of its keys)."""
        info: dict[str, Any] = self._request("GET", f"/api/models/{model_id}", key=key).json()
        return info

    def upload_model(
        self,
        source: str | os.PathLike[str] | bytes | Iterable[str | os.PathLike[str]],
        *,
        name: str | None = None,
        description: str | None = None,
        private: bool = False,
        format: str | None = None,
        upload_token: str | None = None,
    ) -> dict[str, Any]:
        """Upload a model: one file (bytes or a path) or a model's several files (paths, e.g.
        ``det1/det2/det3.caffemodel``); returns ``model_id``, ``admin_key`` (shown once), ..."""
        fields = _query({"name": name, "description": description, "private": private,
                         "format": format})  # fmt: skip
        created: dict[str, Any] = self._request(
            "POST",
            "/api/models",
            key=upload_token,
            files=_model_files(source),
            data=fields,
        ).json()
        return created

    def replace_model(
        self,
        model_id: str,
        source: str | os.PathLike[str] | bytes,
        *,
        admin_key: str | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """New weights under the same id (needs the admin key)."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        fields = _query({"name": name, "description": description})
        info: dict[str, Any] = self._request(
            "PUT",
            f"/api/models/{model_id}",
            key=admin_key,
            files={"file": ("model", data)},
            data=fields,
        ).json()
        return info

    def delete_model(self, model_id: str, *, admin_key: str | None = None) -> None:
        self._request("DELETE", f"/api/models/{model_id}", key=admin_key)

    def set_config(
        self, model_id: str, config: Mapping[str, Any], *, admin_key: str | None = None
    ) -> dict[str, Any]:
        """Set the model's run defaults (``min_size``, ``thresholds``, ...)."""
        saved: dict[str, Any] = self._request(
            "PUT", f"/api/models/{model_id}/config", key=admin_key, json=dict(config)
        ).json()
        return saved

    # -- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        images_or_urls: Iterable[Any],
        *,
        model: str = DEFAULT_MODEL,
        function: str = "detect",
        webhook: str | None = None,
        lifetime: float | None = None,
        **params: Any,
    ) -> Job:
        """Submit a job: ``http(s)://`` strings are fetched by the server, anything else
        (paths, bytes, arrays, PIL images) is uploaded. ``params``: the run parameters.

        Files of zips that are not images are left out of the job, and said: the returned
        :class:`~facefaas.jobclient.Job`'s ``skipped`` is ``{"count": n, "files": [...]}``
        (the first 20 names), or ``None`` when nothing was skipped."""
        import json

        from facefaas.jobclient import Job

        # The parts in input order: each run of URLs one 'inputs' field, each upload a file.
        parts: list[tuple[str, tuple[str | None, bytes | str]]] = []
        urls: list[str] = []
        for item in images_or_urls:
            if isinstance(item, str) and item.startswith(("http://", "https://")):
                urls.append(item)
                continue
            if urls:
                parts.append(("inputs", (None, json.dumps(urls))))
                urls = []
            name = Path(item).name if isinstance(item, str | os.PathLike) else "image"
            parts.append(("file", (name or f"image{len(parts)}", _image_bytes(item))))
        fields: dict[str, Any] = {"model": model, "function": function, "params": params}
        if webhook is not None:
            fields["webhook"] = webhook
        if lifetime is not None:
            fields["lifetime"] = lifetime
        if parts:
            if urls:
                parts.append(("inputs", (None, json.dumps(urls))))
            data = {k: json.dumps(v) if k == "params" else str(v) for k, v in fields.items()}
            response = self._request("POST", "/api/jobs", files=parts, data=data)
        else:
            response = self._request("POST", "/api/jobs", json={**fields, "inputs": urls})
        body = response.json()
        skipped = body.get("skipped")
        return Job(
            self, body["job_id"], body["token"], total=body.get("total"),
            webhook_secret=body.get("webhook_secret"),
            skipped=skipped if isinstance(skipped, dict) else None,
        )  # fmt: skip

    def job(self, job_id: str, token: str) -> Job:
        """A job submitted earlier, by its id and token."""
        from facefaas.jobclient import Job

        return Job(self, job_id, token)

    def ready(self) -> bool:
        """Whether the server answers ``/readyz`` with 200 (False when it cannot be reached)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False
