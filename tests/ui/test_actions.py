"""Actions from a job's page, as its owner, another user and an admin; the session cookie."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from shared.db import Job, session_scope

pytestmark = pytest.mark.integration

FORCED_POST = """
const [path, token, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const headers = {'content-type': 'application/x-www-form-urlencoded'};
fetch(path, {method: 'POST', headers, body: token === null ? '' : 'csrf=' + encodeURIComponent(token),
             redirect: 'manual', credentials: 'same-origin'}).then(r => done(r.status));
"""


def status_of(site, job_id: int) -> tuple[str, str | None]:
    with session_scope(site.settings.database_url) as s:
        job = s.get(Job, job_id)
        return job.status, job.error


def confirm(browser, accept: bool) -> str:
    alert = WebDriverWait(browser.driver, 10).until(expected_conditions.alert_is_present())
    text = alert.text
    alert.accept() if accept else alert.dismiss()
    return text


def test_owner_cancels_from_the_job_page(browser, site) -> None:
    job = site.seeded.jobs["cancel_me"]
    browser.sign_in("bob")
    browser.get(f"/jobs/{job}")
    browser.driver.find_element(By.ID, "cancel-job").click()
    assert confirm(browser, accept=False) == f"Cancel job {job}?"
    assert status_of(site, job) == ("queued", None)  # dismissed: nothing sent
    browser.driver.find_element(By.ID, "cancel-job").click()
    confirm(browser, accept=True)
    browser.wait("return document.querySelector('.flash')", "the outcome")
    assert status_of(site, job) == ("cancelled", "cancelled by bob")
    assert browser.js("return document.querySelector('#job-state .badge').textContent") == "cancelled"
    assert browser.driver.find_elements(By.ID, "cancel-job") == []  # nothing left to cancel
    assert browser.errors() == []
    browser.screenshot("job-cancelled")


def test_non_owner_sees_no_button_and_a_forced_post_is_refused(browser, site) -> None:
    job = site.seeded.jobs["queued"]  # bob's
    browser.sign_in("carol")
    browser.get(f"/jobs/{job}")
    browser.wait("return document.getElementById('job-state')", "the state panel")
    for button in ("cancel-job", "hold-job", "release-job"):
        assert browser.driver.find_elements(By.ID, button) == [], button
    assert browser.driver.find_elements(By.ID, f"priority-{job}") == []  # admins only
    assert browser.driver.find_elements(By.ID, "rerun-job")  # anyone may rerun, as their own job
    token = browser.js("return document.querySelector('meta[name=csrf-token]').content")
    assert browser.driver.execute_async_script(FORCED_POST, f"/jobs/{job}/cancel", token) == 403
    assert browser.driver.execute_async_script(FORCED_POST, f"/jobs/{job}/hold", token) == 403
    assert browser.driver.execute_async_script(FORCED_POST, f"/jobs/{job}/priority", token) == 403
    assert status_of(site, job) == ("queued", None)
    browser.console()  # the refused fetches are logged as failed loads; that is the point


def test_admin_sees_every_action_and_a_post_without_csrf_is_refused(browser, site) -> None:
    job = site.seeded.jobs["queued"]
    browser.sign_in("alice")
    browser.get(f"/jobs/{job}")
    for button in ("cancel-job", "hold-job", "rerun-job", f"priority-{job}"):
        assert browser.driver.find_elements(By.ID, button), button
    assert browser.driver.execute_async_script(FORCED_POST, f"/jobs/{job}/cancel", None) == 403
    assert browser.driver.execute_async_script(FORCED_POST, f"/jobs/{job}/cancel", "not-the-token") == 403
    assert status_of(site, job) == ("queued", None)
    browser.console()


def test_session_cookie_is_httponly_signed_and_ends_at_sign_out(browser, site) -> None:
    browser.sign_in("bob")
    cookie = next(c for c in browser.driver.get_cookies() if c["name"] == "bosun_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert site.seeded.tokens["bob"] not in cookie["value"]
    assert "bosun_session" not in browser.js("return document.cookie")
    browser.driver.find_element(By.CSS_SELECTOR, ".who button").click()
    browser.wait("return location.pathname === '/login'", "the sign-in page")
    browser.get("/queue")
    assert "/login?next=%2Fqueue" in browser.driver.current_url
    # a cookie whose signature was changed signs nobody in
    value = cookie["value"]
    browser.driver.add_cookie({**cookie, "value": value[:-1] + ("1" if value[-1] == "0" else "0")})
    browser.get("/queue")
    assert "/login" in browser.driver.current_url
