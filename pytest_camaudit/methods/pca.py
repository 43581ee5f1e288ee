"""The principal component of a detector's feature levels, computed without stacking them on one grid.

Maps are computed on a *common grid*: every feature level of one image brought onto the same
padded-canvas grid (see :func:`pytest_camaudit.engine.alignment.levels_on_grid`) and stacked along
channels — the role grad-cam's ``fasterrcnn_reshape_transform`` plays, but on the finest grid the
budget allows instead of the coarsest (``'pool'``) one. The stack is never built at full size for
the principal component (:func:`level_principal_component`): each level is projected at its own
resolution and only the one-channel results are resampled, and where the grid is large the
direction is estimated on a coarser level grid (:data:`MAX_PCA_POSITIONS`). On the ``shapes``
detector this takes the EigenCAM from 4.0 ms to about 1 ms per image, at r ≥ 0.999 to the exact map.

**A box's gradient** is non-zero only in its footprint (RoIAlign samples, an anchor's receptive
field), so ``gradient × activation`` is zero on nearly every cell: :func:`footprint_principal_component`
stacks only the window of cells it reaches and adds the zero rows back through the channel means
(EigenGradCAM: the same map, exact direction, at a fraction of the cost).

**Degenerate input.** On constant activations the centred matrix is zero and grad-cam's SVD returns
an arbitrary direction, then min-max scaling blows numerical noise up to a full-range map (or NaN).
Here such a map is all zeros and flagged ``degenerate``, so a CAM-mass assertion fails and says why
instead of measuring noise.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

import torch

from ..datatypes import Geometry
from ..engine.alignment import common_grid, levels_on_grid
from .threads import one_thread

DEGENERATE_RTOL = 1e-6
"""A stack whose channels deviate from their means by at most this share of its largest magnitude is constant."""


SQUARINGS = 3
"""Times a slowly converging Gram matrix is squared: its 8th power has the same eigenvectors, and
each step on it gains what 8 steps on the matrix itself would."""

def plain_steps(k: int) -> int:
    """Power steps on a ``k × k`` matrix itself before it is squared: about what three squarings
    cost (measured on one thread: 9 steps at k = 64, 21 at 100, 33 at 128), so a clear top
    direction (EigenCAM's activations: 5–12 steps at k = 100) converges first, and a slow one
    pays at most twice the best of the two."""
    return max(4, k // 8)

MAX_SQUARED = 128
"""Largest ``k`` whose ``k × k`` Gram matrix is squared: above it three products cost more than the
steps they save (172 steps' worth at k = 256). The ``shapes`` detector's box gradients (k = 64)
took 41 steps, 0.36 ms; 8 + about 3 squared, 0.2 ms."""


def _top_eigenvector(gram: torch.Tensor, iterations: int = 100, tol: float = 1e-13) -> torch.Tensor:
    """Top eigenvector of a small symmetric PSD matrix (``[k, k]``, returned as float64 on its
    device), deterministically: power iteration in float64 on the CPU from the column of largest norm
    (tens of microseconds where the top eigenvalue stands out, as it does for trained activations),
    ``torch.linalg.eigh`` when it has not converged after ``iterations`` steps (no clear gap, as in a
    random model: a hundred ``k × k`` products already cost about what the decomposition costs).
    Where :func:`plain_steps` steps do not converge and ``k ≤`` :data:`MAX_SQUARED`, the remaining
    steps run on the matrix's 8th power (:data:`SQUARINGS`; each square scaled by its trace, so
    nothing overflows): the same eigenvector, in fewer steps.

    On one thread (:func:`.threads.one_thread`, whoever calls it): a ``k ≤ 1024`` problem gains
    nothing from more, and a pool of them (NumPy's OpenBLAS, or torch's own) right after a forward
    competes with torch's still-spinning OpenMP workers; on a YOLOS's 768 × 768 Gram that turned a
    0.2 s decomposition into 0.4–20 s on two busy cores.
    """
    with one_thread():
        return _power_or_eigh(gram.detach().to(device="cpu", dtype=torch.float64), iterations, tol).to(gram.device)


def _squared(g: torch.Tensor) -> torch.Tensor:
    """``g``'s power ``2 ** SQUARINGS``, scaled (by each square's trace) to a trace of at most 1."""
    a = g
    for _ in range(SQUARINGS):
        trace = float(torch.trace(a))
        if not (trace > 0.0 and math.isfinite(trace)):
            return g  # zero or not finite: the plain iteration (then eigh) decides
        a = a / trace
        a = a @ a
    return a


def _power_or_eigh(g: torch.Tensor, iterations: int, tol: float) -> torch.Tensor:
    v = g[:, int(torch.argmax(torch.diagonal(g)))].clone()
    norm = float(torch.linalg.vector_norm(v))
    top = None
    if norm > 0.0:
        v /= norm
        a, switch = g, plain_steps(g.shape[0]) if g.shape[0] <= MAX_SQUARED else -1
        for step in range(iterations):
            if step == switch:
                a = _squared(g)  # converging slowly: 8 steps per step from here
            w = a @ v
            w /= torch.linalg.vector_norm(w)
            if 1.0 - abs(float(w @ v)) < tol:
                top = w
                break
            v = w
    if top is None:
        top = torch.linalg.eigh(g)[1][:, -1]
    return top.contiguous()


def top_right_singular_vector(a: torch.Tensor, iterations: int = 40, tol: float = 1e-12) -> torch.Tensor:
    """First right singular vector of ``a`` (``[N, C]``), deterministically.

    When one side is small (≤ 1024) this is the top eigenvector of the small Gram matrix
    (``AᵀA`` or ``AAᵀ``, accumulated in ``a``'s dtype and solved in float64), exact and far
    cheaper than an SVD of ``A``. Otherwise subspace iteration on a 4-column block from a
    fixed-seed start, stopped when the leading direction no longer moves.
    """
    n, c = a.shape
    if min(n, c) <= 1024:
        if c <= n:
            return _top_eigenvector(a.T @ a).to(a.dtype)
        u = _top_eigenvector(a @ a.T).to(a.dtype)
        v = a.T @ u
        return v / v.norm()
    gen = torch.Generator(device="cpu").manual_seed(0)
    block = torch.randn(c, 4, generator=gen, dtype=a.dtype).to(a.device)
    top = block[:, 0]
    for _ in range(iterations):
        block, _ = torch.linalg.qr(a.T @ (a @ block))
        _, _, vh = torch.linalg.svd(a @ block, full_matrices=False)  # Rayleigh–Ritz on the block
        new = block @ vh[0]
        done = float(1.0 - abs(new @ top)) < tol
        top = new
        if done:
            break
    return top


MAX_PCA_POSITIONS = 256
"""Where the map's grid has more cells than this, the EigenCAM direction is estimated on the finest
feature-level grid with at most this many cells (every cell of the map's grid is still projected on
it): a 10×10 grid for the ``shapes`` detector's 40×40 map, 13×17 for an R50-FPN's 100×136 one."""

MIN_PCA_POSITIONS = 16
"""A direction grid with fewer cells than this says too little: the map's own grid is used."""


def direction_grid(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int], max_positions: int | None
) -> tuple[int, int]:
    """The grid the principal direction is estimated on: ``grid`` itself when it has at most
    ``max_positions`` cells (or ``max_positions`` is None), else the finest level grid within the
    budget, unless that has fewer than :data:`MIN_PCA_POSITIONS` cells."""
    cells = grid[0] * grid[1]
    if max_positions is None or cells <= max_positions:
        return grid
    coarse = common_grid(levels, geometry, max_positions)
    n = coarse[0] * coarse[1]
    return coarse if MIN_PCA_POSITIONS <= n < cells else grid


