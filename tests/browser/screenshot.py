"""Make docs/img/web-page.png: the Detect tab with the astronaut reference image detected.

The same service and Chromium as the browser tests (see conftest.py): the real app on a loopback
port with a temporary data folder and the default limits, and Debian's ``/usr/bin/chromium``
headless through Playwright. The picture is what a user sees after choosing the image and
pointing at the face.

    python tests/browser/screenshot.py            # writes docs/img/web-page.png
    python tests/browser/screenshot.py out.png    # or another file
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "src" / "facefaas" / "data" / "reference" / "astronaut.jpg"
WIDTH, HEIGHT = 1120, 700


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from facefaas.server import create_app
    from facefaas.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), rate_limit="")  # the default limits
        server = LiveServer(create_app(settings), settings.max_body_bytes)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(
                    viewport={"width": WIDTH, "height": HEIGHT}, color_scheme="light"
                )
                page.goto(f"{server.url}/")
                page.wait_for_selector("html[data-ready=true]")
                page.wait_for_load_state("networkidle")  # the model list and the Render buttons
                page.set_input_files("#file-input", ASTRONAUT)
                page.wait_for_selector("#stage[data-state=done]")
                page.hover("#overlay .face .box")
                page.screenshot(path=str(out))
                browser.close()
        finally:
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "img" / "web-page.png")
