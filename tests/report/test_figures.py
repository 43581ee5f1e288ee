"""The case cards' pictures: the CAM overlay is grad-cam's, and drawing never imports grad-cam."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from pytest_camaudit.report.figures import overlay


def test_the_overlay_is_grad_cams_show_cam_on_image_pixel_for_pixel():
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (37, 50), (160, 160)):
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cam = rng.uniform(-0.2, 1.2, (h, w)).astype(np.float32)
        cam.flat[0] = np.nan  # a map's NaN and out-of-range values are cleaned the same way before either blend
        mask = np.clip(np.nan_to_num(cam), 0.0, 1.0)
        expected = show_cam_on_image(rgb.astype(np.float32) / 255.0, mask, use_rgb=True, image_weight=0.5)
        assert np.array_equal(overlay(rgb, cam), expected)
    dark = np.zeros((8, 8, 3), np.uint8)
    assert np.array_equal(overlay(dark, np.zeros((8, 8))), show_cam_on_image(dark / 255.0, np.zeros((8, 8)), use_rgb=True, image_weight=0.5))


DRAW_AND_EXPLAIN = """
import sys
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for
from pytest_camaudit.datatypes import CaseDrawing, MapPicture
from pytest_camaudit.report.figures import case_figures
from pytest_camaudit.zoo.world import make_scene

analysis = CamEngine(load_detector("shapes", device="cpu"), "eigencam").analyze(load_image(make_scene(20_000_003).image))
maps = [cam_for(analysis, "eigencam", None), cam_for(analysis, "eigengradcam", analysis.detections[0])]
pictures = tuple(MapPicture(f"cam-{i}", "CAM", m.values) for i, m in enumerate(maps))
figures = case_figures(CaseDrawing(analysis.image.pixels, tuple(analysis.detections), pictures=pictures))
print(len(figures), sorted(m for m in ("pytorch_grad_cam", "sklearn", "matplotlib", "scipy") if m in sys.modules))
"""


def test_eigencam_eigengradcam_and_their_pictures_never_import_grad_cam():
    """grad-cam's package import costs about 1.6 s (scikit-learn, matplotlib, SciPy): only its gradient methods pay it."""
    out = subprocess.run([sys.executable, "-c", DRAW_AND_EXPLAIN], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-2] == "3 []"


def test_an_objects_outline_is_drawn_on_the_detections_figure_and_every_map():
    from pytest_camaudit.datatypes import CaseDrawing, MapPicture, PolygonOutline
    from pytest_camaudit.report.figures import EXPECTED, draw_regions

    h, w = 60, 90  # non-square: a swapped axis would draw elsewhere
    region = PolygonOutline(((20, 10, 70, 30, 60, 50),)).mask(h, w)  # a triangle
    img = draw_regions(np.zeros((h, w, 3), np.uint8), [region], 1.0)
    drawn = np.all(img == EXPECTED, axis=-1) | (img.sum(-1) > 0)
    ys, xs = np.nonzero(drawn)
    assert drawn.sum() > 50 and 18 <= xs.min() and xs.max() <= 71 and 8 <= ys.min() and ys.max() <= 51
    assert not drawn[30, 50]  # its inside stays as it was: an outline, not a fill
    twice = draw_regions(np.zeros((2 * h, 2 * w, 3), np.uint8), [region], 2.0)  # at a display scale of 2
    assert (twice.sum(-1) > 0)[:, 2 * 72:].sum() == 0 and (twice.sum(-1) > 0).sum() > drawn.sum()
    from pytest_camaudit.report.figures import case_figures

    drawing = CaseDrawing(np.zeros((h, w, 3), np.uint8), pictures=(MapPicture("cam-0", "CAM", np.zeros((h, w))),), regions=(region,))
    plain = CaseDrawing(np.zeros((h, w, 3), np.uint8), pictures=(MapPicture("cam-0", "CAM", np.zeros((h, w))),))
    assert "(1 outlined)" in case_figures(drawing)[0].caption and "outlined" not in case_figures(plain)[0].caption
    assert [a.png != b.png for a, b in zip(case_figures(drawing), case_figures(plain), strict=True)] == [True, True]
