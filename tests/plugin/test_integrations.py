"""pytest-html extras, JUnit XML properties and the --camaudit-json summary, through pytest itself."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from support.html import TESTS

from pytest_camaudit.zoo.dataset import write_coco_dataset


@pytest.fixture
def suite(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000, 20_000_001], "shapes")
    pytester.makepyfile(TESTS)
    return pytester


def _properties(xml_path) -> dict[str, dict[str, str]]:
    root = ET.parse(xml_path).getroot()
    return {
        tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
        for tc in root.iter("testcase")
    }


def test_metrics_are_junit_properties_of_their_test(suite):
    xml = suite.path / "junit.xml"
    suite.runpytest("-p", "no:cacheprovider", f"--junitxml={xml}").assert_outcomes(passed=1, failed=4)
    props = _properties(xml)
    mass = props["test_fail_mass"]
    assert mass["camaudit.scene-20000001.png.verdict"] == "failed"
    assert float(mass["camaudit.scene-20000001.png.detected.score"]) > 0.5
    assert 0.0 <= float(mass["camaudit.scene-20000001.png.cam_mass.mass"]) < 0.999
    ctx = props["test_fail_context"]
    assert {"camaudit.scene-20000000.png.context.drop", "camaudit.scene-20000000.png.context.score_without"} <= set(ctx)
    assert props["test_pass"]["camaudit.scene-20000000.png.verdict"] == "passed"
    assert props["test_not_audited"] == {}


def test_failing_cases_figures_are_pytest_html_extras(suite):
    page = suite.path / "ph.html"
    result = suite.runpytest("-p", "no:cacheprovider", f"--html={page}", "--self-contained-html")
    result.assert_outcomes(passed=1, failed=4)
    html = page.read_text()
    for name in ("scene-20000000.png: Expected and detected", "scene-20000001.png: CAM: eigencam",
                 "scene-20000000.png: Without context"):
        assert name in html
    assert sum(html.count(f"data:image/{t};base64,") for t in ("jpeg", "png", "webp")) >= 5
    # no --html: pytest-html is installed but inactive, and nothing is attached
    assert suite.runpytest("-p", "no:cacheprovider").ret == 1


def test_json_summary_has_every_case_with_detections_metrics_and_verdicts(suite):
    out = suite.path / "out" / "summary.json"
    suite.runpytest("-p", "no:cacheprovider", f"--camaudit-json={out}").assert_outcomes(passed=1, failed=4)
    doc = json.loads(out.read_text())
    assert doc["format"] == "pytest-camaudit/run/3"
    assert doc["run"]["model"] == "shapes" and doc["run"]["method"] == "eigencam"
    assert doc["totals"] == {"audited_cases": 4, "failed_cases": 3, "error_cases": 0, "passed_cases": 1, "tests": 5, "failed_tests": 4}
    by_test = {c["nodeid"].split("::")[-1]: c for c in doc["cases"]}
    assert set(by_test) == {"test_pass", "test_fail_detect", "test_fail_mass", "test_fail_context"}
    assert by_test["test_pass"]["verdict"] == "passed"
    mass = by_test["test_fail_mass"]
    assert mass["verdict"] == "failed" and mass["name"] == "scene-20000001.png"
    assert mass["detections"] and set(mass["detections"][0]) == {"index", "box", "label", "score"}
    assert set(mass["metrics"]) >= {"detected.score", "detected.iou", "cam_mass.mass", "cam_mass.chance"} - {"detected.iou"}
    assert [(c["kind"], c["passed"]) for c in mass["checks"]] == [("detected", True), ("cam_mass", False)]
    assert "expected eigencam mass >= 1.00" in mass["checks"][1]["message"]
    assert doc["per_class"]["columns"][0] == "class" and doc["per_class"]["rows"]
    assert not list(out.parent.glob("*.tmp"))


def test_json_path_has_an_ini_twin(suite):
    suite.makeini("[pytest]\ncamaudit_json = from-ini.json\n")
    suite.runpytest("-p", "no:cacheprovider")
    assert json.loads((suite.path / "from-ini.json").read_text())["totals"]["audited_cases"] == 4
