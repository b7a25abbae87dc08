"""The web page at ``/``, end to end: real server, real headless Chromium (see conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(120)

# RGB pixels of the displayed picture inside a box (x1, y1, x2, y2 in image pixels), shrunk on
# each side by `inset` times the box's size.
_BOX_PIXELS_JS = """([[x1, y1, x2, y2], inset]) => {
  const img = document.getElementById("picture");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const dx = (x2 - x1) * inset, dy = (y2 - y1) * inset;
  const x = Math.round(x1 + dx), y = Math.round(y1 + dy);
  const w = Math.round(x2 - x1 - 2 * dx), h = Math.round(y2 - y1 - 2 * dy);
  return Array.from(context.getImageData(x, y, w, h).data);
}"""


def _box_pixels(page: Any, box: list[float], inset: float = 0.0) -> np.ndarray:
    """The shown picture's (n, 3) RGB pixels inside ``box`` (see :data:`_BOX_PIXELS_JS`)."""
    rgba = np.asarray(page.evaluate(_BOX_PIXELS_JS, [box, inset]), np.float64)
    return rgba.reshape(-1, 4)[:, :3]


def _box_variance(page: Any, box: list[float]) -> float:
    """Luminance variance of the shown picture inside ``box``."""
    luminance = _box_pixels(page, box) @ np.array([0.299, 0.587, 0.114])
    return float(luminance.var())


def _is_post(response: Any, fragment: str) -> bool:
    return response.request.method == "POST" and fragment in response.url


def _detect(page: Any, trigger: Any) -> dict[str, Any]:
    """Run ``trigger`` and return the JSON of the detect request it causes, once it is shown."""
    with page.expect_response(lambda r: _is_post(r, "/detect")) as response:
        trigger()
    assert response.value.status == 200
    result: dict[str, Any] = response.value.json()
    page.wait_for_selector("#stage[data-state=done]")
    return result


def _status_text(page: Any, selector: str, contains: str) -> str:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s).textContent.includes(t)", arg=[selector, contains]
    )
    text: str = page.inner_text(selector)
    return text


def _plain_png(tmp_path: Path) -> Path:
    """A 64 x 48 skin-coloured PNG without faces."""
    path = tmp_path / "plain.png"
    Image.new("RGB", (64, 48), (200, 180, 160)).save(path)
    return path


@pytest.fixture
def two_astronauts(astronaut: Path, tmp_path: Path) -> Path:
    """The astronaut beside her mirror image (1024 x 512 JPEG): two faces."""
    single = Image.open(astronaut).convert("RGB")
    pair = Image.new("RGB", (single.width * 2, single.height))
    pair.paste(single, (0, 0))
    pair.paste(single.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (single.width, 0))
    path = tmp_path / "two-astronauts.jpg"
    pair.save(path, quality=90)
    return path


def test_detect_draws_one_box_per_face_and_hover_shows_score(
    page: Any, two_astronauts: Path, tmp_path: Path
) -> None:
    result = _detect(page, lambda: page.set_input_files("#file-input", two_astronauts))

    assert result["model_id"] == "mtcnn"
    assert (result["width"], result["height"]) == (1024, 512)
    assert len(result["faces"]) == 2
    assert page.locator("#overlay .face").count() == len(result["faces"])
    assert page.locator("#overlay .face .landmark").count() == 5 * len(result["faces"])
    assert page.inner_text("#face-count") == "2 faces"
    timing = page.inner_text("#timing")
    assert "server" in timing and "round trip" in timing and "ms" in timing
    # The overlay is scaled with the picture, and each box sits where the JSON says.
    picture = page.locator("#picture").bounding_box()
    scale = picture["width"] / result["width"]
    assert picture["height"] == pytest.approx(result["height"] * scale, abs=1)
    stroke = 2  # px, not scaled: half of it on each side of the outline
    for index, face in enumerate(result["faces"]):
        box = page.locator(f"#overlay .face[data-index='{index}'] .box").bounding_box()
        x1, y1, x2, y2 = face["box"]
        assert box["x"] + stroke / 2 == pytest.approx(picture["x"] + x1 * scale, abs=1)
        assert box["y"] + stroke / 2 == pytest.approx(picture["y"] + y1 * scale, abs=1)
        assert box["width"] - stroke == pytest.approx((x2 - x1) * scale, abs=1)
        assert box["height"] - stroke == pytest.approx((y2 - y1) * scale, abs=1)

    tooltip = page.locator("#tooltip")
    assert tooltip.is_hidden()
    for index, face in enumerate(result["faces"]):
        page.hover(f"#overlay .face[data-index='{index}'] .box")
        assert tooltip.is_visible()
        assert tooltip.inner_text() == f"Face {index + 1} · score {face['score']:.4f}"
    page.mouse.move(0, 0)
    assert tooltip.is_hidden()
    page.focus("#overlay .face[data-index='1']")  # keyboard users get the same tooltip
    assert tooltip.inner_text().startswith("Face 2 · score")

    shot = tmp_path / "detect.png"
    page.screenshot(path=str(shot))
    assert Image.open(shot).size == (1280, 900)


