"""The web view in a real browser: headless Chromium (the OS package) driven by Selenium.

One browser and one server for the module. Each test clicks through pages as
a person would; after each, the browser's console must hold no error (a
script error, a resource that failed to load, a CSP violation: any of these
means a page is broken or something tried to run). Screenshots of each page
go to test-artifacts/screenshots/ for people to look at.

Without Chromium and chromedriver the tests fail in CI (CI=true) and skip
elsewhere, saying what to install (scripts/test.sh installs both when root).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog

from ui_helpers import (
    HOSTILE_FILE,
    HOSTILE_KEY,
    HOSTILE_MESSAGE,
    HOSTILE_TAG,
    HOSTILE_VALUE,
    SCREENSHOTS,
    Built,
    browser_binaries,
    build_registry,
    fail_or_skip,
    serve,
)

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs selenium
    webdriver = None  # type: ignore[assignment]

TIMEOUT = 30.0  # generous: CI runs three workers on two cores


class Browser:
    """A Chromium session pointed at one server, with the checks every test shares."""

    def __init__(self, driver: WebDriver, base: str, downloads: Path) -> None:
        self.driver = driver
        self.base = base
        self.downloads = downloads

    def open(self, path: str = "") -> None:
        self.driver.get(self.base + path.lstrip("/"))

    def click(self, css: str) -> None:
        """Click an element that does not leave the page (a radio button)."""
        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def follow(self, css_or_element: str | WebElement) -> None:
        """Click a link or submit button and wait until the next page has replaced this one."""
        element = (self.driver.find_element(By.CSS_SELECTOR, css_or_element)
                   if isinstance(css_or_element, str) else css_or_element)
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, TIMEOUT).until(staleness_of(page))

    def texts(self, css: str) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def shot(self, name: str) -> None:
        """The whole page (not just the window) as test-artifacts/screenshots/NAME.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        image = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(image["data"]))

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def path(self) -> str:
        return str(self.driver.current_url)[len(self.base) - 1:]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Catalog, Built]]:
    base = tmp_path_factory.mktemp("ui-browser")
    catalog = Catalog(base / "registry")
    built = build_registry(catalog, base / "work")
    with serve(catalog) as server:
        yield server.url, catalog, built


@pytest.fixture(scope="module")
def chromium(site: tuple[str, Catalog, Built], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Browser]:
    if webdriver is None:
        fail_or_skip("selenium is not installed (pip install -e '.[test]')")
    binary, driver_path = browser_binaries()
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,800", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    try:
        driver = webdriver.Chrome(options=options,
                                  service=webdriver.ChromeService(executable_path=driver_path))
    except Exception as exc:  # a browser that cannot start is the same as none
        fail_or_skip(f"Chromium did not start: {exc}")
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield Browser(driver, site[0], downloads)
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Browser) -> Iterator[Browser]:
    """The module's browser; the test fails if the console logged any error meanwhile."""
    chromium.console_errors()  # drop what earlier tests left
    yield chromium
    errors = chromium.console_errors()
    assert not errors, f"browser console errors: {errors}"


def test_catalog_dataset_commit_diff_download(browser: Browser,
                                              site: tuple[str, Catalog, Built]) -> None:
    _, catalog, built = site
    browser.open()
    assert browser.texts("a.dataset") == ["data", "hostile", "models"]
    browser.shot("catalog")
    browser.follow('a.dataset[href="/d/models"]')
    assert browser.path() == "/d/models"
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "tr.commit-row")
    assert len(rows) == len(built.models)
    browser.shot("dataset")
    # the newest commit (the promotion) is the first row
    browser.follow("tr.commit-row a.hash")
    assert browser.path() == f"/d/models/c/{built.models[-1]}"
    assert browser.driver.find_element(By.ID, "message").text.startswith("Promote")
    browser.shot("commit")
    # back to run 5 (a real change from its parent) and diff against the parent
    browser.open(f"/d/models/c/{built.models[5]}")
    browser.follow("#diff-parent")
    assert browser.path().startswith("/d/models/diff?")
    changed = browser.texts("#metadata-diff tr.changed td.key")
    assert {"metrics.accuracy", "metrics.f1", "run"} <= set(changed)
    assert browser.texts("#tags-diff li") == [] or "staging" in " ".join(
        browser.texts("#tags-diff li"))
    assert "model.bin" in browser.texts("#files-diff td.filename")
    browser.shot("diff")
    # download a file of that commit: the bytes on disk match the registry's hash
    browser.open(f"/d/models/c/{built.models[5]}")
    link = browser.driver.find_element(By.CSS_SELECTOR, "a.download")
    assert link.find_element(By.XPATH, "../../td[1]").text == "config/train.json"
    link.click()
    saved = _downloaded(browser.downloads, "train.json")
    expected = catalog.get_dataset("models").resolve(built.models[5]).files["config/train.json"]
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == expected.hash


def _downloaded(folder: Path, name: str) -> Path:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        target = folder / name
        if target.exists() and not list(folder.glob("*.crdownload")):
            return target
        time.sleep(0.05)
    raise AssertionError(f"{name} was not downloaded into {folder}: {list(folder.iterdir())}")


