"""The pages in a real browser: the API under uvicorn on the embedded default (SQLite, local objects)
with a seeded team, and headless Debian chromium driven by Selenium through chromedriver.

chromium and chromium-driver come from deploy/ci/system-packages.sh. Every host name but
127.0.0.1 resolves to nothing in this browser, so a page that reached for a CDN would fail to
load its script and log an error. Screenshots of every page land in var/ui-screenshots/
(BOSUN_UI_SCREENSHOTS overrides), beside the API's log of the run (api.log).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack import ROOT, stack_env, start_api, wait_for
from tests.ui.seed import Seeded, seed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("BOSUN_UI_SCREENSHOTS", ROOT / "var" / "ui-screenshots"))


@dataclass
class Site:
    url: str
    settings: object
    seeded: Seeded
    shots: Path = SHOTS


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Site]:
    from shared.db.migrate import upgrade
    from shared.settings import Settings

    home = tmp_path_factory.mktemp("ui") / "home"
    home.mkdir()
    settings = Settings(home=home, data_root=data_root)
    upgrade(settings.database_url)
    seeded = seed(settings)
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = stack_env(home, data_root=str(data_root))
    proc, url = start_api(env, SHOTS / "api.log")
    try:
        yield Site(url, settings, seeded)
    finally:
        proc.kill()


@pytest.fixture(scope="session")
def server_site(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Site]:
    """The same pages on the team's stack: Postgres, Redis and an S3 server (moto) behind the API."""
    import uuid

    from shared.db.migrate import upgrade
    from shared.settings import Settings
    from shared.storage import S3Store
    from tests.stack import moto_server, postgres_database, redis_database

    with postgres_database() as db, redis_database() as broker, moto_server() as s3:
        home = tmp_path_factory.mktemp("ui-server") / "home"
        home.mkdir()
        bucket = f"bosun-ui-{uuid.uuid4().hex[:8]}"
        store = {"storage_url": f"s3://{bucket}", "s3_endpoint": s3, "s3_access_key": "ui-access",
                 "s3_secret_key": "ui-secret-key"}
        S3Store(bucket, endpoint=s3, access_key="ui-access", secret_key="ui-secret-key").ensure_bucket()
        settings = Settings(home=home, data_root=data_root, database_url=db, broker_url=broker, **store)
        upgrade(db)
        seeded = seed(settings)
        shots = SHOTS / "server"
        shots.mkdir(parents=True, exist_ok=True)
        env = stack_env(home, data_root=str(data_root), database_url=db, broker_url=broker, **store)
        proc, url = start_api(env, shots / "api.log")
        try:
            yield Site(url, settings, seeded, shots)
        finally:
            proc.kill()


@pytest.fixture(scope="session")
def chrome() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromium-driver are missing: run `bash deploy/ci/system-packages.sh`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--enable-unsafe-swiftshader",
                "--use-angle=swiftshader", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Browser:
    """The shared browser, signed in as one user at a time, with the checks every test uses."""

    def __init__(self, driver, site: Site) -> None:
        self.driver, self.site = driver, site

    def get(self, path: str) -> None:
        self.driver.get(self.site.url + path)

    def sign_in(self, who: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.delete_all_cookies()
        self.get("/login")
        self.driver.find_element(By.ID, "token").send_keys(self.site.seeded.tokens[who])
        self.driver.find_element(By.ID, "signin").click()
        wait_for(lambda: "/login" not in self.driver.current_url, 20, f"{who} signed in")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script: str, what: str, timeout: float = 20.0):
        """Until the script returns something truthy (polled in the page)."""
        return wait_for(lambda: self.js(script), timeout, what, interval=0.2)

    def console(self) -> list[dict]:
        """The browser log since the last call (errors and warnings of the page's scripts and loads)."""
        return self.driver.get_log("browser")

    def errors(self) -> list[str]:
        return [e["message"] for e in self.console() if e["level"] == "SEVERE"]

    def foreign_resources(self) -> list[str]:
        """Resources the page loaded from anywhere but this site."""
        return self.js("return performance.getEntriesByType('resource').map(e => e.name).filter(u => "
                       "!u.startsWith(location.origin) && !u.startsWith('data:') && !u.startsWith('blob:'))")

    def screenshot(self, name: str) -> Path:
        path = self.site.shots / f"{name}.png"
        height = self.js("return Math.min(document.documentElement.scrollHeight, 4000)")
        self.driver.set_window_size(1400, max(1000, height))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path


@pytest.fixture
def browser(chrome, site: Site) -> Browser:
    b = Browser(chrome, site)
    b.console()  # drop what earlier tests left in the log
    return b
