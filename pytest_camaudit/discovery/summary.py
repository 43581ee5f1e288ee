"""Discovery over a whole run, as plain data: per class the verdict, groups, atlas and drift.

:func:`discover` is called the same way by a pytest run (over its case records, on the controller)
and by ``python -m pytest_camaudit merge`` (over the shards' cases as they stream past): the
result, and the terminal line, are the same for one run and for its shards merged.

The result (``Discovery.as_dict()``, a :class:`~pytest_camaudit.records.DiscoverySummary`) goes into
the run summary under ``"discovery"`` (the report's section, the Markdown summary, the run file's header)::

    {"state": "judged" | "deferred" | "incomplete", "pending": str | None, "enabled": bool,
     "flagged": [class...], "classes": [DiscoveryClassRow...], "atlases": {class: AtlasEntry},
     "examples": {key: ExampleEntry}, "drift": {class: DriftEntry}, "drift_note": str,
     "baseline": {class: AtlasEntry}, "failures": [str...], "settings": {...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import cast

from ..dataset.thresholds import ParsedSettings
from ..records import AtlasEntry, CaseRecord, DiscoverySummary, DriftEntry, ExampleEntry, VerdictSettings
from .atlas import Atlas, atlas_of
from .judge import DIFFUSE_SHARE, MARGIN, MIN_GROUP, MIN_OBJECTS, MIN_SHARE, ClassFinding, judge_class
from .objects import AuditedObject, collect, pick_examples

LINE = "camaudit discovery"
"""How the terminal line starts: ``camaudit discovery: flagged triangle`` / ``camaudit discovery: nothing flagged``."""


@dataclass(frozen=True)
class DiscoverySettings:
    """What discovery is asked to do, from the run's plain settings.

    Attributes:
        enabled: ``--camaudit-discover`` (or ``--camaudit-gate-discovery``, which implies it).
        gate: ``--camaudit-gate-discovery``: a flagged class fails the run.
        margins: class → its margin, or None (waived), from ``--camaudit-class-thresholds`` (``*``: every class).
        atlas_tolerance: the ``atlas-drift`` baseline tolerance, when one is given.
    """

    enabled: bool = False
    gate: bool = False
    margins: tuple[tuple[str, float | None], ...] = ()
    atlas_tolerance: float | None = None

    @classmethod
    def from_settings(cls, settings: VerdictSettings) -> DiscoverySettings:
        parsed = ParsedSettings.of(settings)
        margins: list[tuple[str, float | None]] = []
        for name, values in parsed.classes.items():
            if "discover" in values:
                value = values["discover"]
                margins.append((name, None if value == "off" else float(value)))
        gate = bool(settings.get("gate_discovery"))
        return cls(bool(settings.get("discover")) or gate, gate, tuple(margins),
                   parsed.tolerances.atlas_drift)

    def margin(self, label: str) -> float | None:
        """The class's margin: its own, else ``*``'s, else :data:`~.judge.MARGIN`; None when waived."""
        found = dict(self.margins)
        for key in (label, "*"):
            if key in found:
                return found[key]
        return MARGIN


@dataclass
class Discovery:
    """One run's discovery (see the module docstring for its plain form)."""

    state: str = "judged"
    pending: str | None = None
    enabled: bool = False
    classes: list[ClassFinding] = field(default_factory=list)
    atlases: dict[str, AtlasEntry] = field(default_factory=dict)
    examples: dict[str, ExampleEntry] = field(default_factory=dict)
    drift: dict[str, DriftEntry] = field(default_factory=dict)
    drift_note: str = ""
    failures: list[str] = field(default_factory=list)
    baseline: dict[str, AtlasEntry] = field(default_factory=dict)
    """The baseline's atlases the drift was measured against (a merge measures the same)."""

    @property
    def flagged(self) -> list[str]:
        return [c.label for c in self.classes if c.status == "flagged"] if self.pending is None else []

    def line(self) -> str:
        """The terminal line."""
        if self.pending is not None:
            return f"{LINE}: {self.pending}; nothing judged"
        if self.flagged:
            return f"{LINE}: flagged {', '.join(self.flagged)}"
        unjudged = [c.label for c in self.classes if c.status in ("too few objects", "no profiles")]
        return f"{LINE}: nothing flagged" + (f" (too few objects to judge: {', '.join(unjudged)})" if unjudged else "")

    def as_dict(self) -> DiscoverySummary:
        d = cast(DiscoverySummary, asdict(self))
        d["flagged"] = self.flagged
        d["line"] = self.line() if self.enabled else ""
        d["settings"] = {"margin": MARGIN, "min_group": MIN_GROUP, "min_share": MIN_SHARE, "diffuse_share": DIFFUSE_SHARE,
                         "min_objects": MIN_OBJECTS}
        return d


