"""The page's Jobs tab in a real browser: submit many images, follow the progress, download the
results (JSON Lines, and a picture function's zip), cancel a running job (a warning, not a
success), and the files that are not images said (a zip's, and ones chosen next to images).

Inputs are the astronaut (one face, ``src/facefaas/data/reference/astronaut.jpg``) and a blank
image (no face). The service and Chromium come from ``conftest.py``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

ASTRONAUT = Path(__file__).parents[2] / "src/facefaas/data/reference/astronaut.jpg"


def _blank() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 200, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _files(names: list[str]) -> list[dict[str, Any]]:
    """Playwright file payloads: "astronaut" or "blank" per name, numbered in order."""
    astronaut, blank = ASTRONAUT.read_bytes(), _blank()
    payloads = []
    for index, kind in enumerate(names):
        if kind == "astronaut":
            payloads.append({"name": f"{index:03d}-astronaut.jpg", "mimeType": "image/jpeg",
                             "buffer": astronaut})  # fmt: skip
        else:
            payloads.append({"name": f"{index:03d}-blank.png", "mimeType": "image/png",
                             "buffer": blank})  # fmt: skip
    return payloads


def _open_jobs(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/#jobs")
    page.wait_for_selector("html[data-ready=true]")
    page.wait_for_selector("#panel-jobs:not([hidden])")
    # GET /api/info has filled the functions (redact is the server's, not a fallback option).
    page.wait_for_selector("#job-function option[value=redact]", state="attached")


def _submit(page: Any, names: list[str], function: str = "detect") -> None:
    page.set_input_files("#job-files", _files(names))
    page.select_option("#job-function", function)
    page.click("#job-submit")
    page.wait_for_selector("#job-panel:not([hidden])")


def _wait_ended(page: Any, state: str = "done") -> None:
    page.wait_for_selector(f"#job-panel[data-state={state}]", timeout=60_000)


def test_a_job_of_three_images_reaches_100_percent_and_downloads_its_jsonl(
    page: Any, live_server: Any
) -> None:
    _open_jobs(page, live_server)
    assert page.is_disabled("#job-submit")
    _submit(page, ["astronaut", "blank", "astronaut"])
    _wait_ended(page)
    assert page.text_content("#job-percent") == "100%"
    assert page.eval_on_selector("#job-progress", "p => p.value") == 1
    assert page.text_content("#job-counts").strip() == "3 of 3 done"
    assert "Done" in page.text_content("#job-status")
    assert page.is_hidden("#job-cancel")
    assert page.is_hidden("#job-download-zip")  # detect gives JSON, no pictures
    with page.expect_download() as download:
        page.click("#job-download-jsonl")
    assert download.value.suggested_filename.endswith(".jsonl")
    lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert [line["source"] for line in lines] == [
        "000-astronaut.jpg", "001-blank.png", "002-astronaut.jpg",
    ]  # fmt: skip
    assert all(line["status"] == "done" for line in lines)
    assert [len(line["result"]["faces"]) for line in lines] == [1, 0, 1]
    # The token stays in the page's memory: nothing is stored for it.
    stored = page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]


def test_a_redact_job_downloads_a_zip_of_pictures(page: Any, live_server: Any) -> None:
    _open_jobs(page, live_server)
    _submit(page, ["astronaut", "blank"], function="redact")
    _wait_ended(page)
    assert page.is_visible("#job-download-zip")
    with page.expect_download() as download:
        page.click("#job-download-zip")
    with zipfile.ZipFile(download.value.path()) as archive:
        names = archive.namelist()
        assert "results.jsonl" in names
        pictures = [n for n in names if n != "results.jsonl"]
        assert len(pictures) == 2
        for name in pictures:
            Image.open(io.BytesIO(archive.read(name))).verify()


def test_a_failing_image_is_listed_with_its_error(page: Any, live_server: Any) -> None:
    _open_jobs(page, live_server)
    broken = {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 not really"}
    payloads = [*_files(["astronaut"]), broken]
    page.set_input_files("#job-files", payloads)
    page.click("#job-submit")
    _wait_ended(page)
    assert "1 of 2 done · 1 failed" in page.text_content("#job-counts")
    assert page.is_visible("#job-errors-title")
    (error,) = page.locator("#job-errors li").all_text_contents()
    assert error.startswith("#2 broken.jpg: ")


@pytest.mark.parametrize("count", [150])
def test_cancel_shows_the_cancelled_state(page: Any, live_server: Any, count: int) -> None:
    _open_jobs(page, live_server)
    _submit(page, ["astronaut"] * count)
    page.wait_for_selector("#job-cancel:visible")
    page.click("#job-cancel")
    _wait_ended(page, "cancelled")
    assert "Cancelled" in page.text_content("#job-status")
    assert "cancelled" in page.text_content("#job-counts")
    # Not shown as a success: a warning, in words (images not run) and in colour.
    assert page.get_attribute("#job-status", "data-kind") == "warning"
    assert "images not run" in page.text_content("#job-status")
    assert page.get_attribute("#job-progress", "aria-valuetext").endswith(", cancelled")
    colours = page.evaluate("""() => {
        const css = getComputedStyle(document.documentElement);
        const bar = getComputedStyle(document.getElementById("job-progress")).accentColor;
        const probe = document.createElement("span");
        document.body.append(probe);
        const resolve = (name) => {
            probe.style.color = css.getPropertyValue(name);
            return getComputedStyle(probe).color;
        };
        const out = {bar, ok: resolve("--ok"), warning: resolve("--warning")};
        probe.remove();
        return out;
    }""")
    assert colours["bar"] == colours["warning"] != colours["ok"], colours
    assert page.is_hidden("#job-cancel")
    assert page.is_enabled("#job-download-jsonl")
    assert page.is_enabled("#job-submit")  # the files are still chosen: another job may start


def test_a_zip_of_images_is_one_job_of_its_images(page: Any, live_server: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for payload in _files(["astronaut", "blank"]):
            archive.writestr(payload["name"], payload["buffer"])
    _open_jobs(page, live_server)
    page.set_input_files(
        "#job-files",
        [{"name": "photos.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}],
    )
    assert "photos.zip" in page.text_content("#job-file-list")
    page.click("#job-submit")
    _wait_ended(page)
    assert page.text_content("#job-counts").strip() == "2 of 2 done"


def _zip_with_readme() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for payload in _files(["astronaut", "blank", "blank", "blank"]):
            archive.writestr(payload["name"], payload["buffer"])
        archive.writestr("README.md", b"# holiday photos\n")
    return buffer.getvalue()


def test_a_zips_file_that_is_not_an_image_is_named_when_the_job_starts(
    page: Any, live_server: Any
) -> None:
    _open_jobs(page, live_server)
    page.set_input_files(
        "#job-files",
        [{"name": "photos.zip", "mimeType": "application/zip", "buffer": _zip_with_readme()}],
    )
    page.click("#job-submit")
    page.wait_for_selector("#job-panel:not([hidden])")
    started = page.text_content("#job-submit-status")
    assert started.endswith(" started: 4 images (1 file in the zip skipped: README.md)."), started
    _wait_ended(page)
    assert page.text_content("#job-counts").strip() == "4 of 4 done"


def test_a_chosen_file_that_is_not_an_image_is_listed_as_skipped_and_named_at_start(
    page: Any, live_server: Any
) -> None:
    _open_jobs(page, live_server)
    readme = {"name": "README.md", "mimeType": "text/markdown", "buffer": b"# notes\n"}
    page.set_input_files("#job-files", [*_files(["astronaut", "blank"]), readme])
    listed = page.locator("#job-file-list li").all_text_contents()
    assert len(listed) == 3 and listed[2] == "README.md — skipped: not an image or a zip"
    assert page.text_content("#job-file-summary").startswith("2 files, ")
    assert page.text_content("#job-submit-status") == (
        "1 file skipped, not an image or a zip: README.md."
    )
    page.click("#job-submit")
    page.wait_for_selector("#job-panel:not([hidden])")
    started = page.text_content("#job-submit-status")
    assert started.endswith(
        " started: 2 images (1 file skipped, not an image or a zip: README.md)."
    ), started
    _wait_ended(page)
    assert page.text_content("#job-counts").strip() == "2 of 2 done"


def test_a_job_can_run_on_the_detect_tabs_parameters(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/")
    page.wait_for_selector("html[data-ready=true]")
    page.fill("#min-size", "60")
    page.dispatch_event("#min-size", "change")
    page.click("#tab-jobs")
    page.wait_for_selector("#panel-jobs:not([hidden])")
    page.wait_for_selector("#job-function option[value=redact]", state="attached")
    assert "model's own parameters" in page.text_content("#job-params-hint")
    page.check("#job-detect-params")
    assert "min_size 60" in page.text_content("#job-params-hint")
    _submit(page, ["astronaut", "blank"])
    _wait_ended(page)
    with page.expect_download() as download:
        page.click("#job-download-jsonl")
    lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert [line["result"]["parameters"]["min_size"] for line in lines] == [60, 60]
    assert [len(line["result"]["faces"]) for line in lines] == [1, 0]


def test_the_detect_tabs_parameters_are_not_sent_to_a_model_of_another_family(
    page: Any, live_server: Any
) -> None:
    _open_jobs(page, live_server)
    page.wait_for_selector("#job-model option[value=centerface]", state="attached")
    page.select_option("#job-model", "centerface")
    page.check("#job-detect-params")  # the Detect tab shows MTCNN's parameters
    page.set_input_files("#job-files", _files(["astronaut"]))
    page.click("#job-submit")
    message = page.text_content("#job-submit-status")
    assert "this model is a CenterFace model" in message, message
    assert page.is_hidden("#job-panel")  # nothing was submitted
    page.uncheck("#job-detect-params")
    page.click("#job-submit")
    _wait_ended(page)
    assert page.text_content("#job-counts").strip() == "1 of 1 done"
