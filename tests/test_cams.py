"""EigenCAM / EigenGradCAM arithmetic: orientation, degenerate inputs, the fast top vector."""

from __future__ import annotations

import numpy as np
import torch

from pytest_camaudit.cams import eigencam, eigengradcam, normalise, principal_projection, top_right_singular_vector


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


def test_eigengradcam_orients_toward_positive_contribution():
    blob = _blob()
    other = _blob(cy=15, cx=4)
    ga = torch.stack([blob - other, 0.5 * (blob - other), 0.2 * blob])
    cam, degenerate = eigengradcam(ga)
    assert not degenerate
    assert np.unravel_index(int(torch.argmax(cam)), cam.shape) == (6, 15)
    assert float(cam[15, 4]) == 0.0  # the negatively contributing blob is clipped


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
    proj, degenerate = principal_projection(x, x.mean(0))
    assert degenerate and torch.isfinite(proj).all()


def test_gram_path_matches_exact_svd_for_a_thin_matrix():
    gen = torch.Generator().manual_seed(2)
    for shape in ((1600, 320), (200, 1500)):
        a = torch.randn(*shape, generator=gen, dtype=torch.float64)
        a[:, 0] *= 6  # a clear top direction
        exact = torch.linalg.svd(a, full_matrices=False).Vh[0]
        assert abs(float(exact @ top_right_singular_vector(a))) > 0.9999


def test_pooled_direction_on_a_wide_r50_grid_gives_the_exact_map():
    """1280 channels × 100×136 cells: the direction comes from the grid pooled to ≤ 1024 cells."""
    import cv2
    import torchvision

    from pytest_camaudit.cams import MAX_PCA_POSITIONS
    from pytest_camaudit.detector import Detector
    from pytest_camaudit.engine import CamEngine
    from pytest_camaudit.images import load_image
    from pytest_camaudit.zoo.world import make_layout, render

    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    image = cv2.resize(render(make_layout(7)), (640, 480))
    a = CamEngine(Detector.wrap(model, None, name="r50", device="cpu"), "eigencam").analyze(load_image(image)).stack().abs()
    c, h, w = a.shape
    assert c > MAX_PCA_POSITIONS and h * w > MAX_PCA_POSITIONS  # the pooled path
    fast, degenerate = principal_projection(a, a.mean(0))
    centred = (a.reshape(c, -1) - a.reshape(c, -1).mean(1, keepdim=True)).T.double()
    exact = centred @ torch.linalg.svd(centred, full_matrices=False).Vh[0]
    assert not degenerate
    assert abs(np.corrcoef(fast.ravel().numpy(), exact.float().numpy())[0, 1]) > 0.999