def test_changed_parameters_reach_the_server(page: Any, astronaut: Path) -> None:
    _detect(page, lambda: page.set_input_files("#file-input", astronaut))
    page.fill("#min-size", "40")
    page.fill("#threshold-p", "0.5")
    page.fill("#threshold-o", "0.95")
    page.fill("#factor", "0.6")

    result = _detect(page, lambda: page.click("#detect-button"))

    assert result["parameters"]["min_size"] == 40
    assert result["parameters"]["thresholds"] == [0.5, 0.7, 0.95]
    assert result["parameters"]["factor"] == pytest.approx(0.6)
    assert page.locator("#overlay .face").count() == len(result["faces"])
    # The slider follows its number input.
    assert page.input_value("#min-size-range") == "40"


def test_reset_restores_the_default_parameters(page: Any, astronaut: Path) -> None:
    _detect(page, lambda: page.set_input_files("#file-input", astronaut))
    page.fill("#threshold-r", "0.9")
    page.fill("#min-size", "55")

    result = _detect(page, lambda: page.click("#reset-params"))

    assert result["parameters"]["min_size"] == 20
    assert result["parameters"]["thresholds"] == [0.6, 0.7, 0.7]
    assert page.input_value("#threshold-r") == "0.7"


def test_blur_mode_shows_the_server_blurred_image(page: Any, astronaut: Path) -> None:
    result = _detect(page, lambda: page.set_input_files("#file-input", astronaut))
    box = result["faces"][0]["box"]
    source = page.get_attribute("#picture", "src")
    sharp = _box_variance(page, box)

    with page.expect_response(lambda r: _is_post(r, "/blur")) as blurred:
        _detect(page, lambda: page.click("label[for=mode-blur]"))
    assert blurred.value.status == 200
    assert blurred.value.headers["content-type"].startswith("image/")

    assert page.get_attribute("#picture", "src") != source
    assert _box_variance(page, box) < 0.5 * sharp
    # Boxes are not drawn over the blurred faces, but hovering still tells the score.
    assert page.locator("#overlay.quiet .face").count() == 1
    page.hover("#overlay .face .box")
    assert f"{result['faces'][0]['score']:.4f}" in page.inner_text("#tooltip")


