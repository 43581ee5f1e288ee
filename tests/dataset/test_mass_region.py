"""``--camaudit-mass-region`` (and the marker's ``mass_region=``) as a user runs it: which mass is judged, what the
rows say, an object without an outline, and baselines compared like with like."""

from __future__ import annotations

import json

import pytest
from support.usage import assert_usage_error

from pytest_camaudit.zoo.dataset import write_coco_dataset

SEEDS = [20_000_000, 20_000_001, 20_000_002]


def _data(pytester: pytest.Pytester, strip_first: bool = True) -> dict:
    """Three shapes scenes with outlines; the first annotation's outline removed."""
    write_coco_dataset(pytester.path / "data", SEEDS, "shapes")
    path = pytester.path / "data" / "annotations.json"
    doc = json.loads(path.read_text())
    if strip_first:
        doc["annotations"][0].pop("segmentation")
        path.write_text(json.dumps(doc))
    pytester.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\n")
    return doc


def _rows(path) -> list[dict]:
    return [r for t in json.loads(path.read_text())["tests"] for r in t["objects"]]


def test_mask_judges_the_outline_and_an_object_without_one_fails_saying_what_to_do(pytester, tmp_path):
    doc = _data(pytester)
    result = pytester.runpytest("--camaudit-cases=data/annotations.json", "--camaudit-mass-region=mask", "-p", "no:cacheprovider",
                                f"--camaudit-json={tmp_path / 'r.json'}")
    result.assert_outcomes(passed=2, failed=1)
    first = doc["annotations"][0]
    result.stdout.fnmatch_lines([f"*expected an outline for {doc['categories'][first['category_id'] - 1]['name']} (annotation {first['id']}) "
                                 "to measure its CAM mass in (--camaudit-mass-region=mask), got none; annotate its outline, "
                                 "or use --camaudit-mass-region=auto*"])
    rows = _rows(tmp_path / "r.json")
    outlined = [r for r in rows if r.get("has_outline")]
    assert len(outlined) == len(rows) - 1 and all(r["mass_region"] == "mask" and r["mass"] == r["mask_mass"] for r in outlined)
    assert all(r["box_mass"] is not None and r["mask_mass"] != r["box_mass"] for r in outlined)


def test_auto_judges_the_outline_where_there_is_one_and_box_is_the_default(pytester, tmp_path):
    _data(pytester)
    auto = pytester.runpytest("--camaudit-cases=data/annotations.json", "--camaudit-mass-region=AUTO", "-p", "no:cacheprovider",
                              f"--camaudit-json={tmp_path / 'auto.json'}")
    auto.assert_outcomes(passed=3)
    default = pytester.runpytest("--camaudit-cases=data/annotations.json", "-p", "no:cacheprovider", f"--camaudit-json={tmp_path / 'box.json'}")
    default.assert_outcomes(passed=3)
    auto_rows, box_rows = _rows(tmp_path / "auto.json"), _rows(tmp_path / "box.json")
    assert [r.get("mass_region") for r in auto_rows].count(None) == 1  # the object without an outline: its box
    for a, b in zip(auto_rows, box_rows, strict=True):
        assert "mass_region" not in b and b["mass"] == (a["box_mass"] if a.get("has_outline") else a["mass"])
        assert a.get("mask_mass") == b.get("mask_mass")  # both runs measure the outline mass; only the judged one differs


def test_the_marker_keyword_and_a_gate_on_outlines(pytester):
    _data(pytester, strip_first=False)
    pytester.makepyfile(test_data="""
        import pytest
        pytestmark = pytest.mark.camaudit_cases("data/annotations.json", mass_region="mask", gate_mass=(0.99, 0.9))

        def test_scene(camaudit, camaudit_entry):
            camaudit_entry.check(camaudit_entry.audit(camaudit))
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 1  # every image passes; the outline mass gate at 0.99 fails the run
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*camaudit gates: FAILED*"])


def test_baselines_compare_like_with_like(pytester, tmp_path):
    _data(pytester, strip_first=False)
    base = ["--camaudit-cases=data/annotations.json", "--camaudit-baseline=base", "-p", "no:cacheprovider"]
    pytester.runpytest(*base, "--camaudit-update-baseline").assert_outcomes(passed=3)  # written on boxes
    pytester.runpytest(*base, "--camaudit-mass-region=mask", f"--camaudit-json={tmp_path / 'm.json'}").assert_outcomes(passed=3)
    for row in _rows(tmp_path / "m.json"):
        assert row["baseline"]["mass"] == pytest.approx(row["box_mass"], abs=2e-4)  # the box masses, as the baseline measured
        assert "mass_region" not in row["baseline"]
    pytester.runpytest(*base, "--camaudit-update-baseline", "--camaudit-mass-region=mask").assert_outcomes(passed=3)  # on outlines
    pytester.runpytest(*base, f"--camaudit-json={tmp_path / 'b.json'}").assert_outcomes(passed=3)
    for row in _rows(tmp_path / "b.json"):
        assert row["baseline"]["mass_region"] == "mask" and row["baseline"]["mass"] == pytest.approx(row["mask_mass"], abs=2e-4)


def test_a_bad_region_is_a_usage_error(pytester):
    assert_usage_error(pytester, ["--camaudit-mass-region=outline"], "", "*expected one of box, mask, auto (where the CAM mass is measured), got 'outline'*")


COUNT_FILLS = """
import pytest
from pytest_camaudit.datatypes import PolygonOutline

FILLS = []
_patch = pytest.MonkeyPatch()

def pytest_configure(config):
    fill = PolygonOutline.mask
    _patch.setattr(PolygonOutline, "mask", lambda self, h, w: FILLS.append(self) or fill(self, h, w))

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"outline fills: {len(FILLS)}")

def pytest_unconfigure(config):
    _patch.undo()
"""


@pytest.mark.parametrize("min_mass", [0.01, 0.99], ids=["checks-pass", "checks-fail"])
def test_a_checked_outline_mass_is_measured_once_and_its_row_carries_the_checks_value(pytester, tmp_path, min_mass):
    """Each outline is filled once per object (the check takes the filled mask), and the row's mass is the one the check judged."""
    doc = _data(pytester, strip_first=False)
    pytester.makeconftest(COUNT_FILLS)
    result = pytester.runpytest("--camaudit-cases=data/annotations.json", "--camaudit-mass-region=mask", f"--camaudit-min-mass={min_mass}",
                                "-p", "no:cacheprovider", f"--camaudit-json={tmp_path / 'r.json'}")
    result.assert_outcomes(**({"passed": 3} if min_mass < 0.5 else {"failed": 3}))
    result.stdout.fnmatch_lines([f"outline fills: {len(doc['annotations'])}"])
    run = json.loads((tmp_path / "r.json").read_text())
    checks = {case["nodeid"]: [c for c in case["checks"] if c["kind"] == "box_mass"] for case in run["cases"]}
    checked = [c["measured"] for t in run["tests"] for c in checks[t["nodeid"]]]
    rows = [r for t in run["tests"] for r in t["objects"]]
    assert len(rows) == len(checked) == len(doc["annotations"]) and all(c["region"] == "outline" for c in checked)
    assert [r["mass"] for r in rows] == [r["mask_mass"] for r in rows] == [c["mass"] for c in checked]
