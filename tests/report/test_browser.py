"""The report in a real browser: headless Chromium opens it from disk, as a person would.

Checks what only a browser can: the stylesheet and every picture load under the page's own
Content-Security-Policy from ``file://``, a thumbnail opens its full-size picture, the CSS-only
filters work with JavaScript disabled, and a 500-case report opens and scrolls to its end.
Skipped only where no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageStat
from support.chromium import Browser, find_chromium
from support.html import TESTS
from support.reportdata import summary_for, synthetic_cases

from pytest_camaudit.report import write_report
from pytest_camaudit.zoo.dataset import write_coco_dataset

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed; `apt-get install -y chromium` (as .ci/run does) or set CAMAUDIT_CHROMIUM=/path/to/chrome",
)]

WAIT_IMAGES = """(async (selector) => {
  const imgs = [...document.querySelectorAll(selector)];
  for (let i = 0; i < 200 && !imgs.every(im => im.complete); i++) await new Promise(r => setTimeout(r, 50));
  return {total: imgs.length, loaded: imgs.filter(im => im.complete && im.naturalWidth > 0).length};
})(%s)"""

SCROLL_ALL = """(async () => {
  for (let y = 0; y <= document.documentElement.scrollHeight; y += innerHeight) {
    scrollTo(0, y); await new Promise(r => setTimeout(r, 30));
  }
  scrollTo(0, 0);
})()"""

VISIBLE = "[...document.querySelectorAll('div.card')].filter(c => c.offsetParent !== null).length"


@pytest.fixture(scope="module")
def browser():
    with Browser(CHROMIUM) as b:
        yield b


@pytest.fixture
def report(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000, 20_000_001], "shapes")
    pytester.makepyfile(TESTS)
    path = pytester.path / "out" / "report.html"
    pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={path}", "--camaudit-report-all").assert_outcomes(passed=1, failed=4)
    return path


def _click_label(browser: Browser, text: str, group: str = "") -> None:
    """Click the filter label reading ``text`` (in the radio group ``group``, e.g. ``fa``)."""
    box = browser.evaluate(
        "((t, g) => { const l = [...document.querySelectorAll(g ? `nav label[for^='${g}-']` : 'nav label')].find(l => l.textContent.trim() === t);"
        " l.scrollIntoView({block: 'center'}); const r = l.getBoundingClientRect();"
        f" return [r.x + r.width / 2, r.y + r.height / 2]; }})({json.dumps(text)}, {json.dumps(group)})"
    )
    browser.click(*box)


def test_report_renders_with_its_stylesheet_cards_and_every_picture(browser, report):
    browser.open(report)
    assert browser.evaluate("document.querySelectorAll('article.case').length") == 4
    assert browser.evaluate("getComputedStyle(document.querySelector('nav.filters')).position") == "sticky"  # CSS loaded
    browser.evaluate(SCROLL_ALL)
    imgs = browser.evaluate(WAIT_IMAGES % json.dumps("img"))
    assert imgs["total"] >= 6 and imgs["loaded"] == imgs["total"]
    # the screenshot shows the picture, not an empty placeholder
    rect = browser.evaluate(
        "(() => { const i = document.querySelector('figure img'); i.scrollIntoView(); const r = i.getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()"
    )
    shot = Image.open(io.BytesIO(browser.screenshot())).convert("RGB")
    x, y, w, h = (round(v) for v in rect)
    assert w >= 150 and h >= 150
    thumb = shot.crop((x + 2, y + 2, x + w - 2, y + h - 2))
    assert max(ImageStat.Stat(thumb).stddev) > 10, "the thumbnail area is flat: the picture did not render"
    # a click on a thumbnail opens the full-size picture
    browser.click(x + w / 2, y + h / 2)
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("document.contentType") in ("image/png", "image/jpeg", "image/webp")
    assert browser.evaluate("document.images[0].naturalWidth") >= 320


def test_filters_work_with_javascript_disabled(browser, report):
    browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session=True)
    try:
        browser.open(report)
        assert browser.evaluate(VISIBLE) == 4
        _click_label(browser, "failed (3)")
        assert browser.evaluate(VISIBLE) == 3
        _click_label(browser, "passed (1)")
        assert browser.evaluate(VISIBLE) == 1
        _click_label(browser, "failed (3)")
        _click_label(browser, "context (1)")  # filters combine: failed AND a failed context check
        assert browser.evaluate(VISIBLE) == 1
        assert "test_fail_context" in browser.evaluate(
            "[...document.querySelectorAll('div.card')].find(c => c.offsetParent !== null).textContent"
        )
        for group in ("fo", "fa"):
            _click_label(browser, "all (4)", group)
        _click_label(browser, "triangle (1)")
        assert browser.evaluate(VISIBLE) == 1
    finally:
        browser.call("Emulation.setScriptExecutionDisabled", {"value": False}, session=True)


def test_500_case_report_opens_and_scrolls_to_its_last_card(browser, tmp_path):
    cases = synthetic_cases(500)
    report = write_report(tmp_path / "big.html", cases, summary_for(cases))
    browser.open(report)
    assert browser.evaluate("document.querySelectorAll('article.case').length") == 500
    first = browser.evaluate(WAIT_IMAGES % json.dumps("#case-1 img"))
    assert first == {"total": 3, "loaded": 3}
    browser.evaluate("document.querySelector('#case-500').scrollIntoView()")
    last = browser.evaluate(WAIT_IMAGES % json.dumps("#case-500 img"))
    assert last == {"total": 3, "loaded": 3}
    at_end = browser.evaluate("Math.ceil(scrollY + innerHeight) >= document.documentElement.scrollHeight - 2")
    assert at_end or browser.evaluate("document.querySelector('#case-500').getBoundingClientRect().top") < 900
    # lazy loading: far from the end, most pictures were never fetched
    loaded = browser.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded < 300
    browser.call("Performance.enable", session=True)
    metrics = {m["name"]: m["value"] for m in browser.call("Performance.getMetrics", session=True)["metrics"]}
    assert metrics["JSHeapUsedSize"] < 50e6  # the page has no scripts: the heap is the DOM's wrappers only