def test_downloads_give_the_json_and_the_annotated_image(page: Any, astronaut: Path) -> None:
    result = _detect(page, lambda: page.set_input_files("#file-input", astronaut))

    with page.expect_download() as json_download:
        page.click("#download-json")
    assert json_download.value.suggested_filename == "scikit-image__astronaut.faces.json"
    saved = json.loads(Path(json_download.value.path()).read_text())
    assert saved == result

    with page.expect_download() as image_download:
        page.click("#download-image")
    assert image_download.value.suggested_filename == "scikit-image__astronaut.boxes.png"
    annotated = np.asarray(Image.open(image_download.value.path()).convert("RGB"), np.int16)
    original = np.asarray(Image.open(astronaut).convert("RGB"), np.int16)
    assert annotated.shape == original.shape
    x1, y1, x2, y2 = (round(v) for v in result["faces"][0]["box"])
    changed = np.abs(annotated - original).sum(axis=2) > 60
    assert changed[y1:y2, x1 - 1 : x1 + 2].any(axis=1).all()  # the box's left edge is drawn
    assert changed[y1:y2, x2 - 2 : x2 + 1].any(axis=1).all()  # and its right edge
    assert not changed[: y1 - 5].any()  # nothing above the face


def test_non_image_upload_shows_the_400_message(page: Any) -> None:
    page.set_input_files(
        "#file-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}],
    )
    text = _status_text(page, "#detect-status", "HTTP 400")
    assert "could not use this input" in text
    assert "not in a recognised image format" in text  # the problem's detail
    assert page.get_attribute("#stage", "data-state") == "error"


