"""The CAM lands on the original pixels it belongs to, at odd, non-square sizes with padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.probes import SPOTS, BrightSpotProbe, cell_on_image, peak, spot_image

from pytest_camaudit.datatypes import Geometry
from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.alignment import level_stride, levels_on_grid, sample_level
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for

CASES = SPOTS  # (height, width, spot centre (y, x))


@pytest.fixture(scope="module")
def probe_engine():
    return CamEngine(Detector.wrap(BrightSpotProbe(), ["__background__", "spot"], name="probe"), "eigencam")


@pytest.mark.parametrize(("h", "w", "spot"), CASES, ids=[f"{h}x{w}" for h, w, _ in CASES])
def test_eigencam_peak_lands_within_one_cell(probe_engine, h, w, spot):
    cy, cx = spot
    analysis = probe_engine.analyze(load_image(spot_image(h, w, cy, cx)))
    cam = cam_for(analysis).values
    assert cam.shape == (h, w)
    # one cell of the common grid, in original pixels
    cell_y, cell_x = cell_on_image(analysis.geometry, analysis.grid)
    py, px = peak(cam)
    assert abs(py + 0.5 - (cy + 0.5)) <= cell_y, (py, cy, cell_y)
    assert abs(px + 0.5 - (cx + 0.5)) <= cell_x, (px, cx, cell_x)


def test_naive_stretch_misses_where_exact_mapping_hits(probe_engine):
    """grad-cam's resize of the padded map over the image lands off by more than a cell here."""
    h, w, (cy, cx) = CASES[1]
    analysis = probe_engine.analyze(load_image(spot_image(h, w, cy, cx)))
    grid_map = analysis.stack().abs().mean(0)
    naive = F.interpolate(grid_map[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    py, px = np.unravel_index(int(torch.argmax(naive)), (h, w))
    g = analysis.geometry
    cell_y = g.padded[0] / analysis.grid[0] * g.original[0] / g.resized[0]
    assert g.padded != g.resized  # the case really pads
    assert abs(py - cy) > cell_y  # the naive map is off by more than one cell
    exact = analysis.to_image(grid_map).numpy()
    ey, ex = np.unravel_index(np.argmax(exact), exact.shape)
    assert abs(ey - cy) <= cell_y and abs(ex - cx) <= cell_y


def test_sample_level_maps_each_cell_to_its_pixels():
    # a level of stride 8 over a 48x64 padded canvas showing a 40x50 resized image of 80x100 px
    geo = Geometry(original=(80, 100), resized=(40, 50), padded=(48, 64))
    level = torch.zeros(6, 8)
    level[2, 5] = 1.0  # cell covers padded px y in [16, 24), x in [40, 48) -> original y [32, 48), x [80, 96)
    out = sample_level(level, geo).numpy()
    py, px = np.unravel_index(np.argmax(out), out.shape)
    assert 32 <= py < 48 and 80 <= px < 96
    # the cell centre (padded 20, 44) maps to original (40, 88)
    assert abs(py + 0.5 - 40) <= 1 and abs(px + 0.5 - 88) <= 1


def test_level_stride_handles_ceil_levels():
    assert level_stride(160, 40) == 4
    assert level_stride(160, 3) == 64  # FPN 'pool': ceil(5 / 2) cells of stride 64
    assert level_stride(300, 38) == 8  # SSD300 VGG conv4_3 (ceil mode)


def test_a_window_of_the_grid_is_the_same_cells_of_the_whole_grid():
    """Levels finer than the grid (pooled), on it, coarser (bilinear) and of a ceil-mode size, in a letterboxed canvas."""
    gen = torch.Generator().manual_seed(3)
    geometry = Geometry((90, 120), (72, 96), (96, 96), (12.0, 0.0))
    levels = {"fine": torch.randn(3, 24, 24, generator=gen), "same": torch.randn(2, 12, 12, generator=gen),
              "coarse": torch.randn(4, 6, 6, generator=gen), "pool": torch.randn(2, 2, 2, generator=gen)}
    whole = levels_on_grid(levels, geometry, (12, 12))
    for r0, r1, c0, c1 in ((0, 12, 0, 12), (3, 7, 5, 12), (11, 12, 0, 1)):
        assert torch.equal(levels_on_grid(levels, geometry, (12, 12), (r0, r1, c0, c1)), whole[:, r0:r1, c0:c1])
