"""Dataset-level gates: per-class recall and CAM-mass share over a run, evaluated on the controller."""

from __future__ import annotations

import pytest

from pytest_camaudit.dataset.gates import evaluate_baseline, evaluate_gates
from pytest_camaudit.zoo.dataset import write_coco_dataset


def row(label, detected, mass, recall=None, gate_mass=None, baseline=None):
    return {"label": label, "detected": detected, "mass": mass, "score_threshold": 0.5, "gate_recall": recall,
            "gate_mass": gate_mass, "baseline": baseline, "key": "a/b.png"}


def test_gates_per_class_with_the_strictest_requirement():
    rows = [
        row("triangle", True, 0.5, 0.9, [0.4, 0.75]),
        row("triangle", True, 0.45, 0.7, [0.4, 0.75]),
        row("triangle", True, 0.2, 0.7, [0.4, 0.75]),
        row("triangle", False, None, 0.9, [0.4, 0.75]),  # undetected, no map: below any mass
        row("circle", True, 0.9, 0.9),
        row("circle", True, 0.8, 0.9),
        row("star", False, 0.1),
    ]
    table, failures = evaluate_gates(rows)
    assert failures == [
        "expected triangle recall >= 90% at score >= 0.50, got 75% (3 of 4 detected)",
        "expected >= 75% of triangle objects with CAM mass >= 0.40 inside their box, got 50% (2 of 4)",
    ]
    by_class = {r[0]: r for r in table["rows"]}
    assert by_class["circle"] == ["circle", 2, 1.0, 0.9, pytest.approx(0.85), "—", "—", "—", "pass"]
    assert by_class["triangle"][2:4] == [0.75, 0.9] and by_class["triangle"][5:] == ["≥ 0.40", 0.5, 0.75, "FAIL"]
    assert by_class["star"][-1] == "—"
    assert table["title"] == "camaudit gates: FAILED (2 failing)"
    assert evaluate_gates([row("star", True, 0.3)]) == (None, [])  # no requirement: no gate


def test_baseline_recall_gate_on_the_objects_both_runs_have():
    base = {"detected": True, "mass": 0.6, "rank": 0.8, "top_iou": 0.5}
    rows = [row("triangle", True, 0.4, baseline=base), row("triangle", False, 0.1, baseline=base),
            row("circle", True, 0.7, baseline=base), row("circle", True, 0.7, baseline={**base, "detected": False}),
            row("star", False, 0.2)]  # no baseline: not compared
    table, failures = evaluate_baseline(rows, recall_drop=0.1)
    assert failures == ["expected triangle recall to drop by at most 10% from the baseline's 100%, got 50% (drop 50%, 2 -> 1 of 2)"]
    assert [r[0] for r in table["rows"]] == ["circle", "triangle"]
    assert table["rows"][0][2:5] == [0.5, 1.0, -0.5] and table["rows"][0][-1] == "pass"
    assert table["rows"][1][5:9] == [pytest.approx(0.6), pytest.approx(0.25), pytest.approx(0.8), pytest.approx(0.5)]


@pytest.fixture
def data(pytester):
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_004)), "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\n")
    return pytester


def test_a_failed_gate_fails_the_run_with_a_table_in_terminal_and_report(data, tmp_path):
    data.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.camaudit_cases("data/annotations.json", gate_recall=1.0, gate_mass=(0.99, 0.5),
                                                classes={"star": {"gate_mass": (0.0, 1.0)}})
        def test_scene(camaudit, camaudit_entry):
            camaudit_entry.check(camaudit_entry.audit(camaudit))
        """
    )
    report = tmp_path / "r.html"
    result = data.runpytest(f"--camaudit-report={report}")
    result.assert_outcomes(passed=4)  # every case passes on its own …
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # … the run does not
    result.stdout.fnmatch_lines([
        "*camaudit: 3 dataset gate(s) failed*",
        "FAILED gate: expected >= 50% of circle objects with CAM mass >= 0.99 inside their box, got 0% (0 of *)",
        "FAILED gate: expected >= 50% of square objects with CAM mass >= 0.99 inside their box, got 0% (0 of *)",
        "FAILED gate: expected >= 50% of triangle objects with CAM mass >= 0.99 inside their box, got 0% (0 of *)",
    ])
    result.stdout.fnmatch_lines(["camaudit gates: FAILED (3 failing)", "  class * objects * recall * required recall*", "  star * pass"])
    assert "camaudit gates: FAILED (3 failing)" in report.read_text()
    # the same gates pass when they ask for what the model does
    result = data.runpytest("--camaudit-class-thresholds=*: gate-mass=0.0:1.0")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["camaudit gates: passed (0 failing)"])


@pytest.mark.slow
def test_gates_see_every_worker_s_cases_under_xdist(one_torch_thread, data):
    args = ["--camaudit-cases=data/annotations.json", "--camaudit-gate-recall=1.0", "--camaudit-gate-mass=0.99:0.5"]
    plain = data.runpytest(*args)
    distributed = data.runpytest(*args, "-n", "2")
    distributed.assert_outcomes(passed=4)
    assert plain.ret == distributed.ret == pytest.ExitCode.TESTS_FAILED

    def gate_lines(result):
        return sorted(line for line in result.stdout.lines if line.startswith("FAILED gate:"))

    assert gate_lines(distributed) == gate_lines(plain) and len(gate_lines(plain)) == 4
