"""The plugin as a user runs it: through pytest itself (pytester)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.usage import assert_usage_error

from pytest_camaudit.zoo.dataset import write_coco_dataset

SCENE_TESTS = '''
import json, pathlib, pytest
DOC = json.loads(pathlib.Path("data/annotations.json").read_text())
NAMES = {c["id"]: c["name"] for c in DOC["categories"]}

def objects(img):
    for a in DOC["annotations"]:
        if a["image_id"] == img["id"]:
            x, y, w, h = a["bbox"]
            yield NAMES[a["category_id"]], [x, y, x + w, y + h]

@pytest.mark.parametrize("img", DOC["images"], ids=lambda i: i["file_name"])
def test_scene(camaudit, img):
    case = camaudit.audit("data/images/" + img["file_name"])
    for label, box in objects(img):
        det = case.assert_detected(label, box)
        case.assert_cam_mass(det, at_least=0.0)
'''


@pytest.fixture
def scenes(pytester):
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_003)), "shapes")
    return pytester


def test_entry_module_does_not_import_heavy_libraries():
    code = (
        "import sys, pytest_camaudit.plugin, pytest_camaudit;"
        "heavy = [m for m in ('torch', 'torchvision', 'pytorch_grad_cam', 'cv2', 'numpy') if m in sys.modules];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_options_are_registered_and_no_camaudit_disables_the_plugin(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for flag in ("--camaudit-report", "--camaudit-report-all", "--camaudit-model", "--camaudit-weights",
                 "--camaudit-method", "--camaudit-device", "--camaudit-score-threshold"):
        assert flag in help_text
    assert "camaudit_score_threshold" in help_text  # the ini twin
    pytester.makepyfile("def test_uses(camaudit):\n    pass\n")
    result = pytester.runpytest("-p", "no:camaudit")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'camaudit' not found*"])
    assert pytester.runpytest("-p", "no:camaudit", "--camaudit-device=cpu").ret == pytest.ExitCode.USAGE_ERROR


def test_ini_twins_and_command_line_precedence(pytester):
    pytester.makeini("[pytest]\ncamaudit_score_threshold = 0.7\ncamaudit_method = EigenGradCAM\ncamaudit_device = cpu\n")
    pytester.makepyfile(
        """
        def test_settings(camaudit):
            s = camaudit.settings
            print("SETTINGS", s.score_threshold, s.method, s.device, s.model)
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SETTINGS 0.7 eigengradcam cpu shapes"])
    result = pytester.runpytest("-s", "--camaudit-score-threshold=0.25", "--camaudit-method=eigencam")
    result.stdout.fnmatch_lines(["*SETTINGS 0.25 eigencam cpu shapes"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--camaudit-device=gpu"], "", "*unknown device 'gpu'; expected one of auto, cpu, cuda, cuda:N*"),
        (["--camaudit-method=scorecam9"], "", "*unknown CAM method 'scorecam9'; expected one of eigencam, eigengradcam*"),
        (["--camaudit-score-threshold=nan"], "", "*expected a number in [[]0, 1], got 'nan'*"),
        (["--camaudit-score-threshold=1.5"], "", "*expected a number in [[]0, 1], got '1.5'*"),
        (["--camaudit-model=yolo9000"], "", "*unknown model 'yolo9000'; expected an embedded detector (shapes, shapes-shortcut, shapes-yolo, shapes-yolo-shortcut), a torchvision builder*"),
        (["--camaudit-batch-size=0"], "", "*expected auto or a whole number >= 1, got '0'*"),
        ([], "camaudit_batch_size = many", "*ini option camaudit_batch_size = 'many': expected auto or a whole number >= 1*"),
        ([], "camaudit_score_threshold = high", "*ini option camaudit_score_threshold = 'high': expected a number in [[]0, 1]*"),
        ([], "camaudit_report_all = maybe", "*ini option camaudit_report_all = 'maybe': expected true or false*"),
    ],
)
def test_bad_option_values_are_usage_errors_saying_what_is_accepted(pytester, args, ini, message):
    assert_usage_error(pytester, args, ini, message)


