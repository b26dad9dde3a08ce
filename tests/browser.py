"""A headless Chromium for the tests that look at condgen's pages (the demo, the report), driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); the tests using it skip where either
or Selenium is missing, unless ``CONDGEN_REQUIRE_BROWSER=1`` (as CI sets), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(os.path.basename(path))):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (a Selenium WebDriver, 1400x1000), its console log kept (``get_log("browser")``)."""
    missing = _missing()
    if missing:
        if os.environ.get("CONDGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"a browser is required but {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)  # no sandbox: CI runs as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The console's SEVERE entries since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
