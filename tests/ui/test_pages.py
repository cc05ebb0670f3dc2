"""Every page loads in a real browser with nothing in its console and nothing from another site,
draws what it is for, and is saved as a screenshot; /docs renders offline; accessibility basics."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration


def pages(jobs: dict[str, int]) -> list[tuple[str, str, str]]:
    """(screenshot name, path, a script that is truthy once the page has drawn its content)."""
    ran, land = jobs["running"], jobs["landscape"]
    return [
        ("jobs", "/jobs", "return document.querySelectorAll('#jobs-table tbody tr').length >= 9"),
        ("job", f"/jobs/{ran}", "return document.querySelectorAll('#curves .chart canvas').length >= 3 && "
                                "[...document.querySelectorAll('.gallery img')].every(i => i.complete)"),
        ("queue", "/queue", "return document.querySelectorAll('#queue-live tbody tr').length >= 4"),
        ("compare", f"/compare?jobs={ran},{jobs['succeeded']},{jobs['baseline']}",
         "return document.querySelectorAll('#curves .chart canvas').length >= 1"),
        ("landscape", f"/jobs/{land}/landscape",
         "const r = document.getElementById('landscape'); return r.dataset.drawn === '121' && "
         "document.querySelector('#contour .main-svg') && "
         "document.querySelector('#surface3d .main-svg, #surface3d canvas')"),
        ("datasets", "/datasets", "return document.querySelectorAll('.dataset table.classes tbody tr').length >= 2"),
        ("docs", "/docs", "return document.querySelectorAll('.swagger-ui .opblock').length > 10"),
        ("redoc", "/redoc", "return document.querySelectorAll('[data-section-id]').length > 10"),
    ]


def test_every_page_loads_clean_and_draws(browser, site) -> None:
    browser.sign_in("alice")
    for name, path, drawn in pages(site.seeded.jobs):
        browser.get(path)
        browser.wait(drawn, f"{path} drawn", timeout=40)
        assert browser.errors() == [], path
        assert browser.foreign_resources() == [], path
        assert browser.screenshot(name).stat().st_size > 10_000


def test_every_page_loads_on_the_server_stack(chrome, server_site) -> None:
    from tests.ui.conftest import Browser

    browser = Browser(chrome, server_site)
    browser.console()
    browser.sign_in("alice")
    for name, path, drawn in pages(server_site.seeded.jobs):
        browser.get(path)
        browser.wait(drawn, f"{path} drawn on the server stack", timeout=40)
        assert browser.errors() == [], path
        assert browser.screenshot(name).stat().st_size > 10_000


def test_sign_in_page(browser) -> None:
    browser.driver.delete_all_cookies()
    browser.get("/jobs")
    assert "/login?next=%2Fjobs" in browser.driver.current_url
    browser.wait("return document.getElementById('signin')", "the sign-in form")
    assert browser.errors() == []
    browser.screenshot("login")


def test_docs_render_offline(browser, site) -> None:
    """No session needed; every host but this one is unresolvable in this browser."""
    browser.driver.delete_all_cookies()
    browser.get("/docs")
    browser.wait("return document.querySelector('#swagger-ui .information-container .title')", "Swagger UI's title")
    title = browser.js("return document.querySelector('#swagger-ui .information-container .title').textContent")
    assert title.startswith("bosun")
    ops = browser.js("return [...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)")
    assert "/api/v1/jobs" in ops and not any(p in ("/jobs", "/login", "/queue") for p in ops)  # the pages stay out
    assert browser.errors() == [] and browser.foreign_resources() == []


LABELLED = """
return [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 120));
"""


def test_form_controls_have_labels(browser, site) -> None:
    browser.driver.delete_all_cookies()
    browser.get("/login")
    assert browser.js(LABELLED) == []
    browser.sign_in("alice")
    jobs = site.seeded.jobs
    for path in ("/jobs", f"/jobs/{jobs['running']}", f"/jobs/{jobs['queued']}", "/queue",
                 f"/compare?jobs={jobs['running']},{jobs['succeeded']}", f"/jobs/{jobs['landscape']}/landscape"):
        browser.get(path)
        browser.wait("return document.readyState === 'complete'", path)
        assert browser.js(LABELLED) == [], path


def test_keyboard_reaches_sign_in(browser) -> None:
    """The token field has the focus when the page opens; Tab reaches the sign-in button, Shift+Tab
    goes back through the field and the home link to the skip link; Enter on the button with a wrong token answers
    with an error the page announces (role=alert)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def keys(*sequence: str, shift: bool = False) -> str:
        chain = ActionChains(browser.driver)
        if shift:
            chain = chain.key_down(Keys.SHIFT)
        chain = chain.send_keys(*sequence)
        if shift:
            chain = chain.key_up(Keys.SHIFT)
        chain.perform()
        return browser.js("const e = document.activeElement; return e.id || e.className || e.tagName")

    browser.driver.delete_all_cookies()
    browser.get("/login")
    assert browser.js("return document.activeElement.id") == "token"
    assert keys(Keys.TAB) == "signin"
    assert browser.js("const s = getComputedStyle(document.activeElement); return s.outlineStyle"), "a focus ring"
    assert keys(Keys.TAB, shift=True) == "token"
    assert keys(Keys.TAB, shift=True) == "brand"
    assert keys(Keys.TAB, shift=True) == "skip"
    assert keys(Keys.TAB, Keys.TAB) == "token"
    keys("bsn_not-a-token", Keys.TAB)
    assert keys(Keys.ENTER)
    browser.wait("return document.querySelector('[role=alert]')", "the sign-in error")
    assert "not valid" in browser.js("return document.querySelector('[role=alert]').textContent")
    assert "/login" in browser.driver.current_url