def test_detector_is_loaded_once_per_session_and_fixtures_compose(pytester):
    pytester.makepyfile(
        """
        SEEN = []
        def test_a(camaudit_detector, camaudit_cam_engine, camaudit):
            SEEN.append(id(camaudit_detector))
            assert camaudit_cam_engine.detector is camaudit_detector
            assert camaudit.engine is camaudit_cam_engine
            assert camaudit_detector.class_names[:4] == ["__background__", "circle", "square", "triangle"]
            assert not camaudit_detector.model.training
        def test_b(camaudit_detector):
            SEEN.append(id(camaudit_detector))
            assert len(set(SEEN)) == 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_assertions_pass_on_true_objects(scenes):
    scenes.makepyfile(SCENE_TESTS)
    result = scenes.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*camaudit*", "3 audited cases: 0 failing, 0 unusable/error, 3 passing (model shapes, method eigencam, device cpu)"])


def test_failing_assertions_say_expected_and_got(scenes):
    scenes.makepyfile(
        """
        import numpy as np
        from pytest_camaudit import assert_detected, assert_cam_mass
        IMG = "data/images/scene-20000000.png"
        def test_wrong_class(camaudit):
            case = camaudit.audit(IMG)
            assert_detected(case, "star", [37, 4, 68, 36])
        def test_mass(camaudit):
            case = camaudit.audit(IMG)
            det = case.assert_detected("circle", [36.8, 4.1, 68.4, 35.7])
            assert_cam_mass(case, det, at_least=0.99)
        def test_unknown_class(camaudit):
            camaudit.audit(IMG).assert_detected("hexagon")
        """
    )
    result = scenes.runpytest()
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    for expected in (
        "AssertionError: expected star with score >= 0.50 at IoU >= 0.50 with [37, 4, 68, 36], got circle 1.000 at [37, 4, 68, 36] (IoU 0.97)",
        "  top detections: circle 1.000 at [37, 4, 68, 36]; square 1.000",
        "  image: scene-20000000.png",
        "AssertionError: expected eigencam mass >= 0.99 inside circle 1.000 at [37, 4, 68, 36], got 0.",
        "(a uniform map would give 0.039)",
        "ExpectationError: unknown class 'hexagon' for detector shapes; known classes: circle, square, triangle, star",
    ):
        assert expected in out, expected
    # the user's own line is shown, not the plugin's internals
    assert "assertions.py" not in result.stdout.str().split("short test summary")[0].replace("from pytest_camaudit import", "")
    result.stdout.fnmatch_lines(["*- camaudit -*", "*FAIL detected: expected star*"])


def test_model_that_cannot_load_fails_each_test_with_a_clear_message(pytester, tmp_path):
    missing = tmp_path / "nowhere" / "mine.pt"
    pytester.makepyfile("def test_a(camaudit):\n    pass\ndef test_b(camaudit):\n    pass\ndef test_plain():\n    pass\n")
    result = pytester.runpytest(f"--camaudit-model={missing}", f"--camaudit-report={tmp_path / 'r.html'}")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([f"*camaudit could not load the detector: detector checkpoint {missing} does not exist*"])
    html = (tmp_path / "r.html").read_text()
    assert html.count('class="case error"') == 2 and "does not exist" in html


def test_weights_option_with_a_zoo_checkpoint_says_it_does_not_apply(pytester, tmp_path):
    from pytest_camaudit.zoo.model import shipped_checkpoint

    pytester.makepyfile("def test_a(camaudit):\n    pass\n")
    result = pytester.runpytest(f"--camaudit-model={shipped_checkpoint('shapes')}", f"--camaudit-weights={tmp_path / 'w.pt'}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--camaudit-weights does not apply to --camaudit-model=*shapes.pt*drop --camaudit-weights*"])


def test_conftest_can_plug_in_its_own_model(pytester):
    pytester.makeconftest(
        """
        import pytest, torch
        from pytest_camaudit import Detector
        from pytest_camaudit.zoo.model import load_zoo_detector

        @pytest.fixture(scope="session")
        def camaudit_detector():
            model, classes, _ = load_zoo_detector("shapes")
            return Detector.wrap(model, ["__background__", "round", "box", "tri", "star"], name="my-team-model")
        """
    )
    pytester.makepyfile(
        """
        import numpy as np
        from pytest_camaudit.zoo.world import make_scene
        def test_mine(camaudit):
            scene = make_scene(20_000_000)
            case = camaudit.audit(scene.image, name="mine")
            assert case.detector.name == "my-team-model"
            case.assert_detected("round")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_constant_activations_fail_with_nan_not_noise(pytester):
    pytester.syspathinsert(str(Path(__file__).parents[1]))
    pytester.makeconftest(
        """
        import pytest, torch
        from support.probes import ConstantProbe
        from pytest_camaudit import Detector

        @pytest.fixture(scope="session")
        def camaudit_detector():
            probe = ConstantProbe()
            return Detector.wrap(probe, ["__background__", "spot"], name="probe")
        """
    )
    pytester.makepyfile(
        """
        import numpy as np
        def test_flat(camaudit):
            case = camaudit.audit(np.full((90, 130, 3), 77, np.uint8), name="flat")
            case.assert_cam_mass([10, 10, 50, 50], at_least=0.1)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert (
        "AssertionError: expected eigencam mass >= 0.10 inside box [10, 10, 50, 50], got NaN: "
        "the CAM is all zero (degenerate activations)" in result.stdout.str()
    )
