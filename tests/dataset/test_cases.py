"""Data-driven cases from a COCO file, as a user runs them: marker, --camaudit-cases, ini, bad files."""

from __future__ import annotations

import json

import pytest
from support.usage import assert_usage_error

from pytest_camaudit.zoo.dataset import write_coco_dataset

SEEDS = list(range(20_000_000, 20_000_003))
NAMES = [f"scene-{s}.png" for s in SEEDS]

MARKED = '''
import pytest
pytestmark = pytest.mark.camaudit_cases("data/annotations.json")

def test_scene(camaudit, camaudit_entry):
    case = camaudit_entry.audit(camaudit)
    rows = camaudit_entry.check(case)
    assert [r["label"] for r in rows] == [o.label for o in camaudit_entry.objects]
    assert all(r["detected"] and r["mass"] is not None for r in rows)
    assert camaudit_entry.info["variant"] == "shapes" and "cue_boxes" in camaudit_entry.info
'''


@pytest.fixture
def data(pytester):
    write_coco_dataset(pytester.path / "data", SEEDS, "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    return pytester


def edit(pytester, change) -> None:
    path = pytester.path / "data" / "annotations.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_marker_gives_one_test_per_image_named_by_the_image(data):
    data.makepyfile(test_marked=MARKED)
    result = data.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([f"test_marked.py::test_scene?{n}? PASSED*" for n in NAMES])


def test_command_line_and_ini_run_built_in_checks_without_test_code(data):
    result = data.runpytest("-v", "--camaudit-cases=data/annotations.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([f"data/annotations.json::image?{n}? PASSED*" for n in NAMES])
    # the ini twin, relative to the ini file; images default to images/ beside the annotation file
    (data.path / "sub").mkdir()
    data.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_cases = data/annotations.json\n")
    result = data.runpytest("-v", "sub")
    result.assert_outcomes(passed=3)
    # one file given twice (as an argument and by the option) is collected once
    data.makeini("[pytest]\ncamaudit_device = cpu\n")
    data.runpytest("--camaudit-cases=data/annotations.json", "data").assert_outcomes(passed=3)
    result = data.runpytest("--camaudit-cases=data/nothing.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--camaudit-cases: annotation file */data/nothing.json does not exist*"])


def test_bad_entries_fail_alone_and_name_themselves(data):
    def corrupt(doc):
        doc["images"][1]["file_name"] = "missing.png"
        doc["annotations"][6]["category_id"] = 99  # in image 3
        doc["annotations"][7]["bbox"] = [150, 10, 30, 20]  # image 3 again, x2 = 180 > 160
        doc["annotations"][2]["bbox"] = [10, 10, 0, 5]  # image 1: degenerate
        doc["annotations"].append({"id": 77, "image_id": 42, "category_id": 1, "bbox": [1, 1, 5, 5]})
        doc["annotations"].append({"id": 78, "image_id": 1, "category_id": 1, "bbox": [0, 0, 160, 160], "iscrowd": 1})
        doc["images"].append({"id": 4, "file_name": NAMES[0], "width": 160, "height": 160})  # same file again: an id of its own

    edit(data, corrupt)
    result = data.runpytest("-v", "--camaudit-cases=data/annotations.json")
    result.assert_outcomes(passed=1, errors=4)
    out = result.stdout.str()
    result.stdout.fnmatch_lines_random([
        f"data/annotations.json::image?{NAMES[0]}#2? PASSED*",
        f"data/annotations.json::image?{NAMES[0]}? ERROR*",
        "data/annotations.json::image?missing.png? ERROR*",
        f"data/annotations.json::image?{NAMES[2]}? ERROR*",
        "data/annotations.json::image?image-id-42-not-in-images? ERROR*",
    ])
    for message in (
        f"1 problem(s) with annotations.json: image id 1 ({NAMES[0]}):",
        "  - annotation 3 (circle): bbox [10, 10, 0, 5] is degenerate (width and height must be > 0; COCO boxes are [x, y, width, height])",
        "1 problem(s) with annotations.json: image id 2 (missing.png):",
        "image file not found: ",
        "2 problem(s) with annotations.json: image id 3",
        "  - annotation 7: category_id 99 is not in 'categories' (known: 1 circle, 2 square, 3 triangle, 4 star)",
        "  - annotation 8 (triangle): bbox [150, 10, 30, 20] = [x1, y1, x2, y2] [150.0, 10.0, 180.0, 30.0] lies outside the 160x160 image",
        "annotation 77 refers to image id 42, which is not in 'images'",
    ):
        assert message in out, message


def test_an_unreadable_file_is_one_failing_item_and_other_tests_still_run(data):
    (data.path / "data" / "annotations.json").write_text("{not json")
    data.makepyfile(test_marked=MARKED, test_other="def test_other():\n    pass\n")
    result = data.runpytest("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines_random([
        "test_marked.py::test_scene?annotations.json? ERROR*",
        "*cannot use *annotations.json:*",
        "*JSONDecodeError: Expecting property name enclosed in double quotes*expected a COCO JSON file*",
    ])


