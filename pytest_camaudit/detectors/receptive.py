"""Receptive fields of convolution stacks: which cells of a level one output cell reads.

Shared by the families whose heads score one cell from a window of its level (torchvision's
one-stage heads, ultralytics' ``Detect``).
"""

from __future__ import annotations

from torch import nn


def has_spatial_norm(module: nn.Module) -> bool:
    """Whether ``module`` normalises over space (GroupNorm, LayerNorm, InstanceNorm)."""
    return any(isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)) for m in module.modules())


def conv3_depth(module: nn.Module) -> int:
    """Receptive radius in cells of a stack of stride-1 convolutions (one per 3×3); -1 if strided or dilated."""
    r = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if m.stride != (1, 1) or m.dilation != (1, 1):
                return -1
            r += (m.kernel_size[0] - 1) // 2
    return r


def radius_of(modules: list[nn.Module]) -> int | None:
    """Receptive radius of running ``modules`` side by side: ``None`` when one normalises over space or strides."""
    if any(has_spatial_norm(m) for m in modules):
        return None
    depths = [conv3_depth(m) for m in modules]
    return None if min(depths) < 0 else max(depths)


def reach_of(modules: list[nn.Module]) -> int:
    """Radius of the convolutions alone: the cells that carry a cell's evidence."""
    return max(0, max(conv3_depth(m) for m in modules))