def _centred_stack(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int], nonnegative: bool = False
) -> tuple[torch.Tensor, float, float]:
    """The levels stacked on ``grid`` and centred per channel (``[ΣC, h·w]``), with the largest
    magnitude of the stack and the largest deviation from a channel's mean (NaN when not finite).
    ``nonnegative`` levels (EigenCAM's ``|A|``) are their own magnitude: no ``|·|`` of the stack."""
    stack = levels_on_grid(levels, geometry, grid)
    flat = stack.reshape(stack.shape[0], grid[0] * grid[1])
    centred = flat - flat.mean(dim=1, keepdim=True)
    if flat.numel() == 0:
        return centred, 0.0, 0.0  # no channels or no cells: nothing to explain
    scale, spread = torch.stack([flat.max() if nonnegative else flat.abs().max(), centred.abs().max()]).tolist()
    return centred, scale, spread


def _peaks(levels: Mapping[str, torch.Tensor], nonnegative: bool = False) -> dict[str, float]:
    """Each level's largest magnitude (0 for an empty level; NaN or inf when it holds one): the
    larger magnitude of its minimum and maximum (no copy of the level; two vectorised reductions
    cost less than one ``aminmax``), read in one transfer (``|v|.max()`` per level allocates ``|v|`` and reads each alone).
    ``nonnegative`` levels: their maximum alone (the same value: their minimum is not larger)."""
    out = dict.fromkeys(levels, 0.0)
    named = [k for k, v in levels.items() if v.numel()]
    if named and nonnegative:
        out.update(zip(named, torch.stack([levels[k].amax() for k in named]).tolist(), strict=True))  # amax propagates NaN
    elif named:
        extremes = torch.stack([torch.stack([levels[k].amin(), levels[k].amax()]) for k in named])  # [L, 2]: min, max
        out.update(zip(named, extremes.abs().amax(dim=1).tolist(), strict=True))  # amax propagates NaN
    return out


