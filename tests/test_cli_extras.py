"""A command whose optional dependencies are not installed says which extra to install."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from facefaas.cli import cli
from facefaas.extras import EXTRA_OF_MODULE, install_hint

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_serve_without_the_server_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)  # as if not installed
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "pip install 'facefaas[server]'" in result.output
    assert "Traceback" not in result.output


def test_a_module_outside_the_extras_is_not_blamed_on_one() -> None:
    assert install_hint("numpy") is None
    message = install_hint("scipy.io")
    assert message is not None and "facefaas[eval]" in message


def test_every_extra_dependency_has_its_module_mapped() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for extra in ("server", "postgres", "eval"):
        for requirement in extras[extra]:
            distribution = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
            module = distribution.replace("-", "_").removeprefix("python_")
            assert EXTRA_OF_MODULE.get(module) == extra, (extra, requirement)
