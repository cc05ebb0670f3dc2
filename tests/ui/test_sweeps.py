"""A sweep's page in the real browser: its result table and a parallel-coordinates plot of its axes
and the chosen metric; the sweeps list links to it."""

from __future__ import annotations

import httpx
import pytest

from tests.ui.seed import EVALUATE

pytestmark = pytest.mark.integration

SWEEP = {"name": "lr and k", "template": {"type": "evaluate", "spec": EVALUATE},
         "axes": {"knn.temperature": [0.001, 0.01, 0.1], "knn.k": [[5], [20]]}}


@pytest.fixture(scope="module")
def swept(site) -> dict:
    """A sweep of six points, five of whose evaluations succeeded (knn_top1 rising point by point)."""
    from sqlalchemy import select

    from shared.db import Job, session_scope

    r = httpx.post(f"{site.url}/api/v1/sweeps", json=SWEEP,
                   headers={"Authorization": f"Bearer {site.seeded.tokens['bob']}"}, timeout=30)
    assert r.status_code == 201, r.text
    sweep = r.json()
    with session_scope(site.settings.database_url) as s:
        for i, job in enumerate(s.scalars(select(Job).where(Job.sweep_id == sweep["id"]).order_by(Job.id))):
            if i < 5:
                job.status = "succeeded"
                job.result = {"headline": {"knn_top1": 0.5 + i / 20, "linear_top1": 0.9 - i / 50}}
    return sweep


def test_a_sweep_page_draws_its_table_and_parallel_coordinates(browser, site, swept) -> None:
    browser.sign_in("alice")
    browser.get(f"/sweeps/{swept['id']}")
    browser.wait("const b = document.getElementById('sweep-plot');"
                 "return b.dataset.drawn === '5' && b.querySelectorAll('.scatterlayer .trace').length === 5",
                 "the parallel coordinates")
    assert browser.js("return document.querySelectorAll('#sweep-table tbody tr').length") == 6
    labels = browser.js("return [...document.querySelectorAll('#sweep-plot .xtick text')].map(e => e.textContent)")
    assert labels == ["log10 knn.temperature", "knn.k", "knn_top1"], labels
    cells = browser.js("return [...document.querySelectorAll('#sweep-table tbody tr:first-child td')]"
                       ".map(td => td.textContent.trim())")
    assert cells[1:4] == ["0.001", "[5]", "succeeded"] and cells[-2:] == ["0.5", "0.9"], cells
    assert browser.js("return document.querySelector('#sweep-table tbody tr:last-child td:last-child')"
                      ".textContent") == "—"  # the sixth point has not succeeded
    browser.js("const s = document.getElementById('sweep-metric'); s.value = 'linear_top1';"
               "s.dispatchEvent(new Event('change'))")
    browser.wait("return document.getElementById('sweep-plot').dataset.metric === 'linear_top1' && "
                 "[...document.querySelectorAll('#sweep-plot .xtick text')].some(e => e.textContent === 'linear_top1')",
                 "the plot redrawn for linear_top1")
    assert browser.errors() == [] and browser.foreign_resources() == []
    assert browser.screenshot("sweep").stat().st_size > 10_000

    browser.get("/sweeps")
    browser.wait("return document.querySelectorAll('#sweeps-table tbody tr').length >= 1", "the sweeps list")
    link = browser.js(f"return document.querySelector('#sweeps-table a[href=\"/sweeps/{swept['id']}\"]').textContent")
    assert link == f"#{swept['id']}"
    assert browser.errors() == []


def test_a_missing_sweep_is_a_404_page(browser, site) -> None:
    browser.sign_in("alice")
    r = httpx.get(f"{site.url}/sweeps/999999", cookies={c["name"]: c["value"] for c in browser.driver.get_cookies()},
                  timeout=30)
    assert r.status_code == 404 and "sweep 999999 does not exist" in r.text
