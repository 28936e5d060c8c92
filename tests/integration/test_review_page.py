"""The /review page in a real browser (Debian's chromium and chromedriver, headless, selenium)
against a real `tuneloop serve`: a wrong key is told so, a reviewer labels one item by click and
one by number key and skips one; the labels are in the store as review feedback, they leave the
queue, and a second reviewer never receives what the first holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.store.db import Database, upgrade
from tests.factories import register_champion
from tests.integration.browser import browser_binaries, chrome
from tests.integration.server import TOKEN, run_cli, serving, tuneloop_env

SCREENSHOT = Path("/tmp/tuneloop-review-page.png")
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, base_artifact: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, reviewer keys) of a served tiny classifier with 30 predictions."""
    browser_binaries()
    home = tmp_path_factory.mktemp("review-home")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}", TUNELOOP_API_OPEN="false")
    upgrade(env["TUNELOOP_DATABASE_URL"])
    db = Database(env["TUNELOOP_DATABASE_URL"])
    register_champion(db, home / "artifacts", base_artifact)
    db.dispose()
    keys = {
        name: run_cli("keys", "create", "--name", name, "--scopes", "review", env=env)
        .strip()
        .splitlines()[-1]
        for name in ("ann", "bob")
    }
    with serving(env, home / "api.log") as base:
        texts = [
            f"review number {i}: it {'works' if i % 2 else 'broke'} after {i} days"
            for i in range(30)
        ]
        answer = httpx.post(f"{base}/v1/predict", json={"inputs": texts}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        yield base, keys


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    with chrome() as browser:
        yield browser


def shown(driver: object) -> str:
    """The prediction id of the item on the page."""
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "item").get_attribute("data-prediction"))  # type: ignore[attr-defined]


def after(driver: object, previous: str) -> str:
    """Wait for the next item to replace `previous`; its id."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: _id_or_none(d) not in (None, previous))  # type: ignore[arg-type]
    return shown(driver)


def _id_or_none(driver: object) -> str | None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return shown(driver)
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def stored(base: str, prediction_id: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{base}/v1/predictions/{prediction_id}", headers=ADMIN)
    assert answer.status_code == 200
    feedback: list[dict[str, object]] = answer.json()["feedback"]
    return feedback


def queue(base: str, key: str) -> set[str]:
    answer = httpx.get(f"{base}/v1/review/queue?n=100", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return {i["prediction_id"] for i in answer.json()["items"]}


def test_a_reviewer_labels_by_click_and_key_and_skips_in_a_real_browser(
    site: tuple[str, dict[str, str]], driver: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, keys = site
    d = driver
    d.get(f"{base}/review")  # type: ignore[attr-defined]
    d.find_element(By.ID, "key").send_keys("tl_not-a-key" + Keys.ENTER)  # type: ignore[attr-defined]
    assert (
        "unknown, revoked, or lacks the review scope" in d.find_element(By.CLASS_NAME, "error").text
    )  # type: ignore[attr-defined]
    d.find_element(By.ID, "key").send_keys(keys["ann"] + Keys.ENTER)  # type: ignore[attr-defined]
    clicked = after(d, "")
    d.refresh()  # type: ignore[attr-defined]
    assert shown(d) == clicked  # a reload shows the item held, it does not lease another
    model_label = d.find_element(By.ID, "model-label").text  # type: ignore[attr-defined]
    other = "negative" if model_label == "positive" else "positive"
    d.find_element(By.CSS_SELECTOR, f'button[value="{other}"]').click()  # type: ignore[attr-defined]
    keyed = after(d, clicked)
    assert d.find_element(By.ID, "mine").text == "1"  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "estimate").text == "0.00"  # type: ignore[attr-defined]
    d.find_element(By.TAG_NAME, "body").send_keys("1")  # type: ignore[attr-defined]
    skipped = after(d, keyed)
    assert d.find_element(By.ID, "mine").text == "2"  # type: ignore[attr-defined]
    d.find_element(By.TAG_NAME, "body").send_keys("s")  # type: ignore[attr-defined]
    held = after(d, skipped)
    d.save_screenshot(str(SCREENSHOT))  # type: ignore[attr-defined]

    [by_click] = stored(base, clicked)
    assert (by_click["label"], by_click["source"], by_click["key_name"]) == (other, "review", "ann")
    assert by_click["rating"] == 1  # a correction
    [by_key] = stored(base, keyed)
    assert (by_key["label"], by_key["source"]) == ("negative", "review")  # key 1: first label
    assert stored(base, skipped) == []

    ann = queue(base, keys["ann"])
    assert not ann & {clicked, keyed, skipped, held}  # labeled, skipped, or held: not again
    bob = queue(base, keys["bob"])
    assert bob == {skipped}  # all else is labeled or leased to ann; the skip was given back
