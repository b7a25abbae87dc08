"""Jobs: ``POST /api/jobs`` (many images, by URL, as uploads or one zip), then their status,
results and cancellation with the job's token.

A job is submitted with the model's usage key when the model is private (as a run is); from
then on the job's own token (``X-Job-Token``, or ``Authorization: Bearer``), shown once in the
202, reads or cancels it. A missing token is a 401; a wrong one a 404, as for a job that never
existed or expired. The worker and the queue: :mod:`facefaas.server.jobs`, :mod:`facefaas.jobs`.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from facefaas import functions
from facefaas.errors import (
    AuthError,
    InputError,
    JobNotFoundError,
    ParameterError,
    RateLimitedError,
    TooLargeError,
    UnsupportedMediaError,
)
from facefaas.fetch import check_target, sniff_image
from facefaas.jobs import JobInput, JobStore, NewJob
from facefaas.models.builtin import DEFAULT_MODEL
from facefaas.server.auth import authorize_use
from facefaas.server.inputs import Part, media_type, read_body, read_parts
from facefaas.server.jobs import JobWorker, job_request
from facefaas.server.problems import problem_response
from facefaas.server.remote import fetch_policy
from facefaas.server.routes.deps import Keys, ServiceDep, rate_limited
from facefaas.server.service import Service

__all__ = ["router"]

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(rate_limited)])

_MAX_URL = 2048
_RESULTS_POLL_SECONDS = 0.25
_MAX_FIELDS = 100  # multipart parts besides the inputs
_ZIP_MAGIC = b"PK\x03\x04"

_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'JSON {"model": "mtcnn", "function": "detect", "params": {...}, '
        '"inputs": ["https://...", ...], "webhook": "https://...", "lifetime": 3600}; or '
        "multipart with one part per image (or one zip of images) and those fields "
        "(params as JSON text, inputs as a JSON list or one URL a line); or a zip body",
        "content": {"application/json": {}, "multipart/form-data": {}, "application/zip": {}},
    }
}


def _worker(service: Service) -> JobWorker:
    if service.jobs is None:
        from facefaas.errors import OverloadedError

        raise OverloadedError("the service is starting", retry_after=1)
    return service.jobs


def _store(service: Service) -> JobStore:
    return _worker(service).store


def job_token(request: Request) -> str:
    """The job token presented: ``X-Job-Token``, or ``Authorization: Bearer`` (401 if none)."""
    token = request.headers.get("x-job-token", "").strip()
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    if not token:
        raise AuthError("a job is read with its token: send X-Job-Token or Authorization: Bearer")
    return token


Token = Annotated[str, Depends(job_token)]


def _unzip(
    data: bytes,
    limit_items: int,
    limit_bytes: int,
    skipped: list[str],
    zip_name: str | None = None,
) -> list[JobInput]:
    """The images of a zip, in path order, each named by its path in the zip (after the zip's
    own name, when it has one: ``photos.zip/x/img.jpg``). Folders and hidden files are
    passed over; other files that are not images are added to ``skipped`` (the answer names
    them). A zip with no image at all is refused, saying what it held."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError("the zip is not a readable zip file") from None
    found: list[JobInput] = []
    total = 0
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or not name or name.startswith(".") or "__MACOSX" in info.filename:
                continue
            total += info.file_size
            if total > limit_bytes:
                raise TooLargeError(
                    f"the zip's images are over {limit_bytes} bytes", limit=limit_bytes,
                    unit="bytes",
                )  # fmt: skip
            with archive.open(info) as member:
                content = member.read(limit_bytes + 1)
            if len(content) > info.file_size:  # the header lied about the size
                raise InputError(f"zip member {name!r} is larger than its header says")
            if sniff_image(content[:16]) is None:
                skipped.append(info.filename)
                continue
            source = f"{zip_name}/{info.filename}" if zip_name else info.filename
            found.append(JobInput(source=source, data=content))
            if len(found) > limit_items:
                break
    if not found:
        names = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        other = "1 other file" if len(skipped) == 1 else f"{len(skipped)} other files"
        held = f"{other} ({names})" if skipped else "nothing"
        raise InputError(f"the zip holds no images, only {held}")
    return found


def _as_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"'{what}' must be a list of URLs")
    return value


@dataclass
class _Submission:
    fields: dict[str, Any]
    inputs: list[JobInput]
    skipped: list[str] = field(default_factory=list)  # files of zips that are not images


