"""A failing assertion's traceback shows the user's line, not the plugin's frames (``__tracebackhide__``).

``AuditCase``'s methods are the assertion functions themselves, wrapped by ``names_the_case`` and ending
in ``verdict``: every one of those frames hides itself, so pytest points at the test's own call.
"""

from __future__ import annotations

from pytest_camaudit.zoo.dataset import write_coco_dataset

TESTS = '''
IMG = "data/images/scene-20000000.png"
CIRCLE = [36.8, 4.1, 68.4, 35.7]

def test_mass(camaudit):
    case = camaudit.audit(IMG)
    circle = case.assert_detected("circle", CIRCLE)
    case.assert_cam_mass(circle, 1.0)  # USER-LINE-MASS

def test_detected(camaudit):
    case = camaudit.audit(IMG)
    case.assert_detected("circle", [0, 0, 5, 5])  # USER-LINE-DETECTED
'''


def test_a_failing_method_points_at_the_test_line_and_hides_the_plugin(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000], "shapes")
    pytester.makeini("[pytest]\ncamaudit_method = eigencam\ncamaudit_device = cpu\n")
    pytester.makepyfile(test_tb=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        ">*case.assert_cam_mass(circle, 1.0)  # USER-LINE-MASS",
        "E*AssertionError: expected eigencam mass >= 1.00 inside circle *",
        "test_tb.py:7: AssertionError",
    ])
    result.stdout.fnmatch_lines([
        ">*case.assert_detected(*)  # USER-LINE-DETECTED",
        "E*AssertionError: expected circle with score >= *",
        "test_tb.py:11: AssertionError",
    ])
    plugin_frames = [line for line in result.outlines if "pytest_camaudit" in line and ".py:" in line]
    assert plugin_frames == []
