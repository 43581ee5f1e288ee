"""Synthetic case records for report-at-scale tests: distinct pictures, no detector runs.

Every case gets three figures drawn from a different shapes scene (the scene with its boxes, a
CAM-like overlay, the scene with its surroundings filled), so no two side files are the same
and a 500-case report is as heavy as a real one.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from pytest_camaudit.records import CaseRecord, CheckRecord
from pytest_camaudit.report.figures import PREDICTED, draw_box, figure_record, overlay
from pytest_camaudit.zoo.world import CLASSES, make_scene

KINDS = ("detected", "cam_mass", "context")


def _case(i: int, size: int) -> CaseRecord:
    scene = make_scene(40_000_000 + i, size=size)
    img = np.ascontiguousarray(scene.image)
    scale = max(1.0, 320 / size)
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1.0 else img.copy()
    label = CLASSES[int(scene.labels[0])]
    box = [float(v) for v in scene.boxes[0]]
    boxes = big.copy()
    for b, lab in zip(scene.boxes, scene.labels, strict=True):
        draw_box(boxes, b, scale, PREDICTED, f"{CLASSES[int(lab)]} 0.{90 + i % 10}")
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    cx, cy = (box[0] + box[2]) / 2 + (i % 7) * 3, (box[1] + box[3]) / 2
    cam = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 6) ** 2)).astype(np.float32)
    heat = cv2.resize(overlay(img, cam), (big.shape[1], big.shape[0]))
    filled = big.copy()
    x1, y1, x2, y2 = (int(v * scale) for v in box)
    mask = np.ones(filled.shape[:2], bool)
    mask[y1:y2, x1:x2] = False
    filled[mask] = (124, 116, 104)
    kind = KINDS[i % 3]
    outcome = "passed" if i % 5 == 4 else "failed"
    checks = [CheckRecord("detected", True, f"{label} detected", label, box, 0, {"score": 0.97}, {"score": 0.5})]
    if kind != "detected":
        checks.append(CheckRecord(kind, outcome == "passed", f"expected {kind} on {label}, got less (case {i})", label, box, 0,
                                  {"mass": 0.2 + (i % 10) / 20}, {"mass": 0.4}))
    return CaseRecord(
        nodeid=f"test_scale.py::test_case[{i}]",
        name=f"scene-{i:04d}.png",
        source=f"data/images/scene-{i:04d}.png",
        outcome=outcome,
        image_size=[size, size],
        model="shapes",
        method="eigencam",
        detections=[{"index": 0, "box": box, "label": label, "score": 0.97}],
        expected=[{"label": label, "box": box}],
        checks=checks,
        figures=[
            figure_record("detections", "Expected and detected", boxes, "green: expected; orange: detected"),
            figure_record("cam-eigencam-0", "CAM: eigencam", heat, f"eigencam for {label}"),
            figure_record("context-0", "Without context", filled, f"{label}: score 0.97 with context, 0.41 without"),
        ],
    )


@functools.lru_cache(maxsize=4)
def synthetic_cases(n: int, size: int = 160) -> tuple[CaseRecord, ...]:
    """``n`` distinct cases (4 in 5 failing) of ``size`` px scenes; cached per process."""
    return tuple(_case(i, size) for i in range(n))


def summary_for(cases: tuple[CaseRecord, ...]) -> dict:
    """A run summary as :meth:`RunCollector.summary` gives it, for ``cases``."""
    from pytest_camaudit.plugin.collector import RunCollector
    from pytest_camaudit.plugin.options import Settings

    collector = RunCollector(Settings(report_all=True))
    collector.cases.extend(cases)
    return collector.summary("TESTS_FAILED")
