"""A finished test keeps only plain records: its analyses and maps are gone, its figures are on disk.

Run through pytest itself (``pytester``), as a user's suite runs: the proofs are weak references
to every analysis and CAM array a test made, checked by a later test of the same session, and the
report's side folder filling up while the session is still running.
"""

from __future__ import annotations

import cv2
import pytest

from pytest_camaudit.zoo.world import make_scene

TRACKING_CONFTEST = """
import gc, weakref
import pytest

REFS = {"analyses": [], "maps": []}

@pytest.fixture
def track():
    def add(case, cam):
        REFS["analyses"].append(weakref.ref(case.analysis))
        REFS["maps"].append(weakref.ref(cam.values))
    return add
"""

TRACKED_TESTS = """
import gc, pytest
from conftest import REFS

SCENES = [f"scene-{i}.png" for i in range(12)]

@pytest.mark.parametrize("name", SCENES)
def test_scene(camaudit, track, name):
    case = camaudit.audit(name)
    det = case.detections[0]
    cam = case.cam(det, method="eigengradcam")
    case.assert_cam_mass(det, at_least=0.0, method="eigengradcam")
    track(case, cam)
    if name.endswith(("3.png", "11.png")):
        assert False, "a failing test: its traceback (sys.last_traceback) holds the case"

def test_zz_nothing_outlives_its_test_beyond_the_engines_cache(camaudit_cam_engine):
    gc.collect()
    cached = {id(a) for a in camaudit_cam_engine._cache.values()}
    alive = [r() for r in REFS["analyses"] if r() is not None]
    assert len(REFS["analyses"]) == 12
    assert all(id(a) in cached for a in alive), "an analysis outlived its test outside the engine's LRU"
    assert len({id(a) for a in alive}) <= camaudit_cam_engine.cache_size
    assert all(not a.maps for a in alive), "a cached analysis still holds a finished test's maps"
    assert [r for r in REFS["maps"] if r() is not None] == [], "a CAM array outlived its test"
"""


def _scenes(pytester: pytest.Pytester, n: int) -> None:
    for i in range(n):
        cv2.imwrite(str(pytester.path / f"scene-{i}.png"), cv2.cvtColor(make_scene(20_000_000 + i).image, cv2.COLOR_RGB2BGR))


@pytest.mark.slow
def test_no_analysis_or_map_of_a_finished_test_outlives_it_beyond_the_lru(pytester):
    _scenes(pytester, 12)
    pytester.makeconftest(TRACKING_CONFTEST)
    pytester.makepyfile(test_tracked=TRACKED_TESTS)
    # in a subprocess: an in-process pytester run records every hook call, tracebacks included
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--camaudit-method=eigengradcam")
    result.assert_outcomes(passed=11, failed=2)


STREAMED_TESTS = """
import pytest

def test_a_fails_with_figures(camaudit):
    camaudit.audit("scene-0.png").assert_detected("star", [1, 1, 30, 30])

def test_b_its_figures_are_already_on_disk_and_not_in_memory(request):
    folder = request.config.rootpath / "out" / "report_files"
    stored = sorted(p.name for p in folder.iterdir() if p.suffix in (".webp", ".png", ".jpg"))
    assert stored, "the failing case's figures should be written as soon as it finished"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    [failed] = reporter.stats["failed"]
    figures = failed.camaudit[0]["figures"]
    assert figures and all(f["png"] == "" and f["thumb"] == "" for f in figures)
    assert {f["file"] for f in figures} <= set(stored)
"""


def test_figures_stream_to_the_report_folder_as_each_case_finishes(pytester):
    _scenes(pytester, 1)
    pytester.makepyfile(test_streamed=STREAMED_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={pytester.path / 'out' / 'report.html'}")
    result.assert_outcomes(passed=1, failed=1)
    html = (pytester.path / "out" / "report.html").read_text()
    files = {p.name for p in (pytester.path / "out" / "report_files").iterdir()}
    linked = [name for name in files if f"report_files/{name}" in html]
    assert len(linked) == len(files), "every stored figure is linked by the report, and nothing else is left"
