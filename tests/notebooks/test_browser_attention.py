"""Real browser: JupyterLab serves a notebook with an AttentionExplorer, headless Chromium clicks a
patch on the picture, and the overlay (and its caption) must change. Skips, saying why, when
Chromium or Playwright is missing. Screenshots are kept in the test's tmp folder."""

from __future__ import annotations

import importlib.util
import re

import pytest

from lab_browser import CHROMIUM, CHROMIUM_FLAGS, jupyter_lab, write_notebook

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: apt-get install chromium"),
    pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="jupyterlab is not installed"),
]

GRID = (18, 24)  # the demo image (400×300 → 384×288) in 16-pixel patches
TARGET = (2, 3)  # the patch clicked: top left, away from the default query in the middle
NOTEBOOK = [
    "from qwen3vl_inspect.notebook import open_trace, AttentionExplorer\n"
    "tr = open_trace(model='tiny')\n"
    "explorer = AttentionExplorer(tr, layer=1)\n"
    "explorer",
]


def test_click_on_a_patch_moves_the_query_and_redraws(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    write_notebook(tmp_path / "explorer.ipynb", NOTEBOOK)
    with jupyter_lab(tmp_path) as served, sync_api.sync_playwright() as playwright:
        base, token = served.split("|")
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(90_000)
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            page.get_by_text(re.compile(r"\| Idle")).first.wait_for()  # the kernel is up
            page.locator(".jp-Notebook").first.click()  # focus the notebook, then Run ▸ Run All Cells
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

            picture = page.locator("img.qwen3vl-click-image")
            picture.wait_for(state="visible")
            caption = page.locator(".qwen3vl-caption")
            caption.wait_for()
            page.wait_for_function("document.querySelector('img.qwen3vl-click-image').complete"
                                   " && document.querySelector('img.qwen3vl-click-image').naturalWidth > 0")
            before_text = caption.inner_text()
            before_version = picture.get_attribute("data-version")
            before_pixels = picture.screenshot(path=str(tmp_path / "before.png"))
            assert "where query (" in before_text, before_text

            box = picture.bounding_box()
            row, col = TARGET
            picture.click(position={"x": box["width"] * (col + 0.5) / GRID[1],  # the middle of patch (row, col)
                                    "y": box["height"] * (row + 0.5) / GRID[0]})
            page.wait_for_function(
                f"document.querySelector('img.qwen3vl-click-image').dataset.version !== '{before_version}'")
            page.wait_for_function("document.querySelector('img.qwen3vl-click-image').complete")
            after_text = caption.inner_text()
            after_pixels = picture.screenshot(path=str(tmp_path / "after.png"))
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            context.close()
    assert after_text != before_text
    assert f"where query ({TARGET[0]},{TARGET[1]}) looks" in after_text, after_text
    assert after_pixels != before_pixels
