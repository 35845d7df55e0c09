"""The gateway's /docs and /redoc in headless Chromium with the network cut off: every host but the loopback
fails to resolve and every non-loopback connection goes to a dead proxy, so the pages only render if the
gateway serves all of their assets itself."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

WAIT_S = 30
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,1000")
# no DNS for any name but the loopback, and no route for IP literals either (Chrome never proxies loopback)
OFFLINE_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
                 "--proxy-server=http://127.0.0.1:9")
CDN_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"


@pytest.fixture
def offline_browser(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*FLAGS, *OFFLINE_FLAGS):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _fetch_outcome(browser: webdriver.Chrome, url: str) -> str:
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {mode: 'no-cors'}).then(() => done('loaded'), e => done('failed: ' + e));", url)


def _loaded_origins(browser: webdriver.Chrome) -> set[str]:
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls}


def test_the_network_is_really_cut_off(offline_browser, stack) -> None:
    offline_browser.get(stack.url("gateway") + "/healthz")
    assert _fetch_outcome(offline_browser, CDN_URL).startswith("failed")


def test_swagger_ui_lists_the_operations_offline(offline_browser, stack) -> None:
    gateway = stack.url("gateway")
    offline_browser.get(gateway + "/docs")
    WebDriverWait(offline_browser, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {e.get_attribute("data-path") for e in offline_browser.find_elements(By.CSS_SELECTOR,
                                                                                  ".opblock-summary-path")}
    assert {"/v1/search", "/v1/recommendations", "/v1/events"} <= paths, sorted(paths)
    assert _loaded_origins(offline_browser) == {gateway.rstrip("/")}


def test_redoc_renders_the_operations_offline(offline_browser, stack) -> None:
    gateway = stack.url("gateway")
    offline_browser.get(gateway + "/redoc")
    WebDriverWait(offline_browser, WAIT_S).until(
        lambda d: "/v1/search" in d.find_element(By.TAG_NAME, "body").text)
    assert "Pickwise gateway" in offline_browser.find_element(By.TAG_NAME, "body").text
    assert _loaded_origins(offline_browser) <= {gateway.rstrip("/")}
