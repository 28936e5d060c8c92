"""A real browser for the page tests: Debian's chromium and chromedriver, headless, via selenium.

`offline=True` makes every host but the api's unresolvable, so a page that would fetch a script or
a stylesheet from a CDN breaks here as it would on a machine without internet.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_binaries() -> tuple[str, str]:
    """chromium and chromedriver; skip without them on a user's machine, fail under CI."""
    found = [shutil.which(p) for p in (CHROMIUM, CHROMEDRIVER)]
    if all(found):
        return CHROMIUM, CHROMEDRIVER
    if os.environ.get("CI") == "true":
        pytest.fail(
            "chromium or chromedriver is missing under CI (apt-get install chromium "
            "chromium-driver)"
        )
    pytest.skip(
        "chromium and chromium-driver are not installed (Debian: apt-get install "
        "chromium chromium-driver)"
    )


@contextmanager
def chrome(*, offline: bool = False, size: str = "1000,800") -> Iterator[Any]:
    """A headless chromium driven by selenium, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    flags.append(f"--window-size={size}")
    if offline:
        flags.append("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    for flag in flags:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield browser
    finally:
        browser.quit()