def _failure(c: ClassFinding) -> str:
    g = next(g for g in c.groups if g.status == "flagged")
    return (f"discovery: {c.label} is flagged: a group of {g.size} of its {c.objects} objects ({g.share:.0%}) loses {g.loss:.2f} of its "
            f"score on average when the region {g.where} is filled (margin {c.margin:.2f}); follow it up with "
            f"--camaudit-method=drise on {c.label}, or waive it with --camaudit-class-thresholds '{c.label}: discover=off'")


def discover(cases: Iterable[CaseRecord], settings: DiscoverySettings, pending: str | None = None,
             baseline: Mapping[str, Atlas] | None = None, baseline_dir: str | None = None) -> Discovery:
    """Discovery over ``cases`` (iterated twice: once for the objects, once for the shown objects' pictures).

    Args:
        cases: every case record of the run (or a re-iterable stream of them).
        settings: what to do.
        pending: why the verdict is not judged now (a shard, an interrupted run): shown, nothing flagged.
        baseline: the baseline's atlases, for drift; ``baseline_dir`` names it in notes.
    """
    result = Discovery(state="judged" if pending is None else pending.split(" ", 1)[0], pending=pending, enabled=settings.enabled)
    per_class = collect(cases).classes()
    atlases = {label: a for label, objs in per_class.items() if (a := atlas_of(objs)) is not None}
    result.atlases = {k: a.encoded() for k, a in atlases.items()}
    if settings.enabled:
        result.classes = [judge_class(label, objs, settings.margin(label)) for label, objs in per_class.items()]
        wanted = {k: o for c in result.classes for g in c.groups if g.status != "too few objects" for k in g.examples
                  for o in per_class[c.label] if o.key == k}
        _examples(result, cases, wanted)
    _drift(result, atlases, baseline, baseline_dir, settings.atlas_tolerance)
    if pending is None and settings.gate:
        result.failures.extend(_failure(c) for c in result.classes if c.status == "flagged")
    return result


def _examples(result: Discovery, cases: Iterable[CaseRecord], wanted: dict[str, AuditedObject]) -> None:
    for key, e in pick_examples(cases, wanted).items():
        result.examples[key] = cast(ExampleEntry, {**asdict(e), "nodeid": wanted[key].nodeid, "case": wanted[key].case})


def _drift(result: Discovery, atlases: Mapping[str, Atlas], baseline: Mapping[str, Atlas] | None, where: str | None,
           tolerance: float | None) -> None:
    from .atlas import drift

    if baseline is None:
        if where:
            result.drift_note = f"the baseline in {where} keeps no evidence atlas (written before atlases existed): compared without one"
        return
    for label in sorted(set(atlases) | set(baseline)):
        ours, theirs = atlases.get(label), baseline.get(label)
        value = drift(ours.grid, theirs.grid) if ours is not None and theirs is not None else None
        judged = tolerance is not None and value is not None and result.pending is None
        verdict = ("FAIL" if value > tolerance else "pass") if judged and tolerance is not None and value is not None else "shown"
        result.drift[label] = {"drift": value, "n": ours.n if ours else 0, "baseline_n": theirs.n if theirs else 0, "tolerance": tolerance,
                               "verdict": verdict}
        if verdict == "FAIL":
            result.failures.append(f"expected the evidence atlas of {label} to drift by at most {tolerance:.2f} (1 - r) from the baseline's, "
                                   f"got {value:.2f}: where its maps put their mass around its boxes has moved")
