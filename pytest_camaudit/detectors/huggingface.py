"""Moved to :mod:`pytest_camaudit.detectors.transformers` (``runtime``, ``family``, ``folders``); this path stays for
old imports such as ``from pytest_camaudit.detectors.huggingface import hf_detector`` (light: names load on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .moved import forward

if TYPE_CHECKING:

    HANDLED_TYPES: dict[str, str]

_T = "pytest_camaudit.detectors.transformers"
_forward = forward(__name__, {
    "import_transformers": f"{_T}.runtime", "INSTALL_HINT": f"{_T}.runtime", "is_transformers_model": f"{_T}.runtime",
    "label_names": f"{_T}.runtime", "hf_detector": f"{_T}.folders", "WEIGHT_FILES": f"{_T}.folders", "*": f"{_T}.family",
})


def __getattr__(name: str) -> Any:
    if name == "HANDLED_TYPES":  # was a list kept by hand; now what the registered families declare
        from .transformers.folders import handled_types

        return handled_types()
    return _forward(name)
