"""A check's HTML report in a real browser with no internet: its verdict is on the first screen,
above Evidently's cards."""

from __future__ import annotations

from pathlib import Path

from core.store.monitoring import get_check
from monitor.service import run_check
from tests.integration.browser import browser_binaries, chrome
from tests.monitoring import monitor_context, serve
from tuneloop.wiring import render_report

SCREENSHOT = Path("/tmp/tuneloop-report.png")


def test_the_reports_verdict_is_on_its_first_screen(
    tmp_path: Path, sqlite_url: str, base_artifact: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser_binaries()
    context, _ = monitor_context(tmp_path, sqlite_url, base_artifact)
    serve(context, 150, seed=11)
    serve(context, 150, seed=12, start=10, shifted=True)
    check = get_check(context.db, run_check(context).id)
    assert check is not None and check.drift_detected
    path = next((context.settings.artifacts / "reports").glob(f"{check.id}.json.gz"))
    page = tmp_path / "report.html"
    page.write_text(render_report(str(path), check), encoding="utf-8")
    with chrome(offline=True, size="1280,800") as browser:
        browser.get(page.as_uri())
        verdict = WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "tuneloop-verdict")
        )
        assert verdict.text.startswith("Drift detected")
        bottom = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.bottom;", verdict
        )
        assert 0 < bottom <= browser.execute_script("return window.innerHeight;")
        browser.save_screenshot(str(SCREENSHOT))
