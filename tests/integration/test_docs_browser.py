"""`/docs` and `/redoc` render in a real browser with no internet (every host but the api's
unresolvable): Swagger UI lists the api's operations and authorizes with a key, ReDoc shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store.db import Database, upgrade
from tests.factories import register_champion
from tests.integration.browser import browser_binaries, chrome
from tests.integration.server import serving, tuneloop_env

SCREENSHOT = Path("/tmp/tuneloop-docs.png")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, base_artifact: Path) -> Iterator[str]:
    browser_binaries()
    home = tmp_path_factory.mktemp("docs-home")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
    upgrade(env["TUNELOOP_DATABASE_URL"])
    db = Database(env["TUNELOOP_DATABASE_URL"])
    register_champion(db, home / "artifacts", base_artifact)
    db.dispose()
    with serving(env, home / "api.log") as url:
        yield url


def test_swagger_ui_lists_the_operations_offline(base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with chrome(offline=True) as browser:
        browser.get(f"{base}/docs")
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) > 10
        )
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/v1/predict", "/v1/feedback", "/v1/retrain"} <= paths
        assert browser.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the bearer scheme
        browser.save_screenshot(str(SCREENSHOT))


def test_redoc_shows_the_operations_offline(base: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with chrome(offline=True) as browser:
        browser.get(f"{base}/redoc")
        WebDriverWait(browser, 30).until(lambda d: "/v1/predict" in d.page_source)
        assert "Classify one text or a list of texts" in browser.page_source
