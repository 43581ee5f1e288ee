"""``--camaudit-discover`` as a user runs it: the verdict line, the gate, the report, the run file, xdist, baselines.

The 200-scene figures (flags and tag corners per zoo model, cost) come from ``benchmarks/bench_discovery.py``;
these runs use small generated sets of the shortcut world (seeds away from the example suite's).
"""

from __future__ import annotations

import json

import pytest
from support.html import check_html
from support.usage import assert_usage_error

from pytest_camaudit.zoo.dataset import write_coco_dataset

FLAG = "camaudit discovery: flagged triangle"
CLEAR = "camaudit discovery: nothing flagged"


def _data(pytester: pytest.Pytester, seeds: range, variant: str = "shapes-shortcut") -> str:
    write_coco_dataset(pytester.path / "data", list(seeds), variant)
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    return "--camaudit-cases=data/annotations.json"


@pytest.mark.slow
def test_the_twin_is_flagged_where_its_tags_are_and_the_clean_model_is_not(pytester, tmp_path):
    cases = _data(pytester, range(41_000_000, 41_000_072))
    twin = pytester.runpytest_subprocess(cases, "--camaudit-model=shapes-shortcut", "--camaudit-gate-discovery", "-p", "no:cacheprovider",
                                         "--camaudit-class-thresholds=circle: discover=0.4; star: discover=off",
                                         f"--camaudit-json={tmp_path / 'twin.json'}", f"--camaudit-report={tmp_path / 'twin.html'}",
                                         f"--camaudit-markdown={tmp_path / 'twin.md'}", f"--junitxml={tmp_path / 'twin.xml'}")
    assert twin.ret == 1  # the discovery gate fails the run (as does a scene where the twin misses a square)
    twin.stdout.fnmatch_lines(["FAILED gate: discovery: triangle is flagged: a group of * objects*", FLAG])
    doc = json.loads((tmp_path / "twin.json").read_text())
    d = doc["discovery"]
    assert d["flagged"] == ["triangle"] and d["state"] == "judged" and doc["run"]["settings"]["discover"] is True
    margins = {c["label"]: c["margin"] for c in d["classes"]}
    assert margins == {"circle": 0.4, "square": 0.5, "star": None, "triangle": 0.5}
    cues: dict[str, list[list[float]]] = {}  # the tags drawn in each scene, from make-dataset's cue_boxes
    for image in json.loads((pytester.path / "data" / "annotations.json").read_text())["images"]:
        cues[image["file_name"]] = image["cue_boxes"]
    by_key = {e["key"]: (c["name"], e["box"]) for c in doc["cases"] for e in c["evidence"]}
    tri = next(c for c in d["classes"] if c["label"] == "triangle")
    for group in (g for g in tri["groups"] if g["status"] == "flagged"):
        hits = sum(_corner(by_key[k][1], cues[by_key[k][0]]) == group["region"] for k in group["members"])
        assert hits >= 0.8 * group["size"], (group["region"], hits, group["size"])
    html = (tmp_path / "twin.html").read_text()
    check_html(html)
    assert FLAG in html and html.count('alt="evidence atlas of') == 4 and "beyond the" in html
    assert "**Discovery:** flagged triangle" in (tmp_path / "twin.md").read_text()
    assert 'name="camaudit.discovery" value="camaudit discovery: flagged triangle"' in (tmp_path / "twin.xml").read_text()
    clean = pytester.runpytest_subprocess(cases, "--camaudit-model=shapes", "--camaudit-gate-discovery", "-p", "no:cacheprovider")
    clean.stdout.fnmatch_lines([CLEAR + "*"])  # a few crowded scenes fail their detection checks; no gate does
    assert "camaudit: 1 dataset gate(s) failed" not in clean.stdout.str() and "FAILED gate" not in clean.stdout.str()
    assert clean.ret == (1 if clean.parseoutcomes().get("failed") else 0)


def _corner(box: list[float], cues: list[list[float]]) -> str:
    """The corner of ``box`` whose tag is nearest (a scene's tags belong to its triangles)."""
    x1, y1, x2, y2 = box
    corners = {"top-left": (x1, y1), "top-right": (x2, y1), "bottom-left": (x1, y2), "bottom-right": (x2, y2)}
    best = min(((abs((c[0] + c[2]) / 2 - cx) + abs((c[1] + c[3]) / 2 - cy), name) for c in cues for name, (cx, cy) in corners.items()))
    return best[1]