def _unit_scale(
    levels: OrderedDict[str, torch.Tensor], peaks: dict[str, float] | None = None, nonnegative: bool = False
) -> tuple[OrderedDict[str, torch.Tensor], dict[str, float]]:
    """``levels`` times one power of two that brings their largest magnitude to [0.5, 1) (exact: the same
    bits otherwise), with each returned level's largest magnitude (:func:`_peaks`, given or measured).
    Random-weight models can carry maps of magnitude 1e-13 … 1e-32, whose float32 Gram products
    underflow into denormals (slow) or zero (an empty map); the component is scale-free."""
    peaks = _peaks(levels, nonnegative) if peaks is None else peaks
    peak = max(peaks.values(), default=0.0)
    if not math.isfinite(peak) or peak == 0.0 or 2.0**-8 <= peak <= 2.0**8:
        return levels, peaks
    factor = math.ldexp(1.0, -math.frexp(peak)[1])
    # an all-zero level stays as it is (zero times the factor, no copy); the others are measured
    # again: a level far below the peak may underflow to zero
    scaled = OrderedDict((k, v if peaks[k] == 0.0 else v * factor) for k, v in levels.items())
    rescaled = _peaks(OrderedDict((k, v) for k, v in scaled.items() if peaks[k] != 0.0), nonnegative)
    return scaled, {k: rescaled.get(k, 0.0) for k in scaled}


