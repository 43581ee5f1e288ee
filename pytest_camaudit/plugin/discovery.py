"""Discovery's pytest side: judged on the controller at the end of the session, like the dataset gates.

Every test's case records carry the evidence of the objects its checks matched (with context
profiles under ``--camaudit-discover``); under pytest-xdist they reach the controller on the test
reports. At the end of the session :func:`judge` runs :func:`~pytest_camaudit.discovery.summary.discover`
over them: the verdict goes into the run summary (terminal line, report section, Markdown, run
file), its table into the run's tables, and a flagged class into the gate failures under
``--camaudit-gate-discovery``. A shard or an interrupted run shows it "deferred" / "incomplete" and
judges nothing. With a baseline, the run's evidence atlases are written
(``--camaudit-update-baseline``) or compared (drift).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .collector import RunCollector
    from .options import Settings


def _baseline_dir(config: pytest.Config, settings: Settings) -> str | None:
    from .cases import resolve_path

    directory = resolve_path(config, "baseline", settings.baseline)
    return str(directory) if directory is not None else None


def judge(config: pytest.Config, settings: Settings, collector: RunCollector, pending: str | None) -> list[str]:
    """Run discovery over the collector's cases; returns its failures (gate and atlas drift)."""
    from ..discovery.atlas import AtlasFileError, read_atlases
    from ..discovery.summary import DiscoverySettings, discover

    directory = _baseline_dir(config, settings)
    comparing = directory is not None and not settings.update_baseline
    if not settings.discover and not comparing and not settings.update_baseline:
        return []
    baseline = None
    if comparing and directory is not None:
        try:
            baseline = read_atlases(directory)
        except AtlasFileError as exc:
            collector.problems.append(str(exc))
    options = DiscoverySettings.from_settings(settings.verdict_settings())
    result = discover(collector.sorted_cases(), options, pending, baseline, directory if comparing else None)
    if baseline is not None:
        result.baseline = {k: a.encoded() for k, a in baseline.items()}
    if settings.update_baseline and directory is not None:
        _write_atlases(collector, directory, pending, result)
    if result.enabled or result.drift or result.drift_note:
        collector.discovery = result.as_dict()
        from ..discovery.tables import discovery_tables

        collector.tables.extend(discovery_tables(result))
    if result.enabled:
        from .integrations import junit_suite_properties

        junit_suite_properties(config, {"camaudit.discovery": result.line(), "camaudit.discovery.flagged": ", ".join(result.flagged)})
    return list(result.failures)


def _write_atlases(collector: RunCollector, directory: str, pending: str | None, result: Any) -> None:
    from ..discovery.atlas import atlas_of, write_atlases
    from ..discovery.objects import collect

    if pending is not None:
        result.drift_note = f"the baseline's evidence atlases were not written: this run is {pending}; update the baseline in one whole run"
        return
    atlases = {label: a for label, objs in collect(collector.sorted_cases()).classes().items() if (a := atlas_of(objs)) is not None}
    if atlases:
        facts = collector.run_facts
        write_atlases(directory, atlases, {"model": facts.get("model", ""), "identity": facts.get("identity", ""), "method": facts.get("method", "")})
