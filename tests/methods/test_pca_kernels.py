"""The small kernels under EigenCAM / EigenGradCAM: the top eigenvector of a small Gram matrix, each
level's largest magnitude, the cells a box's gradient reaches. Each is checked against the plain
formula it replaces."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch

from pytest_camaudit.datatypes import Geometry
from pytest_camaudit.engine.alignment import levels_on_grid
from pytest_camaudit.methods import pca


def _psd(k: int, top: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(k, 3 * k, generator=gen, dtype=torch.float64)
    a[0] *= top  # top > 1: a clear top direction
    return a @ a.T


@pytest.mark.parametrize("k", [2, 16, 64, 100, pca.MAX_SQUARED, pca.MAX_SQUARED + 1, 300])
def test_the_top_eigenvector_is_eighs(k):
    g = _psd(k, 1.5, seed=k)
    exact = torch.linalg.eigh(g)[1][:, -1]
    got = pca._top_eigenvector(g)
    # squared (k <= MAX_SQUARED): to float64 rounding; plain steps stop within their tolerance (1e-13 per step)
    tol = 1e-13 if k <= pca.MAX_SQUARED else 1e-10
    assert 1.0 - abs(float(got @ exact)) < tol
    assert torch.equal(got, pca._top_eigenvector(g))  # deterministic


def test_squaring_keeps_the_eigenvectors_and_a_trace_of_at_most_one():
    g = _psd(40, 2.0, seed=3)
    a = pca._squared(g)
    assert float(torch.trace(a)) <= 1.0 + 1e-12
    assert abs(float(torch.linalg.eigh(a)[1][:, -1] @ torch.linalg.eigh(g)[1][:, -1])) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("bad", [0.0, float("nan"), float("inf")])
def test_a_zero_or_non_finite_matrix_is_not_squared(bad):
    g = torch.full((8, 8), bad, dtype=torch.float64)
    assert pca._squared(g) is g


def test_no_clear_gap_falls_back_to_eigh():
    q = torch.linalg.qr(torch.randn(12, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64))[0]
    g = q @ torch.diag(torch.tensor([1.0, 1.0 - 1e-6] + [0.1] * 10, dtype=torch.float64)) @ q.T  # 800 steps do not separate them
    assert torch.equal(pca._top_eigenvector(g), torch.linalg.eigh(g)[1][:, -1])


def test_peaks_are_each_levels_largest_magnitude_nan_and_inf_included():
    gen = torch.Generator().manual_seed(0)
    levels = OrderedDict(
        a=torch.randn(8, 6, 6, generator=gen),
        b=-5 * torch.rand(4, 3, 3, generator=gen),  # the largest magnitude is a minimum
        empty=torch.zeros(0, 2, 2),
        zero=torch.zeros(3, 2, 2),
    )
    nan, inf = torch.ones(2, 2, 2), torch.ones(2, 2, 2)
    nan[1, 0, 1], inf[0, 1, 1] = float("nan"), float("-inf")
    levels.update(nan=nan, inf=inf)
    peaks = pca._peaks(levels)
    for name in ("a", "b", "zero"):
        assert peaks[name] == float(levels[name].abs().max())
    assert peaks["empty"] == 0.0 and math.isnan(peaks["nan"]) and peaks["inf"] == math.inf
    magnitudes = OrderedDict((k, v.abs()) for k, v in levels.items())  # EigenCAM's |A|: read by their maximum alone
    peaks_of_magnitudes = pca._peaks(magnitudes, nonnegative=True)
    assert peaks_of_magnitudes.keys() == peaks.keys()
    assert all(peaks_of_magnitudes[k] == peaks[k] or math.isnan(peaks[k]) and math.isnan(peaks_of_magnitudes[k]) for k in peaks)


def test_unit_scale_leaves_zero_levels_alone_and_measures_the_scaled_ones_again():
    levels = OrderedDict(small=torch.full((2, 4, 4), 1e-30), zero=torch.zeros(2, 2, 2))
    scaled, peaks = pca._unit_scale(levels)
    assert scaled["zero"] is levels["zero"] and peaks["zero"] == 0.0
    assert 0.5 <= peaks["small"] < 1.0 and peaks["small"] == float(scaled["small"].abs().max())


def test_the_footprint_window_holds_every_cell_any_channel_makes_non_zero():
    geometry = Geometry.identity(32, 32)
    fine, coarse = torch.zeros(4, 16, 16), torch.zeros(4, 8, 8)
    fine[1, 3, 5], fine[3, 9, 2] = 2.0, -1.0  # opposite signs on different channels
    levels = OrderedDict(fine=fine, coarse=coarse)
    support, window = pca._footprint(levels, geometry, (16, 16), pca._peaks(levels))
    assert list(support) == ["fine"]
    reach = levels_on_grid(OrderedDict(fine=(fine != 0).any(dim=0)[None].float()), geometry, (16, 16))[0]
    rows, cols = torch.nonzero(reach.sum(1)).ravel(), torch.nonzero(reach.sum(0)).ravel()
    assert window == (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1) == (3, 10, 2, 6)