def level_principal_component(
    levels: Mapping[str, torch.Tensor],
    geometry: Geometry,
    grid: tuple[int, int],
    max_positions: int | None = MAX_PCA_POSITIONS,
    nonnegative: bool = False,
) -> tuple[torch.Tensor, bool]:
    """First principal component of ``levels`` stacked on ``grid``, computed without stacking them there.

    The stack on a grid is linear in each level (area averages and bilinear samples), so the
    projection of the stack on a direction ``v`` is the sum over levels of ``v_l · level``
    (one channel each, at native resolution) brought onto the grid: five one-channel resamples
    instead of resampling every channel. The direction itself comes from the levels stacked on
    :func:`direction_grid` (exact when that is ``grid``; ``max_positions=None`` forces it; when the
    coarse stack is constant the direction is looked for on ``grid`` itself).

    Args:
        levels: name → ``FloatTensor[C_l, h_l, w_l]`` of one image.
        geometry: the image's geometry.
        grid: ``(h, w)`` of the map's common grid.
        max_positions: cell budget of the direction grid, see :data:`MAX_PCA_POSITIONS`.
        nonnegative: the levels hold no negative value (EigenCAM's ``|A|``): their magnitudes are
            read without taking ``|·|`` again (the same values, fewer passes).

    Returns:
        ``(FloatTensor[h, w], degenerate)``: the centred projection, oriented to correlate
        positively with the channel sum of the stack. ``degenerate`` (and all zeros) when the stack
        is not finite, or constant over positions — no channel deviates from its mean by more than
        ``1e-6`` of the stack's largest magnitude — or its projection has no such range on ``grid``.
    """
    levels, _ = _unit_scale(OrderedDict((k, v.float()) for k, v in levels.items()), nonnegative=nonnegative)
    device = next(iter(levels.values())).device
    coarse_grid = direction_grid(levels, geometry, grid, max_positions)
    centred, scale, spread = _centred_stack(levels, geometry, coarse_grid, nonnegative)
    if spread <= DEGENERATE_RTOL * scale and coarse_grid != grid:  # no variation at this scale: look closer
        centred, scale, spread = _centred_stack(levels, geometry, grid, nonnegative)
    if not (math.isfinite(scale) and math.isfinite(spread)) or scale == 0.0 or spread <= DEGENERATE_RTOL * scale:
        return torch.zeros(grid, dtype=torch.float32, device=device), True
    v = top_right_singular_vector(centred.T)
    weights = torch.stack([v, torch.ones_like(v)])  # [2, ΣC]: the direction, and a channel sum
    per_level: OrderedDict[str, torch.Tensor] = OrderedDict()
    offset = 0
    for name, t in levels.items():
        c = t.shape[0]
        per_level[name] = (weights[:, offset : offset + c] @ t.reshape(c, -1)).reshape(2, *t.shape[1:])
        offset += c
    both = levels_on_grid(per_level, geometry, grid)  # [2 L, h, w]: projection, channel sum per level
    proj = both[0::2].sum(dim=0)
    proj -= proj.mean()
    ref = both[1::2].sum(dim=0)
    width, correlation = torch.stack([proj.max() - proj.min(), (proj * (ref - ref.mean())).sum()]).tolist()
    if not math.isfinite(width) or width <= DEGENERATE_RTOL * scale:
        return torch.zeros(grid, dtype=torch.float32, device=device), True  # not finite, or it varies only at a scale the grid averages out
    return (-proj if correlation < 0 else proj), False


MAX_FOOTPRINT_CHANNELS = 1024
""":func:`footprint_principal_component` solves a Gram matrix of the channels that are non-zero somewhere; above this many it
hands the levels to :func:`level_principal_component` instead."""


