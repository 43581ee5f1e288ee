"""The registry of detector families, derived from their declarations: which family explains a model,
which loader builds a ``--camaudit-model`` value.

Families come from three places, looked up in this order (the first that claims a model or a value wins):

1. families passed to :func:`register_family` (a conftest's), the latest first;
2. every declaration (:class:`~.handles.Handles`), sorted by ``order`` (lower first); at equal
   order an installed family before a built-in one, then by name. The declarations are
   * the package's own: every module of ``pytest_camaudit`` that assigns ``HANDLES = Handles(...)``
     at top level (``detectors/torchvision/rcnn.py``, ``detectors/transformers/detr.py``,
     ``zoo/source.py``…) — adding a family is adding such a module, nothing else names it;
   * installed ones: the entry points of the group ``pytest_camaudit.families`` (as ``pytest11`` is
     pytest's), each naming a declaration, ``"mypkg.family:HANDLES"``. One that cannot be read
     (missing module, not a ``Handles``…) is left out with a :class:`~pytest_camaudit.errors.CamauditWarning`
     naming the entry point and the error; a run that does not use it goes on.
3. none claims it: the torchvision protocol (:class:`~.family.Family`).

Torch-free: declarations are read from source (:func:`~.handles.read_handles`) and a family's module
is imported the first time one of its models is built or explained, so option parsing stays light.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CamauditWarning
from .handles import Handles, read_handles, resolve

if TYPE_CHECKING:
    from types import ModuleType

    from torch import nn

    from .family import Family

GROUP = "pytest_camaudit.families"
"""The entry-point group installed families register under."""

PACKAGE = Path(__file__).resolve().parents[1]
_MARK = "\nHANDLES = Handles("


@dataclass(frozen=True)
class Declared:
    """One declaration and where it came from.

    Attributes:
        handles: the declaration.
        module: the module it was read from (its ``family``, ``loader`` and ``accepts`` are attributes there).
        origin: ``"built-in"``, or ``"entry point NAME = VALUE"`` (how warnings and errors name it).
    """

    handles: Handles
    module: str
    origin: str = "built-in"

    @property
    def installed(self) -> bool:
        return self.origin != "built-in"

    def family(self) -> Family | None:
        """The declared family (its module imported now); ``None`` for a source that only loads."""
        return resolve(self.module, self.handles.family) if self.handles.family else None

    def loader(self) -> Callable[[str, str | None, bool], Any]:
        """The declared loader, ``(spec, weights, offline) → Detector`` (typed by :mod:`.loading`, which ``base`` is beside)."""
        load: Callable[[str, str | None, bool], Any] = resolve(self.module, self.handles.loader)
        return load

    def accepts(self, spec: str) -> bool:
        """Whether the declared ``accepts`` (or, without one, the suffix alone) claims file ``spec``."""
        return bool(resolve(self.module, self.handles.accepts)(spec)) if self.handles.accepts else True

    def sort_key(self) -> tuple[int, int, str]:
        return (self.handles.order, 0 if self.installed else 1, self.handles.name)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _builtin() -> list[Declared]:
    """The package's own declarations: every module with a top-level ``HANDLES = Handles(...)``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "templates" in path.parts or _MARK not in path.read_text(encoding="utf-8"):
            continue
        module = _module_name(path)
        found.append(Declared(read_handles(module, path=path), module))
    return found


def _installed() -> list[Declared]:
    """Declarations of the ``pytest_camaudit.families`` entry points; an unreadable one warns and is left out."""
    found = []
    for ep in metadata.entry_points(group=GROUP):
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            module, _, attr = ep.value.partition(":")
            found.append(Declared(read_handles(module.strip(), attr.strip() or "HANDLES"), module.strip(), origin))
        except Exception as exc:  # noqa: BLE001 - a broken third-party family must not break a run that does not use it
            broken(origin, exc)
    return found


def broken(origin: str, exc: BaseException) -> None:
    """Warn that the installed family of ``origin`` is left out, and why."""
    warnings.warn(f"pytest-camaudit: the detector family of {origin} (group {GROUP}) is left out: "
                  f"{type(exc).__name__}: {exc}", CamauditWarning, stacklevel=3)


@functools.cache
def declarations() -> tuple[Declared, ...]:
    """Every declaration, built-in and installed, in lookup order (read once per process)."""
    builtin = _builtin()
    own = {(d.module, d.handles) for d in builtin}
    installed = [d for d in _installed() if (d.module, d.handles) not in own]  # an entry point may name a built-in
    return tuple(sorted([*builtin, *installed], key=Declared.sort_key))


def by_name(name: str) -> Declared | None:
    """The first declaration whose ``names`` include ``name``."""
    return next((d for d in declarations() if name in d.handles.names), None)


def for_suffix(path: str) -> list[Declared]:
    """Declarations whose ``suffixes`` end ``path`` (case-insensitive), in lookup order."""
    lower = path.lower()
    return [d for d in declarations() if d.handles.suffixes and lower.endswith(d.handles.suffixes)]


def for_model_type(model_type: Any) -> Declared | None:
    """The first declaration that loads ``save_pretrained`` folders of ``model_type``."""
    return next((d for d in declarations() if model_type in d.handles.model_types), None)


_EXTRA_FAMILIES: list[Family] = []


def register_family(family: Family) -> Family:
    """Put ``family`` first in the lookup (it wins over the declared ones for the models it matches)."""
    _EXTRA_FAMILIES.insert(0, family)
    return family


_LEFT_OUT: set[str] = set()


def _declared_family(declared: Declared) -> Family | None:
    """``declared``'s family; an installed one whose module fails to import warns once and is left out."""
    if declared.origin in _LEFT_OUT:
        return None
    try:
        return declared.family()
    except Exception as exc:
        if not declared.installed:
            raise
        _LEFT_OUT.add(declared.origin)
        broken(declared.origin, exc)
        return None


def family_for(model: nn.Module) -> Family:
    """The first family (see the module docstring) that matches ``model``, else the torchvision protocol."""
    from .family import Family

    for family in _EXTRA_FAMILIES:
        if family.matches(model):
            return family
    for declared in declarations():
        handles = declared.handles
        if not handles.family or (handles.classes and not handles.claims(type(model))):
            continue
        found = _declared_family(declared)
        if found is None:
            continue
        # a family that keeps Family.matches is matched by its declaration's classes (with or without ``handles = HANDLES``)
        if found.matches(model) if type(found).matches is not Family.matches else bool(handles.classes):
            return found
    return Family()


def families() -> list[Family]:
    """Every family: registered ones first, then every declared one (all their modules imported)."""
    declared = [f for d in declarations() if d.handles.family and (f := _declared_family(d)) is not None]
    return [*_EXTRA_FAMILIES, *declared]


def modules() -> list[ModuleType]:
    """The modules of the package's own declarations, imported."""
    return [importlib.import_module(d.module) for d in declarations() if not d.installed]