def test_filter_with_a_where_expression_and_a_tag(browser: Browser,
                                                  site: tuple[str, Catalog, Built]) -> None:
    _, catalog, _ = site
    models = catalog.get_dataset("models")
    browser.open("/d/models")
    where = "metrics.accuracy >= 0.7 and framework == 'pytorch'"
    browser.driver.find_element(By.ID, "where").send_keys(where)
    browser.follow("#filter")
    shown = [e.get_attribute("title") for e in
             browser.driver.find_elements(By.CSS_SELECTOR, "tr.commit-row a.hash")]
    assert shown == [c.hash for c in models.find_commits(where=where)]
    assert 0 < len(shown) < len(models.history())
    browser.shot("dataset-where")
    # a tag link narrows it further (both filters apply)
    browser.follow('tr.commit-row a.tag[href="/d/models?tag=staging"]')
    assert [e.get_attribute("title") for e in browser.driver.find_elements(
        By.CSS_SELECTOR, "tr.commit-row a.hash")] == [c.hash for c in
                                                      models.find_commits(tags=["staging"])]
    # a broken expression says why, on the page, answered 400 (the one error logged)
    browser.open("/d/models?where=metrics.accuracy%20%3E")
    assert browser.driver.find_element(By.ID, "where-error").text
    logged = browser.console_errors()
    assert len(logged) == 1 and "status of 400" in logged[0]["message"], logged


def test_trend_draws_one_point_per_commit_and_links_to_it(
        browser: Browser, site: tuple[str, Catalog, Built]) -> None:
    _, _, built = site
    browser.open("/d/models/trend?metric=metrics.accuracy")
    points = browser.driver.find_elements(By.CSS_SELECTOR, "svg.trend circle.point")
    assert [p.get_attribute("data-commit") for p in points] == built.models
    title = points[4].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert title is not None and built.models[4][:8] in title and "staging" in title
    browser.shot("trend")
    browser.follow(points[4])
    assert browser.path() == f"/d/models/c/{built.models[4]}"


def test_stages_policy_and_audit_pages(browser: Browser, site: tuple[str, Catalog, Built]
                                       ) -> None:
    _, _, built = site
    browser.open("/d/models/stages")
    holders = {row.find_element(By.CSS_SELECTOR, "span.stage").text:
               row.find_element(By.CSS_SELECTOR, "a.hash").get_attribute("title")
               for row in browser.driver.find_elements(By.CSS_SELECTOR, "#stages tbody tr")}
    assert holders["production"] == built.models[6] and holders["staging"] == built.models[4]
    browser.shot("stages")
    browser.open("/d/models/policy")
    assert "metrics.accuracy >= 0.85" in browser.driver.find_element(By.ID, "policy-text").text
    assert browser.texts("#policy-diff span.add") == ["+++ version 1",
                                                      "+    when: metrics.accuracy >= 0.85"]
    browser.shot("policy")
    browser.open("/d/models/audit")
    assert browser.driver.find_element(By.ID, "audit-failures").text == "1"
    browser.shot("audit")


def test_hostile_strings_show_as_text_and_nothing_runs(
        browser: Browser, site: tuple[str, Catalog, Built]) -> None:
    _, _, built = site
    pages = ["/", "/d/hostile", f"/d/hostile/c/{built.hostile}",
             f"/d/hostile/diff?from={built.hostile}", "/d/hostile/trend?metric=score",
             "/d/hostile/stages"]
    for page in pages:
        browser.open(page)
        driver = browser.driver
        assert driver.execute_script("return typeof window.__pwned") == "undefined", page
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018 - raises when there is no alert
        assert not driver.find_elements(By.CSS_SELECTOR, "script, img, iframe, [onerror], "
                                                         "[onload]"), page
        for anchor in driver.find_elements(By.CSS_SELECTOR, "a"):  # SVG links too
            href = anchor.get_dom_attribute("href") or ""
            assert href.startswith("/"), (page, href)  # a path here: never a scheme
    browser.open(f"/d/hostile/c/{built.hostile}")
    body = browser.driver.find_element(By.TAG_NAME, "main").text
    for raw in (HOSTILE_MESSAGE, HOSTILE_TAG, HOSTILE_KEY, HOSTILE_VALUE, HOSTILE_FILE):
        assert raw in body  # shown exactly, as text
    browser.shot("hostile-commit")
    # following the hostile tag's link filters by that exact tag
    browser.follow("#tags a.tag")
    assert browser.texts("tr.commit-row a.hash") == [built.hostile[:8]]


def test_pick_two_commits_of_the_history_and_compare_them(
        browser: Browser, site: tuple[str, Catalog, Built]) -> None:
    _, _, built = site
    browser.open("/d/models")
    browser.click(f'input[name="from"][value="{built.models[0]}"]')
    browser.click(f'input[name="to"][value="{built.models[5]}"]')
    browser.follow("#compare")
    assert browser.path().startswith("/d/models/diff?")
    changed = dict(zip(browser.texts("#metadata-diff tr.changed td.key"),
                       browser.texts("#metadata-diff tr.changed td.new"), strict=True))
    assert changed["metrics.accuracy"] == "0.85" and changed["run"] == "5"
    # two policy versions, picked the same way
    browser.open("/d/models/policy")
    Select(browser.driver.find_element(By.ID, "policy-a")).select_by_value("1")
    Select(browser.driver.find_element(By.ID, "policy-b")).select_by_value("0")
    browser.follow('form.compare button[type="submit"]')
    assert browser.texts("#policy-diff span.add") == ["+++ version 0",
                                                      "+    when: metrics.accuracy >= 0.8"]
