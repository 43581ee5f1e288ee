"""Loaders registered in code: a :class:`Loader` asked before the declared families for its kind of ``--camaudit-model``.

The families' own loaders are declared (:class:`~.handles.Handles`: ``loader``, ``accepts``) and
found by :mod:`.registry`; a conftest or plugin may add a loader for one run with :func:`register_loader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Detector


@dataclass(frozen=True)
class Loader:
    """Builds a :class:`Detector` from a ``--camaudit-model`` value of one kind.

    Attributes:
        kind: the spec kind it serves (:func:`~pytest_camaudit.detectors.specs.spec_kind`: ``name``,
            ``config``, ``checkpoint``, ``directory``).
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
    """Registered loaders of spec ``kind``, the latest first."""
    return [ld for ld in _EXTRA_LOADERS if ld.kind == kind]


def register_loader(loader: Loader) -> Loader:
    """Put ``loader`` first among the loaders of its kind."""
    _EXTRA_LOADERS.insert(0, loader)
    return loader
