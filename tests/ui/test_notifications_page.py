"""Your notifications page in a real browser: set a webhook and the events, a refused URL, a test
message that a worker's delivery pass sends to a local receiver, and its state on the page."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from shared.db import NotificationSettings, User, session_scope
from shared.notifications.delivery import deliver_due
from tests.notify_receivers import webhook_receiver

pytestmark = pytest.mark.integration


def channels_of(site, name: str) -> NotificationSettings | None:
    with session_scope(site.settings.database_url) as s:
        user = s.query(User).filter_by(name=name).one()
        return s.get(NotificationSettings, user.id)


def fill(browser, field: str, text: str) -> None:
    box = browser.driver.find_element(By.ID, field)
    box.clear()
    box.send_keys(text)


def test_a_user_sets_a_webhook_and_sees_the_test_message_delivered(browser, site) -> None:
    browser.sign_in("carol")
    browser.get("/jobs")
    browser.driver.find_element(By.LINK_TEXT, "carol").click()  # the name in the header leads here
    browser.wait("return location.pathname === '/settings/notifications'", "the notifications page")
    assert browser.driver.find_element(By.ID, "email").get_attribute("disabled")  # this server sends no email

    fill(browser, "webhook_url", "ftp://chat.lab.example/hook")
    browser.driver.find_element(By.ID, "notify-save").click()
    error = browser.wait("return document.getElementById('notify-error')?.textContent", "the refusal")
    assert error.startswith("webhook_url:"), error
    assert channels_of(site, "carol") is None
    assert any("422" in line for line in browser.errors())  # the refused form's answer, and nothing else

    with webhook_receiver() as hook:
        fill(browser, "webhook_url", hook.url)
        browser.driver.find_element(By.ID, "event-succeeded").click()  # off: told only of trouble
        browser.driver.find_element(By.ID, "notify-save").click()
        assert browser.wait("return document.querySelector('.flash')?.textContent", "saved") == "Notifications saved."
        saved = channels_of(site, "carol")
        assert saved.webhook_url == hook.url and "succeeded" not in saved.events and "failed" in saved.events
        assert not browser.driver.find_element(By.ID, "event-succeeded").is_selected()

        browser.driver.find_element(By.ID, "notify-test").click()
        flash = browser.wait("return document.querySelector('.flash')?.textContent", "the test queued")
        assert flash == "A test message is on its way to 1 channel."
        assert "pending" in browser.driver.find_element(By.ID, "notify-recent").text
        assert deliver_due(site.settings).delivered == 1  # what every worker runs every few seconds
        browser.get("/settings/notifications")
        row = browser.driver.find_element(By.CSS_SELECTOR, "#notify-recent tbody tr").text
        assert "test" in row and "webhook" in row and "delivered" in row, row
        assert [b["props"]["bosun"]["event"] for b in hook.bodies] == ["test"]
    assert browser.errors() == []
    browser.screenshot("notifications")
