"""`Job`: a job submitted with :meth:`facefaas.Client.submit`, read and cancelled with its token.

The token (and the webhook's secret) are shown once by the server, at submit; keep them in the
``Job`` (or write them down) to read the job later: ``Job.attach(client, job_id, token)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facefaas.client import Client

__all__ = ["ENDED", "Job"]

ENDED = ("done", "failed", "cancelled")


class Job:
    """A job on a facefaas server (see ``docs/service.md``, "Jobs").

    ``total``, ``webhook_secret`` and ``skipped`` are what the server answered at submit (``None``
    for a job attached later). ``skipped``: the files of zips left out because they are not
    images, ``{"count": n, "files": [the first 20 names]}``, or ``None`` when there were none.
    """

    def __init__(
        self,
        client: Client,
        job_id: str,
        token: str,
        *,
        total: int | None = None,
        webhook_secret: str | None = None,
        skipped: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.id = job_id
        self.token = token
        self.total = total
        self.webhook_secret = webhook_secret
        self.skipped = skipped
        self._last: dict[str, Any] | None = None

    @classmethod
    def attach(cls, client: Client, job_id: str, token: str) -> Job:
        return cls(client, job_id, token)

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def _call(self, method: str, suffix: str = "", **kwargs: Any) -> Any:
        headers = {"X-Job-Token": self.token, **kwargs.pop("headers", {})}
        return self.client._request(method, f"/api/jobs/{self.id}{suffix}", headers=headers,
                                    **kwargs)  # fmt: skip

    def status(self) -> dict[str, Any]:
        """State, counts, progress and per-image errors."""
        body: dict[str, Any] = self._call("GET").json()
        self._last = body
        return body

    @property
    def progress(self) -> float:
        """The share of images ended, 0..1 (asks the server)."""
        return float(self.status()["progress"])

    @property
    def state(self) -> str:
        return str(self.status()["state"])

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll: float = 0.5,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Block until the job ends; its last status. ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if on_status is not None:
                on_status(status)
            if status["state"] in ENDED:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} did not end in {timeout} s")
            time.sleep(poll)

    def results(self) -> list[dict[str, Any]]:
        """One dict per image in input order (``index``, ``source``, ``status``, ``result`` or
        ``error``); waits for the images still running."""
        response = self._call("GET", "/results", timeout=None)
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def result_bytes(self, index: int) -> bytes:
        """The result file of one image (a picture, or JSON)."""
        content: bytes = self._call("GET", f"/results/{index}").content
        return content

    def zip(self) -> bytes:
        """An ended job's result files and ``results.jsonl`` as a zip."""
        content: bytes = self._call("GET", "/results", params={"format": "zip"}).content
        return content

    def cancel(self) -> dict[str, Any]:
        """Cancel the images not started; the job's status."""
        body: dict[str, Any] = self._call("DELETE").json()
        return body
