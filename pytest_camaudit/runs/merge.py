"""``python -m pytest_camaudit merge``: one report, one run file, one verdict from the shards of a run.

The shards are checked first (:func:`~.shards.open_shards`: complete files, one model, one method,
the same verdict-affecting settings, no test with two different results), then read as merged
streams, several times, each pass holding one entry per shard:

1. totals, the per-class table and the report's filter counts;
2. the gates and the baseline table, recomputed over every shard's object rows (two passes);
3. the merged run file (``--json``): cases and tests in node-id order, figures linked beside it;
4. the report (``--report``): failing and broken cases first, as a single run orders them;
5. the Markdown summary (``--markdown``).

Everything is computed in the order a single run uses, so the merged numbers, tables and run file
equal a single run's apart from timings. The exit status is 1 when a test or a gate failed, or
when a shard was interrupted (its gates cannot be judged: "incomplete"), 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ..dataset.gates import evaluate_baseline, evaluate_gates
from ..dataset.thresholds import ParsedSettings
from ..discovery.summary import Discovery
from ..discovery.tables import discovery_tables
from ..records import CaseRecord, GateState, RunSpan, RunSummary, Selection, ShardEntry, Status, Table, VerdictSettings, make_gate_state
from ..report.html import CardFacets, write_report_stream
from .layout import RUN_KEYS, TIMING_KEYS, case_from_json, header
from .reader import RunFile
from .shards import MergedRows, Refusal, merged_cases, merged_tests, open_shards
from .tables import RunTotals
from .writer import RunWriter

_TIME = "%Y-%m-%d %H:%M:%S UTC"


@dataclass
class Merged:
    """A merge's result: the run summary (as a single run's), its gate failures, where it wrote what."""

    summary: RunSummary
    failures: list[str]
    shards: list[RunFile]
    written: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """What the merge could not carry over (figure files missing from a shard's folder)."""

    @property
    def exit_code(self) -> int:
        gates = self.summary.get("gates")
        incomplete = gates is not None and gates["state"] == "incomplete"
        return 1 if self.summary["failed_tests"] or self.failures or incomplete else 0


def _status(case: dict[str, Any]) -> Status:
    return Status.of(case.get("outcome"), case.get("error"))


def shown_cases(shards: list[RunFile], report_all: bool) -> Iterator[tuple[CaseRecord, Path | None]]:
    """The report's cards in a single run's order: one pass over the shards per outcome."""
    for group in Status:  # the report's order of cards (then node id and name), as a single run's report
        for case, shard in merged_cases(shards):
            status = _status(case)
            if status is group and (report_all or not status.passing):
                yield case_from_json(case), shard.folder


def _span(shards: list[RunFile]) -> RunSpan:
    starts = [str(s.run.get("started")) for s in shards if s.run.get("started")]
    ends = [str(s.run.get("finished")) for s in shards if s.run.get("finished")]
    started, finished = (min(starts) if starts else ""), (max(ends) if ends else "")
    try:
        duration = (datetime.strptime(finished, _TIME) - datetime.strptime(started, _TIME)).total_seconds()
    except ValueError:
        duration = sum(float(s.run.get("duration") or 0.0) for s in shards)
    return {"started": started, "finished": finished, "duration": duration}


def _shard_entry(shard: RunFile) -> ShardEntry:
    """Where and when one shard ran (the merged ``run.shards``)."""
    run = shard.run
    return {"file": str(shard.path), "shard": run.get("shard"), "version": run.get("version"), "python": run.get("python"),
            "torch": run.get("torch"), "started": run.get("started"), "finished": run.get("finished"), "duration": run.get("duration"),
            "exitstatus": run.get("exitstatus")}


def _run_facts(shards: list[RunFile]) -> RunSummary:
    """The merged ``run``: the shards' common identity, their time span, and per shard where and when."""
    first = shards[0].run
    facts = cast(RunSummary, {k: first.get(k) for k in RUN_KEYS if k not in TIMING_KEYS})
    facts["identity"] = next((s.run["identity"] for s in shards if s.run.get("identity")), "")
    facts["device"] = ", ".join(sorted({str(s.run.get("device")) for s in shards}))
    facts["report_all"] = any(s.run.get("report_all") for s in shards)
    selections: list[Selection | None] = [s.run.get("selection") for s in shards]
    facts["selection"] = selections[0] if all(x == selections[0] for x in selections) else {"per_shard": selections}
    facts["shard"] = None
    facts["shards"] = [_shard_entry(s) for s in shards]
    facts.update(_span(shards))
    return facts


def _gates(shards: list[RunFile], totals: RunTotals) -> tuple[GateState, list[Table], list[str], Discovery | None]:
    states = [s.header.get("gates") or {} for s in shards]
    ran = totals.audit_tests
    collected = ran + sum(max(0, int(g.get("collected") or 0) - int(g.get("ran") or 0)) for g in states)
    interrupted = any(g.get("interrupted") for g in states)
    incomplete = interrupted or ran < collected or any(g.get("state") == "incomplete" for g in states)
    pending = f"incomplete ({ran} of {collected} cases)" if incomplete else None
    settings: VerdictSettings = shards[0].run.get("settings") or VerdictSettings()
    rows = MergedRows(shards)
    table, failures = evaluate_gates(rows, pending)
    btable = None
    if settings.get("baseline") and not settings.get("update_baseline"):
        btable, bfail = evaluate_baseline(rows, ParsedSettings.of(settings).tolerances.recall_drop, pending)
        failures += bfail
    discovery = _discovery(shards, settings, pending)
    failures += discovery.failures if discovery is not None else []
    state = make_gate_state("incomplete" if incomplete else "judged", ran, collected, interrupted, failures)
    return state, [t for t in (table, btable, *(discovery_tables(discovery) if discovery else [])) if t], failures, discovery


class _Cases:
    """Every shard's cases once, as records, in a single run's order; iterable any number of times."""

    def __init__(self, shards: list[RunFile]) -> None:
        self.shards = shards

    def __iter__(self) -> Iterator[CaseRecord]:
        for case, _ in merged_cases(self.shards):
            yield case_from_json(case)


def _discovery(shards: list[RunFile], settings: VerdictSettings, pending: str | None) -> Discovery | None:
    """Discovery over every shard's evidence, as one run (its baseline atlases are those the shards measured drift against)."""
    from ..discovery.atlas import Atlas
    from ..discovery.summary import DiscoverySettings, discover
    from ..surroundings import decode_grid

    options = DiscoverySettings.from_settings(settings)
    recorded = next((h for h in ((s.header.get("discovery") or {}) for s in shards) if h.get("baseline")), {})
    comparing = bool(settings.get("baseline")) and not settings.get("update_baseline")
    if not options.enabled and not comparing:
        return None
    baseline = {k: Atlas(decode_grid(v["grid"]).astype("float64"), int(v["n"]), str(v["method"])) for k, v in recorded.get("baseline", {}).items()}
    result = discover(_Cases(shards), options, pending, baseline or None, str(settings.get("baseline")) if comparing else None)
    result.baseline = dict(recorded.get("baseline", {}))
    return result if (result.enabled or result.drift or result.drift_note) else None


def summarise(shards: list[RunFile]) -> tuple[Merged, CardFacets]:
    """Totals, tables and gates over every shard (passes 1 and 2), and the report's filter counts."""
    facts = _run_facts(shards)
    totals, facets = RunTotals(), CardFacets()
    for case, _ in merged_cases(shards):
        record = case_from_json(case)
        totals.add_case(record)
        if bool(facts["report_all"]) or not _status(case).passing:
            facets.add(record)
    for test in merged_tests(shards):
        totals.add_test(test)
    gates, tables, failures, discovery = _gates(shards, totals)
    interrupted = gates["interrupted"] or any(s.run.get("exitstatus") == "INTERRUPTED" for s in shards)
    failed = totals.failed_tests or failures
    exitstatus = "INTERRUPTED" if interrupted else "TESTS_FAILED" if failed else "OK"
    summary: RunSummary = {**facts, "exitstatus": exitstatus, **totals.counts(), "gates": gates, "tables": tables,
               "per_class": totals.per_class.table(), "discovery": discovery.as_dict() if discovery is not None else None}
    return Merged(summary, failures, shards), facets


def _write_json(path: str, merged: Merged) -> None:
    shards = merged.shards
    cases = ((case, shard.folder) for case, shard in merged_cases(shards))
    writer = RunWriter(path)
    writer.write(header(merged.summary), cases, merged_tests(shards))
    merged.written["json"] = str(writer.path)
    if writer.missing:
        merged.problems.append(f"{len(writer.missing)} figure file(s) named by the shards were missing from their _figures folders "
                               f"(first: {writer.missing[0]}); the merged file still names them and their cards say so")


def _records(cases: Iterable[tuple[CaseRecord, Path | None]]) -> Iterator[CaseRecord]:
    for case, _ in cases:
        yield case


def merge(paths: Iterable[str | Path], report: str | None = None, json_path: str | None = None, markdown: str | None = None,
          expect_shards: int | None = None) -> Merged:
    """Merge the run files ``paths`` and write what was asked for.

    Raises:
        Refusal: the shards are not one complete run (see :mod:`.shards`), or an output would overwrite a shard.
    """
    files = [Path(p) for p in paths]
    for what, out in (("--report", report), ("--json", json_path), ("--markdown", markdown)):
        if out and any(Path(out).resolve() == p.resolve() for p in files):
            raise Refusal(f"{what}={out} would overwrite a shard; write the merged output elsewhere")
    shards = open_shards(files, expect_shards)
    merged, facets = summarise(shards)
    report_all = bool(merged.summary.get("report_all"))
    if json_path:
        _write_json(json_path, merged)
    if report:
        merged.written["report"] = str(write_report_stream(report, shown_cases(shards, report_all), merged.summary, facets))
    if markdown:
        from .markdown import write_markdown

        write_markdown(markdown, merged.summary, _records(shown_cases(shards, report_all)), merged.written.get("report"))
        merged.written["markdown"] = markdown
    return merged


__all__ = ["Merged", "Refusal", "merge", "shown_cases", "summarise"]