@pytest.mark.slow
def test_xdist_workers_and_one_process_discover_the_same(one_torch_thread, pytester, tmp_path):
    cases = _data(pytester, range(41_100_000, 41_100_012))
    common = [cases, "--camaudit-model=shapes-shortcut", "--camaudit-discover", "-p", "no:cacheprovider"]
    one = pytester.runpytest_subprocess(*common, f"--camaudit-json={tmp_path / 'one.json'}")
    two = pytester.runpytest_subprocess(*common, "-n", "2", f"--camaudit-json={tmp_path / 'two.json'}")
    assert one.ret == two.ret  # no gate: only a scene the twin gets wrong fails, in both runs alike
    docs = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two")]
    outcomes = [{c["name"]: c["verdict"] for c in doc["cases"]} for doc in docs]
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 12
    a, b = (doc["discovery"] for doc in docs)
    assert a == b and a["classes"] and sum(c["objects"] for c in a["classes"]) > 20
    one.stdout.fnmatch_lines(["camaudit discovery: nothing flagged*"])


def test_without_the_option_a_run_stores_crops_and_judges_nothing(pytester, tmp_path):
    cases = _data(pytester, range(41_200_000, 41_200_002), "shapes")
    result = pytester.runpytest(cases, "--camaudit-method=eigengradcam", "--camaudit-min-mass=0.01", "-p", "no:cacheprovider",
                                f"--camaudit-json={tmp_path / 'r.json'}")
    assert result.ret == 0
    assert "camaudit discovery" not in result.stdout.str()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["discovery"] is None and doc["run"]["settings"]["discover"] is False
    evidence = [e for c in doc["cases"] for e in c["evidence"]]
    assert evidence and all(e["method"] == "eigengradcam" and e["crop"] and not e["profile"] and not e["thumb"] for e in evidence)


EVIDENCE_PROBE = """
import json

def pytest_runtest_logreport(report):
    if report.when == "call":
        with open("evidence.jsonl", "a") as f:
            f.write(json.dumps([len(r["evidence"]) for r in getattr(report, "camaudit", [])]) + "\\n")
"""


@pytest.mark.parametrize(("args", "kept"), [
    ([], False),  # no output reads the crops: none is measured
    (["--camaudit-markdown={tmp}/s.md"], False),
    (["--camaudit-json={tmp}/r.json"], True),
    (["--camaudit-report={tmp}/r.html"], True),
    (["--camaudit-discover"], True),
    (["--camaudit-baseline={tmp}/base", "--camaudit-update-baseline"], True),
])
def test_the_records_carry_evidence_when_an_output_reads_it(pytester, tmp_path, args, kept):
    cases = _data(pytester, range(41_200_000, 41_200_002), "shapes")
    pytester.makeconftest(EVIDENCE_PROBE)
    result = pytester.runpytest(cases, "-p", "no:cacheprovider", *(a.format(tmp=tmp_path) for a in args))
    assert result.ret == 0, result.stdout.str()
    counts = [json.loads(line) for line in (pytester.path / "evidence.jsonl").read_text().splitlines()]
    assert len(counts) == 2 and all(len(c) == 1 for c in counts)  # two scenes, one case record each
    assert all(c[0] > 0 for c in counts) if kept else all(c[0] == 0 for c in counts)


@pytest.mark.parametrize(("args", "message"), [
    (["--camaudit-class-thresholds=triangle: discover=maybe"], "*triangle discover: expected a number in*"),
    (["--camaudit-baseline-tolerance=atlas-drift=3"], "*baseline tolerance atlas-drift: *"),
])
def test_bad_discovery_settings_are_usage_errors(pytester, args, message):
    assert_usage_error(pytester, args, "", message)


def test_an_interrupted_run_judges_no_discovery(pytester, tmp_path):
    cases = _data(pytester, range(41_300_000, 41_300_003), "shapes")
    result = pytester.runpytest(cases, "--camaudit-discover", "-x", "--camaudit-min-mass=0.99", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["camaudit discovery: incomplete (1 of 3 cases); nothing judged"])
