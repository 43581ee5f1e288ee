"""Moved to :mod:`pytest_camaudit.detectors.ultralytics.head`; this path stays for old imports (light: names load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .moved import forward

if TYPE_CHECKING:
    from .ultralytics.head import *  # noqa: F403

__getattr__ = forward(__name__, "pytest_camaudit.detectors.ultralytics.head")
