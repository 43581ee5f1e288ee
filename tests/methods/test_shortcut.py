"""Which maps see the ``shapes-shortcut`` twin's tag: per-box gradient maps do, EigenCAM cannot.

The full table (every method, D-RISE included) comes from ``benchmarks/bench_cue_table.py`` and is in
``docs/methods.md``; this checks its cheap rows on a few scenes so a regression shows up in CI.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for
from pytest_camaudit.zoo.model import shipped_checkpoint
from pytest_camaudit.zoo.world import CLASSES, CUE_CLASS, make_layout, render_variant

TRIANGLE = CLASSES.index(CUE_CLASS)

pytestmark = pytest.mark.skipif(
    not shipped_checkpoint("shapes-shortcut").is_file(), reason="the shapes-shortcut checkpoint is not shipped yet"
)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u > 0 else 0.0


def cue_ratio(values: np.ndarray, cue_box) -> float:
    """Map mass inside the tag over the tag's share of the image (1 = chance)."""
    x1, y1, x2, y2 = cue_box
    total = float(values.sum())
    if total <= 0:
        return 0.0
    return float(values[y1:y2, x1:x2].sum()) / total / ((x2 - x1) * (y2 - y1) / values.size)


def mean_ratios(detector: Detector, methods: tuple[str, ...], n_scenes: int = 6) -> dict[str, float]:
    engine = CamEngine(detector, "hirescam")
    out: dict[str, list[float]] = {m: [] for m in methods}
    seed = 41_000_000
    scenes = 0
    while scenes < n_scenes:
        lay = make_layout(seed)
        seed += 1
        if not any(o.label == TRIANGLE for o in lay.objects):
            continue
        scenes += 1
        a = engine.analyze(load_image(render_variant(lay, "shapes-shortcut")))
        for i, obj in enumerate(lay.objects):
            cands = [d for d in a.detections if d.label == TRIANGLE and d.score >= 0.3 and _iou(d.box, obj.box) >= 0.5]
            if obj.label != TRIANGLE or not cands:
                continue
            det = max(cands, key=lambda d: d.score)
            for m in methods:
                out[m].append(cue_ratio(cam_for(a, m, det).values, lay.cue_box(i)))
    assert all(len(v) >= 6 for v in out.values()), {m: len(v) for m, v in out.items()}
    return {m: float(np.mean(v)) for m, v in out.items()}


def test_box_gradient_maps_find_the_tag_on_the_twin_only(shapes_detector, shortcut_detector):
    methods = ("hirescam", "layercam")  # element-wise: the steadiest rows of the table
    twin = mean_ratios(shortcut_detector, methods)
    clean = mean_ratios(shapes_detector, methods)
    for m in methods:
        assert twin[m] > 2.0, (m, twin, clean)  # the twin's maps reach the tag
        assert clean[m] < 1.0, (m, twin, clean)  # the clean model's do not


def test_eigencam_does_not_tell_the_twin_from_the_clean_model(shapes_detector, shortcut_detector):
    """Class-agnostic: it shows where the backbone is active, not what a box's score rests on —
    near chance on the tag for both models (measured 1.30 and 0.97 on these scenes)."""
    twin = mean_ratios(shortcut_detector, ("eigencam",))["eigencam"]
    clean = mean_ratios(shapes_detector, ("eigencam",))["eigencam"]
    assert twin < 2.0 and abs(twin - clean) < 1.0, (twin, clean)
