"""Exact geometry between a detector's feature maps and the pixels of the original image.

Detectors resize an image of ``H0 × W0`` to ``Hr × Wr`` and place it in a canvas of ``Hp × Wp``
(:class:`~pytest_camaudit.datatypes.Geometry`): torchvision pads the batch at the bottom and right
to a multiple of 32, ultralytics' letterbox centres the image. A feature level of ``h × w`` cells
therefore covers the *padded* canvas, each cell ``Hp / h`` by ``Wp / w`` pixels of it, and only the
``Hr × Wr`` part at the geometry's ``offset`` shows the image. grad-cam resizes the whole ``h × w`` map onto
``H0 × W0``, which stretches the padding over the image and shifts everything toward the bottom
right by up to ``(Hp - Hr) / Hp`` of the height. Here every output pixel centre is mapped through
the resize and into the feature grid, and the map is sampled there — crop and resize in one exact
bilinear step.

Coordinates: pixel ``i`` has its centre at ``i + 0.5``; feature cell ``j`` of stride ``s`` covers
``[j s, (j + 1) s)`` of the padded canvas, centre ``(j + 0.5) s``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ..datatypes import Geometry


def level_stride(padded: int, cells: int) -> float:
    """Stride in padded pixels of a level with ``cells`` cells along an axis of ``padded`` pixels.

    Exact when ``cells`` divides ``padded``; otherwise (ceil-mode pooling, e.g. FPN's ``'pool'``
    level or SSD's VGG) the nearest power of two, which is what such levels really step by.
    """
    if cells <= 0:
        raise ValueError(f"a feature level needs at least one cell, got {cells}")
    if padded % cells == 0:
        return float(padded // cells)
    return float(2 ** round(math.log2(padded / cells)))


def _axis_coords(n_out: int, scale: float, offset: float, stride: float, cells: int, device: torch.device) -> torch.Tensor:
    """Normalised grid_sample coordinates (align_corners=False) of ``n_out`` pixel centres.

    ``scale`` maps output-pixel units to padded-canvas pixels and ``offset`` is where output pixel
    0's edge lies in the canvas; the result samples a level of ``cells`` cells of ``stride`` pixels.
    """
    centres = (torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * scale + offset  # padded px
    cell = centres / stride  # continuous cell coordinate, cell j spans [j, j+1)
    return cell / cells * 2.0 - 1.0


@functools.lru_cache(maxsize=256)
def _sampling_grid(
    out_h: int, out_w: int, scale_y: float, scale_x: float, top: float, left: float, sy: float, sx: float, h: int, w: int,
    device: torch.device,
) -> torch.Tensor:
    """``[1, out_h, out_w, 2]`` (x, y) grid_sample coordinates; cached, since one image's levels,
    and every image of one size, ask for the same few (read only: never modify the result)."""
    gy = _axis_coords(out_h, scale_y, top, sy, h, device)
    gx = _axis_coords(out_w, scale_x, left, sx, w, device)
    return torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]


def sample_level(
    level: torch.Tensor,
    geometry: Geometry,
    out_size: tuple[int, int] | None = None,
    stride: tuple[float, float] | None = None,
    space: str = "original",
) -> torch.Tensor:
    """Resample a feature level onto a pixel grid of the original image (or of the canvas).

    Args:
        level: ``FloatTensor[C, h, w]`` or ``[h, w]``, one image's level.
        geometry: the image's :class:`Geometry`.
        out_size: ``(H, W)`` of the output grid; default the original image size.
        stride: ``(sy, sx)`` of the level in padded pixels; default from :func:`level_stride`.
        space: ``"original"`` — the output grid spans the original image (through the resize);
            ``"padded"`` — the output grid spans the padded canvas ``Hp × Wp`` (used to bring
            levels of different strides onto one common grid).

    Returns:
        ``FloatTensor[C, H, W]`` (or ``[H, W]``), bilinear, edge values held beyond the border.
    """
    squeeze = level.ndim == 2
    x = level[None] if squeeze else level
    c, h, w = x.shape
    hp, wp = geometry.padded
    sy, sx = stride or (level_stride(hp, h), level_stride(wp, w))
    if space == "original":
        h0, w0 = geometry.original
        hr, wr = geometry.resized
        out_h, out_w = out_size or (h0, w0)
        scale_y, scale_x = hr / out_h, wr / out_w
        top, left = (float(v) for v in geometry.offset)
    elif space == "padded":
        out_h, out_w = out_size or (hp, wp)
        scale_y, scale_x = hp / out_h, wp / out_w
        top, left = 0.0, 0.0
    else:
        raise ValueError(f"`space` must be 'original' or 'padded', got {space!r}")
    grid = _sampling_grid(out_h, out_w, scale_y, scale_x, top, left, sy, sx, h, w, x.device)
    out = F.grid_sample(x[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    return out[0] if squeeze else out


def common_grid(levels: Mapping[str, torch.Tensor], geometry: Geometry, max_cells: int) -> tuple[int, int]:
    """The finest level grid ``(h, w)`` with at most ``max_cells`` cells (else the coarsest).

    ``levels`` maps names to ``[B, C, h, w]`` or ``[C, h, w]``; only the spatial sizes are read.
    """
    sizes = sorted({tuple(t.shape[-2:]) for t in levels.values()}, key=lambda s: -s[0] * s[1])
    for hw in sizes:
        if hw[0] * hw[1] <= max_cells:
            return (int(hw[0]), int(hw[1]))
    return (int(sizes[-1][0]), int(sizes[-1][1]))


def levels_on_grid(
    levels: Mapping[str, torch.Tensor], geometry: Geometry, grid: tuple[int, int], window: tuple[int, int, int, int] | None = None
) -> torch.Tensor:
    """Bring every level of one image onto the padded-canvas grid ``grid`` and stack channels.

    Finer levels are area-averaged (each grid cell is a whole number of their cells when strides
    are powers of two), coarser ones sampled bilinearly at the grid's cell centres.

    Args:
        levels: name → ``FloatTensor[C_l, h_l, w_l]``.
        geometry: the image's geometry.
        grid: ``(h, w)`` of the target grid (cells of ``Hp / h`` × ``Wp / w`` padded pixels).
        window: ``(row0, row1, col0, col1)``: only these cells of the grid (the same values as
            the whole grid's ``[:, row0:row1, col0:col1]``, computed from the cells they read).

    Returns:
        ``FloatTensor[sum C_l, h, w]`` (``[sum C_l, row1 - row0, col1 - col0]`` with ``window``).
    """
    gh, gw = grid
    r0, r1, c0, c1 = window or (0, gh, 0, gw)
    out = []
    for t in levels.values():
        h, w = t.shape[-2:]
        if (h, w) == (gh, gw):
            out.append(t[..., r0:r1, c0:c1])
        elif h >= gh and w >= gw and h % gh == 0 and w % gw == 0:
            kh, kw = h // gh, w // gw
            out.append(F.avg_pool2d(t[None, :, r0 * kh : r1 * kh, c0 * kw : c1 * kw], (kh, kw))[0])
        elif window is None:
            out.append(sample_level(t, geometry, (gh, gw), space="padded"))
        else:  # bilinear samples are independent of each other: sample only the window's cell centres
            hp, wp = geometry.padded
            sy, sx = level_stride(hp, h), level_stride(wp, w)
            coords = _sampling_grid(gh, gw, hp / gh, wp / gw, 0.0, 0.0, sy, sx, h, w, t.device)[:, r0:r1, c0:c1]
            out.append(F.grid_sample(t[None].float(), coords, mode="bilinear", padding_mode="border", align_corners=False)[0])
    return torch.cat(out, dim=0)


def grid_to_image(cam: torch.Tensor, geometry: Geometry, grid_stride: tuple[float, float] | None = None) -> torch.Tensor:
    """Map a ``FloatTensor[h, w]`` map on a padded-canvas grid to ``[H0, W0]`` original pixels."""
    return sample_level(cam, geometry, stride=grid_stride)
