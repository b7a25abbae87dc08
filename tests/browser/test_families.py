"""The web page and detector families: the picker groups models by family, the Parameters
fieldset is the chosen model's family's (made from ``GET /api/info``'s ``families``), and a
CenterFace model detects, renders and uploads like an MTCNN one. Real server, real headless
Chromium (see conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "src" / "facefaas" / "data" / "reference" / "astronaut.jpg"
CENTERFACE_ONNX = REPO / "src" / "facefaas" / "data" / "models" / "centerface" / "centerface.onnx"


def _run(page: Any, trigger: Any, function: str = "detect") -> Any:
    """Run ``trigger``; the response of the ``POST /api/run/.../{function}`` it causes, once the
    page shows the result."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and f"/{function}?" in r.url
    ) as response:
        trigger()
    assert response.value.status == 200, response.value.text()
    page.wait_for_selector("#stage[data-state=done]")
    return response.value


def _query(response: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.url).query)


def _choose_centerface(page: Any) -> Any:
    """Pick the built-in CenterFace model once the families are known (the model list and
    ``GET /api/info`` come in either order)."""
    page.wait_for_selector("#model-select option[value=centerface]", state="attached")
    page.wait_for_selector("#params-centerface", state="attached")
    page.select_option("#model-select", "centerface")


def test_picker_groups_the_models_by_family(page: Any) -> None:
    page.wait_for_selector("#model-select optgroup[label=CenterFace]", state="attached")

    groups = page.eval_on_selector_all(
        "#model-select optgroup",
        "gs => gs.map(g => [g.label, [...g.children].map(o => o.value)])",
    )
    assert groups[0] == ["MTCNN", ["mtcnn"]]  # the default model, first
    assert ["CenterFace", ["centerface"]] in groups
    assert page.input_value("#model-select") == "mtcnn"
    assert "built-in" in page.inner_text("#model-select option[value=centerface]")
    # Each family's summary (from GET /api/info) comes atop its parameters.
    assert page.inner_text("#family-summary").startswith("The seed's cascade (Zhang et al. 2016)")
    _choose_centerface(page)
    assert page.inner_text("#family-summary").startswith("CenterFace (Xu et al. 2019)")


def test_centerface_shows_its_own_parameters_and_mtcnn_comes_back(page: Any) -> None:
    assert page.locator("#params-mtcnn").is_visible()
    _choose_centerface(page)

    assert page.locator("#params-mtcnn").is_hidden()
    assert page.locator("#min-size").is_hidden()
    assert page.locator("#params-centerface").is_visible()
    assert page.inner_text("fieldset.params legend") == "Parameters (CenterFace)"
    threshold = page.get_by_label("Score threshold")
    assert threshold.input_value() == "0.5"
    assert [threshold.get_attribute(a) for a in ("min", "max", "step")] == ["0.01", "1", "0.01"]
    assert page.get_attribute("#centerface-threshold-range", "min") == "0.01"
    nms = page.get_by_label("Overlap threshold")
    assert nms.input_value() == "0.3"
    assert [nms.get_attribute(a) for a in ("min", "max")] == ["0.05", "1"]
    size = page.get_by_label("Input size")
    assert size.input_value() == ""  # full resolution
    assert size.locator("option").all_inner_texts() == [
        "Full resolution",
        "640 px",
        "960 px",
        "1280 px",
        "1920 px",
    ]
    assert "smaller is faster and misses small faces" in page.inner_text(
        f"#{size.get_attribute('aria-describedby')}"
    )
    # The slider follows its number input.
    threshold.fill("0.42")
    assert page.input_value("#centerface-threshold-range") == "0.42"

    page.select_option("#model-select", "mtcnn")
    assert page.locator("#params-mtcnn").is_visible()
    assert page.locator("#params-centerface").is_hidden()
    assert page.inner_text("fieldset.params legend") == "Parameters (MTCNN)"
    assert page.input_value("#min-size") == "20"
    assert page.locator("#reset-params").is_visible()


def test_centerface_finds_the_astronaut_and_its_threshold_reaches_the_server(page: Any) -> None:
    page.set_input_files("#file-input", ASTRONAUT)
    page.wait_for_selector("#stage[data-state=done]")
    response = _run(page, lambda: _choose_centerface(page))

    query = _query(response)
    assert query == {"threshold": ["0.5"], "nms_threshold": ["0.3"]}  # full resolution: omitted
    result = response.json()
    assert result["model_id"] == "centerface"
    assert len(result["faces"]) == 1
    assert page.locator("#overlay .face").count() == 1
    assert page.locator("#overlay .face .landmark").count() == 5
    assert page.inner_text("#face-count") == "1 face"
    page.hover("#overlay .face .box")
    assert page.inner_text("#tooltip") == f"Face 1 · score {result['faces'][0]['score']:.4f}"

    threshold = page.get_by_label("Score threshold")
    threshold.fill("1")
    response = _run(page, lambda: threshold.press("Enter"))
    assert _query(response)["threshold"] == ["1"]
    assert response.json()["faces"] == []
    assert page.locator("#overlay .face").count() == 0
    assert page.inner_text("#face-count") == "0 faces"
    message = page.inner_text("#no-faces")
    assert message.startswith("No faces found") and "lower score threshold" in message

    response = _run(page, lambda: page.click("#reset-params"))
    assert _query(response)["threshold"] == ["0.5"]
    assert len(response.json()["faces"]) == 1
    assert page.locator("#overlay .face").count() == 1
    assert page.locator("#no-faces").is_hidden()