async def _read_submission(request: Request, service: Service) -> _Submission:
    """The fields and inputs of a submission, within the upload limits."""
    settings = service.settings
    limit = settings.job_max_upload_bytes
    kind = media_type(request)
    fields: dict[str, Any]
    uploads: list[JobInput] = []
    skipped: list[str] = []
    if kind == "application/json":
        try:
            fields = json.loads(await read_body(request, settings.max_body_bytes, "job"))
        except (ValueError, UnicodeDecodeError):
            raise InputError("the body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise InputError("the JSON body must be an object")
    elif kind == "multipart/form-data":
        parts = await read_parts(
            request, limit, what="job upload", max_parts=settings.job_max_items + _MAX_FIELDS
        )
        return _multipart_submission(parts, settings.job_max_items, limit)
    elif kind in ("application/zip", "application/x-zip-compressed"):
        body = await read_body(request, limit, "job upload")
        fields = dict(request.query_params)
        uploads = _unzip(body, settings.job_max_items, limit, skipped)
    else:
        raise UnsupportedMediaError(
            f"content type {kind!r} is not accepted for a job; send application/json, "
            "multipart/form-data or application/zip"
        )
    return _Submission(fields, _urls(fields.get("inputs"), "inputs") + uploads, skipped)


def _urls(value: Any, what: str) -> list[JobInput]:
    inputs = [JobInput(source=url) for url in _as_list(value, what)]
    for url in inputs:
        if len(url.source) > _MAX_URL:
            raise InputError(f"an input URL is longer than {_MAX_URL} characters")
    return inputs


def _multipart_submission(parts: list[Part], limit_items: int, limit_bytes: int) -> _Submission:
    """Fields, and the inputs in the order their parts came: ``inputs`` fields (a JSON list or
    one URL a line; a text part ``file`` holding URLs, as the seed's multipart took them),
    image files, and zips (their images in name order, where the zip came)."""
    fields: dict[str, Any] = {}
    inputs: list[JobInput] = []
    skipped: list[str] = []
    for name, value in parts:
        if isinstance(value, str):
            if name in ("inputs", "file"):
                inputs += _urls(value, name)
            elif name in fields:
                raise InputError(f"multipart field {name!r} is given twice")
            else:
                fields[name] = value
            continue
        filename, data = value
        if data.startswith(_ZIP_MAGIC):
            inputs += _unzip(data, limit_items, limit_bytes, skipped, filename)
        else:
            inputs.append(JobInput(source=filename or f"upload-{len(inputs)}", data=data))
    return _Submission(fields, inputs, skipped)


def _params(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError("'params' must be a JSON object") from None
    if not isinstance(value, dict):
        raise InputError("'params' must be a JSON object")
    return value


@router.post("", status_code=202, summary="Submit a job of many images", openapi_extra=_SUBMIT_BODY)
async def submit(request: Request, service: ServiceDep, keys: Keys) -> JSONResponse:
    """Answers 202 with the job's id, its token (shown once: it reads and cancels the job) and,
    with a webhook, the webhook's signing secret (shown once)."""
    settings = service.settings
    store = _store(service)
    owner = f"address:{request.client.host if request.client else 'unknown'}"
    active = await run_in_threadpool(store.active_jobs, owner)
    if active >= settings.job_max_active_per_client:
        raise RateLimitedError(
            f"{active} unfinished jobs from this client; the limit is "
            f"{settings.job_max_active_per_client}",
            retry_after=settings.retry_after * 10,
        )
    submission = await _read_submission(request, service)
    fields, inputs = submission.fields, submission.inputs
    model_id = str(fields.get("model") or DEFAULT_MODEL)
    function = str(fields.get("function") or "detect")
    functions.get_function(function)  # 422 naming the functions when unknown
    record = await run_in_threadpool(service.registry.get, model_id)
    authorize_use(record, keys)
    params = _params(fields.get("params"))
    job_request(function, params, record)  # validated as the run routes validate theirs
    if not inputs:
        raise InputError("a job needs inputs: URLs ('inputs'), image files, or a zip of images")
    if len(inputs) > settings.job_max_items:
        raise TooLargeError(
            f"{len(inputs)} images in one job; the limit is {settings.job_max_items}",
            limit=settings.job_max_items,
            unit="images",
        )
    try:
        lifetime = float(fields.get("lifetime") or settings.job_lifetime)
    except (TypeError, ValueError):
        raise ParameterError("'lifetime' must be a number of seconds") from None
    if not 0 < lifetime <= settings.job_max_lifetime:
        raise ParameterError(f"'lifetime' must be in (0, {settings.job_max_lifetime:g}] seconds")
    webhook = fields.get("webhook")
    if webhook is not None:
        if not isinstance(webhook, str) or len(webhook) > _MAX_URL:
            raise InputError("'webhook' must be a URL")
        await run_in_threadpool(check_target, webhook, fetch_policy(settings))  # 422 if refused
    job = NewJob(
        owner=owner, model_id=record.id, function=function, params=params,
        lifetime=lifetime, webhook_url=webhook,
    )  # fmt: skip
    job_id, token, secret = await run_in_threadpool(store.create, job, inputs)
    _worker(service).wake.set()
    location = f"/api/jobs/{job_id}"
    body: dict[str, Any] = {
        "job_id": job_id,
        "token": token,
        "status_url": location,
        "results_url": f"{location}/results",
        "total": len(inputs),
    }
    if secret is not None:
        body["webhook_secret"] = secret
    if submission.skipped:  # said, not silently dropped
        body["skipped"] = {"count": len(submission.skipped), "files": submission.skipped[:20]}
    return JSONResponse(body, status_code=202, headers={"Location": location})


@router.get("/{job_id}", summary="A job's state, counts, progress and errors")
async def status(job_id: str, token: Token, service: ServiceDep) -> JSONResponse:
    store = _store(service)
    await run_in_threadpool(store.authorize, job_id, token)
    return JSONResponse(await run_in_threadpool(store.status, job_id))


@router.delete("/{job_id}", summary="Cancel a job")
async def cancel(job_id: str, token: Token, service: ServiceDep) -> JSONResponse:
    """Items not started are cancelled (those this service had claimed ahead too); items
    running finish, and the job ends ``cancelled`` once they have. Answers the job's status."""
    worker = _worker(service)
    await run_in_threadpool(worker.store.authorize, job_id, token)
    worker.job_cancelled(job_id)  # first: the images it claimed ahead are cancelled, not run
    return JSONResponse(await run_in_threadpool(worker.store.cancel, job_id))


def _line(store: JobStore, job_id: str, item: dict[str, Any]) -> bytes:
    line: dict[str, Any] = {"index": item["idx"], "source": item["source"]}
    state = item["state"]
    line["status"] = state
    if state == "done":
        result = item["result"] or {}
        if result.get("media_type") == "application/json":
            line["result"] = json.loads(store.read_result(job_id, result["file"]))
        else:
            line["result"] = {
                "media_type": result.get("media_type"),
                "faces": result.get("faces"),
                "url": f"/api/jobs/{job_id}/results/{item['idx']}",
            }
    elif state == "failed":
        line["error"] = item["error"]
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


async def _stream(store: JobStore, job_id: str, total: int) -> AsyncIterator[bytes]:
    """One line per item in input order, each sent as soon as it and those before it ended."""
    sent = 0
    while sent < total:
        items = await run_in_threadpool(store.items, job_id, sent)
        if not items:
            return  # deleted meanwhile (expired)
        for item in items:
            if item["state"] in ("queued", "running"):
                break
            yield await run_in_threadpool(_line, store, job_id, item)
            sent += 1
        else:
            continue
        await asyncio.sleep(_RESULTS_POLL_SECONDS)


@router.get("/{job_id}/results", summary="A job's results, as JSON Lines or a zip")
async def results(
    job_id: str,
    token: Token,
    service: ServiceDep,
    format: Annotated[Literal["jsonl", "zip"], Query()] = "jsonl",
) -> Response:
    """JSON Lines, one line per image in input order (``index``, ``source``, ``status``, and
    ``result`` or ``error``), streamed as items finish. ``format=zip``: a finished job's result
    files (pictures, or JSON) and ``results.jsonl``."""
    store = _store(service)
    row = await run_in_threadpool(store.authorize, job_id, token)
    if format == "jsonl":
        return StreamingResponse(
            _stream(store, job_id, int(row["total"])), media_type="application/jsonl"
        )
    if row["state"] in ("queued", "running"):
        return problem_response(
            409, "the job has not ended yet; its zip is made when it has", code="job-running",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    data = await run_in_threadpool(_zip, store, job_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}.zip"'},
    )


def _zip(store: JobStore, job_id: str) -> bytes:
    buffer = io.BytesIO()
    lines: list[bytes] = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for item in store.items(job_id):
            lines.append(_line(store, job_id, item))
            result = item["result"]
            if item["state"] == "done" and result:
                archive.writestr(result["file"], store.read_result(job_id, result["file"]))
        archive.writestr("results.jsonl", b"".join(lines))
    return buffer.getvalue()


@router.get("/{job_id}/results/{index}", summary="One image's result file")
async def result_file(job_id: str, index: int, token: Token, service: ServiceDep) -> Response:
    store = _store(service)
    await run_in_threadpool(store.authorize, job_id, token)
    items = await run_in_threadpool(store.items, job_id, index)
    if not items or items[0]["idx"] != index or items[0]["state"] != "done":
        raise JobNotFoundError(f"no result for image {index} of this job (yet)")
    result = items[0]["result"]
    data = await run_in_threadpool(store.read_result, job_id, result["file"])
    return Response(data, media_type=result["media_type"])
