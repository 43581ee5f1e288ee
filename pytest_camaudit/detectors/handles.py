"""What a family handles, declared so that option parsing reads it without importing torch.

A family module (or a model source such as the zoo) declares at top level::

    HANDLES = Handles(
        name="detr",
        classes=("DetrForObjectDetection",),   # models it explains (a class or base of that name)
        model_types=("detr",),                 # save_pretrained folders whose config.json says one of these
        loader="pytest_camaudit.detectors.transformers.folders:load_folder",
    )

and the registry (:mod:`.registry`) derives from the declarations every ``--camaudit-model`` value it
accepts, which family explains a model and which loader builds one. :func:`read_handles` reads the
assignment from the module's syntax tree when every argument is a literal (strings, numbers,
tuples), so the family module itself — which imports torch — is imported only when one of its
models is built or explained; like setuptools' ``attr:``, it imports the module when an argument
is not a literal (then the module must be light, as the zoo's catalog is).

Torch-free: only the standard library is imported here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_ORDER = 100
"""Where a declaration without ``order`` sits in the lookup (lower first)."""


@dataclass(frozen=True)
class Handles:
    """A family's (or model source's) declaration: what it explains and which ``--camaudit-model`` forms it loads.

    Attributes:
        name: the family's name (``Family.name``; what reports and messages call it).
        classes: model classes it explains, by the name of the class or of a base (no import needed).
        class_modules: when given, such a class must come from a module whose name starts with one of
            these (``("transformers.",)``): a user's class of the same name is not claimed.
        model_types: ``config.json`` ``model_type`` s of ``save_pretrained`` folders it loads.
        names: ``--camaudit-model`` names it builds (torchvision builders, the zoo's detectors).
        suffixes: file suffixes it may load (``.pt``, ``.yaml``); ``accepts`` looks inside the file.
        family: attribute of the module holding the :class:`~.family.Family` (``""``: a source
            that only loads models other families explain, such as the zoo).
        loader: ``(spec, weights, offline) → Detector`` for the values above: an attribute of the
            module, or ``"package.module:function"`` (``""``: it loads nothing by ``--camaudit-model``).
        accepts: ``spec → bool`` deciding a file by its content (same form as ``loader``); without
            it every file with a declared suffix is the family's.
        order: lookup order when two families claim a model or a value: lower first (built-ins
            use 10–90 and :data:`DEFAULT_ORDER`); at equal order an installed family
            (entry point) comes before a built-in one, then by ``name``.
        describe: how the list of accepted ``--camaudit-model`` values names what this loads
            (``{names}`` is replaced by the declared names), e.g. ``"an embedded detector ({names})"``.
    """

    name: str
    classes: tuple[str, ...] = ()
    class_modules: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    family: str = "FAMILY"
    loader: str = ""
    accepts: str = ""
    order: int = DEFAULT_ORDER
    describe: str = ""

    def claims(self, model_type: type) -> bool:
        """Whether a model of ``model_type`` is one of :attr:`classes` (by name, anywhere in its MRO)."""
        return any(c.__name__ in self.classes and (not self.class_modules or c.__module__.startswith(self.class_modules))
                   for c in model_type.__mro__)

    def phrase(self) -> str:
        """:attr:`describe` with ``{names}`` filled in."""
        return self.describe.replace("{names}", ", ".join(self.names))


_FIELDS = {f.name for f in fields(Handles)}


class NotLiteral(ValueError):
    """The declaration is not a ``Handles(...)`` call of literals: the module must be imported to read it."""


def _static(source: str, attr: str) -> Handles:
    """The ``attr = Handles(...)`` assignment of ``source``, evaluated without running the module."""
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        if not (isinstance(target, ast.Name) and target.id == attr and isinstance(node, (ast.Assign, ast.AnnAssign))):
            continue
        call = node.value
        func = getattr(call, "func", None)
        named = (func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None)
        if not (isinstance(call, ast.Call) and named == Handles.__name__ and not call.args):
            raise NotLiteral(f"{attr} is not a Handles(...) call with keyword arguments")
        kwargs: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg not in _FIELDS:
                raise NotLiteral(f"{attr} has an argument {kw.arg!r} that Handles does not take")
            try:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                raise NotLiteral(f"{attr}'s {kw.arg} is not a literal") from None
        return Handles(**kwargs)
    raise NotLiteral(f"no top-level {attr} = Handles(...)")


def read_handles(module: str, attr: str = "HANDLES", path: Path | None = None) -> Handles:
    """The declaration ``module.attr``: read from the source when it is literal, else by importing the module.

    Raises:
        ImportError: the module cannot be found or imported.
        TypeError: ``attr`` is not a :class:`Handles`.
    """
    if path is None:
        spec = importlib.util.find_spec(module)
        path = Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None
    if path is not None:
        try:
            return _static(path.read_text(encoding="utf-8"), attr)
        except (NotLiteral, SyntaxError, OSError, UnicodeDecodeError, TypeError):
            pass
    value = getattr(importlib.import_module(module), attr, None)
    if not isinstance(value, Handles):
        raise TypeError(f"{module}:{attr} is a {type(value).__name__}, not a pytest_camaudit.detectors.handles.Handles")
    return value


def resolve(module: str, ref: str) -> Any:
    """The object ``ref`` names: ``"attr"`` of ``module``, or ``"package.module:attr"`` (imported now)."""
    where, _, attr = ref.rpartition(":")
    obj: Any = importlib.import_module(where or module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
