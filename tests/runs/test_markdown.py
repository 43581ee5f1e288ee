"""The Markdown summary: verdict, gates, tables, failing cases with measured value vs threshold; always < 64 KB."""

from __future__ import annotations

from support.reportdata import summary_for, synthetic_cases

from pytest_camaudit.records import CaseRecord, CheckRecord
from pytest_camaudit.runs.markdown import LIMIT, markdown_summary


def _failing(i: int, message: str = "") -> CaseRecord:
    check = CheckRecord("cam_mass", False, message or f"expected mass >= 0.40, got 0.1{i % 10}", "triangle", [1, 2, 3, 4], 0,
                        {"mass": 0.1 + (i % 10) / 100}, {"mass": 0.4})
    return CaseRecord(f"test_big.py::test_case[{i:05d}]", f"scene-{i:05d}.png", outcome="failed", checks=[check])


def test_the_summary_says_the_verdict_the_gates_and_what_failed_against_its_threshold():
    cases = synthetic_cases(5)
    summary = summary_for(cases)
    summary["gates"] = {"state": "judged", "ran": 5, "collected": 5, "interrupted": False,
                        "failures": ["expected triangle recall >= 90% at score >= 0.50, got 75% (3 of 4 detected)"]}
    text = markdown_summary(summary, cases, "out/report.html")
    assert text.startswith("### ❌ **CAM audit: FAILED**")
    assert "- ❌ gate: expected triangle recall \\>= 90% at score \\>= 0.50, got 75% \\(3 of 4 detected\\)" in text
    assert "#### Per class" in text and "| class | cases | failing |" in text
    assert "#### Failing cases (4)" in text
    assert "(needs ≥ 0.400)" in text  # measured value against its threshold
    assert text.rstrip().endswith("Report: `out/report.html`")


def test_deferred_and_incomplete_gates_are_said_so_and_not_judged():
    summary = summary_for(synthetic_cases(5)[4:])  # the one passing case
    summary["gates"] = {"state": "deferred", "ran": 1, "collected": 1, "interrupted": False, "failures": []}
    text = markdown_summary(summary, [], None)
    assert "gates are deferred to the merge" in text and "Gates **deferred** (1 of 1 cases): nothing judged." in text
    summary["gates"] = {"state": "incomplete", "ran": 1, "collected": 7, "interrupted": True, "failures": []}
    text = markdown_summary(summary, [], None)
    assert "**CAM audit: incomplete**" in text and "Gates **incomplete** (1 of 7 cases)" in text
    assert "No HTML report was written" in text


def test_any_run_stays_under_64_kb_with_a_count_of_the_cases_left_out():
    cases = [_failing(i, "x" * 5000 if i % 2 else "") for i in range(5000)]
    summary = summary_for(tuple(cases[:50]))
    summary["per_class"]["rows"] = [[f"class-{i}", 1, 1, 0, 0, "1 / 1", 0.1] for i in range(3000)]
    text = markdown_summary(summary, iter(cases), "r.html")
    assert len(text.encode("utf-8")) < LIMIT
    listed = text.count("\n- **scene-")
    assert 50 < listed < 5000
    assert f"… and {5000 - listed} more failing cases, left out to keep this summary under 64 KB: see the report." in text
    assert "more rows (see the report)" in text and text.rstrip().endswith("Report: `r.html`")


def test_names_and_messages_cannot_inject_markdown_or_html():
    case = _failing(1, "")
    case.name = "<img src=x onerror=alert(1)>](http://evil)|"
    summary = summary_for((case,))
    text = markdown_summary(summary, [case], None)
    assert "<img" not in text.replace("\\<img", "") and "](http" not in text.replace("\\](http", "")  # only escaped
    assert "\\<img src=x onerror=alert\\(1\\)\\>\\]\\(http://evil\\)\\|" in text
