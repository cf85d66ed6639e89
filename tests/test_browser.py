"""The Prefect UI as a person sees it, in headless Chromium (Debian's ``chromium``, driven by
Playwright with that executable): a suite with one failing case, its cases table and its
progress artifact. Screenshots go to ``UI_SCREENSHOTS_DIR`` when it is set (the README's
``docs/`` pictures are made this way), else into the test's temporary directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prerequisites import missing
from server_helpers import PrefectServer, client_for, run_py, show
from suite_factory import case_src, make_suite

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [pytest.mark.server, pytest.mark.browser]


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        missing("needs pip's playwright and Debian's chromium (.ci/run installs both)")
    return sync_playwright


def _in_viewport(page, text: str) -> bool:
    box = page.get_by_text(text, exact=False).first.bounding_box()
    viewport = page.viewport_size
    return box is not None and 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"] and 0 <= box["y"] < viewport["height"]


def test_failing_case_and_full_progress_are_visible_in_the_ui(prefect_server: PrefectServer, tmp_path: Path) -> None:
    sync_playwright = _browser()
    suite = make_suite(
        tmp_path / "exp",
        [case_src("baseline"), case_src("diverges", fail_times=9), case_src("tuned", value=2.0)],
        name="ui_demo",
    )
    done = run_py(prefect_server, "flows/run_suite.py", suite, "--results-root", tmp_path / "results")
    assert done.returncode == 1, show(done)

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with client_for(prefect_server) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ui-demo-cases", "ui-demo-progress"])))
    by_key = {a.key: a for a in found}
    ui = prefect_server.url.removesuffix("/api")
    shots = Path(os.environ.get("UI_SCREENSHOTS_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{ui}/artifacts/artifact/{by_key['ui-demo-cases'].id}", wait_until="networkidle")
            page.get_by_text("exit code 3", exact=False).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "ui-cases-table.png"))
            # The failing case leads the table; its status and reason are on screen, not scrolled off.
            first_row = page.locator("tbody tr").first
            assert "diverges" in first_row.inner_text() and "failed" in first_row.inner_text()
            assert _in_viewport(page, "boom in diverges")
            assert _in_viewport(page, "exit code 3")

            page.goto(f"{ui}/artifacts/artifact/{by_key['ui-demo-progress'].id}", wait_until="networkidle")
            page.get_by_text("Progress: 100%", exact=False).first.wait_for(timeout=60_000)
            assert _in_viewport(page, "3/3 cases done, 1 failed")
            page.screenshot(path=str(shots / "ui-progress.png"))
        finally:
            browser.close()
