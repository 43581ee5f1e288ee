"""EigenCAM / EigenGradCAM arithmetic: orientation, degenerate inputs, the fast top vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_camaudit.datatypes import Geometry
from pytest_camaudit.methods.eigencam import eigencam, eigencam_component, eigengradcam, orient_toward_boxes
from pytest_camaudit.methods.maps import normalise
from pytest_camaudit.methods.pca import (
    MAX_PCA_POSITIONS,
    footprint_principal_component,
    level_principal_component,
    principal_projection,
    top_right_singular_vector,
)


def _blob(h=20, w=24, cy=6, cx=15):
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)


def test_eigencam_points_at_the_active_region_whatever_the_svd_sign():
    blob = _blob()
    feats = torch.stack([blob * 3, blob * 2 + 0.1, -blob * 1.5])  # channel signs mixed
    for sign in (1.0, -1.0):  # flipping all activations flips the raw component, not the map
        cam, degenerate = eigencam(sign * feats)
        assert not degenerate
        peak = np.unravel_index(int(torch.argmax(cam)), cam.shape)
        assert peak == (6, 15)
        assert float(cam[0, 0]) < 0.05 * float(cam.max())


def test_constant_activations_give_an_empty_flagged_map_not_noise():
    for value in (0.0, 3.7):
        cam, degenerate = eigencam(torch.full((8, 10, 12), value))
        assert degenerate
        assert float(cam.abs().max()) == 0.0
        assert normalise(cam).max() == 0.0


def test_normalise_zeroes_negative_and_non_finite_values_and_leaves_the_tensor_alone():
    cam = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -3.0]])
    assert normalise(cam).tolist() == [[1.0, 0.0, 0.25], [0.0, 0.5, 0.0]] and normalise(cam).dtype == np.float32
    assert cam.tolist() == [[2.0, -1.0, 0.5], [0.0, 1.0, -3.0]]  # the map may share the tensor's memory: not written to
    broken = torch.tensor([[4.0, float("nan")], [float("inf"), float("-inf")]])
    assert normalise(broken).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert torch.isnan(broken[0, 1]) and torch.isinf(broken[1, 0])


def test_eigengradcam_orients_toward_positive_contribution():
    blob = _blob()
    other = _blob(cy=15, cx=4)
    ga = torch.stack([blob - other, 0.5 * (blob - other), 0.2 * blob])
    cam, degenerate = eigengradcam(ga)
    assert not degenerate
    assert np.unravel_index(int(torch.argmax(cam)), cam.shape) == (6, 15)
    assert float(cam[15, 4]) == 0.0  # the negatively contributing blob is clipped


def test_no_channels_or_no_cells_are_degenerate():
    for empty in (torch.zeros(0, 4, 5), torch.zeros(3, 0, 0)):
        cam, degenerate = eigencam(empty)
        assert degenerate and cam.shape == empty.shape[1:] and float(cam.sum()) == 0.0


def test_zero_gradients_are_degenerate():
    cam, degenerate = eigengradcam(torch.zeros(4, 5, 5))
    assert degenerate and float(cam.sum()) == 0.0


def test_subspace_iteration_matches_exact_svd():
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(2100, 1, generator=gen, dtype=torch.float64)
    v = torch.randn(1, 1100, generator=gen, dtype=torch.float64)
    a = 5 * u @ v + torch.randn(2100, 1100, generator=gen, dtype=torch.float64)
    exact = torch.linalg.svd(a, full_matrices=False).Vh[0]
    fast = top_right_singular_vector(a)  # both sides > 1024: the iterative path
    assert abs(float(exact @ fast)) > 0.9999
    again = top_right_singular_vector(a)
    assert torch.equal(fast, again)  # deterministic


def test_principal_projection_reports_nan_input_as_degenerate():
    x = torch.ones(3, 4, 4)
    x[0, 0, 0] = float("nan")
    proj, degenerate = principal_projection(x)
    assert degenerate and torch.isfinite(proj).all()


def test_gram_path_matches_exact_svd_for_a_thin_matrix():
    gen = torch.Generator().manual_seed(2)
    for shape in ((1600, 320), (200, 1500)):
        a = torch.randn(*shape, generator=gen, dtype=torch.float64)
        a[:, 0] *= 6  # a clear top direction
        exact = torch.linalg.svd(a, full_matrices=False).Vh[0]
        assert abs(float(exact @ top_right_singular_vector(a))) > 0.9999


def _exact_stacked_component(stack: torch.Tensor) -> torch.Tensor:
    """The textbook first principal component of ``[C, h, w]`` positions (float64 SVD), ``[h·w]``."""
    c = stack.shape[0]
    centred = (stack.reshape(c, -1) - stack.reshape(c, -1).mean(1, keepdim=True)).T.double()
    return (centred @ torch.linalg.svd(centred, full_matrices=False).Vh[0]).float()


def _magnitudes(analysis):
    from collections import OrderedDict

    return OrderedDict((k, v.abs()) for k, v in analysis.levels.items())


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return abs(float(np.corrcoef(a.ravel().numpy(), b.ravel().numpy())[0, 1]))


def test_levels_projected_one_channel_each_equal_the_stacked_projection(shapes_engine):
    """Projecting each level at native resolution and resampling one channel is the stack's projection."""
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.zoo.world import make_scene

    analysis = shapes_engine.analyze(load_image(make_scene(20_000_005).image))
    mags = _magnitudes(analysis)
    exact = _exact_stacked_component(analysis.stack(mags))
    ours, degenerate = level_principal_component(mags, analysis.geometry, analysis.grid, max_positions=None)
    assert not degenerate
    assert _corr(ours, exact) > 0.99999
    scale = float(exact.abs().max())
    assert torch.allclose(ours.ravel().abs(), exact.abs(), atol=1e-4 * scale)


