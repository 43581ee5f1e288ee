"""The report at scale: size budget, side files, per-class table, filters present in the HTML."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from support.html import check_html
from support.reportdata import summary_for, synthetic_cases

from pytest_camaudit.records import CaseRecord
from pytest_camaudit.report import write_report

BUDGET = 10 * 1024 * 1024

SCALE_SUITE = '''
import cv2, pytest
from pytest_camaudit.zoo.world import CLASSES, make_scene

pytestmark = pytest.mark.slow  # end-to-end: a real pytest run, a browser or hundreds of cases

@pytest.mark.parametrize("seed", range(50_000_000, 50_000_100))
def test_scene(camaudit, seed):
    scene = make_scene(seed)
    big = cv2.resize(scene.image, (480, 480), interpolation=cv2.INTER_LINEAR)  # figures at 480 px
    case = camaudit.audit(big, name=f"scene-{seed}.png")
    label, box = CLASSES[int(scene.labels[0])], [3 * float(v) for v in scene.boxes[0]]
    det = case.assert_detected(label, box, score_threshold=0.05, iou_threshold=0.1)
    case.assert_survives_without_context(det, max_drop=1.0)
    case.assert_cam_mass(det, at_least=0.999)   # fails: every case goes into the report
'''


def _size(report):
    return report.stat().st_size + sum(p.stat().st_size for p in (report.parent / f"{report.stem}_files").iterdir())


@pytest.mark.slow
def test_100_failing_cases_with_three_figures_each_stay_under_10_mb(pytester):
    pytester.makepyfile(SCALE_SUITE)
    report = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={report}")
    result.assert_outcomes(failed=100)
    html = report.read_text()
    assert html.count('<article class="case failed"') == 100
    assert html.count("<img ") >= 290  # detections, CAM and without-context (unless a detection is missed)
    assert _size(report) <= BUDGET, f"report is {_size(report) / 1e6:.1f} MB for 100 cases"
    with Image.open(report.parent / re.search(r'<a href="(report_files/[^"]+)"', html).group(1)) as full:
        assert max(full.size) == 480  # full size is full size


@pytest.mark.slow
def test_500_cases_render_to_a_page_the_size_of_their_text(tmp_path):
    cases = synthetic_cases(500)
    report = write_report(tmp_path / "big.html", cases, summary_for(cases))
    html = report.read_text()
    checker = check_html(html)
    assert html.count("<article class=\"case ") == 500
    assert len(checker.imgs) == 1500 and all(src.startswith("big_files/") for src in checker.imgs)
    assert "data:" not in html
    assert report.stat().st_size < 2_500_000  # pictures live beside it, loaded lazily
    assert html.count('loading="lazy"') == 1500


def test_per_class_table_and_filters_cover_every_class_outcome_and_failed_check(tmp_path):
    cases = synthetic_cases(30)
    report = write_report(tmp_path / "r.html", cases, summary_for(cases))
    html = report.read_text()
    table = html.split('<section class="table per-class">', 1)[1].split("</section>", 1)[0]
    classes = sorted({c.labels[0] for c in cases})
    for name in classes:
        assert f"<td>{name}</td>" in table
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">(\d+)</td>", table)
    assert sum(int(n) for _, n in rows) == 30
    nav = html.split('<nav class="filters"', 1)[1].split("</nav>", 1)[0]
    failed = sum(c.outcome == "failed" for c in cases)
    assert f">failed ({failed})</label>" in nav and f">passed ({30 - failed})</label>" in nav
    for name in classes:
        assert f">{name} ({sum(c.labels == [name] for c in cases)})</label>" in nav
    assert ">cam_mass (" in nav and ">context (" in nav
    # every label picks a radio button that exists, and the stylesheet has a rule for it
    css = (tmp_path / re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)).read_text()
    for target in re.findall(r'<label for="([\w-]+)"', nav):
        assert f'id="{target}"' in html
        if not target.endswith("-all"):
            assert f"#{target}:checked ~ main div.card:not(.{target.split('-', 1)[1]})" in css


def test_rewriting_a_report_prunes_old_side_files_but_leaves_other_files(tmp_path):
    cases = synthetic_cases(6)
    report = write_report(tmp_path / "r.html", cases, summary_for(cases))
    folder = tmp_path / "r_files"
    mine = folder / "notes.txt"
    mine.write_text("keep me")
    before = {p.name for p in folder.iterdir()}
    write_report(report, cases[:2], summary_for(cases[:2]))
    after = {p.name for p in folder.iterdir()}
    assert len(after) < len(before) and "notes.txt" in after
    assert after - {"notes.txt"} == set(re.findall(r'r_files/([^"]+)"', report.read_text()))
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_figure_that_cannot_be_decoded_costs_only_itself(tmp_path):
    good, bad = synthetic_cases(2)
    broken = CaseRecord.from_dict(bad.to_dict())
    broken.figures[1].png = "not base64 at all!"
    broken.figures[1].thumb = ""
    report = write_report(tmp_path / "r.html", [good, broken], summary_for((good, broken)))
    html = report.read_text()
    check_html(html)
    assert html.count("<img ") == 5
    assert "figure &#39;cam-eigencam-0&#39; could not be shown" in html


def test_a_report_that_cannot_be_written_is_a_clear_error_and_fails_the_run(pytester):
    pytester.makepyfile("import numpy as np\ndef test_a(camaudit):\n    camaudit.audit(np.zeros((40, 40, 3), np.uint8), name='z')\n")
    (pytester.path / "taken").mkdir()
    result = pytester.runpytest("-p", "no:cacheprovider", "--camaudit-report=taken", "--camaudit-json=taken")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines([
        "ERROR: could not write the report to taken (*Is a directory*); check that its folder is writable",
        "ERROR: could not write the JSON summary to taken (*Is a directory*); check that its folder is writable",
    ])