def test_oversized_image_shows_the_413_message(page: Any, live_server: Any, tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    assert path.stat().st_size > live_server.max_body_bytes

    page.set_input_files("#file-input", path)

    text = _status_text(page, "#detect-status", "HTTP 413")
    assert "Too large" in text
    assert f"{live_server.max_body_bytes / 2**20:.1f} MiB" in text  # the limit, for people


def test_models_tab_uploads_lists_and_deletes_a_model(
    page: Any, new_bundle_zip: Callable[[str], Path]
) -> None:
    page.click("#tab-models")
    page.wait_for_selector("#models-body tr[data-model-id=mtcnn]")
    page.set_input_files("#model-file", new_bundle_zip("nudged"))
    page.fill("#model-name", "nudged")
    page.fill("#model-description", "MTCNN with one bias nudged, for the page test")

    with page.expect_response(lambda r: _is_post(r, "/api/models")) as response:
        page.click("#upload-button")
    assert response.value.status == 201
    created = response.value.json()
    model_id = created["model_id"]

    # The keys are shown, once, with the warning.
    assert page.locator("#upload-result").is_visible()
    assert "not shown again" in page.inner_text("#upload-result")
    assert page.inner_text("#new-model-id") == model_id
    assert page.inner_text("#new-admin-key") == created["admin_key"]
    row = page.locator(f"#models-body tr[data-model-id='{model_id}']")
    row.wait_for()
    assert "nudged" in row.inner_text() and "bias nudged" in row.inner_text()
    assert page.locator(f"#model-select option[value='{model_id}']").count() == 1
    page.click("#dismiss-keys")
    assert page.locator("#upload-result").is_hidden()
    assert created["admin_key"] not in page.content()

    # A wrong admin key is refused with a message; the right one deletes the model.
    row.get_by_role("button", name=f"Delete model {model_id}").click()
    page.fill("#admin-key", "not-the-key")
    page.click("#delete-confirm")
    assert "HTTP 403" in _status_text(page, "#delete-status", "HTTP 403")
    page.fill("#admin-key", created["admin_key"])
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click("#delete-confirm")
    assert deleted.value.status == 204
    row.wait_for(state="detached")
    assert page.locator("#delete-dialog").is_hidden()
    assert page.locator(f"#model-select option[value='{model_id}']").count() == 0
    assert "deleted" in page.inner_text("#models-status")


def test_uploading_weights_someone_else_registered_makes_a_model_of_ones_own(
    page: Any,
    live_server: Any,
    register: Callable[..., dict[str, Any]],
    new_bundle_zip: Callable[[str], Path],
) -> None:
    existing = register("twin")
    page.click("#tab-models")
    page.set_input_files("#model-file", new_bundle_zip("twin"))  # the same weights again
    with page.expect_response(lambda r: _is_post(r, "/api/models")) as response:
        page.click("#upload-button")
    assert response.value.status == 201  # no 409: ids are not taken by weights
    created = response.value.json()
    assert created["sha256"] == existing["sha256"]
    assert page.inner_text("#new-model-id") == created["model_id"] != existing["model_id"]
    assert page.inner_text("#new-admin-key") == created["admin_key"]
    page.click("#dismiss-keys")
    deleted = httpx.delete(
        f"{live_server.url}/api/models/{created['model_id']}",
        headers={"X-API-Key": created["admin_key"]},
    )
    assert deleted.status_code == 204


def test_tabs_follow_the_keyboard_and_the_url_hash(page: Any, live_server: Any) -> None:
    page.focus("#tab-detect")
    page.keyboard.press("ArrowRight")
    assert page.locator("#panel-models").is_visible()
    assert page.locator("#panel-detect").is_hidden()
    assert page.evaluate("document.activeElement.id") == "tab-models"
    assert page.url.endswith("#models")
    page.goto(f"{live_server.url}/#detect")
    assert page.locator("#panel-detect").is_visible()


def test_page_loads_nothing_from_other_hosts(browser_context: Any, live_server: Any) -> None:
    tab = browser_context.new_page()
    hosts: set[str] = set()
    tab.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    tab.goto(f"{live_server.url}/")
    tab.wait_for_selector("html[data-ready=true]")
    tab.wait_for_load_state("networkidle")
    tab.close()
    assert hosts == {live_server.url.split("/")[2]}


def test_image_without_faces_shows_zero_faces(page: Any, tmp_path: Path) -> None:
    result = _detect(page, lambda: page.set_input_files("#file-input", _plain_png(tmp_path)))

    assert result["faces"] == [] and (result["width"], result["height"]) == (64, 48)
    assert page.inner_text("#face-count") == "0 faces"
    assert page.locator("#overlay .face").count() == 0


def test_private_model_runs_with_its_usage_key(
    page: Any, tmp_path: Path, register: Callable[..., dict[str, Any]]
) -> None:
    created = register("secret", private="true")
    model_id = created["model_id"]
    page.reload()
    page.wait_for_selector("#model-select option[value='mtcnn']", state="attached")
    # A private model is listed only to holders of its keys: its usage key reveals it.
    assert page.locator(f"#model-select option[value='{model_id}']").count() == 0
    _enter_usage_key(page, created["usage_key"])
    page.wait_for_selector(f"#model-select option[value='{model_id}']", state="attached")
    assert "private" in page.inner_text(f"#model-select option[value='{model_id}']")
    page.select_option("#model-select", model_id)
    page.fill("#usage-key", "")  # it stays listed, and running it says what is missing
    page.set_input_files("#file-input", _plain_png(tmp_path))
    # In plain words: which model, that it is private, and where its key goes.
    text = _status_text(page, "#detect-status", "HTTP 401")
    assert text == (
        f"Model “secret” ({model_id}) is private: enter its usage key in the Usage key "
        "field (under Model) to run it. (HTTP 401)"
    )
    assert page.get_attribute("#usage-key", "aria-invalid") == "true"

    page.fill("#usage-key", "not-the-key")
    page.click("#detect-button")
    text = _status_text(page, "#detect-status", "HTTP 403")
    assert text.startswith("The key in the Usage key field does not open model “secret”")
    for jargon in ("X-API-Key", "Bearer", "may not run"):
        assert jargon not in text

    page.fill("#usage-key", created["usage_key"])
    result = _detect(page, lambda: page.click("#detect-button"))
    assert result["model_id"] == model_id
    assert page.inner_text("#detect-status") == ""
    assert page.get_attribute("#usage-key", "aria-invalid") is None


def _enter_usage_key(page: Any, key: str) -> None:
    page.fill("#usage-key", key)
    page.dispatch_event("#usage-key", "change")


# status, Retry-After, context -> what the message must say (besides the problem's detail)
MESSAGES = [
    (0, None, "detect", "Could not reach the server"),
    (401, None, "delete", "Enter the model's admin key."),
    (404, None, "detect", "the model list was refreshed"),
    (415, None, "detect", "Unsupported file type."),
    (422, None, "upload", "not a model of a detector family the server runs"),
    (429, 7, "detect", "Too many requests. Detail text. Try again in 7 s. (HTTP 429)"),
    (503, None, "detect", "The server is busy. Detail text. Try again in a moment. (HTTP 503)"),
    (502, None, "list", "failed while handling this request. Detail text. Request id: r-1."),
]


@pytest.mark.parametrize(("status", "retry_after", "context", "expected"), MESSAGES)
def test_error_message_names_the_status_and_what_to_do(
    page: Any, status: int, retry_after: int | None, context: str, expected: str
) -> None:
    text = page.evaluate(
        """async ([status, retryAfter, context]) => {
            const { ApiError } = await import("./api.js");
            const { describeError } = await import("./messages.js");
            const problem = { detail: "detail text", request_id: "r-1" };
            return describeError(new ApiError(status, problem, retryAfter), context);
        }""",
        [status, retry_after, context],
    )
    assert expected in text
    if status:
        assert text.endswith(f"(HTTP {status})")


def test_image_the_browser_cannot_show_is_displayed_as_the_server_renders_it(
    page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "plain.tiff"  # Pillow reads TIFF; Chromium does not display it
    Image.new("RGB", (80, 60), (90, 120, 150)).save(path)

    with page.expect_response(lambda r: _is_post(r, "/annotate")) as annotated:
        result = _detect(page, lambda: page.set_input_files("#file-input", path))

    assert annotated.value.status == 200
    picture = page.locator("#picture")
    size = picture.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert size == [result["width"], result["height"]] == [80, 60]


def test_narrow_screen_has_no_horizontal_scrolling(page: Any) -> None:
    page.set_viewport_size({"width": 380, "height": 800})
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) == 0
    page.click("#tab-models")
    page.wait_for_selector("#models-body tr[data-model-id=mtcnn]")
    assert page.evaluate(overflow) == 0


_DISPATCH_FILE_JS = """([how, bytes]) => {
  const file = new File([new Uint8Array(bytes)], `${how}.png`, { type: "image/png" });
  const data = new DataTransfer();
  data.items.add(file);
  const init = { bubbles: true, cancelable: true };
  if (how === "dropped") {
    document.getElementById("drop-zone")
      .dispatchEvent(new DragEvent("drop", { ...init, dataTransfer: data }));
  } else {
    document.dispatchEvent(new ClipboardEvent("paste", { ...init, clipboardData: data }));
  }
}"""


@pytest.mark.parametrize("how", ["dropped", "pasted"])
def test_dropped_or_pasted_image_is_detected(page: Any, tmp_path: Path, how: str) -> None:
    data = list(_plain_png(tmp_path).read_bytes())

    result = _detect(page, lambda: page.evaluate(_DISPATCH_FILE_JS, [how, data]))

    assert (result["width"], result["height"]) == (64, 48)
    assert page.inner_text("#file-name").startswith(f"{how}.png")


def test_models_table_marks_private_models(
    page: Any, register: Callable[..., dict[str, Any]]
) -> None:
    locked = register("locked", private="true")
    model_id = locked["model_id"]
    public_id = register("open")["model_id"]
    _enter_usage_key(page, locked["usage_key"])  # private models are listed only with a key
    page.click("#tab-models")
    private_row = page.locator(f"#models-body tr[data-model-id='{model_id}']")
    private_row.wait_for()
    badge = private_row.locator(".badge.private")
    assert badge.is_visible()
    assert badge.locator("span:not(.visually-hidden)").inner_text() == "Private"
    # Screen readers are told what it means; the padlock itself is decoration.
    assert badge.text_content() == "Private: running it needs its usage key"
    assert badge.locator("svg").get_attribute("aria-hidden") == "true"
    for public in (public_id, "mtcnn"):
        public_row = page.locator(f"#models-body tr[data-model-id='{public}']")
        assert public_row.locator(".badge").count() == 0
        assert "Private" not in public_row.inner_text()


@pytest.mark.parametrize("render", ["blur", "pixelate", "redact"])
def test_landmarks_checkbox_is_off_for_anonymising_modes(
    page: Any, astronaut: Path, render: str
) -> None:
    _detect(page, lambda: page.set_input_files("#file-input", astronaut))
    checkbox = page.locator("#show-landmarks")
    assert checkbox.is_enabled() and checkbox.is_checked()
    assert page.locator("#overlay .landmark").count() == 5

    page.wait_for_selector(f"#mode-{render}", state="attached")
    _detect(page, lambda: page.click(f"label[for=mode-{render}]"))

    assert checkbox.is_disabled() and not checkbox.is_checked()
    note = page.locator("#landmarks-note")
    assert note.is_visible() and "Boxes" in note.inner_text()
    assert checkbox.get_attribute("aria-describedby") == "landmarks-note"
    page.hover("#overlay .face .box")  # the hovered face shows its box, without landmarks
    assert page.locator("#overlay .landmark").count() == 0

    _detect(page, lambda: page.click("label[for=mode-boxes]"))
    assert checkbox.is_enabled() and checkbox.is_checked()  # the choice is back
    assert note.is_hidden()
    assert page.locator("#overlay .landmark").count() == 5


def test_phone_sees_the_picture_before_the_settings(page: Any, astronaut: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _detect(page, lambda: page.set_input_files("#file-input", astronaut))

    picture = page.locator("#picture").bounding_box()
    params = page.locator("fieldset.params").bounding_box()
    drop_zone = page.locator("#drop-zone").bounding_box()
    assert drop_zone["y"] < picture["y"] < params["y"]
    assert picture["y"] + picture["height"] / 2 < 844  # in the first screen, without scrolling
    assert picture["x"] >= 0 and picture["x"] + picture["width"] <= 390

    # The desktop keeps the settings on the left and the picture on the right, side by side.
    page.set_viewport_size({"width": 1280, "height": 900})
    picture = page.locator("#picture").bounding_box()
    params = page.locator("fieldset.params").bounding_box()
    assert picture["x"] > params["x"] + params["width"]
    assert picture["y"] < params["y"] + params["height"]


# Keeps the parts of every multipart body the page sends, as [name, file name or value] pairs
# (Chromium does not show the bodies of requests that carry files).
_RECORD_FORMS_JS = """() => {
  const send = window.fetch;
  window.sentForms = [];
  window.fetch = (url, options = {}) => {
    if (options.body instanceof FormData) {
      window.sentForms.push([...options.body.entries()]
        .map(([name, value]) => [name, typeof value === "string" ? value : value.name]));
    }
    return send(url, options);
  };
}"""


def test_model_files_upload_together_as_one_model(
    page: Any, live_server: Any, shared: Path
) -> None:
    folder = shared / "models" / "caffe-original"
    files = [folder / f"det{n}.caffemodel" for n in (1, 2, 3)]
    if not all(path.is_file() for path in files):
        pytest.skip(f"{folder} has no det1-det3.caffemodel")
    page.click("#tab-models")
    page.set_input_files("#model-file", files)
    listed = page.inner_text("#model-file-list").splitlines()
    assert [line.split(" (")[0] for line in listed] == [path.name for path in files]
    assert listed[2] == f"det3.caffemodel ({files[2].stat().st_size / 2**20:.1f} MiB)"
    page.fill("#model-name", "caffe trio")

    page.evaluate(_RECORD_FORMS_JS)

    with page.expect_response(lambda r: _is_post(r, "/api/models")) as response:
        page.click("#upload-button")
    # One request, one multipart part named "file" per file, each with its file name.
    assert page.evaluate("window.sentForms") == [
        [["file", path.name] for path in files] + [["name", "caffe trio"]]
    ]
    assert response.value.status == 201, response.value.text()
    created = response.value.json()
    try:
        assert page.inner_text("#new-model-id") == created["model_id"]
        assert page.inner_text("#upload-status") == f"Model {created['model_id']} uploaded."
        page.locator(f"#models-body tr[data-model-id='{created['model_id']}']").wait_for()
        assert page.inner_text("#model-file-list") == ""  # the form was reset
    finally:
        httpx.delete(
            f"{live_server.url}/api/models/{created['model_id']}",
            headers={"X-API-Key": created["admin_key"]},
            timeout=30,
        )


def test_redact_fills_the_faces_with_the_chosen_colour(page: Any, astronaut: Path) -> None:
    # The Render buttons come from the server's function table: Boxes plus each anonymiser.
    page.wait_for_selector("#mode-redact", state="attached")
    labels = page.locator("#mode-buttons label").all_inner_texts()
    assert labels == ["Boxes", "Blur", "Pixelate", "Redact"]
    result = _detect(page, lambda: page.set_input_files("#file-input", astronaut))
    assert page.locator("#color-field").is_hidden()  # the colour is redact's own option

    with page.expect_response(lambda r: _is_post(r, "/redact")) as redacted:
        _detect(page, lambda: page.click("label[for=mode-redact]"))
    assert redacted.value.status == 200
    assert "color=%23000000" in redacted.value.url
    assert page.locator("#color-field").is_visible()

    with page.expect_response(lambda r: _is_post(r, "/redact")) as redacted:
        _detect(page, lambda: page.fill("#render-color", "#ff00ff"))
    assert redacted.value.status == 200
    assert "color=%23ff00ff" in redacted.value.url
    assert redacted.value.headers["content-type"].startswith("image/")

    rgb = _box_pixels(page, result["faces"][0]["box"], inset=0.25)
    assert len(rgb) > 100
    difference = np.abs(rgb - np.array([255, 0, 255]))
    assert difference.mean() < 4 and difference.max() <= 24  # solid magenta (JPEG may blur a bit)
    assert "redacted" in page.get_attribute("#picture", "alt")

    page.click("label[for=mode-blur]")
    assert page.locator("#color-field").is_hidden()


def _info_without_function_details(route: Any) -> None:
    """Answer GET /api/info as a server from before the function table does."""
    response = route.fetch()
    info = response.json()
    info.pop("function_details", None)
    route.fulfill(response=response, json=info)


def test_older_server_without_function_details_offers_blur_and_pixelate(
    browser_context: Any, live_server: Any, astronaut: Path
) -> None:
    tab = browser_context.new_page()
    try:
        tab.route("**/api/info", _info_without_function_details)
        with tab.expect_response("**/api/info"):
            tab.goto(f"{live_server.url}/")
        tab.wait_for_selector("html[data-ready=true]")
        tab.wait_for_load_state("networkidle")
        assert tab.locator("#mode-buttons label").all_inner_texts() == ["Boxes", "Blur", "Pixelate"]
        with tab.expect_response(lambda r: _is_post(r, "/pixelate")) as pixelated:
            _detect(tab, lambda: tab.set_input_files("#file-input", astronaut))
            tab.click("label[for=mode-pixelate]")
        assert pixelated.value.status == 200
        assert "color=" not in pixelated.value.url
    finally:
        tab.close()


# What the coming Content-Security-Policy allows: this origin only, no inline script or style.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def test_page_works_under_a_strict_content_security_policy(
    browser_context: Any, live_server: Any, astronaut: Path
) -> None:
    tab = browser_context.new_page()
    violations: list[str] = []
    tab.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )

    def with_csp(route: Any) -> None:
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    try:
        tab.route(f"{live_server.url}/", with_csp)
        tab.goto(f"{live_server.url}/")
        tab.wait_for_selector("html[data-ready=true]")
        _detect(tab, lambda: tab.set_input_files("#file-input", astronaut))
        assert tab.locator("#overlay .face").count() == 1
        _detect(tab, lambda: tab.click("label[for=mode-blur]"))
        tab.click("#tab-models")
        tab.wait_for_selector("#models-body tr[data-model-id=mtcnn]")
        assert violations == []
    finally:
        tab.close()
