"""Measure what the example suite's checks measure, for one or more models, to set thresholds.

    python example_suite/calibrate.py                       # shapes and shapes-shortcut
    python example_suite/calibrate.py --model shapes --method eigencam
    python example_suite/calibrate.py --model shapes-yolo --model shapes-yolo-shortcut   # the YOLOs (ultralytics)

Prints, per annotated object, the matched detection's score, its CAM mass in box and its score
drop without context, then per class the minimum / median for each model — the numbers behind
MIN_MASS and MAX_CONTEXT_DROP in test_shapes_audit.py and the README's "what caught the twin".
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import OBJECTS

from pytest_camaudit.audit.verdicts import iou
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for
from pytest_camaudit.metrics import box_mass


def measure(model_name: str, method: str, threshold: float) -> list[dict]:
    detector = load_detector(model_name, device="cpu")  # any zoo model, Faster R-CNN or YOLO
    engine, classes = CamEngine(detector, method), detector.class_names
    rows = []
    for obj in OBJECTS:
        a = engine.analyze(load_image(obj.image))
        label = classes.index(obj.label)
        cands = [d for d in a.detections if d.label == label and d.score >= threshold and iou(d.box, obj.box) >= 0.5]
        det = max(cands, key=lambda d: iou(d.box, obj.box), default=None)
        row = {"object": obj.id, "label": obj.label, "score": None, "mass": None, "drop": None}
        if det is not None:
            row["score"] = det.score
            row["mass"] = box_mass(cam_for(a, method, det).values, det.box)
            row["drop"] = engine.without_context(a, [det])[0].drop
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="zoo model (repeatable; default: both)")
    p.add_argument("--method", default="eigengradcam")
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument("--per-object", action="store_true", help="print every object, not only the summary")
    args = p.parse_args()
    for name in args.model or ["shapes", "shapes-shortcut"]:
        rows = measure(name, args.method, args.score_threshold)
        print(f"== {name}, method {args.method}, {len(rows)} objects")
        if args.per_object:
            for r in rows:
                print(f"  {r['object']:<34}" + "".join(f"{k}={r[k]:.3f} " if r[k] is not None else f"{k}=— " for k in ("score", "mass", "drop")))
        print(f"  {'class':<10}{'found':>7}{'mass min':>10}{'mass med':>10}{'drop max':>10}{'drop med':>10}")
        for label in sorted({r["label"] for r in rows}):
            rs = [r for r in rows if r["label"] == label]
            found = [r for r in rs if r["score"] is not None]
            masses = [r["mass"] for r in found]
            drops = [r["drop"] for r in found]
            if not found:
                print(f"  {label:<10}{0:>4}/{len(rs):<2}")
                continue
            print(
                f"  {label:<10}{len(found):>4}/{len(rs):<2}{min(masses):>10.3f}{statistics.median(masses):>10.3f}"
                f"{max(drops):>10.3f}{statistics.median(drops):>10.3f}"
            )


if __name__ == "__main__":
    main()
