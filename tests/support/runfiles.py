"""Run files made the way a pytest run makes them (collector → ``--camaudit-json``), from synthetic cases: no detector runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pytest_camaudit.dataset.gates import evaluate_gates
from pytest_camaudit.plugin.collector import RunCollector
from pytest_camaudit.plugin.integrations import write_json
from pytest_camaudit.plugin.options import Settings
from pytest_camaudit.records import CaseRecord, GateState, make_gate_state
from pytest_camaudit.report.store import FigureStore
from pytest_camaudit.runs.writer import figures_dir

IDENTITY = "1055519c2637c55a"


def gate_row(case: CaseRecord) -> dict[str, Any]:
    """The gate input of a case's first expected object: detected, its mass, a per-class recall and mass gate."""
    check = next((c for c in case.checks if "mass" in c.measured), None)
    return {"label": case.expected[0]["label"], "detected": True, "mass": check.measured["mass"] if check else None,
            "score_threshold": 0.5, "gate_recall": 1.0, "gate_mass": [0.4, 0.5], "baseline": None, "key": case.source}


def _report(case: CaseRecord, identity: str) -> SimpleNamespace:
    failed = case.outcome == "failed"
    return SimpleNamespace(when="call", passed=not failed, failed=failed, outcome=case.outcome, nodeid=case.nodeid,
                           keywords={"camaudit": 1}, camaudit=[case.to_dict()], camaudit_objects=[gate_row(case)],
                           camaudit_run={"model": "shapes", "identity": identity, "method": "eigencam", "device": "cpu"})


def write_shard(path: Path, cases: list[CaseRecord], *, identity: str = IDENTITY, shard: dict[str, int] | None = None,
                gates: GateState | None = None, **settings: Any) -> Path:
    """A run file of ``cases`` (one test each) with its figures beside it, as ``--camaudit-json`` writes it."""
    collector = RunCollector(Settings(**settings), store=FigureStore(figures_dir(path)),
                             selection={"args": ["."], "keyword": "", "markexpr": "", "shard": shard})
    for case in cases:
        collector.add_report(_report(CaseRecord.from_dict(case.to_dict()), identity))
    collector.collected = len(cases)
    pending = f"deferred to the merge ({len(cases)} of {len(cases)} cases in this shard)" if shard else None
    table, failures = evaluate_gates(collector.rows(), pending)  # as the plugin's gates do at the end of a run
    collector.tables.append(table)
    if collector.settings.discover:  # as plugin.discovery does
        from pytest_camaudit.discovery.summary import DiscoverySettings, discover
        from pytest_camaudit.discovery.tables import discovery_tables

        result = discover(collector.sorted_cases(), DiscoverySettings.from_settings(collector.settings.as_dict()), pending)
        collector.discovery = result.as_dict()
        collector.tables.extend(discovery_tables(result))
        failures += result.failures
    collector.gates = gates or make_gate_state("deferred" if shard else "judged", len(cases), len(cases), False, failures)
    return write_json(path, collector, "TESTS_FAILED" if collector.failed_tests or failures else "OK")
