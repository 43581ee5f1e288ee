"""Shards through pytest itself: the run file, deferred gates, interrupted runs, the Markdown summary, the merge.

The suite: four ``shapes`` scenes as data-driven cases under a mass gate no model meets, so a
judged run fails on its gates while every test passes.
"""

from __future__ import annotations

import json

import pytest

from pytest_camaudit import __version__
from pytest_camaudit.runs.cli import main
from pytest_camaudit.runs.layout import FORMAT, TIMING_KEYS, VERDICT_SETTINGS
from pytest_camaudit.runs.writer import figures_dir
from pytest_camaudit.zoo.dataset import write_coco_dataset

SUITE = """
import pytest
pytestmark = pytest.mark.camaudit_cases("data/annotations.json", gate_mass=(0.99, 0.5))
SEEN = []

def test_scene(camaudit, camaudit_entry):
    SEEN.append(1)
    if len(SEEN) == {stop}:
        raise KeyboardInterrupt  # Ctrl-C in the middle of the run
    camaudit_entry.check(camaudit_entry.audit(camaudit))
"""


@pytest.fixture
def suite(pytester):
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_004)), "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\n")
    pytester.makepyfile(test_suite=SUITE.replace("{stop}", "0"))
    return pytester


def _run(suite, *args):
    return suite.runpytest("-p", "no:cacheprovider", *args, no_reraise_ctrlc=True)  # the inner run's Ctrl-C stays there


def test_the_run_file_holds_the_run_s_identity_gate_inputs_and_figures(suite):
    result = _run(suite, "--camaudit-json=out/run.json", "--camaudit-report-all", "--camaudit-markdown=out/summary.md")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # judged: the gates fail
    doc = json.loads((suite.path / "out" / "run.json").read_text())
    run = doc["run"]
    assert doc["format"] == FORMAT and run["version"] == __version__
    assert len(run["identity"]) == 16 and run["method"] == "eigengradcam" and run["device"] == "cpu"
    assert set(run["settings"]) == set(VERDICT_SETTINGS) and run["settings"]["score_threshold"] == 0.5
    assert run["selection"]["args"] and run["shard"] is None and run["exitstatus"] == "TESTS_FAILED"
    assert all(run[k] for k in (*TIMING_KEYS, "python", "torch"))
    assert doc["gates"]["state"] == "judged" and len(doc["gates"]["failures"]) == len(doc["tables"][0]["rows"])
    objects = [row for t in doc["tests"] for row in t["objects"]]
    assert len(doc["tests"]) == 4 and len(objects) >= 8 and all(r["gate_mass"] == [0.99, 0.5] for r in objects)
    files = {f[k] for c in doc["cases"] for f in c["figures"] for k in ("file", "thumb_file") if f[k]}
    assert len(doc["cases"]) == 4 and files and files <= {p.name for p in figures_dir(suite.path / "out" / "run.json").iterdir()}
    md = (suite.path / "out" / "summary.md").read_text()
    assert md.startswith("### ❌ **CAM audit: FAILED**") and "camaudit gates: FAILED" in md
    # rebuilt from the file alone: the same tables, the same verdict
    assert main(["merge", str(suite.path / "out" / "run.json"), f"--report={suite.path / 'again.html'}"]) == 1
    assert "camaudit gates: FAILED" in (suite.path / "again.html").read_text()


def test_deferred_gates_are_recorded_not_judged(suite):
    result = _run(suite, "--camaudit-defer-gates", "--camaudit-json=s.json")
    assert result.ret == pytest.ExitCode.OK  # its own tests passed; the gates wait for the merge
    result.stdout.fnmatch_lines([
        "camaudit: dataset gates deferred to the merge (4 of 4 cases in this shard): nothing judged; "
        "judge them by merging s.json with the other shards' files: `python -m pytest_camaudit merge SHARD.json...`",
        "camaudit gates: deferred to the merge (4 of 4 cases in this shard); not judged",
        "  circle * not judged",
    ])
    assert "FAILED gate" not in result.stdout.str()
    assert json.loads((suite.path / "s.json").read_text())["gates"]["state"] == "deferred"


def test_pytest_split_defers_the_gates_unless_the_ini_says_otherwise(suite):
    result = _run(suite, "--splits", "2", "--group", "1")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["camaudit gates: deferred to the merge (2 of 2 cases in this shard); not judged"])
    suite.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\ncamaudit_defer_gates = false\n")
    result = _run(suite, "--splits", "2", "--group", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["camaudit gates: FAILED (*"])


def test_an_interrupted_run_shows_incomplete_gates_and_judges_nothing(suite):
    suite.makepyfile(test_suite=SUITE.replace("{stop}", "3"))
    result = _run(suite, "--camaudit-json=s.json", "--camaudit-report=r.html")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["camaudit: dataset gates incomplete (2 of 4 cases): nothing judged; run the whole selection*",
                                 "camaudit gates: incomplete (2 of 4 cases); not judged"])
    assert "FAILED gate" not in result.stdout.str() and "FAIL" not in result.stdout.str().split("camaudit gates:")[1]
    assert "camaudit gates: incomplete (2 of 4 cases); not judged" in (suite.path / "r.html").read_text()
    gates = json.loads((suite.path / "s.json").read_text())["gates"]
    assert gates == {"state": "incomplete", "ran": 2, "collected": 4, "interrupted": True, "failures": []}


@pytest.mark.slow
def test_pytest_split_shards_merge_into_the_single_run(suite, capsys):
    single = _run(suite, "--camaudit-json=single.json")
    for group in (1, 2):
        assert _run(suite, "--splits", "2", "--group", str(group), f"--camaudit-json=s{group}.json").ret == pytest.ExitCode.OK
    capsys.readouterr()
    code = main(["merge", str(suite.path / "s1.json"), str(suite.path / "s2.json"), "--expect-shards=2",
                 f"--json={suite.path / 'merged.json'}"])
    out = capsys.readouterr().out
    assert code == 1 and single.ret == pytest.ExitCode.TESTS_FAILED
    one, merged = (json.loads((suite.path / n).read_text()) for n in ("single.json", "merged.json"))
    for doc in (one, merged):
        doc["run"] = {k: v for k, v in doc["run"].items() if k not in (*TIMING_KEYS, "shards")}
    assert merged == one
    gate_lines = sorted(line for line in single.stdout.lines if line.startswith(("FAILED gate:", "  ")))
    assert gate_lines and gate_lines == sorted(line for line in out.splitlines() if line.startswith(("FAILED gate:", "  ")))


def test_a_bad_defer_gates_value_is_a_usage_error_saying_what_is_accepted(pytester):
    pytester.makeini("[pytest]\ncamaudit_defer_gates = maybe\n")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option camaudit_defer_gates = 'maybe': *"])