def _rgb(css: str) -> tuple[float, ...]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    return tuple(values)


def _luminance(rgb: tuple[float, ...]) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    lighter, darker = sorted((_luminance(_rgb(fg)), _luminance(_rgb(bg))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_status_badges_have_enough_contrast(browser) -> None:
    """Every status badge's text against its background, as the browser computes them from the CSS: >= 4.5:1."""
    browser.sign_in("alice")
    browser.get("/jobs")
    browser.wait("return document.querySelectorAll('#jobs-table .badge').length >= 9", "badges")
    badges = browser.js("""
        const seen = {};
        for (const e of document.querySelectorAll('.badge')) {
          const s = getComputedStyle(e); seen[e.className] = [s.color, s.backgroundColor];
        }
        return seen;""")
    kinds = {name.split("badge-")[1] for name in badges}
    assert {"queued", "running", "succeeded", "failed", "cancelled", "held"} <= kinds
    ratios = {name: round(contrast(fg, bg), 2) for name, (fg, bg) in badges.items()}
    assert all(r >= 4.5 for r in ratios.values()), ratios


def test_gallery_shows_the_jobs_images(browser, site) -> None:
    """The PNG and the SVG artifact are drawn inline (naturalWidth > 0); each links to its download."""
    ran = site.seeded.jobs["running"]
    browser.sign_in("alice")
    browser.get(f"/jobs/{ran}")
    browser.wait("const i = [...document.querySelectorAll('.gallery img')];"
                 "return i.length && i.every(e => e.complete)", "the gallery's images")
    drawn = browser.js("return Object.fromEntries([...document.querySelectorAll('.gallery img')]"
                       ".map(e => [e.alt, e.naturalWidth]))")
    assert set(drawn) == {"knn_confusion.png", "loss_curve.svg"} and all(w > 0 for w in drawn.values()), drawn
    answers = browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const links = [...document.querySelectorAll('.gallery figcaption a[download]')].map(a => a.href);
        Promise.all(links.map(u => fetch(u).then(r => [u.split('/').pop(), r.status,
                                                       r.headers.get('content-disposition')]))).then(done);""")
    assert sorted(answers) == [["knn_confusion.png?download=1", 200, 'attachment; filename="knn_confusion.png"'],
                               ["loss_curve.svg?download=1", 200, 'attachment; filename="loss_curve.svg"']]
    inline = browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.querySelector('.gallery img[alt="loss_curve.svg"]').src)
          .then(r => done([r.headers.get('content-type'), r.headers.get('content-security-policy')]));""")
    assert inline[0] == "image/svg+xml" and inline[1].startswith("sandbox")  # an SVG opened alone runs no script
    assert browser.errors() == []


def test_tags_filter_the_jobs_table_and_the_job_page_shows_tags_and_notes(browser, site) -> None:
    """A tag chip links to the table filtered by that tag; the Tag filter does the same; notes are on the job."""
    ran, baseline = site.seeded.jobs["running"], site.seeded.jobs["baseline"]
    browser.sign_in("alice")
    browser.get(f"/jobs/{ran}")
    browser.wait("return document.getElementById('job-notes')", "the job's notes")
    assert browser.js("return document.getElementById('job-notes').textContent") == \
        "lr 3e-4 against the 5e-4 baseline"
    browser.js("document.querySelector('.head a.tag[href=\"/jobs?tag=vit-t\"]').click()")
    browser.wait("return location.search === '?tag=vit-t' && document.querySelectorAll('#jobs-table tbody tr')"
                 ".length === 2", "the table of the jobs tagged vit-t")
    rows = browser.js("return [...document.querySelectorAll('#jobs-table tbody tr td:nth-child(2) a')]"
                      ".map(a => a.textContent)")
    assert rows == [f"#{baseline}", f"#{ran}"], rows
    assert browser.js("return document.getElementById('f-tag').value") == "vit-t"
    browser.js("const f = document.getElementById('f-tag'); f.value = 'ablation-lr'; f.form.submit()")
    browser.wait("return location.search.includes('tag=ablation-lr') && "
                 "document.querySelectorAll('#jobs-table tbody tr').length === 1", "the table of one tag")
    assert browser.errors() == []
