"""``explore(image)`` outside pytest: the cached detector, the case that shows itself, its maps, release."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from types import SimpleNamespace

import numpy as np
import pytest

import pytest_camaudit
from pytest_camaudit.audit.auditor import Auditor
from pytest_camaudit.datatypes import CamMap
from pytest_camaudit.methods.registry import cam_for
from pytest_camaudit.notebook.api import engine_for, explore, release_detectors
from pytest_camaudit.notebook.display import GateSummary, register_formatters
from pytest_camaudit.notebook.shown import NotebookCase, ReleasedCaseError, ShownMap

PNG = b"\x89PNG\r\n\x1a\n"


def test_neither_the_plugin_nor_explore_imports_ipython_or_torch_until_used():
    code = ("import sys, pytest_camaudit.plugin.hooks, pytest_camaudit; pytest_camaudit.explore;"
            "loaded = [m for m in ('IPython', 'ipykernel', 'jupyter_client', 'torch', 'cv2') if m in sys.modules];"
            "print(loaded); sys.exit(bool(loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_explore_is_the_packages_one_call_api_and_caches_the_detector_per_model(tagged_scene):
    path, _ = tagged_scene
    assert pytest_camaudit.explore is explore and pytest_camaudit.NotebookCase is NotebookCase
    case = explore(path, model="shapes", method="eigencam", device="cpu")
    again = explore(str(path), model=" shapes ", method="EigenCAM", device="cpu")  # as --camaudit-model/-method read them
    assert isinstance(case, NotebookCase) and case.model == "shapes" and case.name == path.name
    assert case.engine is again.engine and case.detector is again.detector
    assert engine_for("shapes", "eigengradcam", "cpu").detector is case.detector  # one detector, one engine per method
    assert [d.label_name for d in case.above()] == [d.label_name for d in again.above()]
    assert release_detectors() == 1
    assert explore(path, model="shapes", device="cpu").detector is not case.detector  # loaded afresh


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "nope:"}, "`model`"),
    ({"method": "gradkam"}, "`method`: unknown CAM method 'gradkam'"),
    ({"device": "tpu"}, "`device`: unknown device 'tpu'"),
    ({"score_threshold": 1.5}, "`score_threshold`: expected a number in [0, 1], got 1.5"),
])
def test_explore_refuses_what_the_matching_option_refuses(tagged_scene, kwargs, message):
    with pytest.raises(ValueError) as info:
        explore(tagged_scene[0], **{"device": "cpu", **kwargs})
    assert message in str(info.value)


def test_a_case_shows_its_image_boxes_maps_and_checks(tagged_scene):
    path, box = tagged_scene
    case = explore(path, model="shapes", method="eigencam", device="cpu")
    assert case._repr_png_().startswith(PNG)
    empty = case._repr_html_()
    assert empty.count("<img") == 1 and "no checks yet" in empty
    tri = case.assert_detected("triangle", box)
    case.assert_cam_mass(tri, at_least=0.0)
    case.assert_survives_without_context(tri, max_drop=1.0)
    html = case._repr_html_()
    assert html.count('src="data:image/png;base64,') == 3  # detections, the CAM, the image without context
    assert "<td>cam_mass</td>" in html and "<td>context</td>" in html and html.count(">pass<") == 3


def test_user_text_is_escaped_as_in_the_report(tagged_scene):
    case = explore(tagged_scene[0], model="shapes", device="cpu", name="<script>alert(1)</script>")
    html = case._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    gates = GateSummary("judged", ("<b>triangle</b> recall too low",), {"title": "camaudit gates: FAILED (1 failing)",
                        "columns": ["class"], "rows": [["<i>tri</i>"]], "note": ""})
    shown = gates._repr_html_()
    assert "<b>" not in shown and "<i>" not in shown and "&lt;i&gt;tri&lt;/i&gt;" in shown and not gates.passed


def test_a_map_is_a_cam_map_that_shows_its_overlay(tagged_scene):
    path, box = tagged_scene
    case = explore(path, model="shapes", method="eigengradcam", device="cpu")
    tri = case.assert_detected("triangle", box)
    cam = case.cam(tri)
    assert isinstance(cam, ShownMap) and isinstance(cam, CamMap) and cam.target == tri.index and cam.box == tri.box
    assert cam.values is cam_for(case.analysis, "eigengradcam", tri).values  # the map itself, not a copy
    assert cam._repr_png_().startswith(PNG)
    picture = cam.picture()
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert not np.array_equal(picture, case.cam(None, "eigencam").picture())  # another map, another picture


def test_release_frees_the_analysis_and_says_so_when_used_again(tagged_scene):
    path, box = tagged_scene
    case = explore(path, model="shapes", device="cpu")
    case.assert_detected("triangle", box)
    analysis = weakref.ref(case.analysis)
    case.release()
    gc.collect()
    assert analysis() is None, "the engine or the case still holds the released analysis"
    assert case.released and "released" in repr(case)
    with pytest.raises(ReleasedCaseError, match=r"was released \(case.release\(\) freed its analysis and maps\); explore the image again"):
        case.assert_detected("triangle")
    assert case._repr_png_() is None
    html = case._repr_html_()
    assert "released" in html and "<img" not in html and "<td>detected</td>" in html  # the checks stay


def test_formatters_draw_the_plain_types_in_a_running_ipython(tagged_scene, shapes_engine):
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    assert not register_formatters()  # no IPython running here: nothing to register
    assert register_formatters(SimpleNamespace(display_formatter=formatter))
    plain = Auditor(shapes_engine).audit(tagged_scene[0])  # what a test holds: an AuditCase below the report layer
    data, _ = formatter.format(plain)
    assert "tagged-triangle.png" in data["text/html"] and "data:image/png;base64," in data["text/html"]
    bare, _ = formatter.format(plain.cam())
    assert bare["image/png"].startswith(PNG)
    mine, _ = formatter.format(explore(tagged_scene[0], model="shapes", device="cpu"))
    assert mine["image/png"].startswith(PNG) and "NotebookCase" in mine["text/plain"]


def test_gate_summary_judges_object_rows_and_shows_its_table():
    rows = [{"label": "triangle", "detected": d, "mass": m, "score_threshold": 0.5, "gate_recall": 0.9, "gate_mass": None,
             "baseline": None, "key": "a.png"} for d, m in ((True, 0.5), (False, None))]
    gates = GateSummary.from_rows(rows)
    assert not gates.passed and gates.failures == ("expected triangle recall >= 90% at score >= 0.50, got 50% (1 of 2 detected)",)
    html = gates._repr_html_()
    assert "camaudit gates: FAILED (1 failing)" in html and "<td>triangle</td>" in html and "recall &gt;= 90%" in html
    assert GateSummary.from_rows([]).passed and "no gate was set" in GateSummary()._repr_html_()


def test_gate_summary_of_a_run_file_says_what_the_run_said(tmp_path):
    from support.reportdata import synthetic_cases
    from support.runfiles import write_shard

    judged = GateSummary.from_run_file(write_shard(tmp_path / "run.json", list(synthetic_cases(4))))
    assert judged.state == "judged" and judged.table is not None and judged.table["title"].startswith("camaudit gates")
    assert judged.run["model"] == "shapes"
    assert judged.table["title"] in judged._repr_html_()
    shard = GateSummary.from_run_file(write_shard(tmp_path / "shard.json", list(synthetic_cases(2)), shard={"splits": 2, "group": 1}))
    assert shard.state == "deferred" and not shard.passed and "not judged" in shard._repr_html_()
