"""``--camaudit-model`` / ``--camaudit-weights`` / ``--camaudit-device`` → a :class:`Detector`.

The value's kind comes from :func:`~pytest_camaudit.detectors.specs.spec_kind`, and the loader
from the families' declarations (:mod:`.registry`): the one that declares the name (an embedded
detector, a torchvision builder), the ones that declare the file's suffix and accept its content
(a zoo or ultralytics checkpoint, an architecture file), the one that declares the ``model_type``
a ``save_pretrained`` folder's ``config.json`` says. A ``package.module:callable`` is handled here:
it returns an ``nn.Module``, a ``(module, class_names)`` pair or a ready :class:`Detector`, and
:meth:`Detector.wrap` finds the family of whatever module it returned. Loaders passed to
:func:`~.sources.register_loader` are asked first.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError
from . import registry
from .base import Detector
from .sources import loaders
from .specs import spec_kind
from .statedict import load_state_dict_file


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"--camaudit-device={device} but CUDA is not available on this machine; use --camaudit-device=cpu or auto"
        )
    return torch.device(device)


def _import_callable(spec: str) -> Callable[[], Any]:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot import module {module_name!r} for --camaudit-model={spec} ({type(exc).__name__}: {exc}); "
            "check that it is importable (on sys.path / installed)"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelLoadError(f"module {module_name!r} has no attribute {attr!r} (from --camaudit-model={spec})") from None
    if not callable(obj):
        raise ModelLoadError(f"--camaudit-model={spec} names a {type(obj).__name__}, not a callable returning a model")
    factory: Callable[[], Any] = obj
    return factory


def _from_callable(spec: str, weights: str | None) -> Detector:
    factory = _import_callable(spec)
    try:
        made = factory()
    except Exception as exc:
        raise ModelLoadError(f"--camaudit-model={spec} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, Detector):
        return made
    classes = None
    if isinstance(made, tuple) and len(made) == 2:
        made, classes = made
    if weights is not None:
        state, file_classes = load_state_dict_file(Path(weights))
        try:
            made.load_state_dict(state)
        except (RuntimeError, AttributeError) as exc:
            raise ModelLoadError(f"weights file {weights} does not fit {spec}: {str(exc).splitlines()[0]}") from exc
        classes = classes or file_classes
    return Detector.wrap(made, classes, name=spec)


def _folder(spec: str) -> registry.Declared:
    """The declaration whose ``model_types`` include what ``spec``'s ``config.json`` says."""
    path = Path(spec).expanduser() / "config.json"
    types = [t for d in registry.declarations() for t in d.handles.model_types]
    if not path.is_file():
        raise ModelLoadError(f"no detector family loads --camaudit-model={spec} (a directory; families that load one: a "
                             f"save_pretrained folder whose config.json says model_type {', '.join(types) or '(none installed)'})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable JSON config ({type(exc).__name__}: {exc}); re-save the model with save_pretrained") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    declared = registry.for_model_type(model_type)
    if declared is None:
        classes = [c for d in registry.declarations() if d.handles.model_types for c in d.handles.classes[:1]]
        raise ModelLoadError(f"{path} says model_type {model_type!r}; the Hugging Face family explains "
                             f"{', '.join(types)} ({', '.join(classes)})")
    return declared


def _declared(spec: str, kind: str) -> list[registry.Declared]:
    """The declarations that may load ``spec`` (a ``name``, a file, a ``directory``), in lookup order."""
    if kind == "name":
        found = registry.by_name(spec)
        return [found] if found is not None else []
    if kind == "directory":
        return [_folder(spec)]
    return [d for d in registry.for_suffix(spec) if d.handles.loader and d.accepts(spec)]


def _from_loaders(spec: str, kind: str, weights: str | None, offline: bool) -> Detector:
    if kind == "checkpoint" and not Path(spec).expanduser().is_file():
        raise ModelLoadError(f"detector checkpoint {spec} does not exist; check --camaudit-model")
    for loader in loaders(kind):
        if loader.accepts(spec):
            return loader.load(spec, weights, offline)
    for declared in _declared(spec, kind):
        detector: Detector = declared.loader()(spec, weights, offline)
        return detector
    known = ", ".join(d.handles.name for d in registry.for_suffix(spec) if d.handles.loader) or "none installed"
    if kind == "checkpoint":
        raise ModelLoadError(
            f"detector checkpoint {spec} is corrupt or not a checkpoint of a known family ({known}); "
            "pass a zoo checkpoint, an ultralytics .pt, or a state dict with --camaudit-weights and a builder"
        )
    raise ModelLoadError(f"no detector family loads --camaudit-model={spec} (a {kind}; families that load one: {known})")


def load_detector(model: Any = "shapes", weights: str | None = None, device: str = "auto", *, offline: bool = False) -> Detector:
    """Build the detector that ``--camaudit-model`` names, in eval mode on the chosen device.

    Args:
        model: a ``--camaudit-model`` value (see :mod:`pytest_camaudit.detectors.specs`), or the
            run's settings (anything with ``model``, ``weights`` and ``device`` attributes).
        weights: ``--camaudit-weights``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        offline: never download weights (``--camaudit-offline``).

    Raises:
        ModelLoadError: the model or its weights cannot be loaded; the message names the file or
            option and what to do.
    """
    if not isinstance(model, str):
        settings = model
        model, weights, device = settings.model, settings.weights, settings.device
        offline = bool(getattr(settings, "offline", offline))
    target = resolve_device(device)
    try:
        kind = spec_kind(model)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    detector = _from_callable(model, weights) if kind == "callable" else _from_loaders(model, kind, weights, offline)
    detector.model.to(target).eval()
    return dataclasses.replace(detector, device=target, meta={"model_option": model, **detector.meta})
