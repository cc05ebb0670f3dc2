"""Pages that follow a running job without a reload: its curves gain points, its log follows, the
jobs table and the state panel move; the charts' zoom fetches detail, smoothing and log scale apply."""

from __future__ import annotations

import pytest

from shared.db import session_scope
from shared.job_lifecycle import set_progress
from tests.ui.seed import add_log, add_metrics, loss

pytestmark = pytest.mark.integration

CHART = "document.querySelector('#curves .chart[data-metric=\"{}\"]')"


def test_running_curve_gains_points_and_log_follows(browser, site) -> None:
    ran = site.seeded.jobs["running"]
    browser.sign_in("alice")
    browser.get(f"/jobs/{ran}")
    browser.wait(f"return {CHART.format('knn_top1')} && {CHART.format('loss')}", "the charts")
    browser.js("window.notReloaded = true")
    before = int(browser.js(f"return {CHART.format('knn_top1')}.dataset.points"))
    count = int(browser.js(f"return {CHART.format('loss')}.dataset.count"))

    add_metrics(site.settings, ran, "knn_top1", range(count, count + 1500, 500), lambda k: 0.2 + 0.5 * k / 3000)
    add_metrics(site.settings, ran, "loss", range(count, count + 600), loss)
    add_log(site.settings, ran, ["epoch 4 step 3000 loss 0.4100 (written while the page was open)"])

    browser.wait(f"return Number({CHART.format('knn_top1')}.dataset.points) === {before + 3}",
                 "knn_top1 gained 3 points")
    browser.wait(f"return Number({CHART.format('loss')}.dataset.count) === {count + 600}", "loss gained 600 points")
    last = browser.js("const d = bosunCharts.knn_top1.u.data[0]; return d[d.length - 1]")
    assert last == count + 1000
    assert int(browser.js(f"return {CHART.format('loss')}.dataset.points")) <= 2000  # still downsampled
    browser.wait("return document.getElementById('log-lines').textContent.includes('written while the page was open')",
                 "the new log line")
    browser.wait("const b = document.getElementById('log-box');"
                 "return b.scrollTop + b.clientHeight >= b.scrollHeight - 2", "the log scrolled to its end")
    assert browser.js("return window.notReloaded === true")
    assert browser.errors() == []


def test_jobs_table_and_state_panel_update_in_place(browser, site) -> None:
    ran = site.seeded.jobs["running"]
    browser.sign_in("alice")
    browser.get("/jobs")
    row = f"document.querySelector('#jobs-table a[href=\"/jobs/{ran}\"]').closest('tr')"
    bar = f"{row}.querySelector('[role=progressbar]')"
    browser.wait(f"return {bar}", "the running job's row")
    browser.js("window.notReloaded = true")
    browser.js(f"document.getElementById('pick-{ran}').checked = true")
    with session_scope(site.settings.database_url) as s:
        set_progress(session=s, job_id=ran, attempt=1, fraction=0.45,
                     message="epoch 5/10 · step 200/400 · 1.30 %/min · ETA 58m")
    browser.wait(f"return {bar}.getAttribute('aria-valuenow') === '45.0'", "the row's progress moved")
    row = browser.js(f"return {bar}.closest('tr').textContent")
    assert "ETA 58m" in row
    assert browser.js("return window.notReloaded === true")
    assert browser.js(f"return document.getElementById('pick-{ran}').checked"), "a ticked box survives the refresh"
    browser.get(f"/jobs/{ran}")
    with session_scope(site.settings.database_url) as s:
        set_progress(session=s, job_id=ran, attempt=1, fraction=0.5, message="epoch 5/10 · ETA 50m")
    browser.wait("return document.querySelector('#job-state .eta').textContent.includes('50m')",
                 "the state panel moved")
    assert browser.errors() == []


def test_zoom_fetches_detail_and_controls_apply(browser, site) -> None:
    ran = site.seeded.jobs["running"]
    browser.sign_in("alice")
    browser.get(f"/jobs/{ran}")
    browser.wait("return window.bosunCharts && bosunCharts.loss && bosunCharts.loss.u", "the loss chart")
    full = browser.js("return bosunCharts.loss.u.data[0].length")
    # a drag over the chart's first tenth, as uPlot reports it
    browser.js("const u = bosunCharts.loss.u, r = devicePixelRatio;"
               "u.setSelect({left: 0, top: 0, width: u.bbox.width / r / 10, height: u.bbox.height / r}, true)")
    browser.wait("return bosunCharts.loss.zoom !== null", "the zoomed detail")
    xs = browser.js("return bosunCharts.loss.u.data[0]")
    assert xs[-1] < 1000 and all(b - a == 1 for a, b in zip(xs, xs[1:], strict=False)), "every step of the range"
    assert len(xs) < full
    browser.js("document.getElementById('reset-zoom').click()")
    assert browser.js("return bosunCharts.loss.zoom === null && bosunCharts.loss.u.data[0].length") == full

    raw_vs_smooth = "const d = bosunCharts.loss.u.data; return [d[1][50], d[2][50]]"
    browser.js("const s = document.getElementById('smoothing'); s.value = '0'; s.dispatchEvent(new Event('input'))")
    raw, smooth = browser.js(raw_vs_smooth)
    assert raw == smooth
    browser.js("const s = document.getElementById('smoothing'); s.value = '0.9'; s.dispatchEvent(new Event('input'))")
    raw, smooth = browser.js(raw_vs_smooth)
    assert raw != smooth
    browser.js("document.getElementById('logscale').click()")
    assert browser.js("return bosunCharts.loss.u.scales.y.distr") == 3
    assert browser.errors() == []
