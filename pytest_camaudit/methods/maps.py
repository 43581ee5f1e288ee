"""What every method does last: a map on the image's pixels, clipped at zero and scaled to max 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def normalise(cam: torch.Tensor) -> np.ndarray:
    """``[H, W]`` map → ``float32`` numpy, negatives and non-finite values zeroed, scaled to max 1
    (all zeros stay zeros)."""
    values = cam.detach().float().cpu().numpy()  # may share the tensor's memory: not written to
    if np.isfinite(values).all():  # the usual map: a copy with the negatives zeroed (nan_to_num's own copies cost more)
        values = np.maximum(values, 0.0)
    else:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)  # a copy
        np.maximum(values, 0.0, out=values)
    top = float(values.max()) if values.size else 0.0
    if top > 0:
        values /= top
    return values.astype(np.float32, copy=False)
