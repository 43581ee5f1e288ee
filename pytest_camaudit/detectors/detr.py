"""Moved to :mod:`pytest_camaudit.detectors.transformers.detr`; this path stays for old imports (light: names load on first use).

Chefer et al.'s relevance maths (``relevance_rules``, ``attention_bars``) moved up to
:mod:`pytest_camaudit.methods.attention`: the family only supplies the attention maps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .moved import forward

if TYPE_CHECKING:
    from .transformers.detr import *  # noqa: F403

_forward = forward(__name__, "pytest_camaudit.detectors.transformers.detr")


def __getattr__(name: str) -> Any:
    if name in ("relevance_rules", "attention_bars"):
        raise AttributeError(f"{name} moved from {__name__} to pytest_camaudit.methods.attention (the relevance maths is a CAM "
                             "method's; the DETR family supplies the attention maps: DetrFamily.attention_maps)")
    return _forward(name)
