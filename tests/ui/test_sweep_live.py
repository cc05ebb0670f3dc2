"""A sweep's page in the real browser: cancel, hold and release for its owner and admins (others see
no button, and a forced POST is refused), and the table and plot following the children's statuses
without a reload until every child has ended."""

from __future__ import annotations

import time

import httpx
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from shared.db import Job, session_scope
from tests.ui.seed import EVALUATE
from tests.ui.test_actions import FORCED_POST, confirm

pytestmark = pytest.mark.integration

ROWS = "document.querySelectorAll('#sweep-table tbody tr')"


def new_sweep(site, name: str) -> int:
    """bob's sweep of three evaluations, queued (no worker runs in these tests)."""
    body = {"name": name, "template": {"type": "evaluate", "spec": EVALUATE}, "axes": {"knn.k": [[5], [10], [20]]}}
    r = httpx.post(f"{site.url}/api/v1/sweeps", json=body,
                   headers={"Authorization": f"Bearer {site.seeded.tokens['bob']}"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def children(site, sweep_id: int) -> list[tuple[int, str, bool]]:
    with session_scope(site.settings.database_url) as s:
        return [(j.id, j.status, j.held)
                for j in s.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.id))]


def change(site, job_id: int, status: str, knn_top1: float | None = None) -> None:
    with session_scope(site.settings.database_url) as s:
        job = s.get(Job, job_id)
        job.status = status
        if knn_top1 is not None:
            job.result = {"headline": {"knn_top1": knn_top1}}


def test_owner_holds_and_releases_the_sweep(browser, site) -> None:
    sweep = new_sweep(site, "held by its owner")
    browser.sign_in("bob")
    browser.get(f"/sweeps/{sweep}")
    assert browser.driver.find_elements(By.ID, "release-sweep") == []  # nothing held yet
    browser.driver.find_element(By.ID, "hold-sweep").click()
    assert confirm(browser, accept=False).startswith(f"Hold sweep {sweep}?")
    assert [held for _, _, held in children(site, sweep)] == [False] * 3  # dismissed: nothing sent
    browser.driver.find_element(By.ID, "hold-sweep").click()
    confirm(browser, accept=True)
    browser.wait("return document.querySelector('.flash')", "the outcome")
    assert [(state, held) for _, state, held in children(site, sweep)] == [("queued", True)] * 3
    assert browser.js(f"return [...{ROWS}].map(r => r.querySelector('.badge-held') !== null)") == [True] * 3
    assert browser.js("return document.querySelector('#sweep-counts .badge-held').textContent") == "3 held"
    assert browser.driver.find_elements(By.ID, "hold-sweep") == []
    browser.screenshot("sweep-held")

    browser.driver.find_element(By.ID, "release-sweep").click()
    assert confirm(browser, accept=True).startswith(f"Release sweep {sweep}")
    browser.wait("return document.querySelector('.flash') && !document.getElementById('release-sweep')",
                 "released")
    assert [held for _, _, held in children(site, sweep)] == [False] * 3
    assert browser.js("return document.querySelectorAll('#sweep-table .badge-held').length") == 0
    assert browser.errors() == []


def test_another_user_sees_no_button_and_a_forced_post_is_refused(browser, site) -> None:
    sweep = new_sweep(site, "not carol's")
    browser.sign_in("carol")
    browser.get(f"/sweeps/{sweep}")
    browser.wait(f"return {ROWS}.length === 3", "the table")
    assert browser.driver.find_elements(By.ID, "sweep-actions") == []
    token = browser.js("return document.querySelector('meta[name=csrf-token]').content")
    for action in ("cancel", "hold", "release"):
        assert browser.driver.execute_async_script(FORCED_POST, f"/sweeps/{sweep}/{action}", token) == 403, action
    assert [(state, held) for _, state, held in children(site, sweep)] == [("queued", False)] * 3
    browser.console()  # the refused fetches are logged as failed loads; that is the point

    browser.sign_in("bob")  # the owner, without the form's token: refused too
    browser.get(f"/sweeps/{sweep}")
    assert browser.driver.execute_async_script(FORCED_POST, f"/sweeps/{sweep}/hold", None) == 403
    assert [held for _, _, held in children(site, sweep)] == [False] * 3
    browser.console()


def test_the_page_follows_its_children_until_all_have_ended(browser, site) -> None:
    sweep = new_sweep(site, "followed live")
    first, second, _ = (job_id for job_id, _, _ in children(site, sweep))
    browser.sign_in("alice")  # an admin: may act on bob's sweep
    browser.get(f"/sweeps/{sweep}")
    assert browser.js("return document.getElementById('sweep-live').getAttribute('hx-trigger')") == "every 3s"
    assert browser.driver.find_elements(By.ID, "cancel-sweep") and browser.driver.find_elements(By.ID, "hold-sweep")
    browser.js("window.notReloaded = true")

    change(site, first, "running")
    browser.wait(f"return {ROWS}[0].querySelector('.badge').textContent === 'running'", "the running row")
    change(site, first, "succeeded", knn_top1=0.61)
    browser.wait(f"return {ROWS}[0].lastElementChild.textContent === '0.61'", "the first metric")
    browser.wait("const b = document.getElementById('sweep-plot'); return b && b.dataset.drawn === '1'",
                 "the plot drawn from the refreshed table")
    browser.js("const s = document.getElementById('sweep-metric'); s.dataset.kept = 'yes'")
    change(site, second, "succeeded", knn_top1=0.72)
    browser.wait("return document.getElementById('sweep-plot').dataset.drawn === '2'", "a second line")
    assert browser.js("return document.getElementById('sweep-metric').dataset.kept") == "yes"  # the same select
    assert browser.js("return window.notReloaded === true")

    browser.driver.find_element(By.ID, "cancel-sweep").click()
    assert confirm(browser, accept=True).startswith(f"Cancel every job of sweep {sweep}")
    browser.wait("return document.querySelector('.flash')", "the outcome")
    assert [state for _, state, _ in children(site, sweep)] == ["succeeded", "succeeded", "cancelled"]
    assert browser.js("return document.getElementById('sweep-live').hasAttribute('hx-trigger')") is False
    assert browser.driver.find_elements(By.ID, "cancel-sweep") == []  # nothing left to cancel

    browser.js("window.notReloaded = true")
    polls = "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/live')).length"
    before = browser.js(polls)
    time.sleep(7)  # two polling periods: an ended sweep's page asks for nothing more
    assert browser.js(polls) == before and browser.js("return window.notReloaded === true")
    assert browser.errors() == []
    browser.screenshot("sweep-ended")