def test_thresholds_come_from_ini_and_marker_with_per_class_overrides(data):
    data.makeini(
        "[pytest]\ncamaudit_score_threshold = 0.4\ncamaudit_min_mass = 0.1\ncamaudit_gate_recall = 0.8\n"
        "camaudit_class_thresholds = circle: score=0.6 mass=0.2; *: iou=0.3\n"
    )
    data.makepyfile(
        """
        import pytest
        @pytest.mark.camaudit_cases("data/annotations.json", mass=0.15,
                                    classes={"circle": {"mass": 0.25}, "square": {"gate_mass": (0.3, 0.7)}})
        def test_thresholds(camaudit_entry):
            for o in camaudit_entry.objects:
                print("T", o.label, o.thresholds)

        @pytest.mark.camaudit_cases("data/annotations.json", classes="triangel: mass=0.5")
        def test_typo(camaudit_entry):
            pass
        """
    )
    result = data.runpytest("-s", "-v")
    result.stdout.fnmatch_lines_random([
        "T circle Thresholds(score=0.6, iou=0.3, mass=0.25, gate_recall=0.8, gate_mass=None, mass_region='box')",
        "T square Thresholds(score=0.4, iou=0.3, mass=0.15, gate_recall=0.8, gate_mass=(0.3, 0.7), mass_region='box')",
        "*test_typo?annotations.json-class-thresholds? ERROR*",
        "*per-class thresholds name 'triangel', not a category of this file (categories: circle, square, star, triangle); fix the class name*",
    ])
    result.assert_outcomes(passed=6, errors=1)  # the typo is one error, the images still run


def test_a_failing_case_checks_every_object_and_says_expected_got(data):
    data.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\ncamaudit_class_thresholds = circle: mass=0.999\n")

    def resize(doc):
        doc["images"][2]["width"] = 200

    edit(data, resize)
    result = data.runpytest("--camaudit-cases=data/annotations.json")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    # scene 0: one circle of three objects fails its mass; scene 1: two circles
    assert f"1 check(s) failed on {NAMES[0]} (3 annotated objects):" in out
    assert f"2 check(s) failed on {NAMES[1]} (3 annotated objects):" in out
    assert "- expected eigengradcam mass >= 1.00 inside box [37, 4, 68, 36] explaining circle 1.000 at [37, 4, 68, 36], got 0." in out
    assert f"ExpectationError: annotations.json: image id 3 ({NAMES[2]}): the annotation says 200x160 but the image file is 160x160" in out


def test_marker_misuse_is_a_collection_error_and_the_fixture_needs_a_source(data):
    data.makepyfile(
        test_bad="""
        import pytest
        @pytest.mark.camaudit_cases("data/annotations.json", colour=1)
        def test_a(camaudit_entry):
            pass
        """,
        test_bare="def test_b(camaudit_entry):\n    pass\n",
    )
    result = data.runpytest("test_bare.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the camaudit_entry fixture needs @pytest.mark.camaudit_cases('annotations.json')*"])
    result = data.runpytest("test_bad.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "test_bad.py::test_a: camaudit_cases: unknown keyword(s) ['colour']; expected score, iou" in result.stdout.str()
    assert "During handling" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--camaudit-gate-mass=0.4"], "", "*expected MASS:RATE such as 0.4:0.9 (at least 90% of objects with CAM mass >= 0.4), got '0.4'*"),
        (["--camaudit-gate-recall=9"], "", "*expected a number in [[]0, 1], got '9'*"),
        ([], "camaudit_class_thresholds = triangle score=0.5",
         "*ini option camaudit_class_thresholds = 'triangle score=0.5': class thresholds: expected 'CLASS: key=value …'*"),
        ([], "camaudit_class_thresholds = triangle: colour=2",
         "*class thresholds for 'triangle': unknown setting 'colour=2'; expected key=value with key one of score, iou, mass, gate-recall, gate-mass*"),
        (["--camaudit-baseline-tolerance=rank"], "", "*baseline tolerance: unknown setting 'rank'; expected key=value with key one of mass-drop, rank*"),
    ],
)
def test_bad_threshold_options_are_usage_errors(pytester, args, ini, message):
    assert_usage_error(pytester, args, ini, message)


def test_every_new_flag_has_an_ini_twin(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for name in ("cases", "cases-images", "min-mass", "class-thresholds", "gate-recall", "gate-mass", "baseline",
                 "update-baseline", "baseline-tolerance"):
        assert f"--camaudit-{name}" in help_text and f"camaudit_{name.replace('-', '_')} " in help_text, name
    assert "camaudit_cases(annotations, images=None" in pytester.runpytest("--markers").stdout.str()
