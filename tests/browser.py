"""Headless Chromium (Debian's package) driven by Selenium through Debian's chromedriver,
for the console's tests and its screenshots. Console messages are captured so a test can
fail on any error the page logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
T = TypeVar("T")


def chromium(width: int = 1280, height: int = 800) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # The page's viewport itself is width x height (a phone width is a mobile viewport).
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


def console_errors(driver: webdriver.Chrome, allowed: tuple[str, ...] = ()) -> list[str]:
    """SEVERE console entries since the last call (reading the log empties it)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        str(e["message"])
        for e in entries
        if e["level"] == "SEVERE" and not any(a in str(e["message"]) for a in allowed)
    ]


def wait_for(what: Callable[[], T | None], timeout: float = 20.0, message: str = "") -> T:
    """Poll what() until it returns something truthy (the test's own wait, not the page's)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = what()
            if found:
                return found
        except Exception as exc:  # a stale element while the page re-renders: try again
            last_error = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message or what}: {last_error!r}")


def sign_in(driver: webdriver.Chrome, url: str, key: str, tenant: str | None = None) -> None:
    """Sign in with key; an admin can name the tenant the pages show (else all of them,
    which on a fleet many tests have used is more tenants than a page follows)."""
    driver.get(f"{url}/ui/")
    if tenant is not None:
        driver.execute_script("sessionStorage.setItem('agentbus.tenant', arguments[0])", tenant)
    box = wait_for(lambda: driver.find_element(By.ID, "api-key"), message="the sign-in form")
    box.send_keys(key)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.find_element(By.ID, "nav"), message="the navigation after sign-in")


def go(driver: webdriver.Chrome, hash_path: str, ready_id: str, timeout: float = 20.0) -> WebElement:
    """Navigate within the console and wait for an element of the new page; a timeout says
    what the page showed instead (still loading, or an error notice)."""
    driver.execute_script("location.hash = arguments[0]", hash_path)
    try:
        return wait_for(
            lambda: driver.find_element(By.ID, ready_id), timeout, message=f"#{ready_id} on {hash_path}"
        )
    except AssertionError as exc:
        shown = driver.execute_script("return (document.getElementById('main') || document.body).innerText")
        raise AssertionError(f"{exc}; the page showed: {str(shown)[:500]!r}") from None


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
