"""Model sources: which :class:`Loader` builds a detector from a ``--camaudit-model`` value.

A family file (or a source file such as :mod:`.torchvision` or :mod:`.zoo`) lists its loaders in
``LOADERS``; :func:`loaders` collects them from :data:`~.registry.FAMILY_MODULES` plus those added
with :func:`register_loader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import Detector
from .registry import modules


@dataclass(frozen=True)
class Loader:
    """Builds a :class:`Detector` from a ``--camaudit-model`` value of one kind.

    Attributes:
        kind: the spec kind it serves (:func:`~pytest_camaudit.detectors.specs.spec_kind`).
        accepts: ``spec → bool``: whether this loader claims the value (may read the file's header).
        load: ``(spec, weights, offline) → Detector`` on the CPU, eval mode.
        name: how error messages call it.
    """

    kind: str
    accepts: Callable[[str], bool]
    load: Callable[[str, str | None, bool], Detector]
    name: str


_EXTRA_LOADERS: list[Loader] = []


def loaders(kind: str) -> list[Loader]:
    """Loaders of spec ``kind``, registered ones first."""
    builtin = [ld for m in modules() for ld in getattr(m, "LOADERS", ())]
    return [ld for ld in (*_EXTRA_LOADERS, *builtin) if ld.kind == kind]


def register_loader(loader: Loader) -> Loader:
    """Put ``loader`` first among the loaders of its kind."""
    _EXTRA_LOADERS.insert(0, loader)
    return loader
