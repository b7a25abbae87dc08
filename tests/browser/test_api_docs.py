"""The pages under the service's own Content-Security-Policy, in headless Chromium: Swagger UI at
``/docs`` renders every operation, and the web page still detects, with no CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(180)


def _watch_csp(tab: Any) -> list[str]:
    violations: list[str] = []
    tab.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return violations


def test_api_docs_render_every_operation_under_the_policy(
    browser_context: Any, live_server: Any
) -> None:
    operations = sum(
        len(methods)
        for methods in httpx.get(f"{live_server.url}/openapi.json").json()["paths"].values()
    )
    tab = browser_context.new_page()
    violations = _watch_csp(tab)
    try:
        response = tab.goto(f"{live_server.url}/docs")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        tab.wait_for_selector(".opblock-summary-path", timeout=30_000)
        assert tab.locator(".opblock").count() == operations
        tab.locator(".opblock-summary").first.click()  # an operation opens: scripts do run
        tab.wait_for_selector(".opblock.is-open .opblock-body", timeout=10_000)
        assert violations == []
    finally:
        tab.close()


def test_web_page_detects_under_the_policy_the_server_sends(
    browser_context: Any, live_server: Any, astronaut: Path
) -> None:
    tab = browser_context.new_page()
    violations = _watch_csp(tab)
    try:
        response = tab.goto(f"{live_server.url}/")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        tab.wait_for_selector("html[data-ready=true]")
        with tab.expect_response(lambda r: "/api/run/" in r.url) as answer:
            tab.set_input_files("#file-input", astronaut)
        assert answer.value.status == 200
        tab.wait_for_selector("#overlay .face")
        tab.click("#tab-models")
        tab.wait_for_selector("#models-body tr[data-model-id=mtcnn]")
        assert violations == []
    finally:
        tab.close()