def _footprint(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int], peaks: Mapping[str, float]
) -> tuple[OrderedDict[str, torch.Tensor], tuple[int, int, int, int] | None]:
    """The levels that are non-zero somewhere (``peaks``: each level's largest magnitude, :func:`_peaks`),
    and the window of ``grid`` (``row0, row1, col0, col1``) holding every cell of the stack they can
    make non-zero (None: none, or a value is not finite)."""
    support = OrderedDict((k, t) for k, t in levels.items() if peaks[k] != 0.0)  # NaN != 0: kept, then refused
    if not support or not all(math.isfinite(peaks[k]) for k in support):
        return support, None
    # the grid takes non-negative weights of level cells: a cell reads a non-zero one iff its indicator is non-zero
    # where any channel is non-zero: a non-zero maximum or minimum (finite here; 5x faster than `(t != 0).any(0)`)
    indicators = OrderedDict((k, ((t.amax(dim=0) != 0) | (t.amin(dim=0) != 0))[None].float()) for k, t in support.items())
    reach = levels_on_grid(indicators, geometry, grid).sum(dim=0)
    rows, cols = torch.nonzero(reach.sum(dim=1)).ravel(), torch.nonzero(reach.sum(dim=0)).ravel()
    if rows.numel() == 0:
        return support, None
    return support, (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def footprint_principal_component(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int]
) -> tuple[torch.Tensor, bool]:
    """:func:`level_principal_component` with the exact direction (``max_positions=None``), computed
    only where the stack can be non-zero: for a box's ``gradient × activation``, whose gradient is
    non-zero only in the box's footprint (its RoIAlign samples, its anchor's receptive field).

    Every other cell of the grid is a zero row of the stack, and zero rows enter the centred Gram
    matrix only through the channel means: ``Σ (x − μ)(x − μ)ᵀ = X_Wᵀ X_W − N μ μᵀ`` over the ``N``
    cells of the grid, ``μ = Σ_W x / N``, with ``X_W`` the window's rows. Channels that are zero
    everywhere add zero rows and columns to it, and zero terms to the projection. So the direction,
    the degenerate tests and the map are those of the whole stack (the Gram in float64 instead of
    the stack's float32: the maps agree to float rounding, ``tests/methods/test_eigencam.py``).
    A non-finite value anywhere is degenerate, as it makes the whole stack's Gram non-finite.

    Returns:
        ``(FloatTensor[h, w], degenerate)`` as :func:`level_principal_component`.
    """
    levels, peaks = _unit_scale(OrderedDict((k, v.float()) for k, v in levels.items()))
    zeros = torch.zeros(grid, dtype=torch.float32, device=next(iter(levels.values())).device)
    support, window = _footprint(levels, geometry, grid, peaks)
    if window is None:
        return zeros, True  # zero everywhere (nothing to explain), or not finite
    if sum(t.shape[0] for t in support.values()) > MAX_FOOTPRINT_CHANNELS:
        return level_principal_component(levels, geometry, grid, max_positions=None)
    r0, r1, c0, c1 = window
    x = levels_on_grid(support, geometry, grid, window).reshape(-1, (r1 - r0) * (c1 - c0))  # [C', n]
    n_cells = grid[0] * grid[1]
    mean = x.sum(dim=1) / n_cells
    outside = mean.abs().max() if x.shape[1] < n_cells else mean.new_zeros(())
    scale, spread = torch.stack([x.abs().max(), torch.maximum((x - mean[:, None]).abs().max(), outside)]).tolist()
    if not (math.isfinite(scale) and math.isfinite(spread)) or scale == 0.0 or spread <= DEGENERATE_RTOL * scale:
        return zeros, True
    xd, md = x.double(), mean.double()
    v = _top_eigenvector(xd @ xd.T - n_cells * torch.outer(md, md)).to(x.dtype)
    proj, ref = zeros.clone(), zeros.clone()
    proj[r0:r1, c0:c1] = (v @ x).reshape(r1 - r0, c1 - c0)
    ref[r0:r1, c0:c1] = x.sum(dim=0).reshape(r1 - r0, c1 - c0)
    proj -= proj.mean()
    width, correlation = torch.stack([proj.max() - proj.min(), (proj * (ref - ref.mean())).sum()]).tolist()
    if not math.isfinite(width) or width <= DEGENERATE_RTOL * scale:
        return zeros, True
    return (-proj if correlation < 0 else proj), False


def as_levels(
    x: torch.Tensor | Mapping[str, torch.Tensor], geometry: Geometry | None, grid: tuple[int, int] | None
) -> tuple[Mapping[str, torch.Tensor], Geometry, tuple[int, int]]:
    """A stacked ``FloatTensor[C, h, w]`` is one level on its own grid; levels come with theirs."""
    if isinstance(x, torch.Tensor):
        h, w = x.shape[-2:]
        return {"stack": x}, Geometry.identity(h, w), (h, w)
    if geometry is None or grid is None:
        raise ValueError("levels given by name need their `geometry` and the `grid` of the map")
    return x, geometry, grid


def principal_projection(x: torch.Tensor, max_positions: int | None = None) -> tuple[torch.Tensor, bool]:
    """:func:`level_principal_component` of one stacked ``FloatTensor[C, h, w]`` on its own grid
    (exact direction by default): ``(FloatTensor[h, w], degenerate)``."""
    return level_principal_component(*as_levels(x, None, None), max_positions)