def test_coarse_direction_grid_keeps_the_shapes_map(shapes_engine):
    """shapes: 320 channels on a 40×40 grid, direction from the 10×10 level (measured min r 0.9992 on 80 scenes)."""
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods.pca import direction_grid
    from pytest_camaudit.zoo.world import make_scene

    for seed in range(20_000_000, 20_000_006):
        analysis = shapes_engine.analyze(load_image(make_scene(seed).image))
        mags = _magnitudes(analysis)
        assert direction_grid(mags, analysis.geometry, analysis.grid, MAX_PCA_POSITIONS) == (10, 10)
        fast, degenerate = eigencam_component(analysis.levels, analysis.geometry, analysis.grid)
        assert not degenerate
        assert _corr(fast, _exact_stacked_component(analysis.stack(mags))) > 0.999


@pytest.mark.slow
def test_coarse_direction_grid_keeps_a_wide_r50_map():
    """1280 channels × 100×136 cells: the direction comes from the 13×17 level (min r 0.9977 on 6 images)."""
    import cv2
    import torchvision

    from pytest_camaudit.detectors.base import Detector
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.zoo.world import make_layout, render

    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    image = cv2.resize(render(make_layout(7)), (640, 480))
    analysis = CamEngine(Detector.wrap(model, None, name="r50", device="cpu"), "eigencam").analyze(load_image(image))
    mags = _magnitudes(analysis)
    assert analysis.grid == (100, 136)
    fast, degenerate = eigencam_component(analysis.levels, analysis.geometry, analysis.grid)
    assert not degenerate
    assert _corr(fast, _exact_stacked_component(analysis.stack(mags))) > 0.995


def test_variation_the_grid_averages_out_is_degenerate_not_noise():
    """A 1-cell checkerboard pooled onto a grid of 2×2 cells is constant there: flagged, all zeros."""
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float()[None]
    proj, degenerate = level_principal_component({"fine": board}, Geometry.identity(8, 8), (4, 4), max_positions=None)
    assert degenerate and float(proj.abs().max()) == 0.0
    proj, degenerate = level_principal_component({"fine": board}, Geometry.identity(8, 8), (8, 8), max_positions=None)
    assert not degenerate  # on its own grid the same level has signal


