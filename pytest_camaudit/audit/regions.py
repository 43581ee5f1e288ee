"""An object's own region for the mass assertions: a mask, or an annotation's outline, on a case's pixels.

For a thin, rotated or hollow object most of its box is background; the mass assertions take the
object's region (``region=``) and measure inside it instead (issue 20: mass in the outline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import metrics as M
from ..datatypes import MaskOutline, PolygonOutline
from ..errors import ExpectationError

if TYPE_CHECKING:
    from .casebase import CaseBase

ObjectRegion = np.ndarray | PolygonOutline | MaskOutline
"""An object's own region: an ``[H, W]`` mask at the image's size (bool, or weights in ``[0, 1]``; e.g.
:meth:`~pytest_camaudit.audit.casebase.CaseBase.predicted_mask`), or an annotation's outline
(:class:`~pytest_camaudit.datatypes.PolygonOutline`, :class:`~pytest_camaudit.datatypes.MaskOutline`)."""


def outline_weights(case: CaseBase, region: ObjectRegion) -> np.ndarray:
    """``float64 [H, W]`` weights of an object's region on the case's pixels (see :data:`ObjectRegion`); the report outlines it.

    Raises:
        ExpectationError: ``region`` is neither a 2-D mask nor an outline, or does not fit the image.
    """
    if isinstance(region, (PolygonOutline, MaskOutline)):
        try:
            region = region.mask(case.image.height, case.image.width)
        except ValueError as exc:
            raise ExpectationError(f"the outline does not fit the image: {exc}") from None
    if not isinstance(region, np.ndarray) or region.ndim != 2:
        raise ExpectationError(f"`region` must be an [H, W] mask or an outline (PolygonOutline, MaskOutline), got {type(region).__name__}")
    weights = M.region_weights((case.image.height, case.image.width), region)
    case.show_region(weights)
    return weights
