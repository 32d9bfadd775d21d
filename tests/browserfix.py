"""A real headless Chromium for the web console's end-to-end tests (Debian's chromium and
chromium-driver; Selenium Manager is never asked to download anything: the driver's path is
given). Waits are DOM conditions with bounds (WebDriverWait), never sleeps."""
import shutil
import tempfile

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 10


def chromium(size=(1400, 1000)):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="hotline-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--lang=zh-CN"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.profile_dir = profile
    return driver


def quit_browser(driver):
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile_dir, ignore_errors=True)


@pytest.fixture
def browser_factory():
    drivers = []

    def make(**kw):
        d = chromium(**kw)
        drivers.append(d)
        return d
    yield make
    for d in drivers:
        quit_browser(d)


def wait(driver, condition, timeout=WAIT_S, message=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def text_of(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, css).text


def has_text(css, wanted):
    """Condition: the element's text contains `wanted` (read in the page in one go: rows that are
    rebuilt between finding and reading never go stale)."""
    def check(driver):
        text = driver.execute_script("var e = document.querySelector(arguments[0]);"
                                     "return e ? e.textContent : null;", css)
        return text is not None and wanted in text
    return check
