"""Who may read the registry's files: only the user the service runs as.

Folders are made ``0700`` and files ``0600``: the SQLite database (SQLite gives its ``-wal`` and
``-shm`` files the database file's mode), the model store and every bundle in it. ``facefaas
serve`` also sets the umask to ``077``, so files written by others (Prometheus' multiprocess
samples, lock files) are private too. A data folder that exists already keeps its mode (the
operator chose it), but what facefaas writes inside it is still private.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import sqlalchemy as sa

__all__ = ["FILE_MODE", "FOLDER_MODE", "private_folder", "private_sqlite_file", "private_tree"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) as ``0700``; an existing folder keeps its mode."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    return path


def private_tree(path: Path) -> None:
    """Make the folder ``path`` and everything in it ``0700`` (folders) or ``0600`` (files)."""
    os.chmod(path, FOLDER_MODE)
    for parent, folders, files in os.walk(path):
        for name in folders:
            os.chmod(os.path.join(parent, name), FOLDER_MODE)
        for name in files:
            os.chmod(os.path.join(parent, name), FILE_MODE)


def private_sqlite_file(url: str) -> None:
    """For a SQLite file URL: create the database file as ``0600`` before SQLite does (SQLite
    gives its ``-wal`` and ``-shm`` files the same mode), and tighten an existing one and its
    companions. Other databases are left alone."""
    parsed = sa.engine.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(companion, FILE_MODE)
