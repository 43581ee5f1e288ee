"""The typed vocabulary of a run (:mod:`pytest_camaudit.records`)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from pytest_camaudit.records import CaseRecord, CheckRecord, Status, report_status


def _report(when: str, outcome: str, **extra: object) -> SimpleNamespace:
    return SimpleNamespace(when=when, outcome=outcome, **extra)


@pytest.mark.parametrize(("report", "status"), [
    (_report("call", "passed"), Status.PASSED),
    (_report("call", "failed"), Status.FAILED),
    (_report("call", "skipped"), Status.SKIPPED),
    (_report("setup", "failed"), Status.ERROR),
    (_report("setup", "skipped"), Status.SKIPPED),
    (_report("call", "skipped", wasxfail=""), Status.XFAILED),
    (_report("call", "passed", wasxfail="flaky"), Status.XPASSED),
    (_report("setup", "skipped", wasxfail="not run"), Status.XFAILED),
])
def test_a_report_has_one_status(report: SimpleNamespace, status: Status) -> None:
    assert report_status(report) is status


def test_the_status_order_is_the_report_card_order_and_writes_as_its_value() -> None:
    assert [s.value for s in sorted(Status, key=lambda s: s.order)] == ["error", "failed", "xpassed", "xfailed", "skipped", "passed"]
    assert json.dumps({"verdict": Status.XFAILED}) == '{"verdict": "xfailed"}'
    assert f"{Status.FAILED}" == str(Status.FAILED) == "failed"
    assert [s for s in Status if s.passing] == [Status.XPASSED, Status.PASSED]
    assert [s for s in Status if s.failing] == [Status.ERROR, Status.FAILED]


def test_a_case_is_an_error_when_unusable_and_failed_when_a_check_failed() -> None:
    failed_check = CheckRecord("detected", False, "expected a cat, got nothing")
    assert CaseRecord("t", "a.png", outcome="passed").status is Status.PASSED
    assert CaseRecord("t", "a.png", outcome="passed", error="unreadable").status is Status.ERROR
    assert CaseRecord("t", "a.png", outcome="no such outcome").status is Status.ERROR
    assert CaseRecord("t", "a.png", outcome="passed", checks=[failed_check]).status is Status.PASSED
    assert CaseRecord("t", "a.png", outcome="passed", checks=[failed_check]).verdict is Status.FAILED
    assert CaseRecord("t", "a.png", outcome="error", checks=[failed_check]).verdict is Status.ERROR


def test_text_settings_are_parsed_once_into_typed_values_and_read_back_from_a_run_file() -> None:
    from pytest_camaudit.dataset.thresholds import GateMass, ParsedSettings, Tolerances
    from pytest_camaudit.plugin.options import Settings

    settings = Settings(gate_mass="0.4:0.9", baseline_tolerance="rank=0.6 atlas-drift=0.2",
                        class_thresholds="triangle: score=0.6 gate-mass=0.3:0.7; star: discover=off")
    parsed = settings.parsed
    assert parsed is settings.parsed  # once
    assert parsed.gate_mass == GateMass(0.4, 0.9) and parsed.gate_mass.rate == 0.9
    assert parsed.tolerances == Tolerances(rank=0.6, atlas_drift=0.2)
    assert parsed.tolerances.recall_drop == 0.05 and Tolerances().atlas_drift is None
    assert parsed.classes == {"triangle": {"score": 0.6, "gate-mass": (0.3, 0.7)}, "star": {"discover": "off"}}
    assert ParsedSettings.of(settings.as_dict()) == parsed  # as a run file keeps them: the text
    assert settings.as_dict()["gate_mass"] == "0.4:0.9"


def test_every_option_default_is_the_settings_field() -> None:
    from dataclasses import fields

    from pytest_camaudit.plugin.options import OPTIONS, Settings
    from pytest_camaudit.records import SCORE_THRESHOLD

    names = {f.name for f in fields(Settings)}
    assert {spec.dest.removeprefix("camaudit_") for spec in OPTIONS} == names
    assert Settings().score_threshold == SCORE_THRESHOLD


def test_the_gate_state_is_built_in_one_place() -> None:
    from pytest_camaudit.records import make_gate_state

    assert make_gate_state() == {"state": "judged", "ran": 0, "collected": 0, "interrupted": False, "failures": []}
    failures = ["expected triangle recall >= 90%, got 50%"]
    state = make_gate_state("incomplete", 3, 8, True, failures)
    assert state == {"state": "incomplete", "ran": 3, "collected": 8, "interrupted": True, "failures": failures}
    assert state["failures"] is not failures  # its own list


def test_the_verdict_settings_type_names_every_verdict_setting_in_the_run_files_order() -> None:
    from typing import get_type_hints

    from pytest_camaudit.plugin.options import Settings
    from pytest_camaudit.records import VerdictSettings
    from pytest_camaudit.runs.layout import VERDICT_SETTINGS

    assert tuple(VerdictSettings.__annotations__) == VERDICT_SETTINGS  # the run file writes them in this order
    settings = Settings(gate_mass="0.4:0.9", discover=True).verdict_settings()
    assert list(settings) == list(VERDICT_SETTINGS) and settings["gate_mass"] == "0.4:0.9" and settings["discover"] is True
    field_types = get_type_hints(Settings)
    assert {k: field_types[k] for k in VERDICT_SETTINGS} == get_type_hints(VerdictSettings)


def test_a_run_header_has_the_run_files_header_keys() -> None:
    from pytest_camaudit.records import RunHeader
    from pytest_camaudit.runs.writer import HEADER_KEYS

    assert tuple(RunHeader.__annotations__) == tuple(HEADER_KEYS)


def test_the_discovery_rows_name_the_fields_of_what_they_are_made_from() -> None:
    from dataclasses import fields

    from pytest_camaudit.discovery.judge import ClassFinding, GroupFinding
    from pytest_camaudit.records import DiscoveryClassRow, EvidenceRecord, ExampleEntry, GroupRow

    assert list(DiscoveryClassRow.__annotations__) == [f.name for f in fields(ClassFinding)]
    assert list(GroupRow.__annotations__) == [f.name for f in fields(GroupFinding)]
    assert list(ExampleEntry.__annotations__) == [f.name for f in fields(EvidenceRecord)] + ["nodeid", "case"]
