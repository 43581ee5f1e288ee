"""The HTML report: exactly the failing cases, valid HTML, decodable images, escaped strings."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from support.html import TESTS, check_html

from pytest_camaudit.zoo.dataset import write_coco_dataset


@pytest.fixture
def suite(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000, 20_000_001], "shapes")
    pytester.makepyfile(TESTS)
    return pytester


def _cards(html: str) -> list[str]:
    return re.findall(r'<article class="case (\w+)" id="case-\d+">\s*<h2><span class="badge \w+">\w+</span>([^<]+)</h2>\s*<div class="nodeid">([^<·]+)', html)


def test_report_has_exactly_the_failing_cases_with_figures(suite):
    report = suite.path / "out" / "report.html"
    result = suite.runpytest(f"--camaudit-report={report}")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines([f"report: {report}"])
    html = report.read_text()
    cards = _cards(html)
    assert sorted(n.strip().split("::")[-1] for _, _, n in cards) == ["test_fail_context", "test_fail_detect", "test_fail_mass"]
    assert {c for c, _, _ in cards} == {"failed"}
    checker = check_html(html)
    assert checker.scripts == 0
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert len(checker.imgs) >= 5
    for src in checker.imgs:  # thumbnails: side files, at most 200 px
        assert src.startswith("report_files/") and src.endswith(".jpg")
        with Image.open(report.parent / src) as img:
            img.load()
            assert max(img.size) <= 200
    full = [h for h in checker.links if h.endswith((".png", ".jpg", ".webp"))]
    assert len(full) == len(checker.imgs)
    for href in full:  # a click on a thumbnail opens the full-size picture
        assert href.startswith("report_files/")
        with Image.open(report.parent / href) as img:
            img.load()
            assert max(img.size) >= 320
    css = [h for h in checker.links if h.endswith(".css")]
    assert len(css) == 1 and (report.parent / css[0]).is_file()
    assert sorted(p.name for p in (report.parent / "report_files").iterdir()) == sorted(
        {h.split("/", 1)[1] for h in checker.imgs + checker.links}
    )
    assert "expected triangle with score &gt;= 0.50" in html  # the message, escaped
    assert "Without context" in html and "CAM: eigencam" in html
    assert "3 failing cases" in html or ">3</b>failing" in html
    assert "drop ≤ " in html and "drop ≥ " not in html  # a maximum reads as one
    assert "score ≥ " in html


def test_threshold_directions_follow_the_check():
    from pytest_camaudit.records import bound

    assert [bound("context", "drop"), bound("baseline", "mass_drop"), bound("forbidden_mass", "mass"),
            bound("odi", "odi"), bound("deletion_auc", "auc"), bound("pointing_game", "distance")] == ["≤"] * 6
    assert [bound("cam_mass", "mass"), bound("baseline", "rank"), bound("insertion_auc", "auc"), bound("detected", "score")] == ["≥"] * 4


def test_report_all_adds_passing_cases(suite):
    report = suite.path / "all.html"
    suite.runpytest(f"--camaudit-report={report}", "--camaudit-report-all")
    cards = _cards(report.read_text())
    assert len(cards) == 4 and sum(c == "passed" for c, _, _ in cards) == 1


def test_user_strings_are_escaped(pytester):
    pytester.makepyfile(
        """
        import numpy as np, pytest
        @pytest.mark.parametrize("x", ["<script>alert(1)</script>"])
        def test_evil(camaudit, x):
            case = camaudit.audit(np.zeros((64, 64, 3), np.uint8), name="<img src=x onerror=alert(2)>")
            case.assert_detected("circle")
        """
    )
    report = pytester.path / "r.html"
    pytester.runpytest(f"--camaudit-report={report}")
    html = report.read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    check_html(html)


def test_report_is_written_when_a_test_errors_and_when_nothing_was_audited(pytester):
    pytester.makepyfile(
        """
        import pytest
        @pytest.fixture
        def broken():
            raise RuntimeError("fixture blew up")
        def test_err(broken):
            pass
        """
    )
    report = pytester.path / "r.html"
    result = pytester.runpytest(f"--camaudit-report={report}")
    result.assert_outcomes(errors=1)
    html = report.read_text()
    check_html(html)
    assert "No test audited an image in this run." in html
