"""`JobFiles`: a job's uploaded inputs and its results, in the data folder or in the database.

In the data folder (``jobs/<id>/inputs/<index>``, ``jobs/<id>/results/<name>``) by default; with
a :class:`~facefaas.registry.blobs.BlobStore` (``shared_files``, the default on PostgreSQL) they
are blobs owned by the job (``inputs/<index>``, ``results/<name>``), so a job submitted through
one replica is run by whichever replica's worker claims it and its results are read through any
replica. An item's ``input_path`` says which: a file's path, or ``blob:inputs/<index>``.

Blobs are written in the caller's transaction: inputs with the job's rows, so no worker can
claim an item whose image is not there yet. A result replaces an earlier one whole (a redone
item). Either way the files live as long as their job: the sweep that deletes an expired job's
rows deletes its files (its blobs in the same transaction); folders of jobs that no longer exist
are removed once untouched for an hour, and blobs carry an expiry no later than their job's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sqlalchemy.engine import Connection

from facefaas.errors import JobNotFoundError
from facefaas.registry.blobs import BlobStore

__all__ = ["BLOB_PREFIX", "JobFiles"]

BLOB_PREFIX = "blob:"  # an item's input_path naming a blob of its job, not a file
ORPHAN_AGE_MS = 3_600_000


def _gone() -> JobNotFoundError:
    return JobNotFoundError("this job's files are gone (the job expired)")


class JobFiles:
    """The files of the jobs of one data folder, or of one database with ``blobs`` (module
    docstring)."""

    def __init__(self, data_dir: Path, blobs: BlobStore | None = None) -> None:
        self.root = Path(data_dir) / "jobs"
        self.blobs = blobs  # None: files in the data folder

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def result_file(self, job_id: str, name: str) -> Path:
        return self.job_dir(job_id) / "results" / name

    # -- inputs ------------------------------------------------------------------------------

    def place_inputs(self, job_id: str, inputs: Mapping[int, bytes]) -> dict[int, str]:
        """Each uploaded input's ``input_path`` (by its index). Files are written now, before
        the job's rows (:meth:`remove_local` if those fail); blobs by :meth:`add_inputs`, in
        the rows' transaction."""
        if self.blobs is not None:
            return {index: f"{BLOB_PREFIX}inputs/{index}" for index in inputs}
        folder = self.job_dir(job_id) / "inputs"
        paths = {}
        for index, data in inputs.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / str(index)).write_bytes(data)
            paths[index] = str(folder / str(index))
        return paths

    def add_inputs(
        self, conn: Connection, job_id: str, inputs: Mapping[int, bytes], expires_at_ms: int
    ) -> None:
        """Store the inputs as blobs in ``conn``'s transaction (nothing in the data folder)."""
        if self.blobs is not None:
            files = {f"inputs/{index}": data for index, data in inputs.items()}
            self.blobs.add(conn, job_id, files, kind="job-input", expires_at_ms=expires_at_ms)

    def read_input(self, job_id: str, input_path: str) -> bytes:
        """The bytes at an item's ``input_path``. Raises JobNotFoundError when they are gone."""
        if input_path.startswith(BLOB_PREFIX) and self.blobs is not None:
            data = self.blobs.read(job_id, input_path.removeprefix(BLOB_PREFIX))
            if data is None:
                raise _gone()
            return data
        try:
            return Path(input_path).read_bytes()
        except FileNotFoundError:
            raise _gone() from None

    # -- results -----------------------------------------------------------------------------

    def write_result_file(self, job_id: str, name: str, data: bytes) -> None:
        """Write a result into the data folder atomically (a redone item replaces it whole)."""
        folder = self.job_dir(job_id) / "results"
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add_result(
        self, conn: Connection, job_id: str, name: str, data: bytes, expires_at_ms: int
    ) -> None:
        """Store a result as a blob in ``conn``'s transaction, replacing an earlier one."""
        if self.blobs is not None:
            self.blobs.add(
                conn, job_id, {f"results/{name}": data},
                kind="job-result", expires_at_ms=expires_at_ms, replace=True,
            )  # fmt: skip

    def read_result(self, job_id: str, name: str) -> bytes:
        """A result's bytes. Raises JobNotFoundError when it is gone."""
        if self.blobs is not None:
            data = self.blobs.read(job_id, f"results/{name}")
        else:
            try:
                data = self.result_file(job_id, name).read_bytes()
            except FileNotFoundError:
                data = None
        if data is None:
            raise JobNotFoundError(f"the result {name!r} of this job is gone")
        return data

    # -- deleting ----------------------------------------------------------------------------

    def delete(self, conn: Connection, job_id: str) -> None:
        """Delete the job's blobs in ``conn``'s transaction (the one deleting its rows)."""
        if self.blobs is not None:
            self.blobs.delete(conn, job_id)

    def remove_local(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def sweep(self, now_ms: int, existing: Callable[[Iterable[str]], set[str]]) -> None:
        """Remove folders of jobs that no longer exist (``existing`` says which of some ids
        do) once untouched for an hour, and expired blobs: a result written by a worker after
        its job was swept."""
        if self.blobs is not None:
            self.blobs.sweep()
        if not self.root.is_dir():
            return
        folders = {p.name: p for p in self.root.iterdir() if p.is_dir()}
        if not folders:
            return
        known = existing(list(folders))
        for name, path in folders.items():
            if name not in known and path.stat().st_mtime * 1000 < now_ms - ORPHAN_AGE_MS:
                shutil.rmtree(path, ignore_errors=True)
