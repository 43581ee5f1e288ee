"""Dataset-level gates over every data-driven case of a run, evaluated on the controller.

Each checked object leaves a plain-data row (:func:`pytest_camaudit.dataset.checks.object_row`); the
plugin puts a test's rows on its report as ``camaudit_objects``, so under pytest-xdist they travel
to the controller with the report, which alone evaluates them here (plain functions of the rows):

* **recall gate** (``gate_recall`` / ``--camaudit-gate-recall``): per class, the share of annotated
  objects detected at their score and IoU thresholds must be at least the required rate;
* **mass gate** (``gate_mass=(X, R)`` / ``--camaudit-gate-mass=X:R``): per class, the share of
  objects whose CAM mass inside their box is ≥ ``X`` must be at least ``R`` (an object with no
  map — undetected under a per-box method — does not reach ``X``);
* **baseline recall** (with ``--camaudit-baseline``): per class, recall on the objects the baseline
  also has may drop by at most ``recall-drop`` from the baseline's.

How a failed gate fails the run is the plugin's business (:mod:`pytest_camaudit.plugin.gates`). A
class with several requirements (e.g. from two marked modules) is held to the strictest.

Rows are read in two passes and never held: ``rows`` may be a list or anything that can be iterated
twice (a merge passes a stream over its shard files). With ``pending`` (the run is incomplete, or
its gates are deferred to a merge), the tables show what was measured, judge nothing and fail
nothing: their title says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..records import BaselineCell, ObjectRow, Table


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _dashes(row: list[Any]) -> list[Any]:
    """Table cells with ``None`` shown as "—" (the terminal prints cells with ``str``)."""
    return ["—" if v is None else v for v in row]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def _twice(rows: Iterable[ObjectRow]) -> Iterable[ObjectRow]:
    """``rows`` if it can be iterated again, else its list (an iterator is consumed by one pass)."""
    return list(rows) if iter(rows) is rows else rows


@dataclass
class _Sums:
    """A running mean (summed in row order, so every reader of the same rows gets the same bits)."""

    total: float = 0.0
    n: int = 0

    def add(self, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.total += float(value)
            self.n += 1

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass
class _GateClass:
    n: int = 0
    hits: int = 0
    need_recall: float | None = None
    specs: set[tuple[float, float]] = field(default_factory=set)
    threshold: float = float("inf")
    mass: _Sums = field(default_factory=_Sums)
    over: int = 0

    def add(self, r: ObjectRow) -> None:
        self.n += 1
        self.hits += int(bool(r["detected"]))
        need, gate, mass = r.get("gate_recall"), r.get("gate_mass"), r.get("mass")
        if need is not None:
            self.need_recall = max(self.need_recall or 0.0, need)
        if gate:
            self.specs.add((float(gate[0]), float(gate[1])))
        self.threshold = min(self.threshold, r["score_threshold"])
        if mass is not None:
            self.mass.add(mass)

    @property
    def mass_spec(self) -> tuple[float | None, float | None]:
        """The strictest mass threshold, then the strictest rate at it."""
        if not self.specs:
            return None, None
        x = max(self.specs)[0]
        return x, max(rate for m, rate in self.specs if m == x)


def _gate_classes(rows: Iterable[ObjectRow]) -> dict[str, _GateClass]:
    rows = _twice(rows)
    classes: dict[str, _GateClass] = {}
    for r in rows:
        classes.setdefault(str(r["label"]), _GateClass()).add(r)
    for r in rows:  # second pass: how many reach the class's (now known) strictest mass
        g = classes[str(r["label"])]
        x = g.mass_spec[0]
        mass = r.get("mass")
        g.over += int(x is not None and mass is not None and mass >= x)
    return classes


def _gate_row(label: str, g: _GateClass, failures: list[str], judge: bool) -> list[Any]:
    recall = _rate(g.hits, g.n)
    mass_x, need_share = g.mass_spec
    share = _rate(g.over, g.n) if mass_x is not None else None
    verdicts = []
    if g.need_recall is not None:
        ok = recall is not None and recall >= g.need_recall - 1e-12
        verdicts.append(ok)
        if not ok:
            failures.append(f"expected {label} recall >= {g.need_recall:.0%} at score >= {g.threshold:.2f}, "
                            f"got {_pct(recall)} ({g.hits} of {g.n} detected)")
    if mass_x is not None and need_share is not None:
        ok = share is not None and share >= need_share - 1e-12
        verdicts.append(ok)
        if not ok:
            failures.append(f"expected >= {need_share:.0%} of {label} objects with CAM mass >= {mass_x:.2f} inside their box, "
                            f"got {_pct(share)} ({g.over} of {g.n})")
    verdict = None if not verdicts else ("pass" if all(verdicts) else "FAIL") if judge else "not judged"
    return _dashes([label, g.n, recall, g.need_recall, g.mass.mean, f"≥ {mass_x:.2f}" if mass_x is not None else None,
                    share, need_share, verdict])


def evaluate_gates(rows: Iterable[ObjectRow], pending: str | None = None) -> tuple[Table | None, list[str]]:
    """The per-class gate table and the failure messages for object ``rows``.

    Args:
        rows: object rows (read twice).
        pending: why the gates are not judged now (e.g. ``"incomplete (3 of 8 cases)"``): the title
            says so, the gate column reads "not judged" and nothing fails.

    Returns ``(None, [])`` when no row carries a gate requirement.
    """
    classes = _gate_classes(rows)
    if not any(g.need_recall is not None or g.specs for g in classes.values()):
        return None, []
    failures: list[str] = []
    table_rows = [_gate_row(label, classes[label], failures, pending is None) for label in sorted(classes)]
    if pending is not None:
        failures = []
    title = f"camaudit gates: {pending}; not judged" if pending else f"camaudit gates: {'FAILED' if failures else 'passed'} ({len(failures)} failing)"
    table: Table = {
        "title": title,
        "columns": ["class", "objects", "recall", "required recall", "mean mass", "mass", "share with mass", "required share", "gate"],
        "rows": table_rows,
        "note": "Per class over every data-driven case of the run: recall at each object's score and IoU thresholds; "
                "share of objects whose CAM mass inside the annotated box reaches the gate's mass. A failed gate makes the exit status 1.",
    }
    return table, failures


@dataclass
class _BaseClass:
    n: int = 0
    base_hits: int = 0
    hits: int = 0
    base_mass: _Sums = field(default_factory=_Sums)
    mass: _Sums = field(default_factory=_Sums)
    rank: _Sums = field(default_factory=_Sums)
    top_iou: _Sums = field(default_factory=_Sums)

    def add(self, r: ObjectRow, base: BaselineCell) -> None:
        self.n += 1
        self.base_hits += int(bool(base["detected"]))
        self.hits += int(bool(r["detected"]))
        self.base_mass.add(base["mass"])
        self.mass.add(r["mass"])
        self.rank.add(base["rank"])
        self.top_iou.add(base["top_iou"])


def evaluate_baseline(rows: Iterable[ObjectRow], recall_drop: float, pending: str | None = None) -> tuple[Table | None, list[str]]:
    """Per-class comparison with the baseline over the objects both runs have; fails on a recall drop > ``recall_drop``.

    ``pending`` as for :func:`evaluate_gates`: shown, not judged.
    """
    classes: dict[str, _BaseClass] = {}
    for r in rows:
        base = r.get("baseline")
        if base:
            classes.setdefault(str(r["label"]), _BaseClass()).add(r, base)
    if not classes:
        return None, []
    table_rows, failures = [], []
    for label in sorted(classes):
        g = classes[label]
        base_recall, recall = g.base_hits / g.n, g.hits / g.n
        drop = base_recall - recall
        ok = drop <= recall_drop + 1e-12
        if not ok and pending is None:
            failures.append(f"expected {label} recall to drop by at most {recall_drop:.0%} from the baseline's {base_recall:.0%}, "
                            f"got {recall:.0%} (drop {drop:.0%}, {g.base_hits} -> {g.hits} of {g.n})")
        verdict = ("pass" if ok else "FAIL") if pending is None else "not judged"
        table_rows.append(_dashes([label, g.n, base_recall, recall, drop, g.base_mass.mean, g.mass.mean, g.rank.mean, g.top_iou.mean, verdict]))
    state = f"{pending}; not judged" if pending else ("FAILED" if failures else "passed")
    table: Table = {
        "title": f"camaudit baseline: per-class recall {state}",
        "columns": ["class", "objects", "baseline recall", "recall", "drop", "baseline mean mass", "mean mass", "mean rank corr.",
                    "mean top IoU", "gate"],
        "rows": table_rows,
        "note": f"Objects present in both the baseline and this run; recall may drop by at most {recall_drop:.0%} (recall-drop).",
    }
    return table, failures