def test_orient_toward_boxes_matches_the_pixelwise_correlation():
    gen = torch.Generator().manual_seed(4)
    boxes = [(3.2, 4.7, 20.1, 15.0), (10.0, 10.0, 30.5, 22.2), (-5.0, 25.0, 6.0, 40.0), (50.0, 50.0, 60.0, 60.0)]
    weights = [0.9, 0.6, 0.75, 0.8]  # overlapping, partly outside, wholly outside
    for _ in range(20):
        signed = torch.randn(30, 40, generator=gen)
        ref = torch.zeros(30, 40, dtype=torch.float64)
        for (x1, y1, x2, y2), wt in zip(boxes, weights, strict=True):
            ref[max(0, int(np.floor(y1))) : max(0, int(np.ceil(y2))), max(0, int(np.floor(x1))) : max(0, int(np.ceil(x2)))] += wt
        expected = float((signed.double() * (ref - ref.mean())).sum())
        out = orient_toward_boxes(signed, boxes, weights)
        assert torch.equal(out, signed if expected >= 0 else -signed)


def _same_map(fast: tuple[torch.Tensor, bool], whole: tuple[torch.Tensor, bool]) -> None:
    """Two ``(component, degenerate)`` results are the same EigenGradCAM map: the same flag, r ≥ 0.99999 and,
    after ReLU and scaling to a maximum of 1, every cell within 1e-4 (float32 rounding: measured ≤ 4.2e-5)."""
    assert fast[1] == whole[1]
    if whole[1]:
        assert float(fast[0].abs().max()) == 0.0
        return
    assert _corr(fast[0], whole[0]) >= 0.99999
    a, b = fast[0].clamp_min(0), whole[0].clamp_min(0)
    assert float((a / a.max() - b / b.max()).abs().max()) <= 1e-4


def test_the_footprint_component_is_the_whole_stacks_map_for_every_box(shapes_engine):
    """EigenGradCAM on the cells a box's gradient reaches = on every cell of every level (shapes, every detection of six scenes)."""
    from collections import OrderedDict

    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.zoo.world import make_scene

    boxes = 0
    for seed in range(20_000_000, 20_000_006):
        analysis = shapes_engine.analyze(load_image(make_scene(seed).image))
        for detection in analysis.detections:
            grads = analysis.gradients(detection)
            products = OrderedDict((k, grads[k] * analysis.levels[k]) for k in grads)
            whole = level_principal_component(products, analysis.geometry, analysis.grid, max_positions=None)
            _same_map(footprint_principal_component(products, analysis.geometry, analysis.grid), whole)
            boxes += 1
    assert boxes >= 20


@pytest.mark.parametrize("where", ["fine", "same", "coarse", "two levels", "everywhere"])
def test_the_footprint_component_matches_on_every_kind_of_level(where):
    """A letterboxed canvas; levels finer than the grid (area-averaged), on it, coarser (bilinear); footprints anywhere."""
    from collections import OrderedDict

    gen = torch.Generator().manual_seed(7)
    geometry = Geometry((90, 120), (72, 96), (96, 96), (12.0, 0.0))
    shapes = {"fine": (5, 24, 24), "same": (6, 12, 12), "coarse": (4, 5, 5)}
    levels = OrderedDict((k, torch.zeros(s)) for k, s in shapes.items())
    windows = {"fine": {"fine": (3, 9, 14, 21)}, "same": {"same": (0, 4, 8, 12)}, "coarse": {"coarse": (1, 3, 2, 4)},
               "two levels": {"fine": (16, 24, 0, 6), "coarse": (0, 2, 0, 2)},
               "everywhere": {k: (0, s[1], 0, s[2]) for k, s in shapes.items()}}[where]
    for name, (r0, r1, c0, c1) in windows.items():
        levels[name][:, r0:r1, c0:c1] = torch.randn(shapes[name][0], r1 - r0, c1 - c0, generator=gen)
    levels["fine"][0] *= 4  # a clear first direction
    whole = level_principal_component(levels, geometry, (12, 12), max_positions=None)
    assert not whole[1]
    _same_map(footprint_principal_component(levels, geometry, (12, 12)), whole)


def test_the_footprint_component_of_nothing_or_of_nan_is_degenerate():
    geometry = Geometry.identity(16, 16)
    for value in (0.0, float("nan")):
        levels = {"a": torch.zeros(3, 8, 8), "b": torch.zeros(2, 4, 4)}
        levels["b"][1, 2, 2] = value
        proj, degenerate = footprint_principal_component(levels, geometry, (8, 8))
        assert degenerate and proj.shape == (8, 8) and float(proj.abs().max()) == 0.0
