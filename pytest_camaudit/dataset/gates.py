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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _dashes(row: list[Any]) -> list[Any]:
    """Table cells with ``None`` shown as "—" (the terminal prints cells with ``str``)."""
    return ["—" if v is None else v for v in row]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def evaluate_gates(rows: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """The per-class gate table and the failure messages for object ``rows``.

    Returns ``(None, [])`` when no row carries a gate requirement.
    """
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_class[str(r["label"])].append(r)
    if not any(r.get("gate_recall") is not None or r.get("gate_mass") for rs in by_class.values() for r in rs):
        return None, []
    table_rows, failures = [], []
    for label in sorted(by_class):
        rs = by_class[label]
        n = len(rs)
        hits = sum(1 for r in rs if r["detected"])
        recall = _rate(hits, n)
        need_recall = max((r["gate_recall"] for r in rs if r.get("gate_recall") is not None), default=None)
        specs = {tuple(r["gate_mass"]) for r in rs if r.get("gate_mass")}
        mass_x, need_share = max(specs) if specs else (None, None)  # strictest mass threshold, then rate
        if specs:
            need_share = max(rate for x, rate in specs if x == mass_x)
        over = sum(1 for r in rs if mass_x is not None and r.get("mass") is not None and r["mass"] >= mass_x)
        share = _rate(over, n) if mass_x is not None else None
        verdicts = []
        thr = min(r["score_threshold"] for r in rs)
        if need_recall is not None:
            ok = recall is not None and recall >= need_recall - 1e-12
            verdicts.append(ok)
            if not ok:
                failures.append(f"expected {label} recall >= {need_recall:.0%} at score >= {thr:.2f}, got {_pct(recall)} ({hits} of {n} detected)")
        if mass_x is not None and need_share is not None:
            ok = share is not None and share >= need_share - 1e-12
            verdicts.append(ok)
            if not ok:
                failures.append(f"expected >= {need_share:.0%} of {label} objects with CAM mass >= {mass_x:.2f} inside their box, "
                                f"got {_pct(share)} ({over} of {n})")
        masses = [r["mass"] for r in rs if r.get("mass") is not None]
        table_rows.append(_dashes([label, n, recall, need_recall, sum(masses) / len(masses) if masses else None,
                                   f"≥ {mass_x:.2f}" if mass_x is not None else None, share, need_share,
                                   None if not verdicts else ("pass" if all(verdicts) else "FAIL")]))
    table = {
        "title": f"camaudit gates: {'FAILED' if failures else 'passed'} ({len(failures)} failing)",
        "columns": ["class", "objects", "recall", "required recall", "mean mass", "mass", "share with mass", "required share", "gate"],
        "rows": table_rows,
        "note": "Per class over every data-driven case of the run: recall at each object's score and IoU thresholds; "
                "share of objects whose CAM mass inside the annotated box reaches the gate's mass. A failed gate makes the exit status 1.",
    }
    return table, failures


def evaluate_baseline(rows: Iterable[dict[str, Any]], recall_drop: float) -> tuple[dict[str, Any] | None, list[str]]:
    """Per-class comparison with the baseline over the objects both runs have; fails on a recall drop > ``recall_drop``."""
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("baseline"):
            by_class[str(r["label"])].append(r)
    if not by_class:
        return None, []
    table_rows, failures = [], []
    for label in sorted(by_class):
        rs = by_class[label]
        n = len(rs)
        base_hits, hits = sum(1 for r in rs if r["baseline"]["detected"]), sum(1 for r in rs if r["detected"])
        base_recall, recall = base_hits / n, hits / n
        drop = base_recall - recall
        ok = drop <= recall_drop + 1e-12
        if not ok:
            failures.append(f"expected {label} recall to drop by at most {recall_drop:.0%} from the baseline's {base_recall:.0%}, "
                            f"got {recall:.0%} (drop {drop:.0%}, {base_hits} -> {hits} of {n})")

        def mean(values: list[Any]) -> float | None:
            vals = [float(v) for v in values if isinstance(v, (int, float))]
            return sum(vals) / len(vals) if vals else None

        table_rows.append(_dashes([label, n, base_recall, recall, drop, mean([r["baseline"]["mass"] for r in rs]), mean([r["mass"] for r in rs]),
                                   mean([r["baseline"]["rank"] for r in rs]), mean([r["baseline"]["top_iou"] for r in rs]), "pass" if ok else "FAIL"]))
    table = {
        "title": f"camaudit baseline: per-class recall {'FAILED' if failures else 'passed'}",
        "columns": ["class", "objects", "baseline recall", "recall", "drop", "baseline mean mass", "mean mass", "mean rank corr.",
                    "mean top IoU", "gate"],
        "rows": table_rows,
        "note": f"Objects present in both the baseline and this run; recall may drop by at most {recall_drop:.0%} (recall-drop).",
    }
    return table, failures
