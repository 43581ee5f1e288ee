"""``python -m pytest_camaudit merge``: shards become one run, or a clear refusal says why not."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from support.html import check_html
from support.runfiles import write_shard

from pytest_camaudit.runs.cli import main
from pytest_camaudit.runs.layout import TIMING_KEYS
from pytest_camaudit.runs.writer import figures_dir


def _merge(capsys, *args):
    code = main(["merge", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _without_timings(doc):
    run = {k: v for k, v in doc["run"].items() if k not in (*TIMING_KEYS, "shards")}
    return {**doc, "run": run}


def test_merged_shards_equal_the_single_run(tmp_path, shards, capsys):
    code, out, err = _merge(capsys, *shards, f"--report={tmp_path / 'm.html'}", f"--json={tmp_path / 'm.json'}",
                            f"--markdown={tmp_path / 'm.md'}", "--expect-shards=3")
    assert code == 1 and not err  # 8 of 9 tests failed, and two gates
    single, merged = (json.loads((tmp_path / n).read_text()) for n in ("single.json", "m.json"))
    assert _without_timings(merged) == _without_timings(single)
    assert [s["shard"] for s in merged["run"]["shards"]] == [{"splits": 3, "group": g} for g in (1, 2, 3)]
    assert merged["gates"]["state"] == "judged" and len(merged["gates"]["failures"]) == 2
    assert "camaudit gates: FAILED (2 failing)" in out and "FAILED gate: expected >= 50% of circle objects" in out
    assert out.rstrip().endswith("camaudit merge: FAILED: 9 tests (8 failed), 2 gate(s) failed, gates judged")
    html = (tmp_path / "m.html").read_text()
    check_html(html)
    assert html.count('<article class="case ') == 8 and "could not be shown" not in html
    # every figure the merged file names is in its own folder (linked from the shards')
    names = {f["file"] for c in merged["cases"] for f in c["figures"]}
    assert len(names) == 9 * 3 and names <= {p.name for p in figures_dir(tmp_path / "m.json").iterdir()}
    assert "CAM audit: FAILED" in (tmp_path / "m.md").read_text()


def test_a_clean_merge_exits_0_and_a_shard_may_be_given_twice(tmp_path, cases, capsys):
    passing = [c for c in cases if c.outcome == "passed"]
    a = write_shard(tmp_path / "a.json", passing, shard={"splits": 2, "group": 1})
    b = write_shard(tmp_path / "b.json", [], shard={"splits": 2, "group": 2})
    code, out, _ = _merge(capsys, a, b, a)
    assert code == 0, out
    assert "camaudit merge: passed: 1 tests (0 failed)" in out


def test_an_identical_rerun_merges_but_a_different_result_is_refused(tmp_path, cases, capsys):
    a = write_shard(tmp_path / "a.json", cases[:3], shard={"splits": 2, "group": 1})
    rerun = write_shard(tmp_path / "rerun.json", cases[2:5], shard={"splits": 2, "group": 2})
    code, out, _ = _merge(capsys, a, rerun, f"--json={tmp_path / 'm.json'}")
    assert code == 1 and "5 audited cases" in out  # case 2 counted once
    assert len(json.loads((tmp_path / "m.json").read_text())["cases"]) == 5
    changed = [c.__class__.from_dict(c.to_dict()) for c in cases[2:5]]
    changed[0].checks[-1].measured["mass"] = 0.123
    other = write_shard(tmp_path / "other.json", changed, shard={"splits": 2, "group": 2})
    code, _, err = _merge(capsys, a, other)
    assert code == 2
    assert re.search(r"refused: test test_scale.py::test_case\[2\] has different results: failed in both, with different "
                     r"measurements in .*a.json and .*other.json; an identical rerun merges", err), err


@pytest.mark.parametrize(("change", "says"), [
    ({"identity": "ffffffffffffffff"}, "model identity (weights hash) 'ffffffffffffffff'"),
    ({"method": "gradcam"}, "setting method 'gradcam'"),
    ({"score_threshold": 0.3}, "setting score_threshold 0.3"),
    ({"gate_recall": 0.9}, "setting gate_recall 0.9"),
])
def test_shards_that_are_not_one_run_are_refused(tmp_path, cases, capsys, change, says):
    a = write_shard(tmp_path / "a.json", cases[:2], shard={"splits": 2, "group": 1})
    b = write_shard(tmp_path / "b.json", cases[2:4], shard={"splits": 2, "group": 2}, **change)
    code, out, err = _merge(capsys, a, b, f"--report={tmp_path / 'm.html'}")
    assert code == 2 and not out and not (tmp_path / "m.html").exists()
    assert f"b.json has {says} but " in err and "are not one run; run every shard with the same ones" in err


def test_fewer_shards_than_expected_are_refused(shards, capsys):
    code, _, err = _merge(capsys, *shards[:2], "--expect-shards=3")
    assert code == 2
    assert "refused: expected 3 shards (--expect-shards), got 2:" in err and "did a shard's job fail" in err


@pytest.mark.parametrize(("damage", "says"), [
    (lambda b: b[: len(b) // 2], "is truncated after line"),
    (lambda b: b[: b.rindex(b'"end"')], "is truncated after line"),
    (lambda b: b.replace(b'"nodeid": "test_scale.py::test_case[3]"', b'"nodeid": "test_scale.py::test_case[3]', 1), ": corrupt case entry"),
    (lambda b: b"<html>not json</html>\n", "is not a pytest-camaudit run file"),
    (lambda b: b"", "is not a pytest-camaudit run file"),
    (lambda b: b.replace(b"pytest-camaudit/run/3", b"pytest-camaudit/summary/1", 1), "has format 'pytest-camaudit/summary/1'"),
    # a shard of the previous format (no evidence, no discovery) is refused, naming both versions
    (lambda b: b.replace(b"pytest-camaudit/run/3", b"pytest-camaudit/run/2", 1), "has format 'pytest-camaudit/run/2'; this version reads 'pytest-camaudit/run/3'"),
    (lambda b: b.replace(b'"end": {"cases": 3', b'"end": {"cases": 4', 1), "says it holds"),
])
def test_a_corrupt_or_truncated_shard_is_refused_with_the_file_and_line(shards, capsys, damage, says):
    shards[0].write_bytes(damage(shards[0].read_bytes()))
    code, _, err = _merge(capsys, *shards)
    assert code == 2
    assert err.startswith(f"camaudit merge: refused: {shards[0]}") and says in err, err


def test_a_missing_figure_costs_only_its_card(tmp_path, shards, capsys):
    doc = json.loads(shards[1].read_text())
    lost = doc["cases"][0]["figures"][1]["file"]
    (figures_dir(shards[1]) / lost).unlink()
    code, out, _ = _merge(capsys, *shards, f"--report={tmp_path / 'm.html'}", f"--json={tmp_path / 'm.json'}")
    assert code == 1
    assert f"WARNING: 1 figure file(s) named by the shards were missing from their _figures folders (first: {lost})" in out
    html = (tmp_path / "m.html").read_text()
    check_html(html)
    assert html.count('<article class="case ') == 8
    assert html.count("could not be shown") == 1 and f"figure file {figures_dir(shards[1]) / lost} is missing" in html


def test_outputs_never_overwrite_a_shard_and_bad_arguments_say_what_is_wrong(shards, capsys):
    code, _, err = _merge(capsys, *shards, f"--json={shards[0]}")
    assert code == 2 and "would overwrite a shard; write the merged output elsewhere" in err
    with pytest.raises(SystemExit) as exc:
        main(["merge", str(shards[0]), "--expect-shards=0"])
    assert exc.value.code == 2 and "expected a whole number >= 1, got '0'" in capsys.readouterr().err
    code, _, err = _merge(capsys, shards[0].with_name("nowhere.json"))
    assert code == 2 and "cannot read" in err and "nowhere.json" in err


def test_python_dash_m_runs_the_merge_without_torch(shards, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest_camaudit", "merge", *map(str, shards), "--report", str(tmp_path / "r.html")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "camaudit (merged 3 shards)" in proc.stdout and (tmp_path / "r.html").is_file()
    code = ("import sys, runpy; sys.argv = ['pytest_camaudit', 'merge', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('pytest_camaudit', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, shards)], capture_output=True, text=True, cwd=tmp_path)
    assert "torch imported: False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]  # a merge job needs no torch


def test_an_interrupted_shard_leaves_the_merged_gates_incomplete_and_fails(tmp_path, cases, capsys):
    a = write_shard(tmp_path / "a.json", cases[:3], shard={"splits": 2, "group": 1})
    b = write_shard(tmp_path / "b.json", cases[3:4], shard={"splits": 2, "group": 2},
                    gates={"state": "incomplete", "ran": 1, "collected": 3, "interrupted": True, "failures": []})
    code, out, _ = _merge(capsys, a, b, f"--json={tmp_path / 'm.json'}")
    assert code == 1
    assert "camaudit gates: incomplete (4 of 6 cases); not judged" in out and "FAILED gate" not in out
    gates = json.loads((tmp_path / "m.json").read_text())["gates"]
    assert gates == {"state": "incomplete", "ran": 4, "collected": 6, "interrupted": True, "failures": []}


def _with_evidence(cases):
    """The synthetic cases, each carrying a triangle tagged past its top-left corner (most) or a clean circle."""
    from pytest_camaudit.records import CaseRecord, EvidenceRecord
    from pytest_camaudit.surroundings import REGIONS

    out = []
    for i, case in enumerate(cases):
        tagged = i % 4 != 3
        profile = dict.fromkeys(REGIONS, 0.01) | ({"top-left": 0.85, "outside": 0.9} if tagged else {})
        e = EvidenceRecord(f"img{i}:0", "triangle" if tagged else "circle", [10.0, 10.0, 40.0, 40.0], 0.95, [160, 160], None, "", profile)
        out.append(CaseRecord.from_dict({**case.to_dict(), "evidence": [e.__dict__]}))
    return out


def test_shards_discover_as_one_run(tmp_path, capsys):
    from support.reportdata import synthetic_cases

    cases = _with_evidence(list(synthetic_cases(36, size=64)))
    single = write_shard(tmp_path / "single.json", cases, discover=True, gate_discovery=True)
    shards = [write_shard(tmp_path / f"s{g}.json", cases[g::3], shard={"splits": 3, "group": g + 1}, discover=True, gate_discovery=True)
              for g in range(3)]
    for shard in shards:
        assert json.loads(shard.read_text())["discovery"]["line"].startswith("camaudit discovery: deferred to the merge")
    code, out, _ = _merge(capsys, *shards, f"--json={tmp_path / 'm.json'}", f"--report={tmp_path / 'm.html'}", f"--markdown={tmp_path / 'm.md'}")
    merged, one = (json.loads(p.read_text()) for p in (tmp_path / "m.json", single))
    assert merged["discovery"] == one["discovery"] and merged["discovery"]["flagged"] == ["triangle"]
    assert code == 1 and "camaudit discovery: flagged triangle" in out and "FAILED gate: discovery: triangle is flagged" in out
    assert "**Discovery:** flagged triangle" in (tmp_path / "m.md").read_text()
    html = (tmp_path / "m.html").read_text()
    check_html(html)
    assert "camaudit discovery: flagged triangle" in html and 'alt="context profile of triangle"' in html
