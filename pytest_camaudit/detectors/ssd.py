"""Moved to :mod:`pytest_camaudit.detectors.torchvision.ssd`; this path stays for old imports (light: names load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .moved import forward

if TYPE_CHECKING:
    from .torchvision.ssd import *  # noqa: F403

__getattr__ = forward(__name__, "pytest_camaudit.detectors.torchvision.ssd")
