"""Moved to :mod:`pytest_camaudit.detectors.transformers` (``Replay`` in ``family``, ``to_uint8`` in ``runtime``; the
capture itself is now the engine's hooks, :meth:`~.transformers.family.TransformerFamily.hook_points`);
this path stays for old imports (light: names load on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .moved import forward

if TYPE_CHECKING:
    pass

__getattr__ = forward(__name__, {"to_uint8": "pytest_camaudit.detectors.transformers.runtime",
                                 "Replay": "pytest_camaudit.detectors.transformers.family"})
