"""The numbers behind the thresholds of ``test_dataset.py``, per model, through the plugin's own checks.

    python example_suite/calibrate_dataset.py                      # shapes and shapes-shortcut
    python example_suite/calibrate_dataset.py --model shapes --method eigencam

For each model: every image of ``data/annotations.json`` is audited and checked exactly as
``camaudit_entry.check`` does (and compared with ``baselines/shapes`` when it exists); then, per
class, recall, box mass (min / median / share ≥ 0.5), the largest share of a triangle's map on the
tags, and against the baseline the mean rank correlation and top-10 % IoU of the maps, the largest
box-mass drop and how many cases the default tolerances would fail.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from pytest_camaudit.audit.auditor import Auditor
from pytest_camaudit.dataset.baseline import BaselineSpec
from pytest_camaudit.dataset.entries import ThresholdResolver, Thresholds, load_entries
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.metrics import region_mass
from pytest_camaudit.plugin.options import Settings

HERE = Path(__file__).parent


def measure(model: str, method: str, threshold: float, baseline: Path | None) -> tuple[list[dict], int]:
    settings = Settings(model=model, method=method, device="cpu", score_threshold=threshold)
    auditor = Auditor(CamEngine(load_detector(settings), method), settings)
    spec = BaselineSpec(str(baseline), False) if baseline is not None else None
    entries = load_entries(HERE / "data" / "annotations.json", None, ThresholdResolver(Thresholds(score=threshold)), spec)
    rows, failing = [], 0
    for entry in entries:
        case = entry.audit(auditor)
        try:
            entry.check(case)
        except AssertionError:
            failing += 1
        tags = entry.info.get("cue_boxes") or []
        for row in case.objects:
            row["tag_mass"] = None
            if tags and row["detection"] is not None:
                row["tag_mass"] = region_mass(case.cam(case.detections[row["detection"]]).values, tags)
            rows.append(row)
    return rows, failing


def summarise(model: str, rows: list[dict], failing: int) -> None:
    by_class: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_class[r["label"]].append(r)
    print(f"\n{model}: {len(rows)} objects, {failing} failing cases")
    print(f"  {'class':9} {'n':>3} {'recall':>6} {'mass min':>8} {'median':>6} {'>=0.5':>6} {'tag max':>7} {'rank':>6} {'top IoU':>7} {'mass drop max':>13}")
    for label in sorted(by_class):
        rs = by_class[label]
        masses = [r["mass"] if r["mass"] is not None else 0.0 for r in rs]
        tags = [r["tag_mass"] for r in rs if r["tag_mass"] is not None]
        base = [r["baseline"] for r in rs if r.get("baseline")]
        ranks = [b["rank"] for b in base if b["rank"] is not None]
        ious = [b["top_iou"] for b in base if b["top_iou"] is not None]
        drops = [b["mass"] - (r["mass"] or 0.0) for r, b in ((r, r.get("baseline")) for r in rs) if b and b["mass"] is not None]

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        print(f"  {label:9} {len(rs):>3} {sum(r['detected'] for r in rs) / len(rs):>6.2f} {min(masses):>8.3f} {statistics.median(masses):>6.3f} "
              f"{sum(m >= 0.5 for m in masses) / len(masses):>6.2f} {f(max(tags) if tags else None):>7} "
              f"{f(statistics.mean(ranks) if ranks else None):>6} {f(statistics.mean(ious) if ious else None):>7} {f(max(drops) if drops else None):>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="zoo model (repeatable); default: shapes and shapes-shortcut")
    parser.add_argument("--method", default="eigengradcam", help="CAM method (default eigengradcam, as pytest.ini)")
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--baseline", type=Path, default=HERE / "baselines" / "shapes")
    args = parser.parse_args()
    baseline = args.baseline if (args.baseline / "manifest.json").is_file() else None
    for model in args.model or ["shapes", "shapes-shortcut"]:
        rows, failing = measure(model, args.method, args.score_threshold, baseline)
        summarise(model, rows, failing)


if __name__ == "__main__":
    main()
