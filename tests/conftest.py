"""Shared test fixtures.

Third-party evaluation images stay in ``../shared`` (licences): tests that need them take the
``shared`` fixture, which skips with the reason when that folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEFAAS_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ``../shared`` folder (eval images, golden outputs, model files)."""
    if not (SHARED / "data" / "mtcnn.pb").is_file():
        pytest.skip(f"{SHARED} is absent: third-party test data is read from there, never shipped")
    return SHARED
