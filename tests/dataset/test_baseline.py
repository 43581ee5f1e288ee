"""Baselines across model versions: write with one model, compare another, as a user runs pytest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_camaudit.dataset.baseline import COMPACT_SIDE, case_paths, compact, expand
from pytest_camaudit.zoo.dataset import write_coco_dataset

SEEDS = list(range(20_000_000, 20_000_003))
NAMES = [f"scene-{s}.png" for s in SEEDS]

CANDIDATE = '''
import pytest
from pytest_camaudit import Detector
from pytest_camaudit.audit.sanity import randomised_detector
from pytest_camaudit.zoo.model import load_zoo_detector

@pytest.fixture(scope="session")
def camaudit_detector():
    model, classes, meta = load_zoo_detector("shapes")
    return randomised_detector(Detector.wrap(model, classes, name="shapes", device="cpu"), "{scope}")
'''


def test_compact_maps_keep_the_aspect_and_come_back_at_image_size():
    values = np.zeros((100, 200), np.float32)
    values[10:30, 150:190] = 1.0
    small = compact(values)
    assert small.dtype == np.uint8 and small.shape == (32, COMPACT_SIDE)
    assert small[5, 55] == 255 and small[25, 10] == 0  # the block stays top-right (x ≈ 150..190 → 48..61)
    back = expand(small, (200, 100))
    assert back.shape == (100, 200) and back[20, 170] == pytest.approx(1.0) and back[80, 20] == 0.0
    assert case_paths("B", "annotations/a b.png") == (Path("B/cases/annotations/a_b.png.json"), Path("B/cases/annotations/a_b.png.npz"))


@pytest.fixture
def data(pytester):
    write_coco_dataset(pytester.path / "data", SEEDS, "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_cases = data/annotations.json\n")
    return pytester


@pytest.mark.slow
def test_update_writes_safe_files_and_the_same_model_matches_them(data, shapes_detector):
    result = data.runpytest("--camaudit-baseline=base", "--camaudit-update-baseline", "-n", "2")
    result.assert_outcomes(passed=3)
    manifest = json.loads((data.path / "base" / "manifest.json").read_text())
    assert manifest["model"] == {"model": "shapes", "identity": shapes_detector.identity, "method": "eigencam"}
    assert manifest["cases"] == [f"annotations/{n}" for n in NAMES]
    doc = json.loads((data.path / "base" / "cases" / "annotations" / f"{NAMES[0]}.json").read_text())
    assert doc["model"]["identity"] == shapes_detector.identity and doc["image"]["size"] == [160, 160]
    assert [o["label"] for o in doc["objects"]] == ["square", "square", "circle"] and all(o["detected"] for o in doc["objects"])
    with np.load(data.path / "base" / "cases" / "annotations" / f"{NAMES[0]}.npz", allow_pickle=False) as z:
        assert z.files == ["image"] and z["image"].dtype == np.uint8 and z["image"].shape == (COMPACT_SIDE, COMPACT_SIDE)

    written = {p: p.read_bytes() for p in (data.path / "base").rglob("*") if p.is_file()}
    # same model, same settings, same bytes. The same parallelism too: each of 2 workers runs torch
    # on 1 thread, one process on 2, and float sums in another order can flip a 4th decimal
    # (the comparison below, in one process, absorbs that within its tolerance).
    data.runpytest("--camaudit-baseline=base", "--camaudit-update-baseline", "-n", "2").assert_outcomes(passed=3)
    assert {p: p.read_bytes() for p in (data.path / "base").rglob("*") if p.is_file()} == written

    result = data.runpytest("--camaudit-baseline=base", "-rA")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["camaudit baseline: per-class recall passed", "  class * baseline recall * recall * drop*"])


def test_a_model_that_stops_detecting_fails_the_recall_gate(data):
    data.runpytest("--camaudit-baseline=base", "--camaudit-update-baseline").assert_outcomes(passed=3)
    data.makeconftest(CANDIDATE.replace("{scope}", "heads"))  # same backbone, no detections
    result = data.runpytest("--camaudit-baseline=base")
    result.assert_outcomes(failed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random([  # the per-class recall gate says what happened
        "FAILED gate: expected circle recall to drop by at most 5% from the baseline's 100%, got 0% (drop 100%, * -> 0 of *)",
        "FAILED gate: expected square recall to drop by at most 5% from the baseline's 100%, got 0% (drop 100%, * -> 0 of *)",
    ])
    # a looser tolerance lets the recall go, not the per-case detection checks
    result = data.runpytest("--camaudit-baseline=base", "--camaudit-baseline-tolerance=recall-drop=1.0")
    assert "FAILED gate" not in result.stdout.str()


def test_changed_maps_fail_with_both_overlays_on_the_report(data, tmp_path):
    data.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_cases = data/annotations.json\ncamaudit_method = eigengradcam\n")
    data.runpytest("--camaudit-baseline=base", "--camaudit-update-baseline").assert_outcomes(passed=3)
    with np.load(data.path / "base" / "cases" / "annotations" / f"{NAMES[0]}.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["object-1", "object-2", "object-3"]  # one map per annotated object
    # an EigenCAM baseline of the clean model, then the randomised model compared with it
    report = tmp_path / "report.html"
    data.runpytest("--camaudit-baseline=base2", "--camaudit-method=eigencam", "--camaudit-update-baseline").assert_outcomes(passed=3)
    data.makeconftest(CANDIDATE.replace("{scope}", "all"))
    result = data.runpytest("--camaudit-baseline=base2", "--camaudit-method=eigencam", f"--camaudit-report={report}")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "- expected the map to keep rank correlation >= 0.50 with the baseline, got " in out
    assert "- expected the top 10% of the map to overlap the baseline's at IoU >= 0.30, got " in out
    html = report.read_text()
    assert "Baseline: shapes (" in html and "Candidate: shapes (randomised all) (" in html
    # comparing across CAM methods is refused, not measured
    data.makeconftest("")
    result = data.runpytest("--camaudit-baseline=base2", "--camaudit-method=eigengradcam")
    result.assert_outcomes(failed=3)
    assert "expected a baseline made with eigengradcam like this run, got one made with eigencam" in result.stdout.str()


def test_missing_unreadable_or_stale_baselines_say_what_to_do(data):
    data.runpytest("--camaudit-baseline=base", "--camaudit-update-baseline").assert_outcomes(passed=3)
    cases = data.path / "base" / "cases" / "annotations"
    (cases / f"{NAMES[0]}.json").unlink()
    np.savez(cases / f"{NAMES[1]}.npz", image=np.array([object()], dtype=object))  # a pickle in disguise
    write_coco_dataset(data.path / "other", [20_000_009], "shapes")  # different pixels under the same name
    (data.path / "other" / "images" / f"scene-{20_000_009}.png").replace(data.path / "data" / "images" / NAMES[2])
    result = data.runpytest("--camaudit-baseline=base")
    out = result.stdout.str()
    assert f"expected a baseline of {NAMES[0]} in " in out and "write it with --camaudit-update-baseline" in out
    assert "expected a readable baseline of " + NAMES[1] + ", got ValueError: Object arrays cannot be loaded when allow_pickle=False" in out
    assert f"expected {NAMES[2]} to be the image the baseline was made from, got different pixels" in out

    result = data.runpytest("--camaudit-baseline=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--camaudit-baseline=nowhere: no baseline in */nowhere (manifest.json missing); write one first with --camaudit-update-baseline*"])
    result = data.runpytest("--camaudit-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--camaudit-update-baseline needs --camaudit-baseline=DIR*"])
    result = data.runpytest("--camaudit-baseline=base", "--camaudit-baseline-tolerance=rank=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline tolerance rank: expected a number in [[]-1, 1], got '2'*"])