def test_centerface_input_size_and_overlap_reach_the_server(page: Any) -> None:
    page.set_input_files("#file-input", ASTRONAUT)
    page.wait_for_selector("#stage[data-state=done]")
    _run(page, lambda: _choose_centerface(page))

    response = _run(page, lambda: page.get_by_label("Input size").select_option("640"))
    assert _query(response)["input_size"] == ["640"]
    assert response.json()["parameters"]["input_size"] == 640
    page.get_by_label("Overlap threshold").fill("0.5")
    response = _run(page, lambda: page.click("#detect-button"))
    assert _query(response)["nms_threshold"] == ["0.5"]
    assert len(response.json()["faces"]) == 1

    # An invalid value is named before anything is sent.
    page.get_by_label("Score threshold").fill("0")
    page.click("#detect-button")
    assert "Score threshold: enter a number from 0.01 to 1." in page.inner_text("#detect-status")

    # Back on MTCNN only MTCNN's parameters travel.
    page.get_by_label("Score threshold").fill("0.5")
    response = _run(page, lambda: page.select_option("#model-select", "mtcnn"))
    assert sorted(_query(response)) == ["factor", "min_size", "thresholds"]


def test_centerface_blurs_pixelates_and_redacts(page: Any) -> None:
    page.set_input_files("#file-input", ASTRONAUT)
    page.wait_for_selector("#stage[data-state=done]")
    _run(page, lambda: _choose_centerface(page))
    page.wait_for_selector("label[for=mode-redact]")
    for function in ("blur", "pixelate", "redact"):
        response = _run(page, lambda f=function: page.click(f"label[for=mode-{f}]"), function)
        assert response.headers["content-type"].startswith("image/")
        assert _query(response)["threshold"] == ["0.5"]
        assert "min_size" not in _query(response)
        assert page.get_attribute("#picture", "src").startswith("blob:")
        assert page.locator("#overlay.quiet .face").count() == 1
    with page.expect_download() as download:
        page.click("#download-image")
    assert download.value.suggested_filename == "astronaut.redact.jpg"


def test_models_table_has_a_family_column(page: Any) -> None:
    page.click("#tab-models")
    page.wait_for_selector("#models-body tr[data-model-id=centerface] .family")
    headers = page.locator("#models-table thead th").all_inner_texts()
    assert headers[:3] == ["Id", "Name", "Family"]
    family = {
        row.get_attribute("data-model-id"): row.locator("td").nth(2).inner_text()
        for row in page.locator("#models-body tr").all()
    }
    assert family["mtcnn"] == "MTCNN" and family["centerface"] == "CenterFace"


def test_uploaded_centerface_model_is_listed_under_its_family_and_runs(
    page: Any, live_server: Any
) -> None:
    page.click("#tab-models")
    page.set_input_files("#model-file", CENTERFACE_ONNX)
    page.fill("#model-name", "my centerface")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/models"), timeout=60_000
    ) as response:
        page.click("#upload-button")
    assert response.value.status == 201, response.value.text()
    created = response.value.json()
    model_id = created["model_id"]
    try:
        row = page.locator(f"#models-body tr[data-model-id='{model_id}']")
        row.wait_for()
        assert row.locator(".family").inner_text() == "CenterFace"
        page.click("#dismiss-keys")
        option = page.locator(f"#model-select option[value='{model_id}']")
        assert option.evaluate("o => o.parentElement.label") == "CenterFace"

        page.click("#tab-detect")
        page.set_input_files("#file-input", ASTRONAUT)
        page.wait_for_selector("#stage[data-state=done]")
        result = _run(page, lambda: page.select_option("#model-select", model_id)).json()
        assert result["model_id"] == model_id and len(result["faces"]) == 1
        assert page.locator("#params-centerface").is_visible()
    finally:
        httpx.delete(
            f"{live_server.url}/api/models/{model_id}",
            headers={"X-API-Key": created["admin_key"]},
            timeout=30,
        )


def _as_an_older_server(route: Any) -> None:
    """``GET /api/info`` and ``GET /api/models`` as a server before families: no ``families``,
    no ``family``, MTCNN models only."""
    response = route.fetch()
    body = response.json()
    if isinstance(body, dict):
        body.pop("families", None)
    else:
        body = [model for model in body if model.get("family", "mtcnn") == "mtcnn"]
        for model in body:
            model.pop("family", None)
    route.fulfill(response=response, json=body)


def test_older_server_without_families_gets_the_mtcnn_parameters(
    browser_context: Any, live_server: Any
) -> None:
    tab = browser_context.new_page()
    try:
        tab.route("**/api/info", _as_an_older_server)
        tab.route(re.compile(r"/api/models\?"), _as_an_older_server)
        tab.goto(f"{live_server.url}/")
        tab.wait_for_selector("html[data-ready=true]")
        tab.wait_for_load_state("networkidle")
        assert tab.locator("#model-select option").all_inner_texts() == ["mtcnn — built-in"]
        assert tab.locator("#params-mtcnn").is_visible()
        assert tab.locator("#family-params > *").count() == 0
        assert tab.locator("#family-summary").is_hidden()
        response = _run(tab, lambda: tab.set_input_files("#file-input", ASTRONAUT))
        assert sorted(_query(response)) == ["factor", "min_size", "thresholds"]
        assert len(response.json()["faces"]) == 1
    finally:
        tab.close()
