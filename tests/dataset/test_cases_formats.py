"""Data-driven cases from a dataset YAML and a VOC root, as a user runs them: collection, splits, names, crowds, usage errors."""

from __future__ import annotations

import json

import pytest
from support.datasets import add_voc_object, voc_object, write_formats
from support.usage import assert_usage_error

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SEEDS = list(range(20_000_000, 20_000_003))
NAMES = [f"scene-{s}.png" for s in SEEDS]
VOC = "VOCdevkit/VOC2012"
EMPTY_CORNER = (5, 130, 30, 155)  # a background patch of scene 20000000 (VOC pixels): nothing is detected there


@pytest.fixture
def data(pytester):
    write_formats(pytester.path, SEEDS)
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    return pytester


def test_a_dataset_yaml_and_a_voc_root_run_one_test_per_image_and_the_root_is_not_walked(data):
    root = data.path / VOC
    for path in ("yolo/data.yaml", VOC):
        if path == VOC:  # a package pytest would collect as one and walk, with a test that fails when collected
            (root / "__init__.py").write_text("")
            (root / "test_trap.py").write_text("def test_trap():\n    assert False, 'pytest walked the VOC root'\n")
        result = data.runpytest("-v", f"--camaudit-cases={path}")
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines_random([f"{path}::image?{n}? PASSED*" for n in NAMES])
    # given twice (as an argument, or inside one, and by the option): collected once
    data.runpytest("--camaudit-cases=yolo/data.yaml", "yolo/data.yaml", "yolo").assert_outcomes(passed=3)
    data.runpytest(f"--camaudit-cases={VOC}", "VOCdevkit").assert_outcomes(passed=3)
    # the ini twins: the dataset relative to the ini file, the split and the names
    (root / "ImageSets" / "Main" / "few.txt").write_text("scene-20000001\n")
    data.makeini(f"[pytest]\ncamaudit_device = cpu\ncamaudit_cases = {VOC}\ncamaudit_cases_split = few\n")
    result = data.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"{VOC}::image?{NAMES[1]}? PASSED*"])


def test_class_names_the_detector_does_not_know_fail_every_test_once_listed_and_a_map_fixes_them(data):
    yaml = data.path / "yolo" / "data.yaml"
    yaml.write_text(yaml.read_text().replace('"circle"', '"disc"').replace('"square"', '"box"'))
    result = data.runpytest("--camaudit-cases=yolo/data.yaml")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*data.yaml: 2 class names of the dataset are not classes of detector shapes: 'box' (5 objects), 'disc' (3 objects). "
        "Detector classes: circle, square, triangle, star. Map them with --camaudit-cases-names='box=…, disc=…' "
        "(ini camaudit_cases_names, marker names=); an empty target (name=) leaves a class out*",
    ])
    data.runpytest("--camaudit-cases=yolo/data.yaml", "--camaudit-cases-names=disc=circle; box=square").assert_outcomes(passed=3)


@pytest.mark.parametrize("fmt", ["voc", "coco"])
def test_difficult_and_crowd_regions_are_not_required_and_stay_out_of_the_recall_gate(data, fmt):
    """A region nobody detects fails its test and the recall gate as an object; as VOC difficult / COCO crowd it does neither."""
    def add(flag: int) -> str:
        if fmt == "voc":
            add_voc_object(data.path / VOC, "scene-20000000", voc_object("star", EMPTY_CORNER, difficult=flag))
            return VOC
        ann = data.path / "coco" / "annotations.json"
        doc = json.loads(ann.read_text())
        x1, y1, x2, y2 = EMPTY_CORNER
        doc["annotations"].append({"id": 99 + flag, "image_id": 1, "category_id": 4, "bbox": [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1],
                                   "iscrowd": flag})
        ann.write_text(json.dumps(doc))
        return "coco/annotations.json"

    path = add(1)
    result = data.runpytest(f"--camaudit-cases={path}", "--camaudit-gate-recall=1")
    result.assert_outcomes(passed=3)
    assert result.ret == 0 and "camaudit gates: passed" in result.stdout.str()
    add(0)
    result = data.runpytest(f"--camaudit-cases={path}", "--camaudit-gate-recall=1")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*expected star with score >= 0.50*", "*expected star recall >= 100% at score >= 0.50, got 0% (0 of 1 detected)*"])


