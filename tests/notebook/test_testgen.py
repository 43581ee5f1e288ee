"""``case.test_source(margin)``: a pytest test pinning what a notebook measured, run through pytest on both zoo models."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

from pytest_camaudit.datatypes import Detection
from pytest_camaudit.errors import ExpectationError
from pytest_camaudit.notebook.api import explore
from pytest_camaudit.notebook.testgen import Measured, _ceil, _floor, _object_lines


@pytest.fixture(scope="module")
def pinned(tagged_scene):
    """The tagged triangle explored on the clean model: confirmed, measured, and the source of its test (margin 0.1)."""
    path, box = tagged_scene
    case = explore(path, model="shapes", method="eigengradcam", device="cpu")
    case.assert_detected("triangle", box)
    return case, case.test_source(margin=0.1)


def _calls(source: str) -> dict[str, dict[str, object]]:
    """``{assertion name: its keyword arguments}`` of the generated test (one object)."""
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("assert_"):
            out[node.func.attr] = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return out


def test_the_thresholds_are_the_measured_values_with_the_margin(pinned, tagged_scene):
    case, source = pinned
    tri = case.detections[next(iter(case.matched))]
    mass = float(np.asarray(case.assert_cam_mass(tri, at_least=0.0)))
    drop = case.assert_survives_without_context(tri, max_drop=1.0).drop
    calls = _calls(source)
    assert calls["assert_detected"]["score_threshold"] == pytest.approx(tri.score - 0.1, abs=1e-3)
    assert calls["assert_detected"]["score_threshold"] <= tri.score - 0.1
    assert calls["assert_cam_mass"] == {"at_least": pytest.approx(mass - 0.1, abs=1e-3), "method": "eigengradcam"}
    assert calls["assert_cam_mass"]["at_least"] <= mass - 0.1
    assert calls["assert_survives_without_context"]["max_drop"] == pytest.approx(max(0.0, drop) + 0.1, abs=1e-3)
    assert str(tagged_scene[0].resolve()) in source and "pytest --camaudit-model=shapes " in source
    assert f"case.assert_detected('triangle', {tagged_scene[1]!r}" in source  # the box the notebook confirmed


def test_the_generated_test_passes_on_the_clean_model_and_fails_on_the_shortcut_twin(pinned, pytester):
    pytester.makepyfile(test_pinned=pinned[1])
    pytester.runpytest("-p", "no:cacheprovider", "--camaudit-model=shapes").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--camaudit-model=shapes-shortcut")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: expected triangle with score >= 0.90 at IoU >= 0.50*"])  # the twin's tagged triangle scores 0.86


def test_the_context_assertion_alone_catches_the_shortcut(pinned, pytester):
    """With room for the twin's lower score (margin 0.2) and no mass check, the context check is what fails it."""
    case, _ = pinned
    pytester.makepyfile(test_pinned=case.test_source(margin=0.2, checks=("detected", "context")))
    pytester.runpytest("-p", "no:cacheprovider", "--camaudit-model=shapes").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--camaudit-model=shapes-shortcut")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected triangle * to survive without context (score drop <= 0.2*"])


def test_without_confirmed_objects_every_detection_above_the_threshold_is_pinned(tagged_scene):
    case = explore(tagged_scene[0], model="shapes", method="eigencam", device="cpu", score_threshold=0.9)
    source = case.test_source(margin=0.05, checks=("detected",), image="data/scene.png", name="my scene")
    assert source.count("case.assert_detected(") == len(case.above(0.9)) > 0
    assert "assert_cam_mass" not in source and "without_context" not in source
    assert "IMAGE = Path('data/scene.png')" in source and "def test_my_scene(camaudit):" in source
    compile(source, "test_x.py", "exec")


def test_thresholds_are_clamped_and_user_text_stays_a_literal():
    det = Detection(0, (1.0, 2.0, 30.0, 40.0), 3, "tri'\"\n)\nimport os", 0.04)
    lines = _object_lines(Measured(det, det.label_name, det.box, 0.04, math.nan, 0.97), "obj_0", "eigencam", 0.1, 0.05,
                          ("detected", "cam_mass", "context"))
    source = "def test_x(case):\n" + "\n".join(lines) + "\n"
    tree = ast.parse(source)
    assert [type(n).__name__ for n in tree.body[0].body] == ["Assign", "Expr"]  # no injected statement
    calls = _calls(source)
    assert calls["assert_detected"]["score_threshold"] == 0.0 and calls["assert_survives_without_context"]["max_drop"] == 1.0
    assert "# no CAM mass assertion: the eigencam map was empty" in source
    assert ast.literal_eval(tree.body[0].body[0].value.args[0]) == det.label_name
    assert _floor(0.61239) == 0.612 and _ceil(0.1201) == 0.121


def test_bad_arguments_say_what_to_do(pinned):
    case, _ = pinned
    with pytest.raises(ValueError, match=r"`margin`: expected a number in \[0, 1\], got 2"):
        case.test_source(margin=2)
    with pytest.raises(ValueError, match="unknown checks"):
        case.test_source(checks=("detected", "speed"))
    array_case = explore(case.image.pixels, model="shapes", device="cpu")
    with pytest.raises(ExpectationError, match=r"not explored from an image file .* pass its path, `case.test_source\(image='scene.png'\)`"):
        array_case.test_source()
