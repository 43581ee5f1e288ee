"""Which family knows a model, and which source loads a ``--camaudit-model`` value.

Adding a detector family is one new file in this package and one line in :data:`FAMILY_MODULES`:
the file defines ``FAMILY`` (a :class:`~pytest_camaudit.detectors.family.Family`) and, when the
family has its own way of naming models (a checkpoint format, an architecture file, a folder),
``LOADERS`` (:class:`~pytest_camaudit.detectors.sources.Loader` s). Modules are imported on first
use, so a family whose framework is not installed costs nothing until a model of it is asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from torch import nn

from .family import Family

FAMILY_MODULES: tuple[str, ...] = ("rcnn", "retinanet", "fcos", "ssd", "zoo", "torchvision", "detr", "rtdetr", "huggingface", "ultralytics")
"""Modules of this package that define families and loaders, in lookup order."""

_EXTRA_FAMILIES: list[Family] = []


def modules() -> list[ModuleType]:
    """The modules of :data:`FAMILY_MODULES`, imported."""
    return [importlib.import_module(f"{__package__}.{name}") for name in FAMILY_MODULES]


def families() -> list[Family]:
    """Every family, registered ones first, then the built-in ones in :data:`FAMILY_MODULES` order."""
    builtin = [m.FAMILY for m in modules() if isinstance(getattr(m, "FAMILY", None), Family)]
    return [*_EXTRA_FAMILIES, *builtin]


def family_for(model: nn.Module) -> Family:
    """The first family whose ``matches(model)`` is true, else the torchvision protocol (:class:`Family`)."""
    for family in families():
        if family.matches(model):
            return family
    return Family()


def register_family(family: Family) -> Family:
    """Put ``family`` first in the lookup (it wins over the built-in ones for the models it matches)."""
    _EXTRA_FAMILIES.insert(0, family)
    return family