def test_the_marker_takes_a_dataset_yaml_with_split_and_names(data):
    yaml = data.path / "yolo" / "data.yaml"
    yaml.write_text(yaml.read_text().replace('"circle"', '"disc"') + "test: images/val\n")
    data.makepyfile(
        test_marked="""
        import pytest
        pytestmark = pytest.mark.camaudit_cases("yolo/data.yaml", split="test", names={"disc": "circle"}, mass=0.0)

        def test_scene(camaudit, camaudit_entry):
            rows = camaudit_entry.check(camaudit_entry.audit(camaudit))
            assert rows and all(r["detected"] for r in rows) and "has_outline" not in rows[0]
            assert camaudit_entry.where.startswith("labels/val/")
        """,
        test_broken="""
        import pytest
        @pytest.mark.camaudit_cases("yolo/data.yaml", split="calib")
        def test_scene(camaudit_entry):
            pass
        """,
    )
    result = data.runpytest("-v", "test_marked.py")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([f"test_marked.py::test_scene?{n}? PASSED*" for n in NAMES])
    result = data.runpytest("test_broken.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_broken.py::test_scene: *data.yaml: no 'calib:' split (it has: train, val, test)*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--camaudit-cases=yolo/data.yaml", "--camaudit-cases-split=test"],
     "*--camaudit-cases: */yolo/data.yaml: no 'test:' split (it has: train, val); add 'test:' with a folder or a .txt list of images*"),
    ([f"--camaudit-cases={VOC}", "--camaudit-cases-split=test"], "*no image set 'test' (ImageSets/Main/test.txt; it has: val); pick one*"),
    (["--camaudit-cases=VOCdevkit"], "*--camaudit-cases: */VOCdevkit is a VOCdevkit folder, not a VOC root; pass one of its datasets: */VOC2012*"),
    (["--camaudit-cases=coco/images"], "*is a folder but not a Pascal VOC root (Annotations/, ImageSets/Main/ and JPEGImages/)*"),
    (["--camaudit-cases=yolo/data.yaml", "--camaudit-cases-images=coco/images"],
     "*--camaudit-cases-images applies to COCO files only; an ultralytics dataset YAML names its own images*"),
    (["--camaudit-cases=yolo/nothing.yaml"], "*--camaudit-cases: annotation file */yolo/nothing.yaml does not exist*"),
    (["--camaudit-cases-names=aeroplane"], "*class names: expected DATASET=DETECTOR pairs such as 'aeroplane=airplane, tvmonitor=tv', got 'aeroplane'*"),
    (["--camaudit-cases-split=../x"], "*expected a split name such as val, test or trainval, got '../x'*"),
])
def test_a_dataset_that_cannot_be_used_is_a_usage_error_saying_what_to_fix(data, args, message):
    assert_usage_error(data, args, "", message)


def test_a_broken_yaml_key_is_a_usage_error_and_the_ini_twins_are_validated(data):
    yaml = data.path / "yolo" / "data.yaml"
    yaml.write_text(yaml.read_text() + "path: [a]\n")
    assert_usage_error(data, ["--camaudit-cases=yolo/data.yaml"], "", "*data.yaml: 'path' must be a str, not list; fix that key*")
    assert_usage_error(data, [], "camaudit_cases_names = a=b; a=c", "*ini option camaudit_cases_names = 'a=b; a=c': class names: 'a' is mapped twice*")


def test_the_new_flags_have_ini_twins(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for name in ("cases-split", "cases-names"):
        assert f"--camaudit-{name}" in help_text and f"camaudit_{name.replace('-', '_')} " in help_text, name
    assert "camaudit_cases(annotations, images=None, *, split, names" in pytester.runpytest("--markers").stdout.str()


def test_outlines_are_flagged_on_rows_and_change_no_verdict_or_mass(data):
    """A COCO file with polygons (a triangle inside each box) and a crowd mask: rows say has_outline, masses stay box masses."""
    def run(name: str) -> dict:
        out = data.path / f"{name}.json"
        result = data.runpytest("-p", "no:randomly", "--camaudit-cases=coco/annotations.json", "--camaudit-gate-recall=0.9",
                                "--camaudit-min-mass=0.3", f"--camaudit-json={out}")
        doc = json.loads(out.read_text())
        return {"exit": result.ret, "tables": doc["tables"], "rows": [r for t in doc["tests"] for r in t["objects"]],
                "outcomes": sorted((t["nodeid"], t["outcome"]) for t in doc["tests"])}

    plain = run("plain")
    ann = data.path / "coco" / "annotations.json"
    doc = json.loads(ann.read_text())
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w / 2, y + h]]
    doc["annotations"].append({"id": 999, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1,
                               "segmentation": {"size": [160, 160], "counts": [0, 10, 150] * 10 + [160 * 150]}})
    ann.write_text(json.dumps(doc))
    outlined = run("outlined")
    assert all(r.pop("has_outline") is True for r in outlined["rows"]) and not any("has_outline" in r for r in plain["rows"])
    # the mass inside the outline is reported beside the box mass, which alone is judged (--camaudit-mass-region=box)
    inside = [r.pop("mask_mass") for r in outlined["rows"]]
    assert all(m is None or (isinstance(m, float) and 0.0 <= m <= 1.0) for m in inside) and any(isinstance(m, float) for m in inside)
    assert not any("mask_mass" in r or "mass_region" in r for r in plain["rows"])
    assert outlined == plain
