"""Old module paths kept for imports written before the ecosystem layout: light forwarding modules.

A module that moved (``detectors/rcnn.py`` → ``detectors/torchvision/rcnn.py``) leaves a module at
its old path whose ``__getattr__`` is :func:`forward`: a name is imported from its new home on first
use, so importing the old path costs nothing (no torch) and a user's ``from
pytest_camaudit.detectors.rcnn import RcnnFamily`` keeps working.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def forward(old: str, new: str | Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for module ``old`` that takes every name from module ``new``.

    ``new`` may map names to modules where they come from different places; other names are
    looked up in ``new["*"]`` when given.
    """

    def __getattr__(name: str) -> Any:
        target = new if isinstance(new, str) else new.get(name, new.get("*"))
        if target is None or name.startswith("__"):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        try:
            return getattr(importlib.import_module(target), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {target}, which has none either)") from None

    return __getattr__
